"""posdiag's command line: the group, check, list, wipe, verify and report.

The ``cli*`` modules are the only ones that print: ``cli_common`` (consoles, exit codes,
one-line errors), ``cli_simulate``, ``cli_station`` and ``cli_backend`` (backend-only checks,
``lost``) hold the other commands, registered on the group by name (:data:`LAZY_COMMANDS`) and
imported only when run.

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
from posdiag.drivers.errors import AuthenticationError, DebuggingLockedError, TransportError
from posdiag.drivers.i18n import _, ngettext

from . import __version__
from .cli_backend import backend_report, is_backend_target, load_backends
from .cli_common import (
    DEMO_ANDROID,
    EXIT_NOT_READY,
    EXIT_READY,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Context,
    LazyGroup,
    _simulation_records,
    backends_option,
    err,
    fail,
    guarded,
    out,
)
from .discovery import discover
from .logs import configure_logging
from .options import SECONDS
from .policy import Policy, check_scope, load_policy
from .render import render_report, render_summary, render_wipe, safe
from .report import DeviceReport, Verdict, VerdictStatus, to_json, utc_now_text

LAZY_COMMANDS = {
    "doctor": "posdiag.agent.cli_doctor:doctor",
    "report": "posdiag.agent.cli_records:report",
    "station-key": "posdiag.agent.cli_records:station_key",
    "verify": "posdiag.agent.cli_records:verify",
    "lost": "posdiag.agent.cli_backend:lost",
    "nexo-events": "posdiag.agent.cli_nexo_events:nexo_events",
    "simulate": "posdiag.agent.cli_simulate:simulate",
    "station": "posdiag.agent.cli_station:station",
}
"""The commands kept in other modules, imported when run: ``check`` never loads the station."""


@click.group(
    cls=LazyGroup,
    lazy_commands=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
@click.option(
    "--lang",
    "lang",
    metavar="LANG",
    help="Language of everything printed: en or zh-CN (default: the settings file, else "
    "LC_ALL/LANG).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="Station settings file (TOML); default ~/.config/posdiag/station.toml.",
)
@click.pass_context
def main(
    click_ctx: click.Context,
    log_format: str,
    log_level: str,
    debug: bool,
    lang: str | None,
    config_file: Path | None,
) -> None:
    """posdiag: diagnose and wipe payment terminals over their own cable."""
    from posdiag.drivers.i18n import normalise_language, set_language

    spoken = (lang or "").strip().replace("-", "_").lower()
    if lang is not None and (
        normalise_language(lang) is None
        or not (spoken in ("en", "zh") or spoken.startswith(("en_", "zh_")))
    ):
        raise click.BadParameter(
            _("{value}: the languages are en and zh-CN").format(value=repr(lang)),
            param_hint="--lang",
        )
    try:
        configure_logging(log_format, "debug" if debug else log_level)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    ctx = Context()
    ctx.debug = debug
    ctx.json_logs = log_format == "json"
    click_ctx.obj = ctx
    from .settings import apply_settings

    try:
        ctx.settings = apply_settings(click_ctx, config_file)
    except ValueError as exc:  # a broken settings file: one line, before anything runs
        fail(str(exc), EXIT_USAGE, ctx)
    set_language(lang or ctx.settings.language)


# --- check -------------------------------------------------------------------------------------


def _unreachable(address: str, error: Exception) -> DeviceReport:
    from .inspect import unreachable_reason

    report = DeviceReport(
        address=address,
        family=address.split("+", 1)[0] if "+" in address else "zvt",
        checked_at=utc_now_text(),
    )
    report.errors.append(str(error))
    report.verdict = Verdict(VerdictStatus.UNREACHABLE, (unreachable_reason(address, error),))
    return report


def _auth_prompt() -> None:
    err.print(
        Text(
            _(
                "The terminal does not know this computer yet: allow USB debugging on its "
                "screen (tick 'Always allow')."
            ),
            style="bold yellow",
        ),
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
    scope: Any = None,
) -> DeviceReport:
    """Check one terminal by address (raises AddressError/AuthenticationError for the CLI).

    ``scope`` (``posdiag.drivers.model.CheckScope``): how much to ask (quick triage, host
    dial-up); None: what the policy needs.

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
            terminal, policy, simulated=address.link == "sim", deadline_s=deadline_s, scope=scope
        )
    except AuthenticationError:
        raise  # also a TransportError when the unit is locked: its own line and exit code
    except TransportError as exc:
        return _unreachable(str(address), exc)
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
    "Android 90, nexo 120); a terminal still busy then is unreachable.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Triage: identity, merchant binding and unsettled money only, for sorting a pile fast.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Also let the terminal dial its payment host, whatever the policy needs.",
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
    quick: bool,
    full: bool,
    backends_file: Path | None,
) -> None:
    """Check terminals: identity, activation, firmware, network, battery, merchant data.

    ADDRESSES are e.g. zvt+serial:///dev/ttyUSB0?baud=9600, zvt+tcp://10.0.0.5:20007,
    /dev/ttyACM0, zvt+sim://activated or nexo+https://10.0.0.7 (an Adyen terminal); sn:SERIAL,
    tusn:TUSN or a label pasted from a barcode scanner checks a unit no cable reaches in its
    backends. Without an address, every attached terminal is checked; with none attached,
    simulated terminals are checked to show what posdiag does. Configured backends (TMS,
    acquirer platform) are consulted for every terminal.
    """
    if quick and full:
        raise click.UsageError(_("--quick and --full exclude each other: choose one."))
    policy = load_policy(policy_file)  # a bad policy file is a usage error before any I/O
    scope = check_scope(policy, quick=quick, full=full)
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
                Text(
                    _(
                        "No terminal attached: checking simulated terminals instead (ZVT: "
                        "{zvt}; Android: {android})."
                    ).format(
                        zvt=", ".join(available_scenarios()),
                        android=", ".join(a.removeprefix("adb+sim://") for a in DEMO_ANDROID),
                    ),
                    style="yellow",
                ),
                highlight=False,
            )
    from .progress import ProgressLine, wants_progress

    line = ProgressLine(err, wants_progress(err, as_json=as_json))
    reports = []
    try:
        for index, target in enumerate(targets, 1):
            subject = target if len(targets) == 1 else f"[{index}/{len(targets)}] {target}"
            with line.session(subject):
                try:
                    report = check_one(
                        target,
                        password,
                        policy=policy,
                        deadline_s=deadline,
                        backends=backends,
                        scope=scope,
                    )
                except DebuggingLockedError as exc:
                    if len(targets) == 1:
                        raise  # one line and the usage exit code, as a refused key gives
                    report = _unreachable(target, exc)  # one locked unit in a pile: note it
                reports.append(report)
    finally:
        backends.close()
    if as_json:
        payload: Any = to_json(reports[0]) if len(reports) == 1 else [to_json(r) for r in reports]
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for index, report in enumerate(reports):
            if index:
                out.print()
            out.print(render_report(report, debug=ctx.debug))
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
        err.print(
            _("No terminal found (serial ports the catalogue knows, ADB devices on USB)."),
            highlight=False,
        )
        return
    from rich.table import Table

    table = Table(_("Address"), _("Kind"), _("Model (guess)"), _("Serial"), _("USB ID"))
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
        fail(
            _("a wipe needs confirmation: run it in a terminal, or pass --yes"), EXIT_USAGE, ctx
        )
    simulated = parsed.link == "sim"
    if simulated:  # never into the depot's ledger, manifest or certificate folder
        ledger_url, out_dir = _simulation_records(
            ctx, ledger_url, out_dir, _("Simulated terminal")
        )
    options = WipeOptions(
        operator=operator,
        operator_title=operator_title,
        organisation=organisation,
        logo=getattr(ctx.settings, "logo", None),
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

    from .progress import ProgressLine, wants_progress

    line = ProgressLine(err, wants_progress(err, as_json=as_json))

    def confirm(summary: str, expected: str) -> bool:
        with line.paused():
            return confirm_serial(summary, expected)

    stages = {
        "inspecting": _("checking the terminal before erasing"),
        "wiping": _("erasing"),
        "verifying": _("checking that the erasure took"),
        "certifying": _("writing the certificate"),
    }

    def on_progress(progress: Any) -> None:
        if progress.stage in stages and progress.step is None:
            line.stage(stages[progress.stage])

    terminal = open_terminal(parsed, password=password, on_auth_prompt=_auth_prompt)
    with Ledger(ledger_url) as ledger, line.session(address):
        session = WipeSession(
            terminal,
            policy,
            options,
            ledger=ledger,
            key=StationKey.load_or_create(),
            confirm=confirm,
            simulated=simulated,
            backends=backends,
            on_progress=on_progress,
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


CONFIRM_TRIES = 3


def confirm_serial(summary: str, expected: str, tries: int = CONFIRM_TRIES) -> bool:
    """Ask for the terminal's serial before erasing; a typo is asked again, not an abort.

    Three tries, then the wipe is not confirmed (nothing was touched). An empty answer or the
    end of input (Ctrl-D) stops at once: the operator did not mean to go on.
    """
    err.print(Text(safe(summary)))
    for attempt in range(1, tries + 1):
        try:
            typed = click.prompt(
                _("Type the terminal's serial number to erase it"),
                err=True,
                default="",
                show_default=False,
            ).strip()
        except click.Abort:
            return False
        if not typed:
            return False
        if typed == expected:
            return True
        left = tries - attempt
        if left:
            err.print(
                Text(
                    ngettext(
                        "That is not this terminal's serial number ({left} try left).",
                        "That is not this terminal's serial number ({left} tries left).",
                        left,
                    ).format(left=left),
                    style="yellow",
                ),
                highlight=False,
            )
    return False
