"""toybox's text tools and mksh's simple builtins, as the simulated shell runs them.

The filters a client pipes device output through (``grep``, ``head``, ``tail``, ``wc``, ``cut``,
``tr``, ``sort``, ``uniq``, a ``sed`` of ``s///``, ``p`` and ``d``), and ``echo`` (mksh's: escapes
are interpreted by default), ``printf``, ``test``/``[``, ``true``/``false``, ``env``, ``which``,
``basename``/``dirname``, ``sleep`` (returns at once: the simulator never blocks). Each reads
its operands from the file tree (``-`` or none: stdin) and answers with toybox's messages and
exit statuses (grep: 0 match, 1 none, 2 error).
"""

from __future__ import annotations

import posixpath
import re

from .shell_base import Command, Proc, ShellResult, err, ok

MAX_WIDTH = 4096
"""Widest ``printf`` field honoured (bounded output)."""


# --- echo / printf ---------------------------------------------------------------------------


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}


def _unescape(text: str, octal_needs_zero: bool) -> tuple[str, bool]:
    r"""Backslash escapes as mksh's print/echo and printf read them; True after ``\\c``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 >= len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "c":
            return "".join(out), True
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt.isdigit() and nxt < "8" and (nxt == "0" or not octal_needs_zero):
            j = i + 2 if nxt == "0" and octal_needs_zero else i + 1
            digits = ""
            while j < len(text) and len(digits) < 3 and text[j] in "01234567":
                digits += text[j]
                j += 1
            out.append(chr(int(digits or "0", 8) & 0xFF))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out), False


def echo(p: Proc) -> ShellResult:
    r"""The ``echo`` of mksh: ``-n``, ``-e`` (the default), ``-E``; ``\c`` stops the output."""
    args = p.args
    newline, escapes = True, True
    while args and re.fullmatch(r"-[neE]+", args[0]):
        for flag in args[0][1:]:
            newline = newline and flag != "n"
            escapes = {"e": True, "E": False}.get(flag, escapes)
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text, stop = _unescape(text, octal_needs_zero=True)
        newline = newline and not stop
    return ok(text + ("\n" if newline else ""))


_FORMAT = re.compile(r"%([-+ #0]*)(\d*|\*)(?:\.(\d*))?([diouxXcsbeEfgG%])")


def printf(p: Proc) -> ShellResult:
    """Toybox ``printf FORMAT [ARG…]``: the format is reused while arguments remain."""
    if not p.args:
        return err("printf: Needs 1 argument\n")
    fmt, args = p.args[0], list(p.args[1:])
    out: list[str] = []
    status = 0
    while True:
        used = 0
        pos = 0
        for match in _FORMAT.finditer(fmt):
            literal, _ = _unescape(fmt[pos : match.start()], octal_needs_zero=False)
            out.append(literal)
            pos = match.end()
            flags, width, precision, conv = match.groups()
            if conv == "%":
                out.append("%")
                continue
            if width == "*":
                width = args.pop(0) if args else "0"
                used += 1
            arg = args.pop(0) if args else ""
            used += 1 if arg or conv else 0
            spec = "%" + flags + str(min(int(width or 0), MAX_WIDTH) or "")
            if precision is not None:
                spec += "." + str(min(int(precision or 0), MAX_WIDTH))
            if conv in "sb":
                text = _unescape(arg, octal_needs_zero=True)[0] if conv == "b" else arg
                out.append((spec + "s") % text)
            elif conv == "c":
                out.append((spec + "s") % arg[:1])
            else:
                number: float
                try:
                    number = float(arg or 0) if conv in "eEfgG" else int(arg or "0", 0)
                except ValueError:
                    out.append((spec + conv.replace("u", "d")) % 0)
                    status = 1
                    continue
                out.append((spec + conv.replace("u", "d").replace("i", "d")) % number)
        tail, stop = _unescape(fmt[pos:], octal_needs_zero=False)
        out.append(tail)
        if stop or not args or not used:
            break
    return ShellResult(status, "".join(out), "" if not status else "printf: invalid number\n")


# --- test ----------------------------------------------------------------------------------------


def test(p: Proc) -> ShellResult:
    """``test``/``[``: files (-e -f -d -s -r -w -x -L), strings, integers, ``!``, -a/-o."""
    args = list(p.args)
    if p.name == "[":
        if not args or args[-1] != "]":
            return err("[: missing ]\n", 2)
        args = args[:-1]
    try:
        return ShellResult(0 if _test_or(p, args) else 1)
    except ValueError as exc:
        return err(f"{p.name}: {exc}\n", 2)


def _test_or(p: Proc, args: list[str]) -> bool:
    if "-o" in args[1:-1]:
        i = args.index("-o", 1)
        return _test_or(p, args[:i]) or _test_or(p, args[i + 1 :])
    if "-a" in args[1:-1]:
        i = args.index("-a", 1)
        return _test_or(p, args[:i]) and _test_or(p, args[i + 1 :])
    return _test_one(p, args)


def _test_one(p: Proc, args: list[str]) -> bool:
    if not args:
        return False
    if args[0] == "!" and len(args) > 1:
        return not _test_one(p, args[1:])
    if len(args) == 1:
        return args[0] != ""
    if len(args) == 2:
        op, operand = args
        if op == "-z":
            return operand == ""
        if op == "-n":
            return operand != ""
        return _file_test(p, op, operand)
    if len(args) == 3:
        left, op, right = args
        if op in ("=", "=="):
            return left == right
        if op == "!=":
            return left != right
        ops = {
            "-eq": int.__eq__,
            "-ne": int.__ne__,
            "-lt": int.__lt__,
            "-le": int.__le__,
            "-gt": int.__gt__,
            "-ge": int.__ge__,
        }
        if op in ops:
            try:
                return bool(ops[op](int(left), int(right)))
            except ValueError:
                raise ValueError(f"bad number '{left if not _is_int(left) else right}'") from None
    raise ValueError("syntax error")


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def _file_test(p: Proc, op: str, operand: str) -> bool:
    from .files import SHELL_UID

    if op not in ("-e", "-f", "-d", "-s", "-r", "-w", "-x", "-L", "-h", "-c"):
        raise ValueError(f"unknown operator '{op}'")
    try:
        node = p.tree.stat(p.path(operand), follow=op not in ("-L", "-h"))
    except OSError:
        return False
    checks = {
        "-e": True,
        "-f": node.kind == "file" and node.mode & 0o170000 != 0o020000,
        "-d": node.kind == "dir",
        "-s": node.size > 0,
        "-L": node.kind == "link",
        "-h": node.kind == "link",
        "-c": node.mode & 0o170000 == 0o020000,
    }
    if op in checks:
        return bool(checks[op])
    return p.tree.can(node, {"-r": "r", "-w": "w"}.get(op, "x"), SHELL_UID)  # type: ignore[arg-type]


def env_(p: Proc) -> ShellResult:
    """``env``/``printenv`` without a command: the environment, one ``NAME=value`` a line."""
    if p.name == "printenv" and p.args:
        values = [p.env[name] for name in p.args if name in p.env]
        return ShellResult(
            0 if len(values) == len(p.args) else 1, "".join(v + "\n" for v in values)
        )
    return ok("".join(f"{k}={v}\n" for k, v in p.env.items() if k != "IFS"))


def which(p: Proc) -> ShellResult:
    """Toybox ``which``: the path of each known command, exit 1 if one is missing."""
    from .shell import COMMANDS

    found = [f"/system/bin/{n}\n" for n in p.args if n in COMMANDS]
    return ShellResult(0 if len(found) == len(p.args) and p.args else 1, "".join(found))


def basename(p: Proc) -> ShellResult:
    """``basename PATH [SUFFIX]``."""
    if not p.args:
        return err('basename: Needs 1 argument (see "basename --help")\n')
    name = posixpath.basename(p.args[0].rstrip("/")) or "/"
    if len(p.args) > 1 and name.endswith(p.args[1]) and name != p.args[1]:
        name = name[: -len(p.args[1])]
    return ok(name + "\n")


def dirname(p: Proc) -> ShellResult:
    """``dirname PATH``."""
    if not p.args:
        return err('dirname: Needs 1 argument (see "dirname --help")\n')
    return ok((posixpath.dirname(p.args[0].rstrip("/")) or ".") + "\n")


COMMANDS: dict[str, Command] = {
    "echo": echo,
    "printf": printf,
    "test": test,
    "[": test,
    "true": lambda p: ShellResult(0),
    "false": lambda p: ShellResult(1),
    "env": env_,
    "printenv": env_,
    "which": which,
    "basename": basename,
    "dirname": dirname,
    "sleep": lambda p: ShellResult(0),
}
