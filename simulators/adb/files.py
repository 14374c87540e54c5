"""The simulated terminal's file system: directories, modes, owners, sizes and mtimes.

The shell (``ls``, ``cat``, ``rm``) and the sync service (``adb ls/pull/push``) both answer from
one :class:`FileTree`, so what ``adb push`` writes ``adb shell ls -l`` shows, and what ``rm``
deletes ``adb pull`` no longer finds, exactly as on a device. Stock clients compare what they
see with what a real device reports, so the tree models what a *user* build of Android shows
the ``shell`` uid (2000): ``/data`` can be crossed but not listed, an app's private directory
cannot even be crossed, ``/system`` is a read-only mount, shared storage is reached through the
``/sdcard`` symlink and is writable through the ``sdcard_rw`` group, ``/data/local/tmp`` belongs
to shell.

Failures are :class:`OSError` subclasses carrying the errno and strerror Linux gives, because the
sync service and the shell put ``strerror`` into the texts the client prints (``No such file or
directory``, ``Permission denied``, ``Read-only file system``…).

The scenario's inputs stay what they were: ``state.files`` (absolute path -> text) and each
app's ``data_files`` (path relative to ``/data/data/PKG`` -> text). Once the tree is built
(:meth:`FileTree.from_state`, lazily through ``state.tree``) those two become live views of
the tree (:class:`~.files_view.FilesView`), so code that still clears ``app.data_files`` or
deletes from ``state.files`` changes the tree, and reading them shows what sync pushed.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .state import AndroidState

SHELL_UID = 2000
ROOT_UID = 0
SYSTEM_UID = 1000
SDCARD_RW_GID = 1015
CACHE_GID = 2001
FIRST_APP_UID = 10000

SHELL_GROUPS = frozenset({2000, 1004, 1007, 1011, 1015, 1028, 3001, 3002, 3003, 3006, 3009, 3011})
"""The shell uid's supplementary groups on a user build (``id`` in ``adb shell``)."""

NAMES = {
    0: "root",
    1000: "system",
    1004: "input",
    1007: "log",
    1015: "sdcard_rw",
    1028: "sdcard_r",
    2000: "shell",
    2001: "cache",
    9997: "everybody",
}

DIR_SIZE = 4096
"""What ext4 reports as a directory's size."""

SDCARDFS_DIR_SIZE = 3452
"""What sdcardfs (Android 7-10 shared storage) reports as a directory's size."""

SHARED = "/storage/emulated/0"
"""Where shared storage really lives; ``/sdcard`` reaches it through two symlinks."""

MAX_SYMLINKS = 40
"""Linux's limit on symlinks followed in one lookup (ELOOP beyond it)."""

BOOT_MTIME = 1230768000
"""The mtime of the files the build ships (2009-01-01, as AOSP's build stamps them)."""


def user_name(uid: int) -> str:
    """The name ``ls -l`` shows for a uid (``u0_a42`` for app uid 10042)."""
    if uid in NAMES:
        return NAMES[uid]
    if uid >= FIRST_APP_UID:
        return f"u0_a{uid - FIRST_APP_UID}"
    return str(uid)


def groups_of(uid: int) -> frozenset[int]:
    """The groups a process of that uid holds (its own gid first among them)."""
    if uid == SHELL_UID:
        return SHELL_GROUPS
    if uid >= FIRST_APP_UID:
        return frozenset({uid, 3003, 9997})
    return frozenset({uid})


def _error(code: int, path: str) -> OSError:
    """The OSError subclass Python maps ``code`` to, with Linux's strerror."""
    return OSError(code, os.strerror(code), path)


def normalise(path: str) -> str:
    """An absolute, normalised path: ``..``, ``.``, double and trailing slashes resolved.

    Relative paths are taken from ``/`` (adbd's sync and the shell's cwd for ``adb shell``).
    """
    if not path.startswith("/"):
        path = "/" + path
    result = posixpath.normpath(path)
    return "/" if result.startswith("//") else result


