"""The stock adb client's file commands and reboot against the simulator (loopback TCP).

``adb ls DIR``, ``adb push``, ``adb pull DIR`` and ``adb reboot`` must work as against a real
unit; skipped without a stock client (the ``adbutils`` wheel ships one).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posdiag.simulators.attach import TcpAttachment
from posdiag.simulators.registry import create_adb
from posdiag.simulators.stock_adb import StockAdb, find_stock_adb

ADB = find_stock_adb()
pytestmark = pytest.mark.skipif(ADB is None, reason="no stock adb client")


@pytest.fixture
def device(tmp_path: Path) -> Iterator[tuple[StockAdb, str, object]]:
    assert ADB is not None
    simulator = create_adb("activated", "pax-a920", {"time_scale": "0"})
    attachment = TcpAttachment(simulator, "127.0.0.1", 0)
    host, port = attachment.start()
    serial = f"{host}:{port}"
    home = tmp_path / "home"
    home.mkdir()
    adb = StockAdb(ADB, home)
    try:
        assert adb.connect(serial).returncode == 0
        assert adb.wait_for_state(serial, "device") == "device"
        yield adb, serial, simulator
    finally:
        adb.close()
        attachment.stop()


def test_ls_push_pull_and_reboot(device: tuple[StockAdb, str, object], tmp_path: Path) -> None:
    adb, serial, simulator = device
    listing = adb.run("-s", serial, "ls", "/sdcard/")
    assert listing.returncode == 0, listing.stderr
    assert "Download" in listing.stdout

    local = tmp_path / "payload.bin"
    local.write_bytes(b"x" * 300_000)  # across the 64 KiB DATA and the max payload
    push = adb.run("-s", serial, "push", str(local), "/data/local/tmp/sub/payload.bin")
    assert push.returncode == 0, push.stderr
    assert simulator.state.tree.read("/data/local/tmp/sub/payload.bin") == local.read_bytes()

    pulled = tmp_path / "pulled"
    pull = adb.run("-s", serial, "pull", "/data/local/tmp/sub", str(pulled))
    assert pull.returncode == 0, pull.stderr
    assert (pulled / "payload.bin").read_bytes() == local.read_bytes()

    reboot = adb.run("-s", serial, "reboot")
    assert reboot.returncode == 0, reboot.stderr
    assert simulator.reboots == 1
