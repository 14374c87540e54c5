"""toybox's text filters: what a client pipes device output through.

``grep`` (BRE/ERE/fixed, -v -i -c -q -e -n -o -w -x -l), ``head``/``tail`` (-n N, -N, +N, -c),
``wc`` (-l -w -c -m, toybox's unpadded counts), ``cut`` (-d -f, -c), ``tr`` (ranges, classes,
-d -s -c), ``sort`` (-r -n -u -f -k -t), ``uniq`` (-c -d -u -i) and a ``sed`` of ``s///``, ``p``
and ``d`` with line or ``/regex/`` addresses. Each reads its operands from the file tree (``-``
or none: stdin) and answers with toybox's messages and statuses (grep: 0 match, 1 none, 2 error).
POSIX regular expressions are translated to Python's (:func:`posix_regex`).
"""

from __future__ import annotations

import re

from .shell_base import Command, Proc, ShellResult, err, lines_of, ok, parse_options
from .toybox import _unescape


def _inputs(p: Proc, operands: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(name, text) of each readable operand (stdin when none) and the error lines."""
    texts: list[tuple[str, str]] = []
    errors: list[str] = []
    for operand in operands or ["-"]:
        text, problem = p.read(operand)
        if text is None:
            errors.append(f"{p.name}: {problem}\n")
        else:
            texts.append((operand, text))
    return texts, errors


# --- filters -------------------------------------------------------------------------------------


def _posix_class(match: re.Match[str]) -> str:
    return {
        "alpha": "a-zA-Z",
        "digit": "0-9",
        "alnum": "a-zA-Z0-9",
        "upper": "A-Z",
        "lower": "a-z",
        "space": r" \t\n\r\f\v",
        "blank": r" \t",
        "xdigit": "0-9A-Fa-f",
        "punct": r"!-/:-@\[-`{-~",
        "print": r" -~",
        "graph": r"!-~",
        "cntrl": r"\x00-\x1f",
    }.get(match.group(1), "")


def posix_regex(pattern: str, extended: bool) -> str:
    """A POSIX BRE/ERE as a Python regex (groups, intervals, bracket classes)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] in "^!":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            while j < len(pattern) and pattern[j] != "]":
                j = pattern.index(":]", j) + 2 if pattern.startswith("[:", j) else j + 1
            inner = pattern[i + 1 : j].replace("\\", "\\\\")
            inner = re.sub(r"\[:(\w+):\]", _posix_class, inner)
            if inner.startswith("!"):
                inner = "^" + inner[1:]
            out.append("[" + inner + "]")
            i = j + 1
            continue
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if not extended and nxt in "(){}|+?":
                out.append(nxt)
            elif nxt in "<>":
                out.append(r"\b")
            else:
                out.append("\\" + nxt)
            i += 2
            continue
        if not extended and c in "(){}|+?":
            out.append("\\" + c)
        else:
            out.append(c)
        i += 1
    return "".join(out)


