"""posdiag's command line: the group, check, list, wipe, verify and report.

The ``cli*`` modules are the only ones that print: ``cli_common`` (consoles, exit codes,
one-line errors), ``cli_simulate``, ``cli_station`` and ``cli_backend`` (backend-only checks,
``lost``) hold the other commands, registered on the group at the end of this module.

Exit codes (every command): 0 ready / success, 1 checked but not ready, 2 usage error (bad
address, bad option, wrong password), 3 unreachable. Errors are one readable line on stderr;
tracebacks only with ``--debug``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import TransportError

from . import __version__
from .cli_backend import backend_report, is_backend_target, load_backends, lost
from .cli_common import (
    EXIT_NOT_READY,
    EXIT_READY,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Context,
    _simulation_records,
    backends_option,
    err,
    fail,
    guarded,
    out,
)
from .cli_simulate import simulate
from .cli_station import station
from .discovery import discover
from .logs import configure_logging
from .options import SECONDS
from .policy import Policy, load_policy
from .render import render_report, render_summary, render_wipe, safe
from .report import DeviceReport, Verdict, VerdictStatus, to_json, utc_now_text

DEMO_ANDROID = (
    "adb+sim://activated?model=pax-a920",
    "adb+sim://unsettled?model=sunmi-p2",
    "adb+sim://fresh?model=android-generic",
)

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="posdiag")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="Logs on stderr: readable, or JSON lines for stations and collectors.",
)
@click.option("--log-level", default="warning", show_default=True, help="debug, info, warning…")
@click.option("--debug", is_flag=True, help="Debug logs and tracebacks on errors.")
@click.pass_context
def main(click_ctx: click.Context, log_format: str, log_level: str, debug: bool) -> None:
    """posdiag: diagnose and wipe payment terminals over their own cable."""
    try:
        configure_logging(log_format, "debug" if debug else log_level)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    ctx = Context()
    ctx.debug = debug
    ctx.json_logs = log_format == "json"
    click_ctx.obj = ctx


# --- check -------------------------------------------------------------------------------------


def _unreachable(address: str, message: str) -> DeviceReport:
    report = DeviceReport(
        address=address,
        family=address.split("+", 1)[0] if "+" in address else "zvt",
        checked_at=utc_now_text(),
    )
    report.errors.append(message)
    report.verdict = Verdict(VerdictStatus.UNREACHABLE, (message,))
    return report


def _auth_prompt() -> None:
    err.print(
        "[bold yellow]The terminal does not know this computer yet: allow USB debugging on its "
        "screen (tick 'Always allow').[/]",
        highlight=False,
    )


def check_one(
    text: str,
    password: str | None,
    policy_file: Path | None = None,
    *,
    policy: Policy | None = None,
    deadline_s: float | None = None,
    backends: Any = None,
) -> DeviceReport:
    """Check one terminal by address (raises AddressError/AuthenticationError for the CLI).

    ``backends`` (``posdiag.agent.backends.Backends``): the configured TMS/acquirer backends;
    a device's report is merged with what they say, and ``sn:…``/``tusn:…``/a bare label is
    checked in the backends alone.

    ``deadline_s`` bounds the whole check (None: the family's default, see
    :data:`posdiag.agent.inspect.DEFAULT_DEADLINE_S`): a terminal still talking then is
    reported unreachable.
    """
    from .connect import open_terminal  # the drivers: only commands that talk to terminals
    from .inspect import inspect_terminal

    policy = policy or load_policy(policy_file)
    named = text.strip().lower().startswith(("sn:", "tusn:"))
    if backends is not None and (named or (backends and is_backend_target(text))):
        # a bare label is one only when a backend can answer for it; otherwise it is a typo
        # of a device address and says so
        return backend_report(text, backends, policy)
    address = parse_address(text)
    terminal = open_terminal(address, password=password, on_auth_prompt=_auth_prompt)
    try:
        report = inspect_terminal(
            terminal, policy, simulated=address.link == "sim", deadline_s=deadline_s
        )
    except TransportError as exc:
        return _unreachable(str(address), str(exc))
    if backends:
        backends.enrich(report, policy)
    return report


def _exit_code(reports: list[DeviceReport]) -> int:
    if any(r.verdict.status is VerdictStatus.UNREACHABLE for r in reports):
        return EXIT_UNREACHABLE
    if any(r.verdict.status is not VerdictStatus.READY for r in reports):
        return EXIT_NOT_READY
    return EXIT_READY


@main.command()
@click.argument("addresses", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (schema posdiag.report/1).")
@click.option("--password", help="ZVT password (6 digits); else ?password=, $POSDIAG_ZVT_PASSWORD.")
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path),
    help="Policy TOML overriding the shipped thresholds.",
)
@click.option(
    "--deadline",
    type=SECONDS,
    default=None,
    help="Seconds one terminal's check may take in all (default per family: ZVT 120, "
    "Android 90); a terminal still busy then is unreachable.",
)
@backends_option
@guarded
def check(
    ctx: Context,
    addresses: tuple[str, ...],
    as_json: bool,
    password: str | None,
    policy_file: Path | None,
    deadline: float | None,
    backends_file: Path | None,
) -> None:
    """Check terminals: identity, activation, firmware, network, battery, merchant data.

    ADDRESSES are e.g. zvt+serial:///dev/ttyUSB0?baud=9600, zvt+tcp://10.0.0.5:20007,
    /dev/ttyACM0 or zvt+sim://activated; sn:SERIAL, tusn:TUSN or a label pasted from a barcode
    scanner checks a unit no cable reaches in its backends. Without an address, every attached
    terminal is checked; with none attached, simulated terminals are checked to show what
    posdiag does. Configured backends (TMS, acquirer platform) are consulted for every terminal.
    """
    policy = load_policy(policy_file)  # a bad policy file is a usage error before any I/O
    backends = load_backends(backends_file)
    demo = False
    targets = list(addresses)
    if not targets:
        targets = [found.address for found in discover()]
        if not targets:
            from posdiag.simulators.zvt.state import available_scenarios

            demo = True
            targets = [f"zvt+sim://{name}" for name in available_scenarios()] + list(DEMO_ANDROID)
            err.print(
                "[yellow]No terminal attached: checking simulated terminals instead (ZVT: "
                f"{', '.join(available_scenarios())}; Android: "
                f"{', '.join(a.removeprefix('adb+sim://') for a in DEMO_ANDROID)}).[/]",
                highlight=False,
            )
    try:
        reports = [
            check_one(target, password, policy=policy, deadline_s=deadline, backends=backends)
            for target in targets
        ]
    finally:
        backends.close()
    if as_json:
        payload: Any = to_json(reports[0]) if len(reports) == 1 else [to_json(r) for r in reports]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for index, report in enumerate(reports):
            if index:
                out.print()
            out.print(render_report(report))
        if len(reports) > 1:
            out.print()
            out.print(render_summary(reports))
    if demo:
        sys.exit(EXIT_READY)  # the demonstration ran; its verdicts are not the user's terminals
    sys.exit(_exit_code(reports))


# --- list --------------------------------------------------------------------------------------


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
@guarded
def list_devices(ctx: Context, as_json: bool) -> None:
    """List attached terminals (serial ports the catalogue knows)."""
    found = discover()
    if as_json:
        click.echo(json.dumps([f.__dict__ for f in found], indent=2))
        return
    if not found:
        err.print("No terminal found (serial ports the catalogue knows, ADB devices on USB).")
        return
    from rich.table import Table

    table = Table("address", "kind", "model guess", "serial", "usb id")
    for f in found:  # USB descriptors are the device's own words: cleaned like everything it says
        cells = (f.address, f.kind, f.model_guess, f.serial, f.usb_id)
        table.add_row(*(Text(safe(cell or "")) for cell in cells))
    out.print(table)


# --- wipe --------------------------------------------------------------------------------------


@main.command()
@click.argument("address")
@click.option("--operator", required=True, help="Who performs the wipe (on the certificate).")
@click.option("--title", "operator_title", help="The operator's title (on the certificate).")
@click.option("--organisation", help="The organisation performing the wipe.")
@click.option("--location", help="Where the wipe happens (site, station).")
@click.option("--destination", help="Where the terminal goes next (reuse, resale, recycling…).")
@click.option("--serial", help="The serial the operator confirmed; the terminal must match it.")
@click.option("--yes", "assume_yes", is_flag=True, help="Unattended: do not ask (stations).")
@click.option("--settle", is_flag=True, help="Consent to settling unsettled money first (ZVT).")
@click.option(
    "--confirmed-settled",
    is_flag=True,
    help="The operator settled a terminal whose open batch posdiag cannot read.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Certificate folder.")
@click.option("--ledger", "ledger_url", help="Ledger database URL (SQLite in the data folder).")
@click.option("--password", help="ZVT password (6 digits).")
@click.option("--policy", "policy_file", type=click.Path(path_type=Path), help="Policy TOML.")
@click.option(
    "--deadline",
    type=SECONDS,
    default=None,
    help="Seconds the whole wipe may take (default 900); a terminal still busy then ends "
    "aborted (resumable).",
)
@click.option(
    "--release",
    is_flag=True,
    help="After the device steps, release the unit in its backend (TMS/acquirer), verified.",
)
@backends_option
@guarded
def wipe(
    ctx: Context,
    address: str,
    operator: str,
    operator_title: str | None,
    organisation: str | None,
    location: str | None,
    destination: str | None,
    serial: str | None,
    assume_yes: bool,
    settle: bool,
    confirmed_settled: bool,
    as_json: bool,
    out_dir: Path | None,
    ledger_url: str | None,
    password: str | None,
    policy_file: Path | None,
    deadline: float | None,
    release: bool,
    backends_file: Path | None,
) -> None:
    """Erase a merchant's data from a terminal, verify it, and sign a certificate.

    Refuses tampered units (quarantine), unsettled money (unless --settle), a battery too low to
    finish, and a terminal whose serial differs from --serial. An interrupted wipe is resumed by
    running the same command again. With --release the unit is also released in its backend
    (PAXSTORE, Adyen, an acquirer platform), confirmed by a fresh lookup; the certificate shows
    the backend's state before and after. Exit codes: 0 erased, 1 erased with exceptions, 4 not
    erased, 5 aborted, 6 refused, 7 outcome recorded but certificate not yet issued (run again),
    2 usage error, 3 unreachable.
    """
    from .certificate import StationKey
    from .connect import open_terminal
    from .ledger import Ledger
    from .wipe import WipeOptions, WipeSession

    parsed = parse_address(address)
    policy = load_policy(policy_file)
    backends = load_backends(backends_file)
    if release and not backends:
        from .cli_backend import require_backends

        require_backends(backends)
    if not assume_yes and not sys.stdin.isatty():
        fail("a wipe needs confirmation: run it in a terminal, or pass --yes", EXIT_USAGE, ctx)
    simulated = parsed.link == "sim"
    if simulated:  # never into the depot's ledger, manifest or certificate folder
        ledger_url, out_dir = _simulation_records(ctx, ledger_url, out_dir, "Simulated terminal")
    options = WipeOptions(
        operator=operator,
        operator_title=operator_title,
        organisation=organisation,
        location=location,
        destination=destination,
        settle=settle,
        confirmed_settled=confirmed_settled,
        assume_yes=assume_yes,
        serial=serial,
        out_dir=out_dir,
        deadline_s=deadline,
        release=release,
    )

    def confirm(summary: str, expected: str) -> bool:
        err.print(Text(summary))
        typed = click.prompt("Type the terminal's serial number to erase it", err=True)
        return bool(typed.strip()) and typed.strip() == expected

    terminal = open_terminal(parsed, password=password, on_auth_prompt=_auth_prompt)
    with Ledger(ledger_url) as ledger:
        session = WipeSession(
            terminal,
            policy,
            options,
            ledger=ledger,
            key=StationKey.load_or_create(),
            confirm=confirm,
            simulated=simulated,
            backends=backends,
        )
        try:
            result = session.run()
        finally:
            backends.close()
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        out.print(render_wipe(result))
    if result.before is not None and result.before.identity is None:
        sys.exit(EXIT_UNREACHABLE)  # nothing answered: 3 as documented, not a resumable abort
    sys.exit(result.exit_code)


# --- verify ------------------------------------------------------------------------------------


@main.command()
@click.argument("certificate", required=False, type=click.Path(path_type=Path))
@click.option("--public-key", type=click.Path(path_type=Path), help="Trust only this signer.")
@click.option(
    "--ledger",
    "ledger_url",
    is_flag=False,
    flag_value="",
    default=None,
    help="Verify the ledger (optional URL); with a certificate, also check that the ledger "
    "recorded exactly this file.",
)
@guarded
def verify(
    ctx: Context, certificate: Path | None, public_key: Path | None, ledger_url: str | None
) -> None:
    """Check a certificate (signature and exact bytes), or every record of the ledger.

    Exit codes: 0 valid, 1 invalid (modified, wrong signer, tampered ledger), 2 usage error.
    """
    from .integrity import certificate_in_ledger, ledger_lines
    from .ledger import Ledger

    if certificate is None:
        if ledger_url is None:
            raise click.UsageError("give a certificate file, or --ledger")
        with Ledger(ledger_url or None) as ledger:
            result = ledger.verify()
        lines = ledger_lines(result)
        out.print(Text(lines[0], style="green" if result.ok else "bold red"))
        for line in lines[1:]:
            out.print(Text(line))
        if not result.ok:
            sys.exit(EXIT_NOT_READY)
        return
    from .certificate import OLD_FORMAT_NOTE, verify_certificate

    try:
        data = certificate.read_bytes()
        trusted = public_key.read_text(encoding="utf-8") if public_key else None
    except OSError as exc:
        fail(f"cannot read {exc.filename or certificate}: {exc.strerror or exc}", EXIT_USAGE, ctx)
    except UnicodeDecodeError:
        fail(f"{public_key} is not a public key file (not UTF-8 text)", EXIT_USAGE, ctx)
    checked = verify_certificate(data, trusted)
    if not checked.ok:
        out.print(Text(f"INVALID: {checked.reason}", style="bold red"))
        sys.exit(EXIT_NOT_READY)
    content = checked.content or {}
    out.print(Text(f"VALID signature by station {checked.fingerprint}", style="bold green"))
    if checked.old_format:  # posdiag.certificate/1: values signed, the file's form not
        out.print(Text(f"note: {OLD_FORMAT_NOTE}", style="yellow"))
    if ledger_url is not None:
        with Ledger(ledger_url or None) as ledger:
            recorded = certificate_in_ledger(ledger, content.get("report_id"), data)
        if not recorded.ok:
            out.print(Text(f"NOT IN THE LEDGER: {recorded.reason}", style="bold red"))
            sys.exit(EXIT_NOT_READY)
        out.print(Text(f"ledger: {recorded.reason}", style="green"))
    click.echo(json.dumps(content, indent=2, ensure_ascii=False))


@main.command(name="station-key")
@guarded
def station_key(ctx: Context) -> None:
    """Print the station's public signing key (PEM) and fingerprint, to verify certificates."""
    from .certificate import StationKey

    key = StationKey.load_or_create()
    err.print(f"fingerprint {key.fingerprint}", highlight=False)
    click.echo(key.public_key_pem().rstrip())


