"""posdiag's command line: the only module that prints.

Exit codes (every command): 0 ready / success, 1 checked but not ready, 2 usage error (bad
address, bad option, wrong password), 3 unreachable. Errors are one readable line on stderr;
tracebacks only with ``--debug``.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from posdiag.drivers.address import parse_address
from posdiag.drivers.backend.model import (
    BackendAuthError,
    BackendConfigError,
    BackendProtocolError,
    BackendUnavailable,
)
from posdiag.drivers.errors import AddressError, AuthenticationError, PosdiagError, TransportError

from . import __version__
from .cli_backend import backend_report, is_backend_target, load_backends
from .discovery import discover
from .logs import configure_logging
from .options import SECONDS, TIME_SCALE, Count, OneLineUsageError, Seconds
from .policy import Policy, PolicyError, load_policy
from .render import render_report, render_summary, render_wipe, safe
from .report import DeviceReport, Verdict, VerdictStatus, record_report, to_json, utc_now_text

EXIT_READY, EXIT_NOT_READY, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_CERTIFICATE_PENDING = 7  # wipe: outcome recorded, certificate not yet issued (run it again)
DEMO_ANDROID = (
    "adb+sim://activated?model=pax-a920",
    "adb+sim://unsettled?model=sunmi-p2",
    "adb+sim://fresh?model=android-generic",
)

out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, soft_wrap=True)


class Context:
    """Options shared by every command."""

    debug: bool = False
    json_logs: bool = False
    """stderr carries JSON lines: notices go through the log, not as plain text lines."""


def fail(message: str, code: int, ctx: Context | None = None) -> NoReturn:
    """One line on stderr, then exit; the traceback too under --debug."""
    if ctx is not None and ctx.debug and sys.exc_info()[0] is not None:
        traceback.print_exc()
    err.print(f"[bold red]posdiag: error:[/] {escape(message)}", highlight=False)
    sys.exit(code)


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn typed errors into one line and the right exit code."""

    @click.pass_obj
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(ctx, *args, **kwargs)
        except (AddressError, PolicyError, BackendConfigError, BackendAuthError) as exc:
            fail(str(exc), EXIT_USAGE, ctx)
        except (BackendUnavailable, BackendProtocolError) as exc:
            fail(str(exc), EXIT_UNREACHABLE, ctx)
        except AuthenticationError as exc:
            fail(str(exc), EXIT_USAGE, ctx)
        except TransportError as exc:
            fail(str(exc), EXIT_UNREACHABLE, ctx)
        except PosdiagError as exc:
            fail(str(exc), EXIT_NOT_READY, ctx)
        except KeyboardInterrupt:
            fail("interrupted", 130, ctx)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


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
@click.option(
    "--backends",
    "backends_file",
    type=click.Path(path_type=Path),
    help="Backends file (TMS/acquirer platforms); default ~/.config/posdiag/backends.toml.",
)
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


# --- simulate ----------------------------------------------------------------------------------


