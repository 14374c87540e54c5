"""A small Android shell for the simulated POS: mksh's evaluation, toybox's and AOSP's commands.

What a client sends through ``adb shell`` is a command line for ``/system/bin/sh -c`` (mksh):
sequences (``;``, ``&&``, ``||``), pipes to toybox filters, redirections (``2>&1``,
``>/dev/null``, ``> file``), ``$?`` and ``$VAR``, quoting, ``sh -c``. The line is parsed by
:mod:`.shell_parse` (why a hand-written grammar: see there) and evaluated here as sh does:
words are expanded (parameters, command substitution, field splitting, globbing against the
device's file tree, only for unquoted pieces), redirections are set up in order, each pipeline
stage runs in a subshell and the pipeline's status is the last stage's, ``exit`` ends the shell.

Commands are plain functions (:mod:`.shell_base`): toybox's text tools and builtins
(:mod:`.toybox`), its file tools over :class:`~.files.FileTree` (:mod:`.toybox_files`), the
Android ones (``getprop``, ``dumpsys``, ``pm``, ``cmd``, ``ps``, ``ip``…, :mod:`.shell_android`).
Unknown commands answer as mksh does: ``/system/bin/sh: NAME: inaccessible or not found`` on
stderr and exit status 127.

The behavioural faults of :class:`~.state.Faults` act here, per simple command after expansion,
because they are about what a command does: refuse it (``fail_command``), lie about it
(``lie_about``), or lose power half-way (``power_loss_at``: part of the effect lands, then
:class:`PowerLoss` tells the engine to drop the link instead of answering).

Everything is bounded: the line's length and nesting (:mod:`.shell_parse`), ``sh -c`` depth,
pipeline length, and the output kept (:data:`~.shell_base.MAX_OUTPUT`); there are no loops.
"""

from __future__ import annotations

import fnmatch
import posixpath
import stat

from . import shell_android, shell_faults, shell_system, toybox, toybox_files, toybox_text
from .hostile import HOSTILE, hostile_stdout
from .shell_base import SH, Command, PowerLoss, Proc, ShellResult, err, ok, strerror
from .shell_builtins import BUILTINS
from .shell_parse import (
    MAX_NESTING,
    AndOr,
    Group,
    ListNode,
    Part,
    Pipeline,
    Redirect,
    ShellSyntaxError,
    Simple,
    Word,
    parse,
)
from .shell_props import shell_environment
from .shell_runtime import (
    Buffer,
    Env,
    ExitShell,
    FileSink,
    Recorder,
    RedirectFailed,
    Sink,
    emit,
    escape_glob,
)
from .shell_system import SHELL_PID
from .state import AndroidState

__all__ = ["AndroidShell", "PowerLoss", "ShellResult"]

MAX_PIPELINE = 32
"""Stages in one pipeline; more is refused (a bound, not an mksh limit)."""

NEW_FILE_MODE = 0o666
"""Mode of a file a redirection creates: adbd starts the shell with umask 0 (``-rw-rw-rw-``)."""

BIN_DIRS = ("/system/bin", "/system/xbin", "/bin", "/vendor/bin", "/product/bin")


