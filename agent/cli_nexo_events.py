"""``posdiag nexo-events``: receive nexo (Adyen) terminals' events beside single checks.

A technician without a station points the terminals' event URL at the laptop, runs this, and
checks the units as usual: a ``SecurityAlarm`` a terminal sends is recorded per POIID, and the
unit's next check reports it tampered (quarantine). ``posdiag station --nexo-events`` runs the
same receiver for the station's lifetime (:func:`start_receiver`).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from posdiag.drivers.i18n import _, ngettext

from .cli_common import EXIT_READY, EXIT_USAGE, Context, err, fail, guarded

if TYPE_CHECKING:
    from posdiag.drivers.nexo.event_log import RecordedEvent

    from .nexo_events import EventReceiver
    from .settings import Settings

__all__ = ["nexo_events", "start_receiver"]


def start_receiver(
    ctx: Context,
    listen: str,
    settings: Settings | None,
    *,
    key_file: Path | None = None,
    on_event: Callable[[RecordedEvent], None] | None = None,
) -> EventReceiver:
    """Start an :class:`~.nexo_events.EventReceiver` on ``listen`` with the station's key.

    The key is resolved as a check resolves it (``key_file`` as an address's ``key=``, else the
    settings' ``[nexo]`` table, else ``POSDIAG_NEXO_*``). A malformed ``listen`` or an address
    that cannot be bound ends the command with a usage error (exit 2); a broken key setting
    raises NexoConfigError, which :func:`~.cli_common.guarded` reports the same way.
    """
    from posdiag.drivers.nexo.keys import resolve_key

    from .nexo_events import EventReceiver, parse_listen

    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE, ctx)
    key, _source = resolve_key(
        str(key_file) if key_file else None, settings.nexo if settings is not None else None
    )
    receiver = EventReceiver(host, port, key=key, on_event=on_event)
    try:
        receiver.start()
    except OSError as exc:
        fail(
            _("cannot receive nexo events on {listen}: {why}").format(
                listen=listen, why=exc.strerror or exc
            ),
            EXIT_USAGE,
            ctx,
        )
    if key is None:
        err.print(
            Text(
                _(
                    "No nexo key is configured: unencrypted events are accepted (TEST terminals "
                    "only) and encrypted ones are dropped."
                ),
                style="yellow",
            ),
            highlight=False,
        )
    return receiver


def _event_line(event: RecordedEvent) -> str:
    """One received event as a line: when, which terminal, what, its details."""
    received = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(event.received_at))
    details = ", ".join(f"{k}={v}" for k, v in event.details)
    return "  ".join(part for part in (received, event.poiid, event.kind, details) if part)


@click.command("nexo-events")
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to receive events, e.g. 0.0.0.0:8090 (the shop network) or 127.0.0.1:0.",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The terminals' shared key file (TOML, mode 600), as an address's key=; default: the "
    "station settings' [nexo] key, else POSDIAG_NEXO_*.",
)
@click.option(
    "--forget",
    metavar="POIID",
    help="Remove the events recorded for this terminal (after it was examined: its "
    "SecurityAlarms no longer make it tampered) and exit.",
)
@guarded
def nexo_events(
    ctx: Context, listen: str | None, key_file: Path | None, forget: str | None
) -> None:
    """Receive nexo (Adyen) terminals' event notifications until Ctrl-C.

    Prints first the URL to set as the terminals' event URL (Adyen: the terminal's
    eventUrls, local URLs), then one line per event received. Events are recorded per
    terminal; a SecurityAlarm makes the terminal's next check tampered (quarantine).
    """
    from posdiag.drivers.nexo.event_log import NexoEventLog

    if forget is not None:
        if listen is not None:
            raise click.UsageError(_("--forget POIID goes alone, without --listen"))
        try:
            count = NexoEventLog().forget(forget.strip())
        except ValueError:
            fail(_("{value!r} is not a POIID").format(value=forget), EXIT_USAGE, ctx)
        removed = ngettext(
            "Removed {count} recorded event of {poiid}.",
            "Removed {count} recorded events of {poiid}.",
            count,
        ).format(count=count, poiid=forget.strip())
        err.print(Text(removed), highlight=False)
        raise SystemExit(EXIT_READY)
    if listen is None:
        raise click.UsageError(_("give --listen HOST:PORT (or --forget POIID)"))
    printing = threading.Lock()

    def show(event: RecordedEvent) -> None:
        with printing:
            click.echo(_event_line(event))

    stopped = threading.Event()
    previous = None
    # SIGTERM handled before the URL is printed: a supervisor may signal as soon as it reads it
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_args: stopped.set())
    try:
        receiver = start_receiver(ctx, listen, ctx.settings, key_file=key_file, on_event=show)
        try:
            with printing:
                click.echo(receiver.url)
            err.print(
                Text(
                    _(
                        "Set this URL as the terminals' event URL; their events are recorded "
                        "for their next check. Ctrl-C to stop."
                    )
                ),
                highlight=False,
            )
            while not stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            receiver.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
