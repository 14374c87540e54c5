"""The ``posdiag`` command's entry point: a plain ``--version`` answered before the CLI loads.

Scripts, installers and support calls run ``posdiag --version`` first, and the command line
proper (click, rich's consoles, every command's options) costs several times a bare interpreter
to import. That one question needs none of it, so it is answered here from the static
:data:`posdiag.agent.__version__`, in the very words click's version option prints; every other
command line, ``--version`` mixed with other options included, goes to
:func:`posdiag.agent.cli.main` unchanged.
"""

from __future__ import annotations

import gc
import sys

from . import __version__

VERSION_LINE = "posdiag, version {version}"
"""What ``posdiag --version`` prints: click's ``version_option`` format, so both paths agree."""


def main() -> None:
    """Run the ``posdiag`` command (the console script and ``python -m posdiag.agent``)."""
    if sys.argv[1:] == ["--version"]:
        sys.stdout.write(VERSION_LINE.format(version=__version__) + "\n")
        sys.stdout.flush()
        return
    from .cli import main as cli_main

    try:
        cli_main()  # click's standalone mode: always ends in SystemExit
    finally:
        # The interpreter's exit walks every object still alive with full garbage collections
        # (babel's locale data, rich's tables, every module's dicts): about 30 ms of a 0.25 s
        # check, more than the check's own work. Freezing hands them to the permanent
        # generation, so exit skips those walks; objects are still freed by reference count,
        # atexit handlers and logging's flush still run, and files are closed by ``with``.
        gc.freeze()