class AndroidShell:
    """Runs command lines against an AndroidState, as ``/system/bin/sh -c LINE`` would."""

    def __init__(self, state: AndroidState) -> None:
        self.state = state

    def run(self, command_line: str) -> ShellResult:
        """Execute a command line; its output and the status ``sh -c`` would exit with."""
        recorder = Recorder()
        fds: dict[int, Sink] = {1: recorder.sink(1), 2: recorder.sink(2)}
        env = Env(shell_environment(self.state), name=SH)
        try:
            code = self._script(command_line, env, fds, "")
        except PowerLoss as loss:
            raise PowerLoss(str(loss), recorder.result(env.status)) from None
        return recorder.result(code)

    def _script(self, text: str, env: Env, fds: dict[int, Sink], stdin: str) -> int:
        """Parse and run ``text`` in ``env``; a syntax error is mksh's message and status 1."""
        try:
            tree = parse(text)
        except ShellSyntaxError as exc:
            emit(fds, 2, f"{env.name}: {exc}\n")
            return 1
        try:
            return self._list(tree, env, fds, stdin)
        except ExitShell as done:
            return done.code

    # --- evaluation ------------------------------------------------------------------------------

    def _list(self, node: ListNode, env: Env, fds: dict[int, Sink], stdin: str) -> int:
        for item in node.items:
            env.status = self._and_or(item, env, fds, stdin)
        return env.status

    def _and_or(self, node: AndOr, env: Env, fds: dict[int, Sink], stdin: str) -> int:
        status = self._pipeline(node.first, env, fds, stdin)
        for op, pipeline in node.rest:
            if (op == "&&") == (status == 0):
                status = self._pipeline(pipeline, env, fds, stdin)
        return status

    def _pipeline(self, node: Pipeline, env: Env, fds: dict[int, Sink], stdin: str) -> int:
        if len(node.commands) > MAX_PIPELINE:
            emit(fds, 2, f"{env.name}: pipeline too long\n")
            status = 1
        elif len(node.commands) == 1:
            status = self._command(node.commands[0], env, fds, stdin)
        else:
            data = stdin
            status = 0
            for index, command in enumerate(node.commands):
                pipe = Buffer()
                stage = dict(fds)
                if index < len(node.commands) - 1:
                    stage[1] = pipe.write
                try:  # every stage is a subshell (mksh forks them all)
                    status = self._command(command, env.copy(), stage, data)
                except ExitShell as done:
                    status = done.code
                data = pipe.text()
        if node.negate:
            status = int(status == 0)
        env.status = status
        return status

    def _command(self, node: Simple | Group, env: Env, fds: dict[int, Sink], stdin: str) -> int:
        if isinstance(node, Group):
            try:
                inner, stdin = self._redirect(node.redirects, env, fds, stdin)
            except RedirectFailed as failed:
                emit(fds, 2, f"{env.name}: {failed}\n")
                return 1
            if not node.subshell:
                return self._list(node.body, env, inner, stdin)
            try:
                return self._list(node.body, env.copy(), inner, stdin)
            except ExitShell as done:
                return done.code
        env.substituted = None
        argv: list[str] = []
        for word in node.words:
            argv.extend(self._expand(word, env, fds))
        try:
            inner, stdin = self._redirect(node.redirects, env, fds, stdin)
        except RedirectFailed as failed:
            emit(fds, 2, f"{env.name}: {failed}\n")
            return 1
        values = {name: self._expand_string(value, env, fds) for name, value in node.assigns}
        if not argv:
            env.vars.update(values)
            return env.substituted if env.substituted is not None else 0
        return self._invoke(argv, env, inner, stdin)

    # --- expansion -------------------------------------------------------------------------------

    def _expand(self, word: Word, env: Env, fds: dict[int, Sink]) -> list[str]:
        """A word's fields: parameters and substitutions, field splitting, then globbing."""
        fields: list[list[tuple[str, bool]]] = []
        current: list[tuple[str, bool]] | None = None
        for part in word.parts:
            if part.kind == "lit":
                current = current if current is not None else []
                current.append((part.text, part.quoted))
                continue
            if part.kind == "param" and part.text == "@" and part.quoted and not part.op:
                if env.positional:
                    for k, arg in enumerate(env.positional):
                        if k:
                            fields.append(current or [])
                            current = []
                        current = current if current is not None else []
                        current.append((arg, True))
                continue
            value = self._value(part, env, fds)
            if part.quoted:
                current = current if current is not None else []
                current.append((value, True))
                continue
            pieces = value.split()
            if value[:1].isspace() and current:
                fields.append(current)
                current = None
            for k, piece in enumerate(pieces):
                if k and current is not None:
                    fields.append(current)
                    current = None
                current = current if current is not None else []
                current.append((piece, False))
            if value[-1:].isspace() and current:
                fields.append(current)
                current = None
        if current is not None:
            fields.append(current)
        words: list[str] = []
        for segments in fields:
            text = "".join(t for t, _ in segments)
            if any(not quoted and any(c in t for c in "*?[") for t, quoted in segments):
                pattern = "".join(t if not q else escape_glob(t) for t, q in segments)
                matches = toybox_files.glob(self.state, env.cwd, pattern)
                if matches:
                    words.extend(matches)
                    continue
            words.append(text)
        return words

    def _expand_string(self, word: Word, env: Env, fds: dict[int, Sink]) -> str:
        """A word expanded without splitting or globbing (assignments, ``${X:-word}``)."""
        return "".join(p.text if p.kind == "lit" else self._value(p, env, fds) for p in word.parts)

    def _value(self, part: Part, env: Env, fds: dict[int, Sink]) -> str:
        if part.kind == "cmdsub":
            assert part.body is not None
            if env.depth >= MAX_NESTING:
                emit(fds, 2, f"{env.name}: expression recurses too deeply\n")
                return ""
            sub = env.copy()
            sub.depth += 1
            out = Buffer()
            try:
                code = self._list(part.body, sub, {1: out.write, 2: fds.get(2)}, "")
            except ExitShell as done:
                code = done.code
            env.substituted = code
            return out.text().rstrip("\n")
        name = part.text
        value: str | None
        if name == "?":
            value = str(env.status)
        elif name == "$":
            value = str(SHELL_PID)
        elif name == "#":
            value = str(len(env.positional))
        elif name == "0":
            value = env.arg0
        elif name.isdigit():
            index = int(name) - 1
            value = env.positional[index] if index < len(env.positional) else None
        elif name in "@*":
            value = " ".join(env.positional)
        elif name in "!-":
            value = ""
        else:
            value = env.vars.get(name)
        if part.op == "#" and part.arg is None:
            return str(len(value or ""))
        empty = not value
        if part.op in (":-", "-") and (value is None or (part.op == ":-" and empty)):
            return self._expand_string(part.arg or Word(()), env, fds)
        if part.op in ("%", "%%", "#", "##"):
            pattern = self._expand_string(part.arg or Word(()), env, fds)
            return _trim(value or "", pattern, part.op)
        if part.op in (":+", "+"):
            use = value is not None and not (part.op == ":+" and empty)
            return self._expand_string(part.arg or Word(()), env, fds) if use else ""
        return value or ""

    # --- redirections ----------------------------------------------------------------------------

    def _redirect(
        self, redirects: list[Redirect], env: Env, fds: dict[int, Sink], stdin: str
    ) -> tuple[dict[int, Sink], str]:
        """The file descriptors and standard input after ``redirects``, applied in order.

        So ``>f 2>&1`` differs from ``2>&1 >f``; files are opened (created, truncated) here.
        """
        new = dict(fds)
        for redirect in redirects:
            target = " ".join(self._expand(redirect.target, env, fds))
            op, fd = redirect.op, redirect.fd
            if op in (">&", "<&"):
                if target == "-":
                    new[fd] = None
                elif target.isdigit():
                    if fd != 0:
                        new[fd] = new.get(int(target))
                else:
                    raise RedirectFailed(f"{target}: illegal file descriptor name")
                continue
            path = posixpath.normpath(posixpath.join(env.cwd, target))
            if op in ("<", "<>"):
                try:
                    data = self.state.tree.read(path)
                except OSError as exc:
                    raise RedirectFailed(f"can't open {target}: {strerror(exc)}") from None
                if fd == 0:
                    stdin = data.decode("utf-8", "surrogateescape")
                continue
            node = self.state.tree.lookup(path)
            if node is not None and stat.S_ISCHR(node.mode):
                new[fd] = None  # /dev/null
                continue
            keep = node.data if (op == ">>" and node is not None and node.kind == "file") else b""
            try:
                self.state.tree.write(path, keep, NEW_FILE_MODE)
            except OSError as exc:
                raise RedirectFailed(f"can't create {target}: {strerror(exc)}") from None
            new[fd] = FileSink(self.state, path).write
        return new, stdin

    # --- running a command -----------------------------------------------------------------------

    def _invoke(self, argv: list[str], env: Env, fds: dict[int, Sink], stdin: str) -> int:
        name = argv[0]
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return builtin(self, argv, env, fds, stdin)
        faults = self.state.faults
        if shell_faults.matches(argv, faults.fail_command):
            result = shell_faults.refused(argv)
        elif shell_faults.matches(argv, faults.lie_about):
            result = shell_faults.pretended(argv)
        elif shell_faults.matches(argv, faults.power_loss_at):
            faults.power_loss_at = ""  # one power cut; the rebooted device works again
            shell_faults.partly(self.state, argv, env.cwd)
            raise PowerLoss(" ".join(argv))
        else:
            command = self._lookup(name, env)
            if isinstance(command, ShellResult):
                result = command
            elif command is _shell_marker:
                return self._sh(argv, env, fds, stdin)
            else:
                proc = Proc(argv, stdin, self.state, env.cwd, env.vars)
                result = command(proc)
                if faults.hostile_text:
                    stderr = result.stderr + HOSTILE if result.stderr else ""
                    result = ShellResult(
                        result.exit_code, hostile_stdout(argv, result.stdout), stderr
                    )
        emit(fds, 1, result.stdout)
        emit(fds, 2, result.stderr)
        return result.exit_code

    def _lookup(self, name: str, env: Env) -> Command | ShellResult:
        """The command ``name`` runs, or mksh's error for a name that runs nothing."""
        if "/" not in name:
            command = COMMANDS.get(name)
            if command is None:
                return err(f"{env.name}: {name}: inaccessible or not found\n", 127)
            return command
        path = posixpath.normpath(posixpath.join(env.cwd, name))
        node = self.state.tree.lookup(path)
        base = posixpath.basename(path)
        if posixpath.dirname(path) in BIN_DIRS and base in COMMANDS:
            return COMMANDS[base]
        if node is None:
            return err(f"{env.name}: {name}: inaccessible or not found\n", 127)
        return err(f"{env.name}: {name}: can't execute: Permission denied\n", 126)

    def _sh(self, argv: list[str], env: Env, fds: dict[int, Sink], stdin: str) -> int:
        """``sh -c 'LINE' [NAME ARGS…]``, or ``sh`` reading its script from stdin."""
        if env.depth >= MAX_NESTING:
            emit(fds, 2, f"{env.name}: expression recurses too deeply\n")
            return 1
        sub = Env(dict(env.vars), env.cwd, 0, env.depth + 1, argv[0], argv[0])
        args = argv[1:]
        if args[:1] == ["-c"]:
            if len(args) < 2:
                emit(fds, 2, f"{argv[0]}: -c: option requires an argument\n")
                return 1
            script = args[1]
            if len(args) > 2:
                sub.arg0, sub.positional = args[2], args[3:]
            return self._script(script, sub, fds, "")
        return self._script(stdin, sub, fds, "")

    # --- injected faults -------------------------------------------------------------------------

    def _all_files(self) -> dict[str, str]:
        """Every user file (absolute path -> text), apps' private ones included (for sync)."""
        files = dict(self.state.files)
        for app in self.state.apps:
            for rel, content in app.data_files.items():
                files[f"/data/data/{app.package}/{rel}"] = content
        return files


def _trim(value: str, pattern: str, op: str) -> str:
    """``${X%pat}``, ``${X%%pat}``, ``${X#pat}``, ``${X##pat}``: shortest/longest match removed."""
    cuts = range(len(value) + 1)
    if op.startswith("%"):
        order = cuts if op == "%%" else reversed(cuts)
        for i in order:
            if fnmatch.fnmatchcase(value[i:], pattern):
                return value[:i]
        return value
    order = reversed(cuts) if op == "##" else cuts
    for i in order:
        if fnmatch.fnmatchcase(value[:i], pattern):
            return value[i:]
    return value


def _shell_marker(proc: Proc) -> ShellResult:
    """Marks ``sh``/``mksh`` in :data:`COMMANDS`: the evaluator runs a nested shell instead."""
    return ok()


COMMANDS: dict[str, Command] = {
    **shell_android.COMMANDS,
    **shell_system.COMMANDS,
    **toybox_text.COMMANDS,
    **toybox.COMMANDS,
    **toybox_files.COMMANDS,
    "sh": _shell_marker,
    "mksh": _shell_marker,
}
