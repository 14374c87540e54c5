"""What every command of the CLI shares: consoles, exit codes, one-line errors, records' home.

``cli.py`` (the device commands) and ``cli_backend.py`` (backends, ``lost``) both build on it,
so neither imports the other's internals.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
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