def _parse_fault(values: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for value in values:
        name, _, setting = value.partition("=")
        options[name.strip().replace("-", "_")] = setting.strip() if setting else "1"
    return options


@main.command()
@click.argument("family", type=click.Choice(["zvt", "adb", "backend"]))
@click.option("--scenario", default="activated", show_default=True, help="Scenario name.")
@click.option("--model", default=None, help="adb: model profile (pax-a920, sunmi-p2, …).")
@click.option("--pty", "use_pty", is_flag=True, help="zvt: attach to a pseudo terminal (default).")
@click.option("--tcp", "tcp", metavar="HOST:PORT", help="Listen on TCP (port 0 picks a free one).")
@click.option(
    "--time-scale",
    type=TIME_SCALE,
    default=1.0,
    show_default=True,
    help="Delays: 1 = realistic line speed and latency, 0 = as fast as possible.",
)
@click.option("--password", help="zvt: the simulated terminal's ZVT password.")
@click.option("--serial", help="The simulated terminal's serial number (one per unit on a rack).")
@click.option("--fault", "faults", multiple=True, metavar="NAME[=VALUE]", help="Inject a fault.")
@click.option("--list-scenarios", is_flag=True, help="List scenarios (and adb models) and exit.")
@click.option(
    "--kind",
    type=click.Choice(["paxstore", "adyen", "generic"]),
    default="paxstore",
    show_default=True,
    help="backend: which backend to simulate.",
)
@click.option(
    "--terminal",
    "terminals",
    multiple=True,
    metavar="SERIAL=STATE",
    help="backend: a unit it knows (STATE bound, unbound or disabled); repeat for more.",
)
@click.option(
    "--tms",
    metavar="URL",
    help="adb: the simulated backend this terminal syncs with (a release there drops its device "
    "owner at the next sync).",
)
@guarded
def simulate(
    ctx: Context,
    family: str,
    scenario: str,
    model: str | None,
    use_pty: bool,
    tcp: str | None,
    time_scale: float,
    password: str | None,
    serial: str | None,
    faults: tuple[str, ...],
    list_scenarios: bool,
    kind: str,
    terminals: tuple[str, ...],
    tms: str | None,
) -> None:
    """Run a simulated terminal (or backend) until interrupted; the first line is its address.

    FAMILY backend runs a TMS / acquirer platform over HTTP (--kind paxstore, adyen or
    generic); its first line is its API URL, its second the path of a ready backends file
    (pass it as --backends). Backend faults: rate_limit=N, server_error=N, slow=S, garbage=N,
    bad_signature, skew=S, release_pending=N.

    ZVT faults: corrupt_crc=N, drop_ack=N, split_writes, stall_mid_frame=S, ack_delay=S,
    answer_delay=S, garbage=HEX, disconnect_after=N, silent, babble.
    ADB faults: bad_checksum=N, drop_packets=N, split_packets, stall=S, vanish_after=N;
    options auth=1 (require RSA auth), accept_keys=0 (the operator never taps Allow).
    Wipe faults (both): fail_command=CMD, power_loss_at=CMD, lie_about=CMD, where CMD is a
    ZVT command name or hex code ("Set/Reset Terminal-ID", 061B) or an Android command prefix
    ("pm clear", "cmd wifi forget-network", rm).
    """
    if family == "backend":
        from .cli_backend import serve_until_stopped, start_simulated_backend

        simulator, path = start_simulated_backend(kind, tcp, terminals, _parse_fault(faults))
        click.echo(simulator.api_url)
        click.echo(str(path))
        err.print(
            f"Simulated {kind} backend with {len(simulator.terminals)} terminal(s); "
            "Ctrl-C to stop.",
            highlight=False,
        )
        serve_until_stopped(simulator)
        return
    if terminals:
        raise click.UsageError("--terminal is for simulate backend")
    if list_scenarios:
        _list_scenarios(family)
        return
    if use_pty and tcp:
        raise click.UsageError("choose one of --pty and --tcp")
    if family == "adb" and use_pty:
        raise click.UsageError("simulated Android terminals listen on TCP (--tcp HOST:PORT)")
    if family == "zvt" and model:
        raise click.UsageError("--model is for adb; ZVT scenarios choose their model")
    if serial is not None:
        from posdiag.simulators.registry import validate_serial

        try:
            validate_serial(serial)  # it ends up in ledgers, certificates and file names
        except ValueError as exc:
            fail(f"--serial: {exc}", EXIT_USAGE, ctx)
    options = {"time_scale": str(time_scale), **_parse_fault(faults)}
    if password:
        options["password"] = password
    if serial is not None:
        options["serial"] = serial
    if tms:
        if family != "adb":
            raise click.UsageError("--tms is for simulated Android terminals (adb)")
        options["tms"] = tms
    simulator, description = _build_simulator(ctx, family, scenario, model, options, tcp)
    from posdiag.simulators.attach import PtyAttachment, TcpAttachment

    attachment: PtyAttachment | TcpAttachment
    if tcp or family == "adb":
        host, sep, port_text = (tcp or "127.0.0.1:0").rpartition(":")
        if not sep or not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
            raise click.UsageError(f"--tcp wants HOST:PORT (port 0 to 65535), got {tcp!r}")
        attachment = TcpAttachment(simulator, host.strip("[]") or "127.0.0.1", int(port_text))
        try:
            bound_host, bound_port = attachment.start()
        except OSError as exc:
            fail(f"cannot listen on {tcp}: {exc.strerror or exc}", EXIT_USAGE, ctx)
        address = f"{family}+tcp://{bound_host}:{bound_port}"
    else:
        attachment = PtyAttachment(simulator)
        address = f"zvt+serial://{attachment.start()}"
    # Handle SIGTERM before announcing the address: a supervisor may signal as soon as it reads it.
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        click.echo(address)
        err.print(f"{escape(description)} Ctrl-C to stop.", highlight=False)
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        attachment.stop()


def _list_scenarios(family: str) -> None:
    if family == "zvt":
        from posdiag.simulators.zvt.state import available_scenarios

        for name in available_scenarios():
            click.echo(name)
        return
    from posdiag.simulators.adb.state import available_profiles
    from posdiag.simulators.adb.state import available_scenarios as adb_scenarios

    for name in adb_scenarios():
        click.echo(name)
    click.echo(f"models: {', '.join(available_profiles())}")


def _build_simulator(
    ctx: Context,
    family: str,
    scenario: str,
    model: str | None,
    options: dict[str, str],
    tcp: str | None,
) -> tuple[Any, str]:
    """The simulator and a line describing it (usage errors exit 2)."""
    from posdiag.drivers.zvt.connection import Link
    from posdiag.simulators.adb.state import AdbScenarioError
    from posdiag.simulators.registry import create_adb, create_zvt
    from posdiag.simulators.zvt.state import ScenarioError

    try:
        if family == "adb":
            simulator: Any = create_adb(scenario, model or "android-generic", options)
            s = simulator.state
            return simulator, (
                f"Simulated {s.manufacturer} {s.model} (serial {s.vendor_serial or s.serial}, "
                f"Android {s.release}), scenario {scenario}: {s.description}."
            )
        simulator = create_zvt(scenario, options, Link.TCP if tcp else Link.SERIAL)
    except (ScenarioError, AdbScenarioError) as exc:
        fail(str(exc), EXIT_USAGE, ctx)
    except (TypeError, ValueError, PosdiagError) as exc:
        fail(f"bad fault option: {exc}", EXIT_USAGE, ctx)
    state = simulator.state
    return simulator, (
        f"Simulated {state.vendor} {state.model} (serial {state.serial}), "
        f"scenario {scenario}: {state.description}."
    )


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
@click.option(
    "--backends",
    "backends_file",
    type=click.Path(path_type=Path),
    help="Backends file (TMS/acquirer platforms); default ~/.config/posdiag/backends.toml.",
)
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


# --- station -----------------------------------------------------------------------------------


@main.command()
@click.argument("label")
@click.option("--reason", required=True, help="Why (stolen, not returned by the merchant…).")
@click.option("--operator", required=True, help="Who reports it (recorded in the ledger).")
@click.option("--yes", "assume_yes", is_flag=True, help="Do not ask (scripts).")
@click.option(
    "--backends",
    "backends_file",
    type=click.Path(path_type=Path),
    help="Backends file (TMS/acquirer platforms); default ~/.config/posdiag/backends.toml.",
)
@click.option("--ledger", "ledger_url", help="Ledger database URL (SQLite in the data folder).")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as one JSON object.")
@guarded
def lost(
    ctx: Context,
    label: str,
    reason: str,
    operator: str,
    assume_yes: bool,
    backends_file: Path | None,
    ledger_url: str | None,
    as_json: bool,
) -> None:
    """Report a unit lost (挂失): disable or lock it in every backend that knows it.

    LABEL is a serial number, sn:SERIAL, tusn:TUSN or a label pasted from a scanner. Each change
    is confirmed by a fresh lookup and recorded in the ledger. Exit 0 when every backend that
    knows the unit confirmed it, 1 otherwise.
    """
    from .cli_backend import backends_simulated, report_lost, terminal_key
    from .ledger import Ledger

    backends = load_backends(backends_file)
    policy = load_policy()
    key = terminal_key(label)
    if not assume_yes:
        if not sys.stdin.isatty():
            fail("reporting a unit lost needs confirmation: run it in a terminal, or pass --yes",
                 EXIT_USAGE, ctx)
        typed = click.prompt(
            f"Disable {key.label()} in its backends? Type the label again", err=True
        )
        if terminal_key(typed) != key:
            fail("not confirmed: the label typed differs", EXIT_USAGE, ctx)
    try:
        outcomes, after = report_lost(backends, label, reason, policy)
    finally:
        backends.close()
    after.simulated = backends_simulated(backends)
    if after.simulated:
        ledger_url, _ = _simulation_records(ctx, ledger_url, None, "Simulated backend")
    with Ledger(ledger_url) as ledger:
        record_report(ledger, after, operator)
        for outcome in outcomes:
            ledger.audit("backend.lost", reason=reason, **outcome)
    confirmed = bool(outcomes) and all(o["confirmed"] for o in outcomes)
    if as_json:
        click.echo(json.dumps({"label": key.label(), "reason": reason, "outcomes": outcomes,
                               "confirmed": confirmed}, indent=2, ensure_ascii=False))
    elif not outcomes:
        out.print(Text(f"{key.label()}: no configured backend knows this unit; nothing changed"))
    else:
        for o in outcomes:
            state = "confirmed" if o["confirmed"] else "NOT confirmed"
            detail = f" ({o['detail']})" if o["detail"] else ""
            out.print(Text(f"{key.label()} in {o['backend']}: {o['status']}, "
                           f"{o['binding_before']} → {o['binding_after'] or '?'}, {state}{detail}"))
    sys.exit(EXIT_READY if confirmed else EXIT_NOT_READY)


@main.command()
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
@click.option(
    "--backends",
    "backends_file",
    type=click.Path(path_type=Path),
    help="Backends file (TMS/acquirer platforms); default ~/.config/posdiag/backends.toml.",
)
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
            as_json, out, _simulation_records,
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


def _simulation_records(
    ctx: Context, ledger_url: str | None, out_dir: Path | None, what: str = "Simulated terminals"
) -> tuple[str, Path]:
    """Where simulated terminals' records go unless told: beside the depot's, never into them.

    A demo or CI run on a depot PC must not put simulated terminals into the ledger and
    manifests that go back to vendors; it gets its own ledger file and certificate folder
    (station fleets, station runs on simulator addresses, ``check``/``wipe`` of one). One line
    on stderr says where the records went.
    """
    from .ledger import default_path, sqlite_url
    from .wipe import default_certificate_dir

    if ledger_url is None:
        path = default_path().with_name("simulated-ledger.sqlite3")
        ledger_url = sqlite_url(path)
        if ctx.json_logs:  # a collector reads stderr as JSON lines: say it as one
            from .logs import get_logger

            get_logger(__name__).warning("records.simulated", ledger=str(path))
        else:
            err.print(
                Text(f"{what}: recorded in {path} (not the depot ledger; --ledger to choose)."),
                highlight=False,
            )
    if out_dir is None:
        out_dir = default_certificate_dir().with_name("simulated-certificates")
    return ledger_url, out_dir


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


# --- report (batch manifest) -------------------------------------------------------------------


@main.command()
@click.option("--ledger", "ledger_url", help="Ledger database URL (SQLite in the data folder).")
@click.option("--batch", help="Only wipes of this station batch (see the station summary).")
@click.option("--since", help="Only rows at or after this UTC date or date-time (ISO 8601).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option("--kind", type=click.Choice(["wipes", "checks"]), default="wipes", show_default=True)
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
    if kind == "checks" and batch is not None:
        fail("--batch applies to wipes only (inspections carry no batch id)", EXIT_USAGE, ctx)
    columns: tuple[str, ...] = CHECK_COLUMNS
    with Ledger(ledger_url) as ledger:
        verification = ledger.verify()
        if kind == "checks":
            rows = check_rows(
                ledger,
                since=moment,
                include_simulated=include_simulated,
                verification=verification,
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