def grep(p: Proc) -> ShellResult:
    """Toybox ``grep`` -v -i -c -E -F -q -e -n -o -w -x -l -s -H -h (exit 0/1/2)."""
    parsed = parse_options("grep", p.args, "viEFcqnowxlsHhrRIa", valued="ef")
    if isinstance(parsed, ShellResult):
        return ShellResult(2, "", parsed.stderr)
    flags, values, operands = parsed
    patterns = list(values.get("e", []))
    if not patterns:
        if not operands:
            return err('grep: Needs 1 argument (see "grep --help")\n', 2)
        patterns = [operands.pop(0)]
    try:
        sources = [
            re.escape(pat) if "F" in flags else posix_regex(pat, "E" in flags)
            for pattern in patterns
            for pat in pattern.split("\n")
        ]
        if "w" in flags:
            sources = [rf"(?<!\w)(?:{s})(?!\w)" for s in sources]
        if "x" in flags:
            sources = [rf"(?:{s})\Z" for s in sources]
        regex = re.compile(
            "|".join(f"(?:{s})" for s in sources), re.IGNORECASE if "i" in flags else 0
        )
    except (re.error, ValueError) as exc:
        return err(f"grep: bad regex '{patterns[0]}': {exc}\n", 2)
    texts, errors = _inputs(p, operands)
    if "s" in flags:
        errors = []
    named = ("H" in flags or len(operands) > 1) and "h" not in flags
    out: list[str] = []
    found = False
    for name, text in texts:
        count = 0
        for number, line in enumerate(lines_of(text), start=1):
            body = line.rstrip("\n")
            hit = regex.match(body) if "x" in flags else regex.search(body)
            if bool(hit) == ("v" in flags):
                continue
            count += 1
            found = True
            if "q" in flags:
                return ok()
            if flags & {"c", "l"}:
                continue
            prefix = (f"{name}:" if named else "") + (f"{number}:" if "n" in flags else "")
            if "o" in flags and "v" not in flags:
                out.extend(f"{prefix}{m.group(0)}\n" for m in regex.finditer(body) if m.group(0))
            else:
                out.append(f"{prefix}{body}\n")
        if "l" in flags and count:
            out.append(f"{name}\n")
        elif "c" in flags:
            out.append(f"{name}:{count}\n" if named else f"{count}\n")
    code = 2 if errors and not ("q" in flags and found) else (0 if found else 1)
    return ShellResult(code, "".join(out), "".join(errors))


def _count_option(args: list[str]) -> list[str]:
    """``head -5`` and ``tail -5`` mean ``-n 5``; ``tail +5`` means ``-n +5``."""
    return [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in args]


def head(p: Proc) -> ShellResult:
    """Toybox ``head`` [-n N|-N] [-c N] [FILE…]."""
    parsed = parse_options("head", _count_option(p.args), "qv", valued="nc")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, values, operands = parsed
    texts, errors = _inputs(p, operands)
    out: list[str] = []
    for index, (name, text) in enumerate(texts):
        if len(texts) > 1 and "q" not in flags:
            out.append(("\n" if index else "") + f"==> {name} <==\n")
        if "c" in values:
            out.append(text[: int(values["c"][-1])])
            continue
        count = int(values.get("n", ["10"])[-1])
        lines = lines_of(text)
        out.extend(lines[:count])
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


def tail(p: Proc) -> ShellResult:
    """Toybox ``tail`` [-n N|-N|-n +N] [-c N] [FILE…] (``-f`` returns what is there)."""
    parsed = parse_options("tail", _count_option(p.args), "fFqv", valued="nc")
    if isinstance(parsed, ShellResult):
        return parsed
    _, values, operands = parsed
    texts, errors = _inputs(p, operands)
    out: list[str] = []
    for _, text in texts:
        if "c" in values:
            count = int(values["c"][-1])
            out.append(text[-count:] if count else "")
            continue
        spec = values.get("n", ["10"])[-1]
        lines = lines_of(text)
        if spec.startswith("+"):
            out.extend(lines[max(int(spec[1:]) - 1, 0) :])
        else:
            count = abs(int(spec))
            out.extend(lines[-count:] if count else [])
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


def wc(p: Proc) -> ShellResult:
    """Toybox ``wc`` -l -w -c -m: counts separated by one space, names when files were named."""
    parsed = parse_options("wc", p.args, "lwcm")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, _, operands = parsed
    texts, errors = _inputs(p, operands)
    totals = [0, 0, 0]
    out: list[str] = []
    shown = [f for f in "lwc" if f in flags or (f == "c" and "m" in flags)] or ["l", "w", "c"]

    def row(counts: list[int], name: str) -> str:
        values = [str(counts["lwc".index(f)]) for f in shown]
        return " ".join(values) + (f" {name}" if operands else "") + "\n"

    for name, text in texts:
        data = text if "m" in flags else text.encode("utf-8", "surrogateescape")
        counts = [text.count("\n"), len(text.split()), len(data)]
        totals = [a + b for a, b in zip(totals, counts, strict=True)]
        out.append(row(counts, name))
    if len(operands) > 1:
        out.append(row(totals, "total"))
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


def _ranges(spec: str) -> list[tuple[int, int]]:
    ranges = []
    for item in spec.split(","):
        start, dash, end = item.partition("-")
        low = int(start) if start else 1
        high = (int(end) if end else 1 << 30) if dash else low
        if low < 1:
            raise ValueError(spec)
        ranges.append((low, high))
    return ranges


