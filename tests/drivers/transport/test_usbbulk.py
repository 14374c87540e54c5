"""USB bulk transport: enumeration, claiming and the ZLP rule, run on the simulated pyusb backend.

The simulated backend sits below pyusb, so everything here goes through the real pyusb code
paths (descriptor walks, string descriptors, interface claiming, bulk transfers). A few tests
use the real libusb backend to check that a machine without a USB bus yields an empty list.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
import usb.core
import usb.util
from structlog.testing import capture_logs

from posdiag.drivers.errors import TransportClosed, TransportOpenError, TransportTimeout
from posdiag.drivers.transport import usbbulk
from posdiag.drivers.transport.base import ReadExactTimeout, Transport
from posdiag.drivers.transport.usbbulk import (
    UsbBulkTransport,
    UsbDeviceInfo,
    find_adb_devices,
    get_backend,
)
from posdiag.simulators.usb_backend import SimulatedUsbBackend, SimulatedUsbDevice

VID, PID, SERIAL = 0x2FB8, 0x2208, "0123456789"


class EchoEngine:
    """Writes back every chunk it reads, as one write."""

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        while not stop.is_set():
            data = transport.read(1 << 20, 0.02)
            if data:
                transport.write(data)


class SilentEngine:
    """Reads and never answers."""

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        while not stop.is_set():
            transport.read(1 << 20, 0.02)


def make_device(serial: str | None = SERIAL, **kwargs: object) -> SimulatedUsbDevice:
    options: dict[str, object] = {
        "vid": VID,
        "pid": PID,
        "serial": serial,
        "manufacturer": "PAX",
        "product": "A920",
        "engine": EchoEngine(),
    }
    options.update(kwargs)
    return SimulatedUsbDevice(**options)


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        leaked = [t for t in threading.enumerate() if t not in before]
        if not leaked:
            break
        time.sleep(0.01)
    assert not leaked


@pytest.fixture
def backend() -> Iterator[SimulatedUsbBackend]:
    with SimulatedUsbBackend([make_device()]) as sim:
        yield sim


@pytest.fixture
def transport(backend: SimulatedUsbBackend) -> Iterator[UsbBulkTransport]:
    link = UsbBulkTransport(serial=SERIAL, backend=backend, timeout=1.0)
    link.open()
    try:
        yield link
    finally:
        link.close()


@pytest.fixture
def fresh_unavailable_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Forget which "no USB" reasons were logged, and the cached backend, around a test."""
    monkeypatch.setattr(usbbulk, "_unavailable_logged", set())
    get_backend.cache_clear()
    yield
    get_backend.cache_clear()


# -- enumeration ------------------------------------------------------------------------------


def test_find_lists_the_adb_interface_with_strings_and_endpoints(
    backend: SimulatedUsbBackend,
) -> None:
    (info,) = find_adb_devices(backend=backend)
    assert info == UsbDeviceInfo(
        vid=VID,
        pid=PID,
        serial=SERIAL,
        bus=1,
        address=2,
        manufacturer="PAX",
        product="A920",
        interface=0,
        alt_setting=0,
        configuration=1,
        interface_class=(0xFF, 0x42, 0x01),
        endpoint_in=0x81,
        endpoint_out=0x01,
        max_packet_size=512,
        max_packet_size_in=512,
    )
    assert info.description == "usb 2fb8:2208 serial 0123456789"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["A", "B", "C"]),
        ({"vid": VID}, ["A", "B"]),
        ({"vid": VID, "pid": PID}, ["A"]),
        ({"pid": 0x0001}, ["C"]),
        ({"serial": "B"}, ["B"]),
        ({"vid": 0x18D1, "serial": "B"}, []),
        ({"serial": "missing"}, []),
    ],
)
def test_find_filters_by_vid_pid_and_serial(
    filters: dict[str, object], expected: list[str]
) -> None:
    devices = [
        make_device("A"),
        make_device("B", pid=0x2209),
        make_device("C", vid=0x18D1, pid=0x0001),
    ]
    with SimulatedUsbBackend(devices) as sim:
        found = find_adb_devices(backend=sim, **filters)
    assert [info.serial for info in found] == expected


def test_find_skips_look_alikes_and_picks_adb_among_other_interfaces() -> None:
    fastboot = make_device("fastboot", interface_class=(0xFF, 0x42, 0x03))
    composite = make_device("composite", extra_interfaces=[(0x06, 0x01, 0x01)])  # MTP first
    dbc = make_device("dbc", interface_class=(0xDC, 0x02, 0x01))
    with SimulatedUsbBackend([fastboot, composite, dbc]) as sim:
        found = {info.serial: info for info in find_adb_devices(backend=sim)}
    assert set(found) == {"composite", "dbc"}
    assert found["composite"].interface == 1
    assert (found["composite"].endpoint_out, found["composite"].endpoint_in) == (0x01, 0x81)
    assert found["dbc"].interface_class == (0xDC, 0x02, 0x01)


