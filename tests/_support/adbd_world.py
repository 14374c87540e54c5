"""Fixtures of the differential tests: the real AOSP adbd and posdiag's simulator, same facts.

Registered for tests/interop by its conftest.py; kept here so the test modules can import the
tree's constants and the endpoint types (``import conftest`` would find tests/conftest.py).

``adbd_world`` (session) builds the real adbd once into ``.cache/adbd``, writes a file tree for
the sync tests and a stub Android userland answering the simulator state's facts, and starts adbd
in its own network namespace behind a loopback relay (``tests/_support/adbd_peer.py``).
``peers`` (per test) adds a fresh simulator holding the same state and file tree, so a test that
changes the simulator's state never leaks into the next.

Without root, ``unshare``/``ip``/``setpriv`` or a compiler the tests skip with the reason;
``POSDIAG_REQUIRE_ADBD=1`` (exported by ``.ci/run``) turns that skip into a failure, so CI can
never silently stop comparing against the real daemon.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _support.adbd_peer import SHELL_UID, AdbdUnavailable, RealAdbd, build_adbd
from _support.stub_userland import write_userland
from posdiag.simulators.adb.engine import AdbSimulator
from posdiag.simulators.adb.state import AndroidState, load_android
from posdiag.simulators.attach import TcpAttachment

SCENARIO = "activated"
MODEL = "android-generic"

BIG_SIZE = 300_000
"""Larger than the sync chunk (64 KiB), the port's max payload (4 KiB) and Android 8's (256 KiB)."""


def big_text() -> str:
    """Deterministic text of BIG_SIZE bytes (the simulator's files are text)."""
    line = "posdiag differential test line, the same bytes on both peers.\n"
    return (line * (BIG_SIZE // len(line) + 1))[:BIG_SIZE]


# relative path -> (content, mode); directories are implied, their modes are in TREE_DIRS.
TREE_FILES: dict[str, tuple[str, int]] = {
    "hello.txt": ("hello from the tree\n", 0o644),
    "big.txt": (big_text(), 0o644),
    "sub/a.txt": ("a\n", 0o644),
    "sub/b.txt": ("bb\n", 0o640),
    "secret.txt": ("not for the shell user\n", 0o600),
    "locked/.keep": ("", 0o644),
    "inbox/.keep": ("", 0o644),
}
SHELL_GROUP = frozenset({"sub/b.txt"})
"""Files of group ``shell``: 0640 yet readable by adbd's shell uid, as on a device's sdcard."""
TREE_DIRS: dict[str, int] = {"": 0o755, "sub": 0o755, "locked": 0o555, "inbox": 0o777}
"""``locked`` cannot be written by the shell user (SEND fails), ``inbox`` can (SEND works)."""


@dataclass
class Endpoint:
    """One peer as clients reach it: ``127.0.0.1:port``, and how to make it go away."""

    name: str
    host: str
    port: int
    emulate_reboot: Callable[[], None]
    """What the peer's own ``reboot:`` cannot do: the port's reboot only stubs a property
    (it never goes down), so for the real adbd this cuts the relayed connections as a rebooting
    unit does; the simulator must go down by itself, so for it this does nothing."""

    @property
    def serial(self) -> str:
        """``HOST:PORT`` as the stock client names a TCP device."""
        return f"{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """posdiag's address of the peer."""
        return f"adb+tcp://{self.host}:{self.port}"


@dataclass
class AdbdWorld:
    """The running real adbd and the facts it shares with every simulator of the session."""

    adbd: RealAdbd
    tree: Path
    overrides: dict[str, Any]

    def state(self) -> AndroidState:
        """A fresh simulator state with the same facts the stubs and the tree hold."""
        return simulator_state(self.tree, self.overrides)


def simulator_state(tree: Path, overrides: dict[str, Any]) -> AndroidState:
    """The scenario with the tree's files, and their modes and owners where the simulator
    models them (its ``FileTree``), so a permission difference is the simulator's, not ours."""
    state = load_android(SCENARIO, MODEL, copy.deepcopy(overrides))
    files = getattr(state, "tree", None)
    if files is not None and hasattr(files, "add"):
        for rel, mode in TREE_DIRS.items():
            files.add(str(tree / rel), "dir", mode, 0, 0)
        for rel, (content, mode) in TREE_FILES.items():
            gid = SHELL_UID if rel in SHELL_GROUP else 0
            files.add(str(tree / rel), "file", mode, 0, gid, data=content.encode())
    return state


@dataclass
class Peers:
    """Both peers of one test: ``real`` (AOSP adbd) and ``sim`` (posdiag's simulator)."""

    real: Endpoint
    sim: Endpoint
    tree: Path
    simulator: AdbSimulator

    def both(self) -> tuple[Endpoint, Endpoint]:
        """(real, sim)."""
        return self.real, self.sim


def _unavailable(reason: str) -> None:
    if os.environ.get("POSDIAG_REQUIRE_ADBD") == "1":
        pytest.fail(f"POSDIAG_REQUIRE_ADBD=1 but {reason}")
    pytest.skip(reason)


def _write_tree(root: Path) -> None:
    for rel in sorted(TREE_DIRS, key=len):
        (root / rel).mkdir(exist_ok=True)
    for rel, (content, mode) in TREE_FILES.items():
        path = root / rel
        path.write_text(content)
        path.chmod(mode)
        if rel in SHELL_GROUP:
            os.chown(path, 0, SHELL_UID)
    for rel, mode in TREE_DIRS.items():  # after the files: locked/ is read-only
        (root / rel).chmod(mode)


def _check_commands(state: AndroidState) -> list[str]:
    """Every command line posdiag's check may send, as the driver itself plans them."""
    from posdiag.drivers.adb.facts import command_plan
    from posdiag.drivers.catalogue import load_catalogue

    catalogue = load_catalogue()
    lines = [command for command, _ in command_plan(catalogue, quick=False, files=True)]
    lines += [command for command, _ in command_plan(catalogue, quick=True, files=False)]
    lines += [f"getprop {name}" for name in state.properties()]
    return lines


@pytest.fixture(scope="session")
def adbd_world() -> Iterator[AdbdWorld]:
    """Build and start the real adbd with the session's tree and stub userland."""
    try:
        binary = build_adbd()
    except AdbdUnavailable as exc:
        _unavailable(str(exc))
    # Not pytest's tmp_path: that is 0700 root's, and adbd runs as the shell uid.
    base = Path(tempfile.mkdtemp(prefix="posdiag-adbd-"))
    base.chmod(0o755)
    tree = base / "tree"
    tree.mkdir()
    _write_tree(tree)
    # The port is an Android 7/8-era adbd whose banner offers shell_v2 only; the simulator gets
    # the same features so both negotiate the same protocol variants (stat_v2, ls_v2… of newer
    # releases are the simulator's release models' business, tested apart).
    overrides: dict[str, Any] = {
        "files": {str(tree / rel): content for rel, (content, _) in TREE_FILES.items()},
        "device": {"features": ["shell_v2"]},
    }
    state = load_android(SCENARIO, MODEL, copy.deepcopy(overrides))
    stub_bin = write_userland(base / "userland", state, _check_commands(state))
    try:
        adbd = RealAdbd(binary, stub_bin, tree, base / "adbd.log")
    except AdbdUnavailable as exc:
        shutil.rmtree(base, ignore_errors=True)
        _unavailable(str(exc))
    try:
        yield AdbdWorld(adbd, tree, overrides)
    finally:
        adbd.stop()
        (tree / "locked").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def peers(adbd_world: AdbdWorld) -> Iterator[Peers]:
    """The session's real adbd and a fresh simulator with the same facts, on loopback TCP."""
    simulator = AdbSimulator(adbd_world.state())
    attachment = TcpAttachment(simulator, "127.0.0.1", 0)
    host, port = attachment.start()
    real = real_endpoint(adbd_world.adbd)
    sim = Endpoint("simulator", host, port, lambda: None)
    try:
        yield Peers(real, sim, adbd_world.tree, simulator)
    finally:
        attachment.stop()
        adbd_world.adbd.drop_connections()  # no client connection outlives its test


def real_endpoint(adbd: RealAdbd) -> Endpoint:
    """The real adbd as an endpoint."""
    return Endpoint("real adbd", "127.0.0.1", adbd.port, adbd.drop_connections)