def cut(p: Proc) -> ShellResult:
    """Toybox ``cut`` -d DELIM -f LIST (and -c/-b LIST), -s."""
    parsed = parse_options("cut", p.args, "sn", valued="dfcb")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, values, operands = parsed
    mode = next((m for m in "fcb" if m in values), None)
    if mode is None:
        return err("cut: Needs -fcb\n")
    try:
        ranges = _ranges(values[mode][-1])
    except ValueError:
        return err(f"cut: bad list '{values[mode][-1]}'\n")
    delim = values.get("d", ["\t"])[-1][:1] or "\t"
    texts, errors = _inputs(p, operands)
    out: list[str] = []
    for _, text in texts:
        for line in lines_of(text):
            body = line.rstrip("\n")
            if mode == "f":
                if delim not in body:
                    if "s" not in flags:
                        out.append(body + "\n")
                    continue
                fields = body.split(delim)
                keep = [f for i, f in enumerate(fields, 1) if any(a <= i <= b for a, b in ranges)]
                out.append(delim.join(keep) + "\n")
            else:
                keep = [c for i, c in enumerate(body, 1) if any(a <= i <= b for a, b in ranges)]
                out.append("".join(keep) + "\n")
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


def _tr_set(spec: str) -> str:
    spec = _unescape(spec, octal_needs_zero=False)[0]
    spec = re.sub(r"\[:(\w+):\]", lambda m: _expand_class(m.group(1)), spec)
    out: list[str] = []
    i = 0
    while i < len(spec):
        if i + 2 < len(spec) and spec[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1))
            i += 3
        else:
            out.append(spec[i])
            i += 1
    return "".join(out)


def _expand_class(name: str) -> str:
    return {
        "lower": "a-z",
        "upper": "A-Z",
        "digit": "0-9",
        "alpha": "a-zA-Z",
        "alnum": "a-zA-Z0-9",
        "space": " \t\n\r\f\v",
        "blank": " \t",
    }.get(name, "")


def tr(p: Proc) -> ShellResult:
    """Toybox ``tr`` [-d] [-s] [-c] SET1 [SET2] (ranges, classes, escapes), stdin only."""
    parsed = parse_options("tr", p.args, "dscC")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, _, operands = parsed
    if not operands or (len(operands) < 2 and "d" not in flags and "s" not in flags):
        return err('tr: Needs 2 arguments (see "tr --help")\n')
    first = _tr_set(operands[0])
    second = _tr_set(operands[1]) if len(operands) > 1 else ""
    text = p.stdin
    if "d" in flags:
        complement = bool(flags & {"c", "C"})
        text = "".join(c for c in text if (c in first) == complement)
    elif second:
        second = second + second[-1] * max(len(first) - len(second), 0)
        text = text.translate(str.maketrans(first, second[: len(first)]))
    if "s" in flags:
        squeeze = second or first
        text = re.sub("([" + re.escape(squeeze) + "])\\1+", r"\1", text) if squeeze else text
    return ok(text)


def sort(p: Proc) -> ShellResult:
    """Toybox ``sort`` [-r] [-n] [-u] [-f] [-k N] [-t C]."""
    parsed = parse_options("sort", p.args, "rnufbdsz", valued="kto")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, values, operands = parsed
    texts, errors = _inputs(p, operands)
    lines = [line.rstrip("\n") for _, text in texts for line in lines_of(text)]
    sep = values.get("t", [None])[-1]
    key_field = int(values["k"][-1].split(",")[0].split(".")[0]) if "k" in values else 0

    def key(line: str) -> tuple[float, str]:
        part = line
        if key_field:
            fields = line.split(sep) if sep else line.split()
            part = fields[key_field - 1] if len(fields) >= key_field else ""
        text = part.lower() if "f" in flags else part
        if "n" in flags:
            match = re.match(r"\s*-?\d+(\.\d+)?", part)
            return (float(match.group(0)) if match else 0.0, text)
        return (0.0, text)

    lines.sort(key=key, reverse="r" in flags)
    if "u" in flags:
        seen: set[tuple[float, str]] = set()
        lines = [x for x in lines if not (key(x) in seen or seen.add(key(x)))]  # type: ignore[func-returns-value]
    return ShellResult(1 if errors else 0, "".join(f"{x}\n" for x in lines), "".join(errors))