def test_find_reports_unreadable_strings_as_none_with_a_log_line() -> None:
    with SimulatedUsbBackend([make_device(access_denied=True)]) as sim, capture_logs() as logs:
        (info,) = find_adb_devices(backend=sim)
    assert (info.serial, info.manufacturer, info.product) == (None, None, None)
    assert info.description == "usb 2fb8:2208 bus 1 address 2"
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "cannot read USB string descriptors (permissions? udev rule?)"
    ]


def test_device_without_serial_string_is_listed_with_none() -> None:
    with SimulatedUsbBackend([make_device(None)]) as sim:
        (info,) = find_adb_devices(backend=sim)
    assert info.serial is None
    assert info.product == "A920"


def test_find_follows_hotplug(backend: SimulatedUsbBackend) -> None:
    second = backend.add(make_device("second"))
    assert [i.serial for i in find_adb_devices(backend=backend)] == [SERIAL, "second"]
    backend.remove(second)
    assert [i.serial for i in find_adb_devices(backend=backend)] == [SERIAL]


def test_enumeration_does_not_keep_devices_open(backend: SimulatedUsbBackend) -> None:
    find_adb_devices(backend=backend)
    with UsbBulkTransport(serial=SERIAL, backend=backend) as link:  # would be busy otherwise
        assert link.is_open


# -- real libusb, and no backend at all ------------------------------------------------------


def test_real_libusb_enumeration_does_not_crash(fresh_unavailable_log: None) -> None:
    found = find_adb_devices()
    assert all(isinstance(info, UsbDeviceInfo) for info in found)
    if usbbulk._linux_without_usb():
        assert found == []


