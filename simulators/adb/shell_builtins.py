"""mksh's builtins that change the shell itself.

``exit``, ``cd``, ``pwd``, ``export``, ``unset``, ``eval``, ``exec``, ``command -v``/``type``,
``set``, ``:``, ``wait``.

They run in the shell's own :class:`~.shell_runtime.Env` (not a copy), which is why they are not
plain commands of a :class:`~.shell_base.Proc`; in a pipeline stage or a subshell that Env is
itself a copy, so ``cd`` there stays there, as in sh.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING

from .shell_parse import MAX_NESTING, ShellSyntaxError, parse
from .shell_runtime import Env, ExitShell, Sink, emit

if TYPE_CHECKING:
    from .shell import AndroidShell

Builtin = Callable[["AndroidShell", list[str], Env, dict[int, Sink], str], int]


def _exit(shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], _: str) -> int:
    if len(argv) < 2:
        raise ExitShell(env.status)
    try:
        code = int(argv[1]) & 0xFF
    except ValueError:
        emit(fds, 2, f"{env.name}: exit: {argv[1]}: bad number\n")
        raise ExitShell(2) from None
    raise ExitShell(code)


def _cd(shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], _: str) -> int:
    target = argv[1] if len(argv) > 1 else env.vars.get("HOME", "/")
    path = posixpath.normpath(posixpath.join(env.cwd, target))
    try:
        node = shell.state.tree.stat(path)
    except OSError:
        node = None
    if node is None or node.kind != "dir":
        emit(fds, 2, f"{env.name}: cd: {target}: bad directory\n")
        return 2
    env.cwd = "/" if path.startswith("//") else path
    env.vars["PWD"] = env.cwd
    return 0


def _pwd(shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], _: str) -> int:
    emit(fds, 1, env.cwd + "\n")
    return 0


def _export(shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], _: str) -> int:
    for arg in argv[1:]:
        if "=" in arg:
            name, value = arg.split("=", 1)
            env.vars[name] = value
    return 0


def _unset(shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], _: str) -> int:
    for name in argv[1:]:
        env.vars.pop(name, None)
    return 0


def _eval(shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], stdin: str) -> int:
    if env.depth >= MAX_NESTING:
        emit(fds, 2, f"{env.name}: expression recurses too deeply\n")
        return 1
    env.depth += 1
    try:
        tree = parse(" ".join(argv[1:]))
    except ShellSyntaxError as exc:
        emit(fds, 2, f"{env.name}: {exc}\n")
        return 1
    finally:
        env.depth -= 1
    return shell._list(tree, env, fds, stdin)


def _exec(shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], stdin: str) -> int:
    if len(argv) < 2:
        return 0
    raise ExitShell(shell._invoke(argv[1:], env, fds, stdin))


def _command_v(
    shell: AndroidShell, argv: list[str], env: Env, fds: dict[int, Sink], stdin: str
) -> int:
    """``command -v NAME`` / ``type NAME`` (where a client checks a tool exists)."""
    names = [a for a in argv[1:] if not a.startswith("-")]
    if argv[0] == "command" and "-v" not in argv[1:]:
        return shell._invoke(names, env, fds, stdin) if names else 0
    status = 0
    for name in names:
        if name in BUILTINS:
            emit(fds, 1, name + "\n" if argv[0] == "command" else f"{name} is a shell builtin\n")
        elif name in _commands():
            where = f"/system/bin/{name}"
            emit(fds, 1, where + "\n" if argv[0] == "command" else f"{name} is {where}\n")
        else:
            if argv[0] == "type":
                emit(fds, 2, f"{name} not found\n")
            status = 1
    return status


BUILTINS: dict[str, Builtin] = {
    "exit": _exit,
    "cd": _cd,
    "pwd": _pwd,
    "export": _export,
    "unset": _unset,
    "eval": _eval,
    "exec": _exec,
    "command": _command_v,
    "type": _command_v,
    "set": lambda shell, argv, env, fds, stdin: 0,
    ":": lambda shell, argv, env, fds, stdin: 0,
    "wait": lambda shell, argv, env, fds, stdin: 0,
}


def _commands() -> dict[str, object]:
    from .shell import COMMANDS  # the table includes this module's users: imported late

    return dict(COMMANDS)