@dataclass
class Node:
    """One file, directory or symlink, with the metadata ``stat`` reports."""

    name: str
    kind: Literal["file", "dir", "link"]
    mode: int  # full st_mode including the S_IFDIR/S_IFREG/S_IFLNK bits
    uid: int
    gid: int
    owner: str
    group: str
    mtime: int
    data: bytes = b""
    target: str = ""
    children: dict[str, Node] = field(default_factory=dict)  # directories only
    ino: int = 0
    dir_size: int = DIR_SIZE
    base: bool = False  # shipped with the build, not part of the scenario's user files

    @property
    def size(self) -> int:
        """``st_size``: a file's bytes, a directory's filesystem figure, a symlink's target."""
        if self.kind == "file":
            return len(self.data)
        if self.kind == "dir":
            return self.dir_size
        return len(self.target)

    @property
    def nlink(self) -> int:
        """``st_nlink``: 2 plus one per subdirectory for directories, 1 otherwise."""
        if self.kind != "dir":
            return 1
        return 2 + sum(1 for c in self.children.values() if c.kind == "dir")

    @property
    def is_dir(self) -> bool:
        """Whether this is a directory (not a symlink to one)."""
        return self.kind == "dir"

    @property
    def is_file(self) -> bool:
        """Whether this is a regular file (or a device node such as ``/dev/null``)."""
        return self.kind == "file"

    @property
    def perm(self) -> int:
        """The permission bits alone (``0o755``)."""
        return stat.S_IMODE(self.mode)


_TYPE_BITS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "link": stat.S_IFLNK}