# --- report (batch manifest) -------------------------------------------------------------------


@main.command()
@click.option("--ledger", "ledger_url", help="Ledger database URL (SQLite in the data folder).")
@click.option("--batch", help="Only wipes of this station batch (see the station summary).")
@click.option("--since", help="Only rows at or after this UTC date or date-time (ISO 8601).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--kind",
    type=click.Choice(["wipes", "checks", "lost"]),
    default="wipes",
    show_default=True,
    help="wipes, checks (cable and backend checks), or lost (units blocked with posdiag lost).",
)
@click.option(
    "--include-open",
    is_flag=True,
    help="Also unfinished wipes (outcome in_progress or certificate_pending).",
)
@click.option(
    "--include-simulated", is_flag=True, help="Also simulated terminals (left out by default)."
)
@guarded
def report(
    ctx: Context,
    ledger_url: str | None,
    batch: str | None,
    since: str | None,
    fmt: str,
    kind: str,
    include_open: bool,
    include_simulated: bool,
) -> None:
    """Export the manifest: one row per terminal wiped (or checked), CSV or JSON on stdout.

    The ledger is verified first: every row says in its ``integrity`` column whether the records
    it is built from are intact. Exit codes: 0 all verified, 1 some record fails verification
    (the rows are still written, marked TAMPERED), 2 usage error.
    """
    from .ledger import Ledger
    from .manifest import (
        CHECK_COLUMNS,
        WIPE_COLUMNS,
        ManifestError,
        check_rows,
        parse_since,
        to_csv,
        wipe_rows,
    )
    from .manifest import to_json as rows_json

    try:
        moment = parse_since(since) if since is not None else None
    except ManifestError as exc:
        fail(str(exc), EXIT_USAGE, ctx)
    if kind in ("checks", "lost") and batch is not None:
        fail("--batch applies to wipes only (inspections carry no batch id)", EXIT_USAGE, ctx)
    columns: tuple[str, ...] = CHECK_COLUMNS
    with Ledger(ledger_url) as ledger:
        verification = ledger.verify()
        if kind in ("checks", "lost"):
            rows = check_rows(
                ledger,
                since=moment,
                include_simulated=include_simulated,
                verification=verification,
                lost_only=kind == "lost",
            )
        else:
            rows = wipe_rows(
                ledger,
                batch=batch,
                since=moment,
                include_open=include_open,
                include_simulated=include_simulated,
                verification=verification,
            )
            columns = WIPE_COLUMNS
    if fmt == "json":
        click.echo(rows_json(rows))
    else:
        # bytes, so the CRLF line ends of RFC 4180 reach stdout untranslated
        click.echo(to_csv(rows, columns).encode("utf-8"), nl=False)
    if not verification.ok:
        marked = sum(1 for row in rows if row["integrity"] != "verified")
        problems = verification.problem_count + (not verification.chain.ok)
        hidden = (
            "" if marked or include_simulated
            else " (rows of simulated terminals are left out; --include-simulated shows them)"
        )
        click.echo(
            f"the ledger fails verification ({problems} problem(s)); {marked} row(s) are marked "
            f"TAMPERED{hidden}; run posdiag verify --ledger for details",
            err=True,
        )
        sys.exit(EXIT_NOT_READY)


main.add_command(lost)
main.add_command(simulate)
main.add_command(station)
