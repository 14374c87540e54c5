"""The simulated terminal's file tree: Android's layout, Linux's permissions and errors."""

from __future__ import annotations

import errno
import stat

import pytest

from posdiag.simulators.adb.files import ROOT_UID, SHELL_UID, FileTree
from posdiag.simulators.adb.files_view import FilesView
from posdiag.simulators.adb.state import load_android


@pytest.fixture
def tree() -> FileTree:
    return load_android("activated", "pax-a920").tree


def test_layout_as_shell_sees_it(tree: FileTree) -> None:
    sdcard = tree.lookup("/sdcard", follow=False)
    assert sdcard is not None and stat.S_ISLNK(sdcard.mode)
    names = [name for name, _ in tree.listdir("/sdcard/")]
    assert "Download" in names and names == sorted(names)
    tmp = tree.stat("/data/local/tmp")
    assert (tmp.owner, tmp.group, tmp.perm) == ("shell", "shell", 0o771)
    assert tree.stat("/sdcard/Download").size == 3452  # sdcardfs before Android 11


@pytest.mark.parametrize(
    ("path", "error", "code"),
    [
        ("/data", PermissionError, errno.EACCES),
        ("/nope", FileNotFoundError, errno.ENOENT),
        ("/system/build.prop/x", NotADirectoryError, errno.ENOTDIR),
        ("/data/data/com.pax.ipp.manager", PermissionError, errno.EACCES),
    ],
)
def test_listdir_errors_are_linux_errors(
    tree: FileTree, path: str, error: type[OSError], code: int
) -> None:
    with pytest.raises(error) as caught:
        tree.listdir(path)
    assert caught.value.errno == code
    assert caught.value.strerror


def test_write_read_remove_and_paths_are_normalised(tree: FileTree) -> None:
    node = tree.write("/data/local/tmp/./a/../x.txt", b"hi", 0o600)
    assert (node.owner, node.perm) == ("shell", 0o600)
    assert tree.read("/data/local/tmp/x.txt/") == b"hi"
    tree.remove("/data/local/tmp/x.txt")
    assert tree.lookup("/data/local/tmp/x.txt") is None


def test_writes_where_shell_may_not(tree: FileTree) -> None:
    with pytest.raises(OSError) as caught:
        tree.write("/system/evil", b"")
    assert caught.value.errno == errno.EROFS
    with pytest.raises(PermissionError):
        tree.write("/evil", b"")
    with pytest.raises(PermissionError):
        tree.read("/data/data/com.pax.ipp.manager/shared_prefs/merchant.xml")
    assert tree.read("/data/data/com.pax.ipp.manager/shared_prefs/merchant.xml", ROOT_UID)


def test_mkdir_parents_and_recursive_remove(tree: FileTree) -> None:
    tree.mkdir("/sdcard/a/b/c", parents=True)
    tree.write("/sdcard/a/b/c/f", b"1")
    with pytest.raises(IsADirectoryError):
        tree.remove("/sdcard/a")
    with pytest.raises(FileExistsError):
        tree.mkdir("/sdcard/a")
    tree.remove("/sdcard/a", recursive=True)
    assert tree.lookup("/sdcard/a") is None


def test_scenario_inputs_become_live_views() -> None:
    state = load_android("activated", "pax-a920")
    before = dict(state.files)
    tree = state.tree
    assert isinstance(state.files, FilesView)
    assert dict(state.files) == before  # same keys (/sdcard/…) and contents
    tree.write("/sdcard/Download/new.txt", b"pushed", uid=SHELL_UID)
    assert state.files["/sdcard/Download/new.txt"] == "pushed"
    app = state.app("com.pax.ipp.manager")
    assert app is not None and app.has_data
    app.data_files.clear()  # pm clear
    assert not app.has_data
    assert tree.listdir("/data/data/com.pax.ipp.manager", ROOT_UID) == []
    del state.files["/sdcard/Download/new.txt"]
    assert tree.lookup("/sdcard/Download/new.txt") is None