def uniq(p: Proc) -> ShellResult:
    """Toybox ``uniq`` [-c] [-d] [-u] [-i]."""
    parsed = parse_options("uniq", p.args, "cdui")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, _, operands = parsed
    texts, errors = _inputs(p, operands[:1])
    groups: list[list[str]] = []
    for _, text in texts:
        for line in lines_of(text):
            body = line.rstrip("\n")
            same = groups and (
                groups[-1][0].lower() == body.lower() if "i" in flags else groups[-1][0] == body
            )
            if same:
                groups[-1].append(body)
            else:
                groups.append([body])
    out: list[str] = []
    for group in groups:
        if ("d" in flags and len(group) < 2) or ("u" in flags and len(group) > 1):
            continue
        out.append(f"{len(group):7d} {group[0]}\n" if "c" in flags else f"{group[0]}\n")
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


def sed(p: Proc) -> ShellResult:
    """A small toybox ``sed``: ``-n``, ``-E``, ``-e``; ``s///[g]``, ``p``, ``d`` scripts.

    Each may have a line-number (or ``$``) or ``/regex/`` address.
    """
    parsed = parse_options("sed", p.args, "nEri", valued="e")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, values, operands = parsed
    scripts = values.get("e") or ([operands.pop(0)] if operands else [])
    if not scripts:
        return err('sed: Needs 1 argument (see "sed --help")\n')
    extended = bool(flags & {"E", "r"})
    commands = []
    for script in scripts:
        for part in filter(None, (s.strip() for s in script.split(";"))):
            match = re.fullmatch(r"(?:(\d+|\$)|/((?:[^/\\]|\\.)*)/)?\s*(.*)", part, re.S)
            if match is None:
                return err(f"sed: bad command '{part}'\n")
            line_addr, regex_addr, action = match.groups()
            address = re.compile(posix_regex(regex_addr, extended)) if regex_addr else None
            commands.append((line_addr, address, action))
    texts, errors = _inputs(p, operands)
    all_lines = [line for _, text in texts for line in lines_of(text)]
    out: list[str] = []
    for number, line in enumerate(all_lines, start=1):
        body, end = line.rstrip("\n"), "\n" if line.endswith("\n") else ""
        deleted = False
        for line_addr, address, action in commands:
            if line_addr and (number != (len(all_lines) if line_addr == "$" else int(line_addr))):
                continue
            if address is not None and not address.search(body):
                continue
            if action == "d":
                deleted = True
                break
            if action == "p":
                out.append(body + end)
            elif action.startswith("s") and len(action) > 1:
                delim = action[1]
                pieces = re.split(rf"(?<!\\){re.escape(delim)}", action[2:])
                if len(pieces) < 3:
                    return err(f"sed: unterminated 's' in '{action}'\n")
                pattern = re.compile(
                    posix_regex(pieces[0], extended), re.IGNORECASE if "I" in pieces[2] else 0
                )
                repl = re.sub(r"\\(\d)", r"\\g<\1>", pieces[1]).replace("&", r"\g<0>")
                body = pattern.sub(repl, body, count=0 if "g" in pieces[2] else 1)
            else:
                return err(f"sed: unknown command '{action[:1]}'\n")
        if not deleted and "n" not in flags:
            out.append(body + end)
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


COMMANDS: dict[str, Command] = {
    "grep": grep,
    "egrep": lambda p: grep(Proc(["grep", "-E", *p.args], p.stdin, p.state, p.cwd, p.env)),
    "fgrep": lambda p: grep(Proc(["grep", "-F", *p.args], p.stdin, p.state, p.cwd, p.env)),
    "head": head,
    "tail": tail,
    "wc": wc,
    "cut": cut,
    "tr": tr,
    "sort": sort,
    "uniq": uniq,
    "sed": sed,
}
