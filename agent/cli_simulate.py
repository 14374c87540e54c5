"""``posdiag simulate``: simulated terminals (ZVT, Android, Adyen) and backends, until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click
from rich.markup import escape

from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.i18n import _

from .cli_common import (
    EXIT_USAGE,
    Context,
    err,
    fail,
    guarded,
)
from .options import TIME_SCALE

# --- simulate ----------------------------------------------------------------------------------


def _parse_fault(values: tuple[str, ...]) -> dict[str, str]:
    options: dict[str, str] = {}
    for value in values:
        name, _, setting = value.partition("=")
        options[name.strip().replace("-", "_")] = setting.strip() if setting else "1"
    return options


@click.command()
@click.argument("family", type=click.Choice(["zvt", "adb", "nexo", "backend"]))
@click.option("--scenario", default="activated", show_default=True, help="Scenario name.")
@click.option(
    "--model", default=None, help="adb: model profile (pax-a920, sunmi-p2, …); nexo: V400m, …"
)
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
    help="adb, nexo: the simulated backend this terminal syncs with (a release there drops its "
    "device owner, a reassignment to inventory its merchant account, at the next sync).",
)
@click.option(
    "--event-url",
    metavar="URL",
    help="nexo: where the terminal POSTs its EventNotifications (no retry).",
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
    event_url: str | None,
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

    FAMILY nexo runs an Adyen terminal (nexo Retailer JSON over HTTPS, encrypted with a shared
    key); its first line is nexo+https://HOST:PORT?poiid=…&ca=CA.pem&key=KEY.toml. nexo
    faults: wrong_key, no_key, malformed_json=N, slow=S, drop=N; options allow_cleartext=0
    (a LIVE terminal), additional_format=base64-json.
    """
    if family == "backend":
        from .cli_backend import serve_until_stopped, start_simulated_backend

        simulator, path = start_simulated_backend(kind, tcp, terminals, _parse_fault(faults))
        click.echo(simulator.api_url)
        click.echo(str(path))
        err.print(
            _("Simulated {kind} backend with {len} terminal(s); Ctrl-C to stop.").format(
                kind=kind, len=len(simulator.terminals)
            ),
            highlight=False,
        )
        serve_until_stopped(simulator)
        return
    if terminals:
        raise click.UsageError(_("--terminal is for simulate backend"))
    if list_scenarios:
        _list_scenarios(family)
        return
    if use_pty and tcp:
        raise click.UsageError(_("choose one of --pty and --tcp"))
    if event_url and family != "nexo":
        raise click.UsageError(_("--event-url is for simulated Adyen terminals (nexo)"))
    if family == "nexo":
        if use_pty or password:
            raise click.UsageError(
                _("simulated Adyen terminals listen on HTTPS (--tcp HOST:PORT), with no password")
            )
        if serial is not None:
            from posdiag.simulators.registry import validate_serial

            try:
                validate_serial(serial, "nexo")  # half of the POIID: letters and digits
            except ValueError as exc:
                fail(f"--serial: {exc}", EXIT_USAGE, ctx)
        options = {"time_scale": str(time_scale), **_parse_fault(faults)}
        for name, value in (("serial", serial), ("tms", tms), ("event_url", event_url)):
            if value is not None:
                options[name] = value
        _simulate_nexo(ctx, scenario, model or "V400m", tcp, options)
        return
    if family == "adb" and use_pty:
        raise click.UsageError(_("simulated Android terminals listen on TCP (--tcp HOST:PORT)"))
    if family == "zvt" and model:
        raise click.UsageError(_("--model is for adb; ZVT scenarios choose their model"))
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
            raise click.UsageError(
                _("--tms is for simulated Android (adb) and Adyen (nexo) terminals")
            )
        options["tms"] = tms
    simulator, description = _build_simulator(ctx, family, scenario, model, options, tcp)
    from posdiag.simulators.attach import PtyAttachment, TcpAttachment

    attachment: PtyAttachment | TcpAttachment
    if tcp or family == "adb":
        host, port = _host_port(tcp)
        attachment = TcpAttachment(simulator, host, port)
        try:
            bound_host, bound_port = attachment.start()
        except OSError as exc:
            fail(
                _("cannot listen on {tcp}: {value}").format(tcp=tcp, value=exc.strerror or exc),
                EXIT_USAGE,
                ctx,
            )
        address = f"{family}+tcp://{bound_host}:{bound_port}"
    else:
        attachment = PtyAttachment(simulator)
        address = f"zvt+serial://{attachment.start()}"
    _announce_and_wait(address, description, attachment.stop)


def _host_port(tcp: str | None) -> tuple[str, int]:
    """``--tcp HOST:PORT`` (default ``127.0.0.1:0``, a free port); usage error when malformed."""
    host, sep, port_text = (tcp or "127.0.0.1:0").rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise click.UsageError(
            _("--tcp wants HOST:PORT (port 0 to 65535), got {tcp!r}").format(tcp=tcp)
        )
    return host.strip("[]") or "127.0.0.1", int(port_text)


def _announce_and_wait(address: str, description: str, stop: Any) -> None:
    """Print the address (first line), then run until Ctrl-C or SIGTERM, then ``stop()``."""
    # Handle SIGTERM before announcing the address: a supervisor may signal as soon as it reads it.
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        click.echo(address)
        err.print(_("{escape} Ctrl-C to stop.").format(escape=escape(description)), highlight=False)
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def _simulate_nexo(
    ctx: Context, scenario: str, model: str, tcp: str | None, options: dict[str, str]
) -> None:
    """``posdiag simulate nexo``: an Adyen terminal on HTTPS until interrupted."""
    from posdiag.simulators.registry import create_nexo
    from posdiag.simulators.scenario_data import ScenarioError

    host, port = _host_port(tcp)
    try:
        simulator = create_nexo(scenario, model, options)
    except ScenarioError as exc:
        fail(str(exc), EXIT_USAGE, ctx)
    except (TypeError, ValueError, PosdiagError) as exc:
        fail(_("bad fault option: {exc}").format(exc=exc), EXIT_USAGE, ctx)
    simulator.host, simulator.port = host, port
    try:
        simulator.start()
    except OSError as exc:
        fail(
            _("cannot listen on {tcp}: {value}").format(
                tcp=f"{host}:{port}", value=exc.strerror or exc
            ),
            EXIT_USAGE,
            ctx,
        )
    s = simulator.state
    description = (
        f"Simulated Adyen {s.model} (POIID {s.poiid}, firmware {s.firmware}), "
        f"scenario {scenario}: {s.description}."
    )
    _announce_and_wait(simulator.address, description, simulator.stop)


def _list_scenarios(family: str) -> None:
    if family == "nexo":
        from posdiag.simulators.nexo.state import available_profiles as nexo_models
        from posdiag.simulators.nexo.state import available_scenarios as nexo_scenarios

        for name in nexo_scenarios():
            click.echo(name)
        click.echo(f"models: {', '.join(nexo_models())}")
        return
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
        fail(_("bad fault option: {exc}").format(exc=exc), EXIT_USAGE, ctx)
    state = simulator.state
    return simulator, (
        f"Simulated {state.vendor} {state.model} (serial {state.serial}), "
        f"scenario {scenario}: {state.description}."
    )
