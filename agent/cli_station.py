"""``posdiag station``: many terminals at once (the depot), or scanned labels in their backends."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from posdiag.drivers.address import parse_address

from .cli_backend import load_backends
from .cli_common import (
    EXIT_NOT_READY,
    EXIT_READY,
    EXIT_USAGE,
    Context,
    _simulation_records,
    backends_option,
    err,
    fail,
    guarded,
    out,
)
from .discovery import discover
from .options import SECONDS, Count, OneLineUsageError, Seconds
from .policy import load_policy
from .render import safe

DEMO_ANDROID = (
    "adb+sim://activated?model=pax-a920",
    "adb+sim://unsettled?model=sunmi-p2",
    "adb+sim://fresh?model=android-generic",
)


# --- station -----------------------------------------------------------------------------------


@click.command()
@click.argument("addresses", nargs=-1)
@click.option("--mode", type=click.Choice(["check", "wipe"]), default="check", show_default=True)
@click.option(
    "--simulate", type=Count(1, 1024), help="Run on N simulated terminals (1 to 1024)."
)
@click.option(
    "--fleet",
    "fleet_file",
    type=click.Path(path_type=Path),
    help="Run on the simulated terminals (and plug schedule) listed in this TOML file.",
)
@click.option(
    "--once",
    is_flag=True,
    help="Work every attached terminal once and exit; with none attached, a simulated fleet "
    "of 16 shows what the station does.",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="With --simulate/--fleet: keep watching after the fleet is done (edit the fleet file "
    "to plug and unplug terminals); Ctrl-C to stop.",
)
@click.option("--operator", help="Who runs the station (recorded on every result).")
@click.option("--settle", is_flag=True, help="Consent to settling unsettled money first (ZVT).")
@click.option("--yes", "assume_yes", is_flag=True, help="Unattended (required with --mode wipe).")
@click.option("--max-parallel", type=Count(1, 256), default=4, show_default=True)
@click.option(
    "--deadline",
    type=SECONDS,
    default=300.0,
    show_default=True,
    help="Seconds one terminal may take before it is given up.",
)
@click.option(
    "--poll",
    type=Seconds(0.05, inclusive=True),
    default=None,
    help="Seconds between re-enumerations (default 1, or 5 when hotplug events are heard).",
)
@click.option(
    "--batch",
    "continue_batch",
    metavar="ID",
    help="Continue this batch after a crash or stop: terminals it erased are not wiped again, "
    "interrupted wipes resume.",
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Certificate folder.")
@click.option("--ledger", "ledger_url", help="Ledger database URL (SQLite in the data folder).")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path), help="Policy TOML.")
@click.option("--json", "as_json", is_flag=True, help="The summary as one JSON object.")
@click.option(
    "--scan",
    is_flag=True,
    help="Read serials/TUSNs from a barcode scanner (or stdin), one per line, and check each "
    "in its backends (units no cable reaches).",
)
@click.option(
    "--release",
    is_flag=True,
    help="Wipe mode: release each erased unit in its backend (TMS/acquirer), verified.",
)
@backends_option
@guarded
def station(
    ctx: Context,
    addresses: tuple[str, ...],
    mode: str,
    simulate: int | None,
    fleet_file: Path | None,
    once: bool,
    keep_running: bool,
    operator: str | None,
    settle: bool,
    assume_yes: bool,
    max_parallel: int,
    deadline: float,
    poll: float | None,
    continue_batch: str | None,
    out_dir: Path | None,
    ledger_url: str | None,
    policy_file: Path | None,
    as_json: bool,
    scan: bool,
    release: bool,
    backends_file: Path | None,
) -> None:
    """Check (or wipe) many terminals at once: the depot station.

    Without arguments, watches attached terminals (hotplug) until Ctrl-C. With ADDRESSES,
    works those once; with --once, the attached ones once (a simulated fleet when none is
    attached). With --simulate N or --fleet FILE, works simulated terminals (plugged in and
    out as the fleet says) until the fleet is done. A live table on a terminal, else one JSON
    line per slot update on stdout. Exit codes: 0 every terminal checked (check mode) or
    erased/erased_with_exceptions (wipe mode), 1 otherwise, 2 usage error.
    """
    from .fleet import FleetError, fleet_of, load_fleet
    from .station import SlotResult, Station, simulated_fleet, summarise

    if scan:
        if addresses or simulate or fleet_file or once or mode == "wipe":
            raise click.UsageError("--scan checks scanned units in their backends: give it alone")
        from .cli_backend import scan_station

        ok = scan_station(
            ctx, load_backends(backends_file), load_policy(policy_file), ledger_url, operator,
            as_json,
        )
        sys.exit(EXIT_READY if ok else EXIT_NOT_READY)

    if mode == "wipe" and not (operator and assume_yes):
        raise click.UsageError("--mode wipe needs --operator NAME and --yes (unattended station)")
    sources = [bool(addresses), simulate is not None, fleet_file is not None, once]
    if sum(sources) > 1:
        raise click.UsageError("give ADDRESSES, --once, --simulate N or --fleet FILE, not several")
    if once:
        addresses = tuple(found.address for found in discover())
        if not addresses:
            simulate = 16
            err.print(
                "[yellow]No terminal attached: running the station on 16 simulated terminals "
                "(ZVT and Android, mixed scenarios) instead.[/]",
                highlight=False,
            )
    if keep_running and not (simulate or fleet_file):
        raise click.UsageError("--keep-running goes with --simulate or --fleet")
    fleet = None
    try:
        if fleet_file is not None:
            fleet = load_fleet(fleet_file)
        elif simulate:
            fleet = fleet_of(simulated_fleet(simulate))
    except FleetError as exc:
        fail(str(exc), EXIT_USAGE, ctx)
    links = {parse_address(address).link == "sim" for address in addresses}  # typos: exit 2 now
    if links == {True, False}:
        raise OneLineUsageError(
            "simulated and real terminals in one station run would share one ledger: "
            "run them separately"
        )
    policy = load_policy(policy_file)
    backends = load_backends(backends_file)
    if release and mode != "wipe":
        raise click.UsageError("--release goes with --mode wipe")
    if release and not backends:
        from .cli_backend import require_backends

        require_backends(backends)
    if fleet is not None or links == {True}:
        ledger_url, out_dir = _simulation_records(ctx, ledger_url, out_dir)
    live_view = sys.stdout.isatty()
    slots: dict[str, SlotResult] = {}
    started: list[Any] = []
    lock = threading.Lock()

    def table() -> Any:
        from rich.table import Table

        view = Table(
            "address", "model", "serial", "stage", "progress", "verdict/outcome", "elapsed"
        )
        with lock:
            rows = list(slots.values())
        for s in rows:
            # Text, not str: a model named "[link=…]" must not become rich markup either; the
            # slots are already cleaned of control characters by the station.
            view.add_row(
                *(
                    Text(safe(cell))
                    for cell in (
                        s.address,
                        s.model or "",
                        s.serial or "",
                        s.stage,
                        _progress_cell(s),
                        (s.verdict_or_outcome or "")
                        + (" (already erased in this batch)" if s.already_erased else ""),
                        f"{s.elapsed_s:.1f}s",
                    )
                )
            )
        return view

    def on_event(update: SlotResult) -> None:
        with lock:
            slots[update.address] = update
        if live_view:
            if started:
                started[0].update(table())
        else:
            with lock:
                click.echo(json.dumps({"event": "slot", **update.to_json()}, ensure_ascii=False))

    worker = Station(
        "wipe" if mode == "wipe" else "check",
        policy,
        operator=operator,
        settle=settle,
        assume_yes=assume_yes,
        out_dir=out_dir,
        ledger_url=ledger_url,
        max_parallel=max_parallel,
        deadline_s=deadline,
        on_event=on_event,
        batch=continue_batch,
        backends=backends,
        release=release,
    )
    stop = worker.stop_event
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[int(signum)] = signal.signal(signum, lambda *_: stop.set())
    try:
        if live_view:
            from rich.live import Live

            with Live(table(), console=out, refresh_per_second=4) as live:
                started.append(live)
                results = _station_run(
                    worker, addresses, fleet, fleet_file, keep_running, poll, stop
                )
                live.update(table())
        else:
            results = _station_run(worker, addresses, fleet, fleet_file, keep_running, poll, stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        backends.close()
    summary = summarise(results, batch=worker.batch, mode=worker.mode, operator=operator)
    summary["ledger"] = _ledger_integrity(ledger_url)
    if not summary["ledger"]["verified"]:
        summary["ok"] = False  # results backed by records that fail verification are not proof
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        counts = ", ".join(f"{name} {count}" for name, count in summary["counts"].items())
        out.print(Text(f"batch {summary['batch']}: {summary['terminals']} terminals: "
                       f"{counts or 'none'}"))
        for failure in summary["failures"]:
            reason = "; ".join(failure["reasons"]) or "no reason given"
            out.print(Text(f"  {failure['address']}: {failure['verdict_or_outcome']}: {reason}"))
        for again in summary["already_erased"]:
            out.print(
                Text(f"  {again['address']} (serial {again['serial']}): already erased in this "
                     "batch, not wiped again")
            )
        if not summary["ledger"]["verified"]:
            out.print(
                Text(
                    f"LEDGER TAMPERED: {summary['ledger']['problem']}; these results cannot be "
                    "handed over as proof until it is investigated (posdiag verify --ledger)",
                    style="bold red",
                )
            )
    sys.exit(EXIT_READY if summary["ok"] else EXIT_NOT_READY)


def _ledger_integrity(ledger_url: str | None) -> dict[str, Any]:
    """The station ledger's verification, for the summary.

    A batch whose records were altered behind the station's back must not end with a clean "ok".
    """
    from .integrity import ledger_lines
    from .ledger import Ledger, LedgerError

    try:
        with Ledger(ledger_url) as ledger:
            result = ledger.verify()
    except LedgerError as exc:
        return {"verified": False, "problems": 1, "problem": str(exc)}
    lines = ledger_lines(result)
    return {
        "verified": result.ok,
        "problems": result.problem_count + (not result.chain.ok),
        "problem": lines[1].strip() if len(lines) > 1 else "",
    }


def _progress_cell(slot: Any) -> str:
    """A ten-cell bar, with the step count while wiping."""
    filled = round(slot.progress * 10)
    bar = "█" * filled + "░" * (10 - filled)
    steps = f" {slot.steps_done}/{slot.steps_total}" if slot.steps_total else ""
    return bar + steps


def _station_run(
    worker: Any,
    addresses: tuple[str, ...],
    fleet: Any,
    fleet_file: Path | None,
    keep_running: bool,
    poll: float | None,
    stop: threading.Event,
) -> Any:
    if addresses:
        return worker.run(addresses)
    if fleet is not None:
        from posdiag.simulators.bus import SimulatedBus

        from .fleet import FleetPlayer

        with SimulatedBus() as bus:
            player = FleetPlayer(
                bus,
                fleet,
                on_change=worker.notify_change,
                path=fleet_file if keep_running else None,
            )
            player.start()
            try:
                return worker.watch(
                    poll or 1.0,
                    stop,
                    discover_fn=bus.discover,
                    until=None if keep_running else player.done,
                )
            finally:
                player.stop()
    from .hotplug import HotplugMonitor

    with HotplugMonitor(worker.notify_change) as monitor:
        if poll is None:
            poll = 1.0 if monitor.source == "polling" else 5.0
        err.print(
            f"Watching for terminals ({monitor.source}); Ctrl-C to stop.", highlight=False
        )
        return worker.watch(poll, stop)


