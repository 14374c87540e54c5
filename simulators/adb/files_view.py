"""``state.files`` and apps' ``data_files`` as live views of the file tree.

The scenario names files as a dict (absolute path -> text) and each app's data as a dict
(relative path -> text); code written against those dicts (``pm clear`` clears one, a factory
reset clears ``files``) keeps working once the tree exists, and sees what sync pushed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, MutableMapping

from .files import (
    ROOT_UID,
    SDCARD_RW_GID,
    SHARED,
    SHELL_UID,
    FileTree,
    Node,
    _add_user_file,
    _is_shared,
    normalise,
)


class FilesView(MutableMapping[str, str]):
    """``state.files`` or an app's ``data_files`` as a live view of the tree.

    Keys are absolute paths (``prefix=""``) or paths relative to an app's directory; values
    are the files' text. The whole-tree view leaves out what the build ships (``base`` nodes)
    and apps' private directories, so it holds exactly the user files a scenario can name.
    """

    def __init__(self, tree: FileTree, prefix: str = "") -> None:
        self._tree = tree
        self._prefix = prefix.rstrip("/")

    def _path(self, key: str) -> str:
        return normalise(f"{self._prefix}/{key}" if self._prefix else key)

    def _items(self) -> Iterator[tuple[str, str, Node]]:
        """(key, real path, node) for every file of the view."""
        if self._prefix:
            start = len(self._prefix) + 1
            for path, node in self._tree.walk_files(self._prefix):
                yield path[start:], path, node
            return
        for path, node in self._tree.walk_files("/"):
            if not node.base and not path.startswith("/data/data/"):
                yield _sdcard_alias(path), path, node

    def __getitem__(self, key: str) -> str:
        for name, _, node in self._items():
            if name == key:
                return node.data.decode("utf-8", "surrogateescape")
        raise KeyError(key)

    def __setitem__(self, key: str, value: str) -> None:
        path = self._path(key)
        real = self._tree.realpath(path)
        if self._prefix:
            home = self._tree.lookup(self._prefix)
            uid = home.uid if home is not None else SHELL_UID
            _add_user_file(self._tree, real, value, uid, uid, 0o660, 0o771)
        elif _is_shared(real):
            _add_user_file(self._tree, real, value, ROOT_UID, SDCARD_RW_GID, 0o660, 0o771)
        else:
            _add_user_file(self._tree, real, value, SHELL_UID, SHELL_UID, 0o644, 0o755)

    def __delitem__(self, key: str) -> None:
        for name, real, _ in self._items():
            if name == key:
                head, base = posixpath.split(real)
                parent = self._tree.lookup(head)
                if parent is not None:
                    parent.children.pop(base, None)
                return
        raise KeyError(key)

    def clear(self) -> None:
        """Remove every file of the view.

        For an app, its whole directory content (``pm clear``); for the whole tree, every user
        file, with the directories it leaves empty (except the build's).
        """
        if self._prefix:
            self._tree.clear_dir(self._prefix)
            return
        for _, real, _ in list(self._items()):
            head, name = posixpath.split(real)
            parent = self._tree.lookup(head)
            if parent is not None:
                parent.children.pop(name, None)
        _prune(self._tree.root)

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, _, _ in self._items()])

    def __len__(self) -> int:
        return sum(1 for _ in self._items())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


def _sdcard_alias(path: str) -> str:
    """``/sdcard/…`` for a file on shared storage: the name scenarios and vendors use."""
    if path == SHARED or path.startswith(SHARED + "/"):
        return "/sdcard" + path[len(SHARED) :]
    return path


def _prune(node: Node) -> None:
    """Drop the empty directories a scenario created (not the build's own)."""
    for name, child in list(node.children.items()):
        if child.kind == "dir":
            _prune(child)
            if not child.children and not child.base:
                del node.children[name]
