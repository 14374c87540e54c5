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
from posdiag.drivers.i18n import _

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
from .cli_station_view import LiveTable, SettlementPrompt, print_summary
from .discovery import discover
from .options import SECONDS, Count, OneLineUsageError, Seconds
from .policy import check_scope, load_policy

# --- station -----------------------------------------------------------------------------------


@click.command()
@click.argument("addresses", nargs=-1)
@click.option("--mode", type=click.Choice(["check", "wipe"]), default="check", show_default=True)
@click.option("--simulate", type=Count(1, 1024), help="Run on N simulated terminals (1 to 1024).")
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
@click.option("--organisation", help="Wipe mode: the organisation performing the wipes.")
@click.option("--location", help="Wipe mode: where the station stands (site, bench).")
@click.option("--settle", is_flag=True, help="Consent to settling unsettled money first (ZVT).")
@click.option(
    "--yes",
    "assume_yes",
    is_flag=True,
    help="Unattended: never ask (wipe mode needs it unless run on a terminal to ask on).",
)
@click.option(
    "--vouch",
    "vouch_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Wipe mode: file of serials (one per line) the operator vouches were settled; those "
    "of them whose open batch posdiag cannot read are wiped (as wipe --confirmed-settled).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Check mode: triage only (identity, merchant binding, unsettled money) to sort a pile.",
)
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
@click.option(
    "--nexo-events",
    "nexo_events",
    metavar="HOST:PORT",
    help="Receive nexo (Adyen) terminals' events here while the station runs (default: [nexo] "
    "event_listen in the settings): a SecurityAlarm makes the terminal's check tampered.",
)
@click.option(
    "--show-config",
    is_flag=True,
    help="Print every setting in force and where it came from (settings file, command line, "
    "environment, default), then exit.",
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
    organisation: str | None,
    location: str | None,
    settle: bool,
    assume_yes: bool,
    vouch_file: Path | None,
    quick: bool,
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
    nexo_events: str | None,
    show_config: bool,
    backends_file: Path | None,
) -> None:
    """Check (or wipe) many terminals at once: the depot station.

    Without arguments, watches attached terminals (hotplug) until Ctrl-C. With ADDRESSES,
    works those once; with --once, the attached ones once (a simulated fleet when none is
    attached). With --simulate N or --fleet FILE, works simulated terminals (plugged in and
    out as the fleet says) until the fleet is done. A live table on a terminal, else one JSON
    line per slot update on stdout. Options default to the station settings file
    (--show-config shows them). In wipe mode on a terminal without --yes, the station asks
    about each terminal whose settlement it cannot read. Exit codes: 0 every terminal checked
    (check mode) or erased/erased_with_exceptions (wipe mode), 1 otherwise, 2 usage error.
    """
    from .fleet import FleetError, fleet_of, load_fleet
    from .settings import Settings
    from .station import SlotResult, Station, simulated_fleet, summarise

    click_ctx = click.get_current_context()
    settings = ctx.settings if isinstance(ctx.settings, Settings) else Settings()
    if show_config:
        from .cli_station_config import show_station_config

        show_station_config(out, click_ctx, settings, as_json)
        sys.exit(EXIT_READY)

    if scan:
        if addresses or simulate or fleet_file or once or mode == "wipe":
            raise click.UsageError(
                _("--scan checks scanned units in their backends: give it alone")
            )
        from .cli_backend import scan_station

        ok = scan_station(
            ctx,
            load_backends(backends_file),
            load_policy(policy_file),
            ledger_url,
            operator,
            as_json,
        )
        sys.exit(EXIT_READY if ok else EXIT_NOT_READY)

    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not as_json
    if mode == "wipe" and quick:
        raise click.UsageError(
            _("--quick is for check mode: a wipe reads everything it needs to verify its work")
        )
    if mode == "wipe" and not operator:
        raise click.UsageError(
            _("--mode wipe needs --operator NAME (or operator in the station settings file)")
        )
    if mode == "wipe" and not assume_yes and not interactive:
        raise click.UsageError(
            _("--mode wipe needs --yes when nobody can be asked (no terminal, or --json)")
        )
    if vouch_file is not None and mode != "wipe":
        raise click.UsageError(_("--vouch goes with --mode wipe"))
    sources = [bool(addresses), simulate is not None, fleet_file is not None, once]
    if sum(sources) > 1:
        raise click.UsageError(
            _("give ADDRESSES, --once, --simulate N or --fleet FILE, not several")
        )
    if once:
        addresses = tuple(found.address for found in discover())
        if not addresses:
            simulate = 16
            err.print(
                Text(
                    _(
                        "No terminal attached: running the station on 16 simulated terminals "
                        "(ZVT and Android, mixed scenarios) instead."
                    ),
                    style="yellow",
                ),
                highlight=False,
            )
    if keep_running and not (simulate or fleet_file):
        raise click.UsageError(_("--keep-running goes with --simulate or --fleet"))
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
            _(
                "simulated and real terminals in one station run would share one ledger: "
                "run them separately"
            )
        )
    vouched: frozenset[str] = frozenset()
    if vouch_file is not None:
        from .station_settle import read_vouch_file

        try:
            vouched = read_vouch_file(vouch_file)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE, ctx)
    policy = load_policy(policy_file)
    backends = load_backends(backends_file)
    if release and mode != "wipe":
        raise click.UsageError(_("--release goes with --mode wipe"))
    if release and not backends:
        from .cli_backend import require_backends

        require_backends(backends)
    if fleet is not None or links == {True}:
        ledger_url, out_dir = _simulation_records(ctx, ledger_url, out_dir)
    asking = mode == "wipe" and not assume_yes
    if asking and not click.confirm(
        _(
            "Erase the merchant data of every terminal this station finds, as {operator}? "
            "(Terminals whose settlement cannot be read are asked about one by one.)"
        ).format(operator=operator),
        err=True,
    ):
        err.print(Text(_("Nothing was erased.")), highlight=False)
        sys.exit(EXIT_NOT_READY)
    live_view = sys.stdout.isatty()
    lock = threading.Lock()
    view = LiveTable(mode, watching=not addresses)
    stop = threading.Event()
    prompt = SettlementPrompt(out, sys.stdin, stop) if asking else None

    def on_event(update: SlotResult) -> None:
        if live_view:
            view.update(update)
        else:
            with lock:
                click.echo(json.dumps({"event": "slot", **update.to_json()}, ensure_ascii=False))

    worker = Station(
        "wipe" if mode == "wipe" else "check",
        policy,
        operator=operator,
        settle=settle,
        assume_yes=True if mode == "wipe" else assume_yes,  # no serial typing at a station
        out_dir=out_dir,
        ledger_url=ledger_url,
        max_parallel=max_parallel,
        deadline_s=deadline,
        on_event=on_event,
        batch=continue_batch,
        backends=backends,
        release=release,
        vouched=vouched,
        ask_settled=prompt,
        organisation=organisation,
        location=location,
        logo=getattr(ctx.settings, "logo", None),
        scope=check_scope(policy, quick=True) if quick else None,
        simulated=fleet is not None,
    )
    worker.stop_event = stop
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[int(signum)] = signal.signal(signum, lambda *_args: stop.set())
    listen = nexo_events or (settings.nexo.event_listen if settings.nexo else None)
    receiver = None
    try:
        if listen:
            from .cli_nexo_events import start_receiver

            receiver = start_receiver(ctx, listen, settings)
            err.print(
                Text(_("Receiving nexo terminal events at {url}").format(url=receiver.url)),
                highlight=False,
            )
        if live_view:
            from rich.live import Live

            view.batch_of = lambda: worker.batch
            with Live(console=out, refresh_per_second=2, get_renderable=view.render) as live:
                if prompt is not None:
                    prompt.live = live
                results = _station_run(
                    worker, addresses, fleet, fleet_file, keep_running, poll, stop
                )
                view.watching = False  # the run is over: nothing is awaited any more
                live.refresh()
        else:
            results = _station_run(worker, addresses, fleet, fleet_file, keep_running, poll, stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        backends.close()
        if receiver is not None:
            receiver.stop()
    summary = summarise(results, batch=worker.batch, mode=worker.mode, operator=operator)
    summary["ledger"] = _ledger_integrity(ledger_url)
    if not summary["ledger"]["verified"]:
        summary["ok"] = False  # results backed by records that fail verification are not proof
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        print_summary(out, summary, results, worker.mode)
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
            Text(
                _("Watching for terminals ({source}); Ctrl-C to stop.").format(
                    source=monitor.source
                )
            ),
            highlight=False,
        )
        return worker.watch(poll, stop)
