"""What every command of the CLI shares: consoles, exit codes, one-line errors, records' home.

``cli.py`` (the device commands) and ``cli_backend.py`` (backends, ``lost``) both build on it,
so neither imports the other's internals.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from posdiag.drivers.backend.model import (
    BackendAuthError,
    BackendConfigError,
    BackendProtocolError,
    BackendUnavailable,
)
from posdiag.drivers.errors import AddressError, AuthenticationError, PosdiagError, TransportError
from posdiag.drivers.i18n import _

from .policy import PolicyError

EXIT_READY, EXIT_NOT_READY, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXIT_CERTIFICATE_PENDING = 7  # wipe: outcome recorded, certificate not yet issued (run it again)

backends_option = click.option(
    "--backends",
    "backends_file",
    type=click.Path(path_type=Path),
    help="Backends file (TMS/acquirer platforms); default ~/.config/posdiag/backends.toml.",
)
"""The option every command that consults backends takes (check, wipe, station, lost)."""

out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, soft_wrap=True)


class LazyGroup(click.Group):
    """A command group whose commands in ``lazy_commands`` are imported when first resolved.

    ``posdiag check`` is run by the hundred on a depot PC, and importing every command's module
    (the station's live table and settlement prompts, the simulator's servers) would cost each
    run milliseconds it never uses. Click resolves the invoked command before the group's own
    callback runs, so the settings (``default_map``) still reach it; ``--help`` lists them all.

    Args:
        lazy_commands: command name → ``"module:attribute"`` of its ``click.Command``.
    """

    def __init__(
        self, *args: Any, lazy_commands: Mapping[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, loaded or not (help, completion, typo suggestions)."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing its module the first time it is asked for."""
        spec = self.lazy_commands.get(cmd_name)
        if spec is not None and cmd_name not in self.commands:
            module_name, _, attribute = spec.partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{spec} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


class Context:
    """Options shared by every command."""

    debug: bool = False
    json_logs: bool = False
    """stderr carries JSON lines: notices go through the log, not as plain text lines."""
    settings: Any = None
    """The station settings in force (``posdiag.agent.settings.Settings``)."""


def fail(message: str, code: int, ctx: Context | None = None) -> NoReturn:
    """One line on stderr, then exit; the traceback too under --debug."""
    if ctx is not None and ctx.debug and sys.exc_info()[0] is not None:
        traceback.print_exc()
    err.print(f"[bold red]{escape(_('posdiag: error:'))}[/] {escape(message)}", highlight=False)
    sys.exit(code)


def _detail(ctx: Context | None, exc: BaseException) -> None:
    """The protocol's own words for an error the operator is told plainly: under --debug only."""
    if ctx is not None and ctx.debug:
        err.print(Text(str(exc), style="dim"), highlight=False)


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
        except AuthenticationError as exc:  # the drivers word these for the operator
            fail(str(exc), EXIT_USAGE, ctx)
        except TransportError as exc:
            _detail(ctx, exc)
            fail(
                _(
                    "The terminal stopped answering: check its cable or network and that it is "
                    "switched on, then try again (details: --debug)."
                ),
                EXIT_UNREACHABLE,
                ctx,
            )
        except PosdiagError as exc:
            fail(str(exc), EXIT_NOT_READY, ctx)
        except KeyboardInterrupt:
            fail(_("interrupted"), 130, ctx)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


# The Android units a demo run (no target, no hardware) shows beside every ZVT scenario.
DEMO_ANDROID = (
    "adb+sim://activated?model=pax-a920",
    "adb+sim://unsettled?model=sunmi-p2",
    "adb+sim://fresh?model=android-generic",
    "adb+sim://unsettled?model=newland-n910",  # a Chinese-market unit: CNY, Chinese merchant
)


def _simulation_records(
    ctx: Context, ledger_url: str | None, out_dir: Path | None, what: str | None = None
) -> tuple[str, Path]:
    """Where simulated terminals' records go unless told: beside the depot's, never into them.

    A demo or CI run on a depot PC must not put simulated terminals into the ledger and
    manifests that go back to vendors; it gets its own ledger file and certificate folder
    (station fleets, station runs on simulator addresses, ``check``/``wipe`` of one). One line
    on stderr says where the records went. A ledger or folder from the station settings is the
    depot's, so it is set aside too; only one typed for this run receives simulated records.
    """
    from .ledger import default_path, sqlite_url
    from .settings import from_settings
    from .wipe import default_certificate_dir

    click_ctx = click.get_current_context(silent=True)
    if click_ctx is not None:
        if from_settings(click_ctx, "ledger_url"):
            ledger_url = None
        if from_settings(click_ctx, "out_dir"):
            out_dir = None
    if ledger_url is None:
        path = default_path().with_name("simulated-ledger.sqlite3")
        ledger_url = sqlite_url(path)
        if ctx.json_logs:  # a collector reads stderr as JSON lines: say it as one
            from .logs import get_logger

            get_logger(__name__).warning("records.simulated", ledger=str(path))
        else:
            err.print(
                Text(
                    _(
                        "{what}: recorded in {path} (not the depot ledger; --ledger to choose)."
                    ).format(what=what or _("Simulated terminals"), path=path)
                ),
                highlight=False,
            )
    if out_dir is None:
        out_dir = default_certificate_dir().with_name("simulated-certificates")
    return ledger_url, out_dir
