"""toybox's file tools over the simulated file tree (:class:`~.files.FileTree`), as uid shell.

``ls`` follows toybox's ``ls.c``: no tty, so one name a line; ``-l`` rows are ``mode links owner
group size YYYY-MM-DD HH:MM name`` with the link count and size right-aligned and the owner and
group left-aligned to the widest entry, ``total N`` (1 KiB blocks) above a directory's rows; the
files named on the command line come first, then each directory under a ``path:`` header (only
with several operands or ``-R``), sections separated by a blank line; ``-l``/``-d`` do not
follow a symlink operand. Errors are ``ls: PATH: strerror`` with the path as given, exit 1.
``cat``, ``rm`` (-r -f), ``mkdir`` (-p), ``rmdir``, ``touch`` and ``stat`` (default and
``-c FORMAT``) check permissions through the tree, so ``/system`` is read-only, ``/data`` cannot
be listed and an app's private directory cannot be entered, as on a user build.
"""

from __future__ import annotations

import fnmatch
import posixpath
import stat as statmod
import time

from .files import SHELL_UID, FileTree, Node
from .shell_base import Command, Proc, ShellResult, err, ok, parse_options, strerror
from .state import AndroidState


def glob(state: AndroidState, cwd: str, pattern: str) -> list[str]:
    """Sh's pathname expansion: matching names, sorted; dotfiles only for a ``.`` pattern.

    Directories the shell may not read contribute nothing (as ``opendir`` failing does).
    """
    absolute = pattern.startswith("/")
    parts = [p for p in pattern.split("/") if p]
    results = [("/" if absolute else "", posixpath.normpath(cwd))]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        found: list[tuple[str, str]] = []
        for shown, real in results:
            if not any(c in part for c in "*?["):
                literal = part.replace("[*]", "*").replace("[?]", "?").replace("[[]", "[")
                path = posixpath.join(real, literal)
                if last or state.tree.lookup(path) is not None:
                    found.append((shown + literal + ("" if last else "/"), path))
                continue
            try:
                entries = state.tree.listdir(real, SHELL_UID)
            except OSError:
                continue
            for name, _ in entries:
                if name.startswith(".") and not part.startswith("."):
                    continue
                if fnmatch.fnmatchcase(name, part):
                    found.append((shown + name + ("" if last else "/"), posixpath.join(real, name)))
        results = found
    return sorted(shown for shown, real in results if state.tree.lookup(real, follow=False))


# --- ls ------------------------------------------------------------------------------------------


def _blocks(node: Node) -> int:
    """1 KiB blocks in use (ext4's 4 KiB blocks; symlinks and devices use none)."""
    if node.kind == "link" or statmod.S_ISCHR(node.mode):
        return 0
    return -(-node.size // 4096) * 4


def _when(mtime: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime))


def _long_rows(entries: list[tuple[str, Node]]) -> list[str]:
    """``-l`` rows, aligned over these entries as toybox aligns them."""
    links = max((len(str(n.nlink)) for _, n in entries), default=1)
    users = max((len(n.owner) for _, n in entries), default=1)
    groups = max((len(n.group) for _, n in entries), default=1)

    def size_text(node: Node) -> str:
        return "1,   3" if statmod.S_ISCHR(node.mode) else str(node.size)

    sizes = max((len(size_text(n)) for _, n in entries), default=1)
    rows = []
    for name, node in entries:
        row = (
            f"{statmod.filemode(node.mode)} {node.nlink:>{links}} {node.owner:<{users}} "
            f"{node.group:<{groups}} {size_text(node):>{sizes}} {_when(node.mtime)} {name}"
        )
        rows.append(row + (f" -> {node.target}" if node.kind == "link" else ""))
    return rows


