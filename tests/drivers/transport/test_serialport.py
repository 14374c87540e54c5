"""Serial specifics: URL handlers, line settings, locking, unplugging, stalled writes."""

from __future__ import annotations

import contextlib
import os
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest

from posdiag.drivers.errors import TransportClosed, TransportOpenError, TransportTimeout
from posdiag.drivers.transport.serialport import SerialTransport


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    """A raw pty: (master fd, slave path); a slave fd stays open like in the simulator."""
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(slave)
    with contextlib.suppress(OSError):  # a test may have closed it to simulate unplugging
        os.close(master)


def test_description_shows_line_settings() -> None:
    assert SerialTransport("/dev/ttyUSB0").description == "serial /dev/ttyUSB0 9600 8N2"
    custom = SerialTransport("/dev/ttyS1", 115200, 7, "E", 1, rtscts=True)
    assert custom.description == "serial /dev/ttyS1 115200 7E1 rtscts"
    assert SerialTransport("loop://", stopbits=1.5).description.endswith("8N1.5")


def test_zero_write_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="write_timeout"):
        SerialTransport("loop://", write_timeout=0)


def test_loop_url_echoes_and_raises_rts_dtr() -> None:
    with SerialTransport("loop://") as port:
        assert port._port.rts and port._port.dtr
        port.write(b"\x10\x02abc")
        assert port.read(2, 1.0) == b"\x10\x02"
        assert port.read(100, 1.0) == b"abc"
        assert port.read(100, 0.05) == b""


def test_pty_line_is_configured_as_zvt_default(pty: tuple[int, str]) -> None:
    master, path = pty
    with SerialTransport(path) as port:
        assert port._port.baudrate == 9600
        assert port._port.stopbits == 2
        assert port._port.parity == "N"
        os.write(master, b"\x80\x00")
        assert port.read_exact(2, 1.0) == b"\x80\x00"


def test_unknown_url_scheme_is_an_open_error() -> None:
    with pytest.raises(TransportOpenError, match=r"cannot open bogus://x: .*'bogus' not known"):
        SerialTransport("bogus://x").open()


def test_second_opener_is_told_the_port_is_busy(pty: tuple[int, str]) -> None:
    _, path = pty
    with SerialTransport(path):
        with pytest.raises(TransportOpenError, match="in use by another program"):
            SerialTransport(path).open()
        shared = SerialTransport(path, exclusive=False)
        shared.open()
        shared.close()
    # lock released on close
    with SerialTransport(path) as again:
        assert again.is_open


def test_unplugged_device_raises_closed_with_reason(pty: tuple[int, str]) -> None:
    master, path = pty
    with SerialTransport(path) as port:
        os.close(master)
        with pytest.raises(TransportClosed, match=f"serial device {path} went away"):
            port.read(10, 1.0)


def test_stalled_write_times_out_instead_of_hanging(pty: tuple[int, str]) -> None:
    _, path = pty  # nobody reads the master, so the pty buffer fills up
    with (
        SerialTransport(path, write_timeout=0.2) as port,
        pytest.raises(TransportTimeout, match=r"did not accept data for 0\.2 s"),
    ):
        port.write(b"\x00" * 1_000_000)


def test_spy_url_traces_traffic_in_hex(pty: tuple[int, str], tmp_path: Path) -> None:
    master, path = pty
    trace = tmp_path / "trace.txt"
    with SerialTransport(f"spy://{path}?file={trace}") as port:
        port.write(b"\x06\x0f")
        assert os.read(master, 10) == b"\x06\x0f"
    assert "06 0F" in trace.read_text()


def test_ports_beyond_descriptor_1023_work() -> None:
    """A station of a few hundred ports holds more than 1024 descriptors (each port also keeps
    pyserial's two abort pipes, each ledger connection its files). pyserial's own I/O waits in
    ``select()``, which refuses such descriptors ("filedescriptor out of range"): the transport
    must read, write and time out on them all the same."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"this process may open only {hard} files")
    if soft != resource.RLIM_INFINITY and soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    filler = [os.open("/dev/null", os.O_RDONLY) for _ in range(1030)]
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        transport = SerialTransport(os.ttyname(slave), exclusive=False)
        transport.open()
        try:
            assert transport._port.fd > 1023  # the case under test
            transport.write(b"\x10\x02hello")
            assert os.read(master, 64) == b"\x10\x02hello"
            os.write(master, b"answer")
            assert transport.read(64, 1.0) == b"answer"
            started = time.monotonic()
            assert transport.read(64, 0.2) == b""  # a silent line times out, no exception
            assert 0.15 < time.monotonic() - started < 1.0
        finally:
            transport.close()
    finally:
        for fd in (*filler, master, slave):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