class FileTree:
    """A small POSIX file system with Linux's permission checks and error numbers."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._next_ino = 2
        self.readonly: set[str] = set()  # read-only mount points (EROFS on every write)
        self.root = self._node("", "dir", 0o755, ROOT_UID, ROOT_UID, BOOT_MTIME, base=True)

    # --- building --------------------------------------------------------------------------

    def _node(
        self,
        name: str,
        kind: Literal["file", "dir", "link"],
        perm: int,
        uid: int,
        gid: int,
        mtime: int | None = None,
        *,
        data: bytes = b"",
        target: str = "",
        base: bool = False,
        type_bits: int | None = None,
    ) -> Node:
        ino, self._next_ino = self._next_ino, self._next_ino + 1
        bits = _TYPE_BITS[kind] if type_bits is None else type_bits
        return Node(
            name=name,
            kind=kind,
            mode=bits | (perm & 0o7777),
            uid=uid,
            gid=gid,
            owner=user_name(uid),
            group=user_name(gid),
            mtime=int(self._now()) if mtime is None else mtime,
            data=data,
            target=target,
            ino=ino,
            base=base,
        )

    def now(self) -> int:
        """The tree's clock, in whole seconds (the mtime of what is written without one)."""
        return int(self._now())

    def add(
        self,
        path: str,
        kind: Literal["file", "dir", "link"],
        perm: int,
        uid: int = ROOT_UID,
        gid: int | None = None,
        *,
        data: bytes = b"",
        target: str = "",
        mtime: int | None = None,
        base: bool = False,
        type_bits: int | None = None,
    ) -> Node:
        """Put a node at ``path`` with no permission checks (building the device's image).

        Missing parents are created as root-owned 0755 directories; an existing directory at
        ``path`` keeps its children and takes the new metadata.
        """
        path = normalise(path)
        parent = self.root
        parts = [p for p in path.split("/") if p]
        for part in parts[:-1]:
            child = parent.children.get(part)
            if child is None:
                child = self._node(part, "dir", 0o755, ROOT_UID, ROOT_UID, BOOT_MTIME, base=base)
                parent.children[part] = child
            parent = child
        if not parts:
            return self.root
        node = self._node(
            parts[-1],
            kind,
            perm,
            uid,
            uid if gid is None else gid,
            mtime,
            data=data,
            target=target,
            base=base,
            type_bits=type_bits,
        )
        old = parent.children.get(parts[-1])
        if old is not None and old.kind == "dir" and kind == "dir":
            node.children = old.children
        parent.children[parts[-1]] = node
        return node

    @classmethod
    def from_state(cls, state: AndroidState, now: Callable[[], float] = time.time) -> FileTree:
        """The standard Android image a user build shows, with the scenario's files.

        Each installed app's private data is owned by the app's uid, out of shell's reach.
        """
        tree = cls(now)
        shared = SHARED
        sdcard_dir_size = SDCARDFS_DIR_SIZE if _release_major(state.release) < 11 else DIR_SIZE
        for path, perm, uid, gid in (
            ("/system", 0o755, ROOT_UID, ROOT_UID),
            ("/system/bin", 0o755, ROOT_UID, SHELL_UID),
            ("/system/xbin", 0o755, ROOT_UID, SHELL_UID),
            ("/system/etc", 0o755, ROOT_UID, ROOT_UID),
            ("/system/app", 0o755, ROOT_UID, ROOT_UID),
            ("/system/priv-app", 0o755, ROOT_UID, ROOT_UID),
            ("/system/framework", 0o755, ROOT_UID, ROOT_UID),
            ("/vendor", 0o755, ROOT_UID, SHELL_UID),
            ("/data", 0o771, SYSTEM_UID, SYSTEM_UID),
            ("/data/app", 0o771, SYSTEM_UID, SYSTEM_UID),
            ("/data/data", 0o771, SYSTEM_UID, SYSTEM_UID),
            ("/data/local", 0o751, ROOT_UID, ROOT_UID),
            ("/data/local/tmp", 0o771, SHELL_UID, SHELL_UID),
            ("/data/system", 0o775, SYSTEM_UID, SYSTEM_UID),
            ("/cache", 0o770, SYSTEM_UID, CACHE_GID),
            ("/dev", 0o755, ROOT_UID, ROOT_UID),
            ("/proc", 0o555, ROOT_UID, ROOT_UID),
            ("/mnt", 0o755, ROOT_UID, SYSTEM_UID),
            ("/storage", 0o755, ROOT_UID, ROOT_UID),
            ("/storage/self", 0o755, ROOT_UID, ROOT_UID),
            ("/storage/emulated", 0o751, ROOT_UID, SDCARD_RW_GID),
            (shared, 0o771, ROOT_UID, SDCARD_RW_GID),
        ):
            tree.add(path, "dir", perm, uid, gid, base=True, mtime=BOOT_MTIME)
        for name in ("Alarms", "DCIM", "Download", "Movies", "Music", "Pictures", "Documents"):
            tree.add(
                f"{shared}/{name}",
                "dir",
                0o771,
                ROOT_UID,
                SDCARD_RW_GID,
                base=True,
                mtime=BOOT_MTIME,
            )
        tree.add(
            "/sdcard", "link", 0o777, target="/storage/self/primary", base=True, mtime=BOOT_MTIME
        )
        tree.add("/storage/self/primary", "link", 0o777, target=shared, base=True, mtime=BOOT_MTIME)
        tree.add("/etc", "link", 0o777, target="/system/etc", base=True, mtime=BOOT_MTIME)
        tree.add("/bin", "link", 0o777, target="/system/bin", base=True, mtime=BOOT_MTIME)
        for tool in ("sh", "toybox", "toolbox", "getprop", "ls", "cat", "rm", "pm", "am", "cmd"):
            tree.add(
                f"/system/bin/{tool}",
                "file",
                0o755,
                ROOT_UID,
                SHELL_UID,
                data=b"\x7fELF" + tool.encode(),
                base=True,
                mtime=BOOT_MTIME,
            )
        props = "".join(f"{k}={v}\n" for k, v in state.properties().items() if k.startswith("ro."))
        tree.add(
            "/system/build.prop", "file", 0o644, data=props.encode(), base=True, mtime=BOOT_MTIME
        )
        tree.add(
            "/system/etc/hosts",
            "file",
            0o644,
            data=b"127.0.0.1\tlocalhost\n",
            base=True,
            mtime=BOOT_MTIME,
        )
        tree.add(
            "/proc/version",
            "file",
            0o444,
            data=b"Linux version 4.14.0 (builder@android) #1 SMP PREEMPT\n",
            base=True,
            mtime=BOOT_MTIME,
        )
        tree.add(
            "/proc/uptime", "file", 0o444, data=b"1234.56 2345.67\n", base=True, mtime=BOOT_MTIME
        )
        tree.add("/dev/null", "file", 0o666, type_bits=stat.S_IFCHR, base=True, mtime=BOOT_MTIME)
        tree.readonly.update({"/system", "/vendor", "/proc"})
        for number, app in enumerate(state.apps):
            uid = FIRST_APP_UID + 50 + number
            home = f"/data/data/{app.package}"
            tree.add(home, "dir", 0o700, uid, uid, base=True)
            for sub in ("cache", "code_cache"):
                tree.add(f"{home}/{sub}", "dir", 0o771, uid, uid, base=True)
            for rel, content in dict(app.data_files).items():
                _add_user_file(tree, f"{home}/{rel}", content, uid, uid, 0o660, 0o771)
        for path, content in dict(state.files).items():
            path = normalise(path)
            real = tree.realpath(path)
            if real == shared or real.startswith(shared + "/"):
                _add_user_file(tree, real, content, ROOT_UID, SDCARD_RW_GID, 0o660, 0o771)
            else:
                _add_user_file(tree, real, content, SHELL_UID, SHELL_UID, 0o644, 0o755)
        top = tree.lookup(shared)
        if top is not None:
            for _, directory in _walk_dirs(top, shared):
                directory.dir_size = sdcard_dir_size
        return tree

    # --- lookups ---------------------------------------------------------------------------------

    def realpath(self, path: str) -> str:
        """Where a file at ``path`` really lives: every symlink replaced by its target.

        Components that do not exist are kept as they are.
        """
        current = normalise(path)
        for _ in range(MAX_SYMLINKS):
            parts = [p for p in current.split("/") if p]
            resolved = "/"
            for index, part in enumerate(parts):
                candidate = posixpath.join(resolved, part)
                node = self.lookup(candidate, follow=False)
                if node is not None and node.kind == "link":
                    target = node.target
                    base = target if target.startswith("/") else posixpath.join(resolved, target)
                    rest = "/".join(parts[index + 1 :])
                    current = normalise(posixpath.join(base, rest) if rest else base)
                    break
                resolved = candidate
            else:
                return normalise(resolved)
        return current

    def lookup(self, path: str, *, follow: bool = True) -> Node | None:
        """The node at ``path`` with no permission checks, or None.

        ``follow=False`` returns a final symlink itself (``lstat``).
        """
        try:
            return self._resolve(path, ROOT_UID, follow=follow)
        except OSError:
            return None

    def stat(self, path: str, uid: int = SHELL_UID, *, follow: bool = True) -> Node:
        """``stat``/``lstat`` as ``uid``: the node, or the OSError Linux gives.

        Search permission on every directory on the way is needed, the node's own mode is not.
        """
        return self._resolve(path, uid, follow=follow)

    def _resolve(self, path: str, uid: int, *, follow: bool, depth: int = 0) -> Node:
        path = normalise(path)
        parts = [p for p in path.split("/") if p]
        node = self.root
        walked = "/"
        for index, part in enumerate(parts):
            if node.kind != "dir":
                raise _error(errno.ENOTDIR, path)
            if not self.can(node, "x", uid):
                raise _error(errno.EACCES, path)
            child = node.children.get(part)
            if child is None:
                raise _error(errno.ENOENT, path)
            last = index == len(parts) - 1
            if child.kind == "link" and (follow or not last):
                if depth >= MAX_SYMLINKS:
                    raise _error(errno.ELOOP, path)
                target = child.target
                base = target if target.startswith("/") else posixpath.join(walked, target)
                rest = "/".join(parts[index + 1 :])
                full = posixpath.join(base, rest) if rest else base
                try:
                    return self._resolve(full, uid, follow=follow, depth=depth + 1)
                except OSError as exc:
                    raise _error(exc.errno or errno.ENOENT, path) from None
            node = child
            walked = posixpath.join(walked, part)
        return node

    def _parent(self, path: str, uid: int) -> tuple[Node, str, str]:
        """The directory holding ``path`` (as ``uid``), the entry's name, the parent's real path.

        The real path is for the read-only check.
        """
        path = normalise(path)
        if path == "/":
            raise _error(errno.EEXIST, path)
        head, name = posixpath.split(path)
        real_head = self.realpath(head)
        parent = self._resolve(head, uid, follow=True)
        if parent.kind != "dir":
            raise _error(errno.ENOTDIR, path)
        if not self.can(parent, "x", uid):
            raise _error(errno.EACCES, path)
        return parent, name, real_head

    def is_readonly(self, real: str) -> bool:
        """Whether a real path lies on a read-only mount (``/system``): EROFS on writes."""
        return any(real == m or real.startswith(m + "/") for m in self.readonly)

    def can(self, node: Node, access: Literal["r", "w", "x"], uid: int) -> bool:
        """Whether ``uid`` may read, write or execute/search ``node`` by its mode bits.

        Root may read and write anything and execute anything with an x bit (or search any
        directory), as Linux's DAC override gives it.
        """
        if uid == ROOT_UID:
            return access != "x" or node.kind == "dir" or bool(node.mode & 0o111)
        shift = {"r": 2, "w": 1, "x": 0}[access]
        if node.uid == uid:
            bits = (node.mode >> 6) & 7
        elif node.gid in groups_of(uid):
            bits = (node.mode >> 3) & 7
        else:
            bits = node.mode & 7
        return bool(bits & (1 << shift))

    # --- reading ---------------------------------------------------------------------------------

    def listdir(self, path: str, uid: int = SHELL_UID) -> list[tuple[str, Node]]:
        """The entries of a directory, sorted by name, as ``uid`` may list them.

        Raises FileNotFoundError, NotADirectoryError or PermissionError (no read permission on
        the directory, or no search permission on the way to it).
        """
        node = self._resolve(path, uid, follow=True)
        if node.kind != "dir":
            raise _error(errno.ENOTDIR, normalise(path))
        if not self.can(node, "r", uid):
            raise _error(errno.EACCES, normalise(path))
        return sorted(node.children.items())

    def read(self, path: str, uid: int = SHELL_UID) -> bytes:
        """A file's content as ``uid`` reads it (``EISDIR`` for a directory, as ``read`` gives)."""
        node = self._resolve(path, uid, follow=True)
        if not self.can(node, "r", uid):
            raise _error(errno.EACCES, normalise(path))
        if node.kind == "dir":
            raise _error(errno.EISDIR, normalise(path))
        return node.data

    # --- writing ---------------------------------------------------------------------------------

    def write(
        self,
        path: str,
        data: bytes,
        mode: int = 0o644,
        mtime: int | None = None,
        uid: int = SHELL_UID,
    ) -> Node:
        """Create or replace a file as ``uid`` (``open(O_CREAT|O_TRUNC)`` then ``write``).

        An existing file keeps its owner and mode (as ``open`` does); ``/dev/null`` swallows
        everything. A new file is owned by ``uid``; on shared storage it gets sdcardfs's
        ``root:sdcard_rw 0660``.
        """
        path = normalise(path)
        existing = self.lookup(path)
        real = self.realpath(path)
        if existing is not None:
            self._resolve(path, uid, follow=True)  # search permission on the way
            if existing.kind == "dir":
                raise _error(errno.EISDIR, path)
            if self.is_readonly(real):
                raise _error(errno.EROFS, path)
            if not self.can(existing, "w", uid):
                raise _error(errno.EACCES, path)
            if stat.S_ISCHR(existing.mode):
                return existing
            existing.data = bytes(data)
            existing.mtime = self.now() if mtime is None else mtime
            return existing
        parent, name, real_head = self._parent(real, uid)
        if self.is_readonly(real_head):
            raise _error(errno.EROFS, path)
        if not self.can(parent, "w", uid):
            raise _error(errno.EACCES, path)
        owner, group, perm = uid, _primary_gid(uid), mode & 0o7777
        if _is_shared(real):
            owner, group, perm = ROOT_UID, SDCARD_RW_GID, 0o660
        node = self._node(name, "file", perm, owner, group, mtime, data=bytes(data))
        parent.children[name] = node
        parent.mtime = node.mtime
        return node

    def mkdir(
        self, path: str, mode: int = 0o775, parents: bool = False, uid: int = SHELL_UID
    ) -> Node:
        """Create a directory as ``uid``.

        ``parents`` creates the missing ones on the way and accepts an existing directory
        (``mkdir -p``).
        """
        path = normalise(path)
        existing = self.lookup(path)
        if existing is not None:
            if parents and existing.kind == "dir":
                return existing
            raise _error(errno.EEXIST, path)
        if parents:
            head = posixpath.dirname(path)
            if head != "/" and self.lookup(head) is None:
                self.mkdir(head, mode, parents=True, uid=uid)
        real = self.realpath(path)
        parent, name, real_head = self._parent(real, uid)
        if self.is_readonly(real_head):
            raise _error(errno.EROFS, path)
        if not self.can(parent, "w", uid):
            raise _error(errno.EACCES, path)
        owner, group, perm = uid, _primary_gid(uid), mode & 0o7777
        if _is_shared(real):
            owner, group, perm = ROOT_UID, SDCARD_RW_GID, 0o771
        node = self._node(name, "dir", perm, owner, group)
        if _is_shared(real):
            node.dir_size = parent.dir_size
        parent.children[name] = node
        parent.mtime = node.mtime
        return node

    def remove(self, path: str, recursive: bool = False, uid: int = SHELL_UID) -> None:
        """Unlink a file or symlink, or with ``recursive`` a whole directory, as ``uid``.

        A directory without ``recursive`` raises IsADirectoryError (what ``rm`` reports).
        Everything is checked before anything goes: removing a directory's entries needs write
        and search permission on it, listing it needs read permission.
        """
        path = normalise(path)
        node = self._resolve(path, uid, follow=False)
        real_head = self.realpath(posixpath.dirname(path))
        parent, name, _ = self._parent(posixpath.join(real_head, posixpath.basename(path)), uid)
        if node.kind == "dir" and not recursive:
            raise _error(errno.EISDIR, path)
        if self.is_readonly(real_head):
            raise _error(errno.EROFS, path)
        if not self.can(parent, "w", uid):
            raise _error(errno.EACCES, path)
        if node.kind == "dir":
            accesses: tuple[Literal["r", "w", "x"], ...] = ("r", "w", "x")
            for where, directory in _walk_dirs(node, path):
                for access in accesses:
                    if not self.can(directory, access, uid):
                        raise _error(errno.EACCES, where)
        del parent.children[name]
        parent.mtime = self.now()

    def clear_dir(self, path: str) -> None:
        """Empty a directory with no permission checks (``pm clear``, a factory reset)."""
        node = self.lookup(path)
        if node is not None and node.kind == "dir":
            node.children.clear()

    def walk_files(self, path: str = "/") -> Iterator[tuple[str, Node]]:
        """Every regular file under ``path`` (not following symlinks), as (path, node)."""
        start = self.lookup(path, follow=False)
        if start is None:
            return
        if start.kind == "file":
            yield normalise(path), start
            return
        for where, directory in _walk_dirs(start, normalise(path)):
            for name, child in sorted(directory.children.items()):
                if child.kind == "file":
                    yield posixpath.join(where, name), child


def _release_major(release: str) -> int:
    head = release.split(".")[0]
    return int(head) if head.isdigit() else 11


def _primary_gid(uid: int) -> int:
    return uid


def _is_shared(real: str) -> bool:
    return real == "/storage/emulated" or real.startswith("/storage/emulated/")


def _walk_dirs(node: Node, path: str) -> Iterator[tuple[str, Node]]:
    """``node`` and every directory below it (no symlinks followed), parents first."""
    yield (path or "/"), node
    for name, child in sorted(node.children.items()):
        if child.kind == "dir":
            yield from _walk_dirs(child, posixpath.join(path or "/", name))


def _add_user_file(
    tree: FileTree, path: str, content: str, uid: int, gid: int, perm: int, dir_perm: int
) -> None:
    """A scenario's file, creating its missing directories with the same owner."""
    head = posixpath.dirname(path)
    missing: list[str] = []
    while tree.lookup(head) is None and head != "/":
        missing.append(head)
        head = posixpath.dirname(head)
    for directory in reversed(missing):
        tree.add(directory, "dir", dir_perm, uid, gid)
    tree.add(path, "file", perm, uid, gid, data=content.encode("utf-8", "surrogateescape"))