class _Ls:
    """One ``ls`` run: its flags and the output it builds."""

    def __init__(self, p: Proc, flags: set[str]) -> None:
        self.p, self.flags = p, flags
        self.long = bool(flags & {"l", "n", "o", "g"})
        self.out: list[str] = []
        self.errors: list[str] = []
        self.titled = False  # toybox's nl_title: a blank line before the next header

    def _sorted(self, entries: list[tuple[str, Node]]) -> list[tuple[str, Node]]:
        if "f" in self.flags:
            return entries
        entries = sorted(entries, key=lambda e: e[0])
        if "t" in self.flags:
            entries.sort(key=lambda e: -e[1].mtime)
        elif "S" in self.flags:
            entries.sort(key=lambda e: -e[1].size)
        return entries[::-1] if "r" in self.flags else entries

    def _print(self, entries: list[tuple[str, Node]], total: bool) -> None:
        entries = self._sorted(entries)
        if total and self.long:
            self.out.append(f"total {sum(_blocks(n) for _, n in entries)}\n")
        if self.long:
            names = [(n + self._mark(node), node) for n, node in entries]
            self.out.extend(row + "\n" for row in _long_rows(names))
        else:
            self.out.extend(f"{n}{self._mark(node)}\n" for n, node in entries)
        if entries:
            self.titled = True

    def _mark(self, node: Node) -> str:
        return "/" if self.flags & {"p", "F"} and node.kind == "dir" else ""

    def directory(self, shown: str, real: str, header: bool) -> None:
        """List one directory (and, with -R, those below it)."""
        try:
            listing = self.p.tree.listdir(real, SHELL_UID)
        except OSError as exc:
            self.errors.append(f"ls: {shown}: {strerror(exc)}\n")
            return
        if header:
            if self.titled:
                self.out.append("\n")
            self.out.append(f"{shown}:\n")
            self.titled = True
        hidden = bool(self.flags & {"a", "A"})
        entries = [(n, node) for n, node in listing if hidden or not n.startswith(".")]
        if "a" in self.flags:
            here = self.p.tree.lookup(real)
            parent = self.p.tree.lookup(posixpath.dirname(real))
            entries += [(".", here), ("..", parent)] if here and parent else []
        self._print(entries, total=True)
        if "R" in self.flags:
            for name, node in self._sorted(entries):
                if node.kind == "dir" and name not in (".", ".."):
                    self.directory(f"{shown}/{name}", posixpath.join(real, name), True)


def ls(p: Proc) -> ShellResult:
    """Toybox ``ls`` -1 -a -A -d -l -n -p -F -R -r -t -S -f (see the module docstring)."""
    parsed = parse_options("ls", p.args, "1aAdlnogpFRrtSfhiLcsuHZ")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, _, operands = parsed
    if "d" in flags:
        flags.discard("R")
    run = _Ls(p, flags)
    follow = not flags & {"l", "d", "F", "n", "o", "g"} or bool(flags & {"L", "H"})
    files: list[tuple[str, Node]] = []
    dirs: list[tuple[str, str]] = []
    for operand in operands or ["."]:
        real = p.path(operand)
        try:  # a trailing slash makes the kernel resolve a symlink operand
            node = p.tree.stat(real, SHELL_UID, follow=follow or operand.endswith("/"))
        except OSError as exc:
            run.errors.append(f"ls: {operand}: {strerror(exc)}\n")
            continue
        if node.kind == "dir" and "d" not in flags:
            dirs.append((operand, p.tree.realpath(real)))
        else:
            files.append((operand, node))
    if files:
        run._print(files, total=False)
    headers = len(files) + len(dirs) > 1 or "R" in flags
    for shown, real in sorted(dirs, reverse="r" in flags):
        run.directory(shown, real, headers)
    return ShellResult(1 if run.errors else 0, "".join(run.out), "".join(run.errors))


# --- cat / rm / mkdir / rmdir / touch / stat -----------------------------------------------------


def cat(p: Proc) -> ShellResult:
    """Toybox ``cat`` [FILE…] (``-`` or none: stdin)."""
    out: list[str] = []
    errors: list[str] = []
    for operand in [a for a in p.args if a != "-u"] or ["-"]:
        text, problem = p.read(operand)
        if text is None:
            errors.append(f"cat: {problem}\n")
        else:
            out.append(text)
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


def rm(p: Proc) -> ShellResult:
    """Toybox ``rm`` [-rRf] PATH…: directories need -r; -f silences a missing path."""
    parsed = parse_options("rm", p.args, "rRfiv")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, _, operands = parsed
    if not operands:
        if "f" in flags:
            return ok()
        return err('rm: Needs 1 argument (see "rm --help")\n')
    errors = []
    for operand in operands:
        path = p.path(operand)
        if p.tree.lookup(path, follow=False) is None and "f" in flags:
            continue
        try:
            p.tree.remove(path, recursive=bool(flags & {"r", "R"}), uid=SHELL_UID)
        except OSError as exc:
            errors.append(f"rm: {operand}: {strerror(exc)}\n")
    return ShellResult(1 if errors else 0, "", "".join(errors))


def mkdir(p: Proc) -> ShellResult:
    """Toybox ``mkdir`` [-p] [-m MODE] DIR…."""
    parsed = parse_options("mkdir", p.args, "pvZ", valued="m")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, values, operands = parsed
    if not operands:
        return err('mkdir: Needs 1 argument (see "mkdir --help")\n')
    mode = int(values["m"][-1], 8) if "m" in values else 0o777
    errors = []
    for operand in operands:
        try:
            p.tree.mkdir(p.path(operand), mode, parents="p" in flags, uid=SHELL_UID)
        except OSError as exc:
            errors.append(f"mkdir: {operand}: {strerror(exc)}\n")
    return ShellResult(1 if errors else 0, "", "".join(errors))


