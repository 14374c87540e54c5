"""What every command of the simulated shell gets and gives back.

A command is a function of a :class:`Proc` (its argv, its standard input, the device state, the
shell's working directory and environment) returning a :class:`ShellResult`. Keeping commands
pure functions of that, instead of writing to file descriptors, lets the evaluator route their
output (pipes, ``2>&1``, ``>file``) and lets the faults replace what a command prints.
"""

from __future__ import annotations

import errno
import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .files import FileTree
    from .state import AndroidState

MAX_OUTPUT = 8 * 1024 * 1024
"""Characters one command line may print in all; the rest is dropped (no runaway simulator)."""

SH = "/system/bin/sh"
"""The shell's name in its error messages (mksh's ``kshname``: adbd runs ``/system/bin/sh -c``)."""


@dataclass(frozen=True)
class ShellResult:
    """What a command printed and its exit status.

    ``combined`` is stdout and stderr as one stream, each simple command's stdout then its
    stderr, in the order the commands ran: what a legacy ``shell:`` (one channel for both)
    carries. None for a single command, where it is simply ``stdout + stderr``.
    """

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    combined: str | None = None

    @property
    def merged(self) -> str:
        """Stdout and stderr interleaved per command (a legacy shell's single channel)."""
        return self.stdout + self.stderr if self.combined is None else self.combined


def ok(text: str = "") -> ShellResult:
    """Exit 0 with ``text`` on stdout."""
    return ShellResult(0, text)


def err(text: str, code: int = 1) -> ShellResult:
    """Exit ``code`` (1) with ``text`` on stderr."""
    return ShellResult(code, "", text)


class PowerLoss(Exception):
    """The device lost power running a command (the ``power_loss_at`` fault).

    Raised out of :meth:`AndroidShell.run` once the command's partial effect has taken hold, so
    the engine vanishes from the link instead of answering; the argument is the command line.
    ``before`` is what the commands of the line that ran before it printed (a real device has
    already streamed that), which the engine sends before it vanishes.
    """

    def __init__(self, command: str, before: ShellResult | None = None) -> None:
        super().__init__(command)
        self.before = before or ShellResult(0)


@dataclass
class Proc:
    """One command's view of the world: argv, stdin, the device, cwd and environment."""

    argv: list[str]
    stdin: str
    state: AndroidState
    cwd: str = "/"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def args(self) -> list[str]:
        """The arguments after the command name."""
        return self.argv[1:]

    @property
    def name(self) -> str:
        """The command's name as toybox reports it in errors (``ls``, not ``/system/bin/ls``)."""
        return posixpath.basename(self.argv[0])

    @property
    def tree(self) -> FileTree:
        """The device's file system."""
        return self.state.tree

    def path(self, given: str) -> str:
        """``given`` as an absolute path, relative ones taken from the working directory."""
        joined = posixpath.join(self.cwd, given) if not given.startswith("/") else given
        result = posixpath.normpath(joined)
        return "/" if result.startswith("//") else result

    def read(self, operand: str) -> tuple[str | None, str]:
        """A file operand's text (``-`` is stdin) or None and the ``PATH: strerror`` message."""
        if operand == "-":
            return self.stdin, ""
        from .files import SHELL_UID

        try:
            data = self.tree.read(self.path(operand), SHELL_UID)
        except OSError as exc:
            return None, f"{operand}: {strerror(exc)}"
        return data.decode("utf-8", "surrogateescape"), ""


Command = Callable[[Proc], ShellResult]


def strerror(exc: OSError) -> str:
    """Linux's text for an OSError (what toybox's ``perror_msg`` prints)."""
    return os.strerror(exc.errno or errno.EIO)


def lines_of(text: str) -> list[str]:
    """Lines with their newline kept; a last line without one stays as it is."""
    return text.splitlines(keepends=True) if "\r" in text else _split_nl(text)


def _split_nl(text: str) -> list[str]:
    if not text:
        return []
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def usage_error(name: str, option: str) -> ShellResult:
    """Toybox's answer to an option it does not know."""
    return err(f"{name}: Unknown option '{option}' (see \"{name} --help\")\n")


def parse_options(
    name: str, argv: list[str], flags: str, valued: str = ""
) -> tuple[set[str], dict[str, list[str]], list[str]] | ShellResult:
    """toybox-style options: anywhere on the line, bundled (``-la``), ``--`` ends them.

    ``valued`` options take a value (``-n 5`` or ``-n5``). Returns (flags, values, operands) or
    the usage error toybox prints. A lone ``-`` is an operand (stdin).
    """
    seen: set[str] = set()
    values: dict[str, list[str]] = {}
    operands: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            operands.extend(argv[i:])
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        j = 1
        while j < len(arg):
            c = arg[j]
            if c in valued:
                value = arg[j + 1 :]
                if not value:
                    if i >= len(argv):
                        return err(f"{name}: Missing argument to -{c}\n")
                    value = argv[i]
                    i += 1
                values.setdefault(c, []).append(value)
                seen.add(c)
                break
            if c not in flags:
                return usage_error(name, c)
            seen.add(c)
            j += 1
    return seen, values, operands
