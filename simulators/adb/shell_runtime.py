"""The running shell's plumbing: its variables, file descriptors, pipes and ``exit``.

Kept apart from the evaluator (:mod:`.shell`) so builtins (:mod:`.shell_builtins`) can use it:
an :class:`Env` per shell (a subshell gets a copy, so ``cd`` or ``exit`` in a pipeline stage
does not reach the parent), writers (``Sink``) per file descriptor, the top-level
:class:`Recorder` that keeps stdout and stderr in the order written (a legacy ``shell:``
carries them as one stream), and bounded buffers for pipes and substitutions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .shell_base import MAX_OUTPUT, SH, ShellResult
from .state import AndroidState

Sink = Callable[[str], None] | None
"""Where a file descriptor's writes go; None is closed or ``/dev/null``."""


class ExitShell(Exception):
    """``exit N``: unwinds to the shell (or subshell) that runs the command."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class RedirectFailed(Exception):
    """A redirection could not be set up; the message is mksh's, the command does not run."""


@dataclass
class Env:
    """One shell's state: variables, working directory, ``$?``, positional parameters."""

    vars: dict[str, str]
    cwd: str = "/"
    status: int = 0
    depth: int = 0
    name: str = SH
    arg0: str = SH
    positional: list[str] = field(default_factory=list)
    substituted: int | None = None  # status of the last command substitution (``X=$(false)``)

    def copy(self) -> Env:
        """A subshell's copy: changes in it do not reach this shell."""
        return Env(
            dict(self.vars),
            self.cwd,
            self.status,
            self.depth,
            self.name,
            self.arg0,
            list(self.positional),
        )


class Recorder:
    """The shell's own stdout and stderr, kept in the order written (a legacy channel's)."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, str]] = []
        self.size = 0

    def sink(self, fd: int) -> Callable[[str], None]:
        """A writer for stdout (1) or stderr (2)."""

        def write(text: str) -> None:
            room = MAX_OUTPUT - self.size
            if text and room > 0:
                text = text[:room]
                self.size += len(text)
                self.chunks.append((fd, text))

        return write

    def result(self, code: int) -> ShellResult:
        """The line's result: ``combined`` only when it differs from stdout + stderr."""
        stdout = "".join(t for fd, t in self.chunks if fd == 1)
        stderr = "".join(t for fd, t in self.chunks if fd == 2)
        combined = "".join(t for _, t in self.chunks)
        return ShellResult(code, stdout, stderr, None if combined == stdout + stderr else combined)


class Buffer:
    """A pipe or a command substitution: what one side writes, the other reads."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        """Keep ``text`` (up to the output bound)."""
        room = MAX_OUTPUT - self.size
        if text and room > 0:
            self.parts.append(text[:room])
            self.size += min(len(text), room)

    def text(self) -> str:
        """Everything written."""
        return "".join(self.parts)


class FileSink:
    """``> file``/``>> file``: writes land in the tree's node (opened, so permitted, already)."""

    def __init__(self, state: AndroidState, path: str) -> None:
        self.state, self.path = state, path

    def write(self, text: str) -> None:
        """Append to the file, up to the output bound."""
        node = self.state.tree.lookup(self.path)
        if node is None or node.kind != "file" or len(node.data) >= MAX_OUTPUT:
            return
        node.data = node.data + text.encode("utf-8", "surrogateescape")[:MAX_OUTPUT]
        node.mtime = self.state.tree.now()


def emit(fds: dict[int, Sink], fd: int, text: str) -> None:
    """Write ``text`` to descriptor ``fd`` (nothing if it is closed)."""
    sink = fds.get(fd)
    if text and sink is not None:
        sink(text)


def escape_glob(text: str) -> str:
    """Quoted text inside a glob pattern matches itself (``[*]`` is a literal star)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)