def rmdir(p: Proc) -> ShellResult:
    """Toybox ``rmdir`` DIR…: only empty directories."""
    errors = []
    for operand in [a for a in p.args if not a.startswith("-")]:
        node = p.tree.lookup(p.path(operand), follow=False)
        try:
            if node is None:
                p.tree.stat(p.path(operand))
            elif node.kind != "dir":
                raise NotADirectoryError(20, "Not a directory")
            elif node.children:
                raise OSError(39, "Directory not empty")
            p.tree.remove(p.path(operand), recursive=True, uid=SHELL_UID)
        except OSError as exc:
            errors.append(f"rmdir: {operand}: {strerror(exc)}\n")
    return ShellResult(1 if errors else 0, "", "".join(errors))


def touch(p: Proc) -> ShellResult:
    """Toybox ``touch`` FILE…: creates an empty file, or sets an existing one's mtime."""
    parsed = parse_options("touch", p.args, "acmh", valued="dtr")
    if isinstance(parsed, ShellResult):
        return parsed
    _, _, operands = parsed
    errors = []
    for operand in operands:
        path = p.path(operand)
        node = p.tree.lookup(path)
        try:
            if node is None:
                p.tree.write(path, b"", 0o666, uid=SHELL_UID)
            elif node.kind == "file" or node.kind == "dir":
                if not p.tree.can(node, "w", SHELL_UID) and node.uid != SHELL_UID:
                    raise PermissionError(13, "Permission denied")
                if _readonly(p.tree, path):
                    raise OSError(30, "Read-only file system")
                node.mtime = p.tree.now()
        except OSError as exc:
            errors.append(f"touch: '{operand}': {strerror(exc)}\n")
    return ShellResult(1 if errors else 0, "", "".join(errors))


def _readonly(tree: FileTree, path: str) -> bool:
    real = tree.realpath(path)
    return any(real == m or real.startswith(m + "/") for m in tree.readonly)


_KIND = {"file": "regular file", "dir": "directory", "link": "symbolic link"}


def _stat_field(node: Node, path: str, code: str) -> str:
    kind = "character special file" if statmod.S_ISCHR(node.mode) else _KIND[node.kind]
    if node.kind == "file" and not node.data and not statmod.S_ISCHR(node.mode):
        kind = "regular empty file"
    values = {
        "n": path,
        "N": f"'{path}'" + (f" -> '{node.target}'" if node.kind == "link" else ""),
        "s": str(node.size),
        "a": f"{node.perm:o}",
        "A": statmod.filemode(node.mode),
        "u": str(node.uid),
        "U": node.owner,
        "g": str(node.gid),
        "G": node.group,
        "Y": str(node.mtime),
        "y": time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000", time.gmtime(node.mtime)),
        "F": kind,
        "h": str(node.nlink),
        "i": str(node.ino),
        "b": str(_blocks(node) * 2),
        "f": f"{node.mode:x}",
        "%": "%",
    }
    return values.get(code, "?")


def _format(node: Node, path: str, fmt: str) -> str:
    """``stat -c``: ``%x`` sequences replaced, everything else kept."""
    out: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt[i] == "%" and i + 1 < len(fmt):
            out.append(_stat_field(node, path, fmt[i + 1]))
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


def stat(p: Proc) -> ShellResult:
    """Toybox ``stat`` [-L] [-c FORMAT] FILE…."""
    parsed = parse_options("stat", p.args, "Lft", valued="c")
    if isinstance(parsed, ShellResult):
        return parsed
    flags, values, operands = parsed
    if not operands:
        return err('stat: Needs 1 argument (see "stat --help")\n')
    out, errors = [], []
    for operand in operands:
        try:
            node = p.tree.stat(p.path(operand), SHELL_UID, follow="L" in flags)
        except OSError as exc:
            errors.append(f"stat: '{operand}': {strerror(exc)}\n")
            continue
        if "c" in values:
            out.append(_format(node, operand, values["c"][-1]) + "\n")
            continue
        when = _stat_field(node, operand, "y")
        out.append(
            f"  File: {_stat_field(node, operand, 'N')}\n"
            f"  Size: {node.size}\t Blocks: {_blocks(node) * 2}\t IO Blocks: 512\t"
            f"{_stat_field(node, operand, 'F')}\n"
            f"Device: fd00h/64768d\t Inode: {node.ino}\t Links: {node.nlink}\n"
            f"Access: ({node.perm:04o}/{statmod.filemode(node.mode)})\t"
            f"Uid: ({node.uid:5d}/{node.owner:>8})\tGid: ({node.gid:5d}/{node.group:>8})\n"
            f"Access: {when}\nModify: {when}\nChange: {when}\n"
        )
    return ShellResult(1 if errors else 0, "".join(out), "".join(errors))


COMMANDS: dict[str, Command] = {
    "ls": ls,
    "cat": cat,
    "rm": rm,
    "mkdir": mkdir,
    "rmdir": rmdir,
    "touch": touch,
    "stat": stat,
}