def test_no_usb_bus_is_logged_once(
    fresh_unavailable_log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if get_backend() is None:
        pytest.skip("no libusb on this machine; covered by the no-backend test")
    monkeypatch.setattr(usbbulk, "_linux_without_usb", lambda: True)
    monkeypatch.setattr(usb.core, "find", lambda **_: iter(()))
    with capture_logs() as logs:
        assert find_adb_devices() == []
        assert find_adb_devices() == []
    warnings = [e for e in logs if e["event"] == "no USB backend/bus"]
    assert len(warnings) == 1
    assert "no USB bus on this machine" in warnings[0]["reason"]


def test_packaged_libusb_is_the_fallback(
    fresh_unavailable_log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("libusb_package")
    monkeypatch.setattr(usbbulk, "_load_system_backend", lambda: None)
    assert get_backend() is not None


def test_no_backend_returns_empty_and_logs_once(
    fresh_unavailable_log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(usbbulk, "_load_system_backend", lambda: None)
    monkeypatch.setattr(usbbulk, "_load_packaged_backend", lambda: None)
    with capture_logs() as logs:
        assert find_adb_devices() == []
        assert find_adb_devices(serial=SERIAL) == []
    warnings = [e for e in logs if e["event"] == "no USB backend/bus"]
    assert len(warnings) == 1
    assert "libusb-1.0 not found" in warnings[0]["reason"]
    with pytest.raises(TransportOpenError, match="no USB backend"):
        UsbBulkTransport(serial=SERIAL).open()


def test_a_crashing_loader_counts_as_no_backend(
    fresh_unavailable_log: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> None:
        raise OSError("libusb-1.0.so: wrong ELF class")

    monkeypatch.setattr(usbbulk, "_load_system_backend", broken)
    monkeypatch.setattr(usbbulk, "_load_packaged_backend", broken)
    assert get_backend() is None
    assert find_adb_devices() == []


def test_enumeration_errors_yield_empty_list(fresh_unavailable_log: None) -> None:
    class FailingBackend(SimulatedUsbBackend):
        def enumerate_devices(self) -> list[SimulatedUsbDevice]:
            raise usb.core.USBError("Input/Output Error", -1, 5)

    with capture_logs() as logs:
        assert find_adb_devices(backend=FailingBackend()) == []
    assert any(e["event"] == "no USB backend/bus" for e in logs)


# -- opening ---------------------------------------------------------------------------------


def test_open_describes_the_device_and_claims_it(
    backend: SimulatedUsbBackend, transport: UsbBulkTransport
) -> None:
    assert transport.is_open
    assert transport.description == "usb 2fb8:2208 serial 0123456789"
    assert transport.info is not None and transport.info.serial == SERIAL
    with pytest.raises(TransportOpenError, match=r"busy.*adb kill-server"):
        UsbBulkTransport(serial=SERIAL, backend=backend).open()


def test_open_of_a_missing_serial_fails_clearly(backend: SimulatedUsbBackend) -> None:
    link = UsbBulkTransport(serial="nope", backend=backend)
    with pytest.raises(TransportOpenError, match=r"^no ADB device with serial nope attached$"):
        link.open()
    assert not link.is_open


def test_open_names_vid_pid_when_nothing_matches(backend: SimulatedUsbBackend) -> None:
    with pytest.raises(TransportOpenError, match="no ADB device 18d1:\\* attached"):
        UsbBulkTransport(vid=0x18D1, backend=backend).open()
    with (
        SimulatedUsbBackend() as empty,
        pytest.raises(TransportOpenError, match=r"^no ADB device attached$"),
    ):
        UsbBulkTransport(backend=empty).open()


def test_open_without_permission_says_udev(backend: SimulatedUsbBackend) -> None:
    backend.add(make_device("locked", access_denied=True, vid=0x1234))
    link = UsbBulkTransport(vid=0x1234, backend=backend)
    with pytest.raises(TransportOpenError, match="USB access denied \\(udev rule\\?\\)"):
        link.open()
    # By serial, the unreadable device cannot match; the message still points at permissions.
    with pytest.raises(TransportOpenError, match="could not be read: USB access denied"):
        UsbBulkTransport(serial="locked", backend=backend).open()


def test_open_refuses_to_guess_between_devices(backend: SimulatedUsbBackend) -> None:
    backend.add(make_device("second"))
    with pytest.raises(TransportOpenError, match=r"2 ADB devices attached.*choose one by serial"):
        UsbBulkTransport(backend=backend).open()


def test_duplicate_serials_are_told_apart_by_bus_and_address(
    backend: SimulatedUsbBackend,
) -> None:
    twin = backend.add(make_device(SERIAL))
    with pytest.raises(TransportOpenError, match=r"report serial 0123456789.*bus and address"):
        UsbBulkTransport(serial=SERIAL, backend=backend).open()
    infos = find_adb_devices(serial=SERIAL, backend=backend)
    chosen = next(info for info in infos if info.address == twin.address)
    with UsbBulkTransport.from_info(chosen, backend=backend) as link:
        assert link.info == chosen


def test_unconfigured_device_gets_its_configuration(backend: SimulatedUsbBackend) -> None:
    raw = usb.core.find(backend=backend)
    raw.set_configuration(0)  # pyusb then reports "Configuration not set" (errno None)
    usb.util.dispose_resources(raw)
    with UsbBulkTransport(serial=SERIAL, backend=backend) as link:
        link.write(b"configured")
        assert link.read_exact(10, 1.0) == b"configured"


def test_kernel_driver_is_detached_and_reattached() -> None:
    device = make_device(kernel_driver_active=True)
    with SimulatedUsbBackend([device]) as sim:
        with UsbBulkTransport(serial=SERIAL, backend=sim) as link:
            assert device.detach_count == 1
            assert not device.kernel_driver[0]
            link.write(b"ping")
            assert link.read_exact(4, 1.0) == b"ping"
        assert device.kernel_driver[0]


def test_close_is_idempotent_and_reopen_works(
    backend: SimulatedUsbBackend, transport: UsbBulkTransport
) -> None:
    transport.close()
    transport.close()
    assert not transport.is_open
    with pytest.raises(TransportClosed):
        transport.read(1, 0)
    with pytest.raises(TransportClosed):
        transport.write(b"x")
    with pytest.raises(TransportClosed):
        transport.reset_input()
    transport.open()
    transport.write(b"again")
    assert transport.read_exact(5, 1.0) == b"again"


# -- data ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 24, 100, 511, 512, 513, 1024, 4000, 16384, 20000])
def test_round_trip(transport: UsbBulkTransport, size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    transport.write(payload)
    assert transport.read_exact(size, 2.0) == payload


def test_header_then_payload_from_one_device_write(
    backend: SimulatedUsbBackend, transport: UsbBulkTransport
) -> None:
    header, payload = b"H" * 24, bytes(range(200))
    transport.write(header + payload)  # echoed back as one device transfer of 224 bytes
    assert transport.read_exact(24, 1.0) == header
    assert transport.read_exact(200, 1.0) == payload
    device = backend.devices[0]
    assert [r.length for r in device.transfers if r.direction == "in"] == [224]


def test_read_returns_at_most_max_bytes_and_keeps_the_rest(transport: UsbBulkTransport) -> None:
    transport.write(b"abcdef")
    assert transport.read(2, 1.0) == b"ab"
    assert transport.read(100, 0) == b"cdef"
    assert transport.read(100, 0) == b""


def test_whole_packet_payload_read_by_exact_length_does_not_wait(
    transport: UsbBulkTransport,
) -> None:
    transport.write(b"h" * 24)
    assert transport.read_exact(24, 1.0) == b"h" * 24
    transport.write(b"p" * 1024)
    started = time.monotonic()
    assert transport.read_exact(1024, 1.0) == b"p" * 1024
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize(
    ("size", "packet", "zlps"),
    [
        (512, 512, 1),
        (511, 512, 0),
        (513, 512, 0),
        (1024, 512, 1),
        (16384, 512, 1),
        (64, 64, 1),
        (65, 64, 0),
        (1024, 1024, 1),
        (512, 1024, 0),
    ],
)
def test_zlp_after_whole_packet_writes(size: int, packet: int, zlps: int) -> None:
    device = make_device(max_packet_size=packet)
    with SimulatedUsbBackend([device]) as sim, UsbBulkTransport(backend=sim) as link:
        link.write(b"z" * size)
        assert link.read_exact(size, 1.0) == b"z" * size
        outs = [r.length for r in device.transfers if r.direction == "out"]
        assert outs == [size] + [0] * zlps
        assert device.zlp_count == sim.zlp_count == zlps
        assert device.missing_zlp_count == device.stray_zlp_count == 0


def test_empty_write_sends_nothing(
    backend: SimulatedUsbBackend, transport: UsbBulkTransport
) -> None:
    transport.write(b"")
    assert backend.transfers == []
    assert backend.zlp_count == 0


def test_read_times_out_with_empty_bytes(transport: UsbBulkTransport) -> None:
    started = time.monotonic()
    assert transport.read(64, 0.1) == b""
    assert 0.09 <= time.monotonic() - started < 1.0
    assert transport.read(64, 0) == b""
    assert transport.read(64, -1) == b""
    with pytest.raises(ReadExactTimeout):
        transport.read_exact(10, 0.05)
    with pytest.raises(ValueError):
        transport.read(0, 1)


def test_reset_input_drops_buffered_and_queued_bytes(transport: UsbBulkTransport) -> None:
    transport.write(b"stale answer")
    assert transport.read(5, 1.0) == b"stale"  # the rest sits in the surplus buffer
    transport.write(b"queued on the device")
    time.sleep(0.1)  # let the engine echo it into the IN queue
    transport.reset_input()
    assert transport.read(64, 0.05) == b""


def test_unplug_during_read_raises_transport_closed(
    backend: SimulatedUsbBackend, transport: UsbBulkTransport
) -> None:
    device = backend.devices[0]
    unplugger = threading.Timer(0.1, device.unplug)
    unplugger.start()
    started = time.monotonic()
    with pytest.raises(TransportClosed, match="USB device went away"):
        transport.read(64, 5.0)
    assert time.monotonic() - started < 3.0
    with pytest.raises(TransportClosed, match="went away"):
        transport.write(b"x")
    assert find_adb_devices(backend=backend) == []
    assert transport.is_open  # until the caller closes it
    transport.close()
    unplugger.join()


def test_unplug_returns_buffered_bytes_first(
    backend: SimulatedUsbBackend, transport: UsbBulkTransport
) -> None:
    transport.write(b"abcd")
    assert transport.read(2, 1.0) == b"ab"
    backend.devices[0].unplug()
    assert transport.read(10, 0) == b"cd"
    with pytest.raises(TransportClosed):
        transport.read(10, 0)


def test_write_to_a_device_that_does_not_read_times_out() -> None:
    class StuckBackend(SimulatedUsbBackend):
        def bulk_write(
            self, dev_handle: object, ep: int, intf: int, data: object, timeout: int
        ) -> int:
            raise usb.core.USBTimeoutError("Operation timed out", -7, 110)

    with (
        StuckBackend([make_device(engine=SilentEngine())]) as sim,
        UsbBulkTransport(backend=sim, timeout=0.2) as link,
        pytest.raises(TransportTimeout, match=r"did not accept 3 bytes within 0\.2 s"),
    ):
        link.write(b"abc")


def test_partial_write_is_a_timeout() -> None:
    class ShortBackend(SimulatedUsbBackend):
        def bulk_write(
            self, dev_handle: object, ep: int, intf: int, data: object, timeout: int
        ) -> int:
            return 1

    with (
        ShortBackend([make_device()]) as sim,
        UsbBulkTransport(backend=sim) as link,
        pytest.raises(TransportTimeout, match="accepted 1 of 3 bytes"),
    ):
        link.write(b"abc")


def test_close_from_another_thread_ends_a_blocked_read(transport: UsbBulkTransport) -> None:
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            transport.read(64, 5.0)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    transport.close()
    thread.join(3.0)
    assert not thread.is_alive()
    assert time.monotonic() - started < 1.0
    assert len(errors) == 1 and isinstance(errors[0], TransportClosed)


def test_pyusb_logging_is_not_muted() -> None:
    # pyusb mutes its "usb" logger at import; posdiag wants its errors routed like any other.
    assert logging.getLogger("usb").getEffectiveLevel() <= logging.ERROR
