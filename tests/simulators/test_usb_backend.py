"""The simulated pyusb backend, driven through plain pyusb as any USB code would use it."""

from __future__ import annotations

import array
import errno
import threading
import time
import types
from collections.abc import Iterator

import pytest
import usb.core
import usb.util

from posdiag.drivers.transport.base import Transport
from posdiag.simulators.usb_backend import (
    MTP_INTERFACE,
    SimulatedUsbBackend,
    SimulatedUsbDevice,
    TransferRecord,
)

VID, PID, SERIAL = 0x2FB8, 0x2208, "0123456789"
OUT, IN = 0x01, 0x81


class RecordingEchoEngine:
    """Remembers every chunk that reached the device and echoes it back."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        while not stop.is_set():
            data = transport.read(1 << 20, 0.02)
            if data:
                self.received.append(data)
                transport.write(data)


class SenderEngine:
    """Sends the given messages, one device write each, as soon as it is served."""

    def __init__(self, *messages: bytes) -> None:
        self.messages = messages

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        for message in self.messages:
            transport.write(message)
        stop.wait()


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
def engine() -> RecordingEchoEngine:
    return RecordingEchoEngine()


@pytest.fixture
def device(engine: RecordingEchoEngine) -> SimulatedUsbDevice:
    return SimulatedUsbDevice(VID, PID, SERIAL, "PAX", "A920", engine)


@pytest.fixture
def backend(device: SimulatedUsbDevice) -> Iterator[SimulatedUsbBackend]:
    with SimulatedUsbBackend([device]) as sim:
        yield sim


@pytest.fixture
def dev(backend: SimulatedUsbBackend) -> Iterator[usb.core.Device]:
    found = usb.core.find(backend=backend, idVendor=VID)
    assert found is not None
    try:
        yield found
    finally:
        usb.util.dispose_resources(found)


def test_pyusb_reads_every_descriptor(dev: usb.core.Device) -> None:
    assert (dev.idVendor, dev.idProduct, dev.bus, dev.address) == (VID, PID, 1, 2)
    assert (dev.manufacturer, dev.product, dev.serial_number) == ("PAX", "A920", SERIAL)
    assert dev.langids == (0x0409,)
    cfg = dev.get_active_configuration()
    assert cfg.bConfigurationValue == 1
    (intf,) = list(cfg)
    assert (intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (
        0xFF,
        0x42,
        0x01,
    )
    assert [(ep.bEndpointAddress, ep.wMaxPacketSize) for ep in intf] == [(OUT, 512), (IN, 512)]
    text = str(dev)  # walks every descriptor field pyusb knows, and the strings
    assert "ENDPOINT 0x81: Bulk IN" in text and "0123456789" in text
    raw = usb.util.get_string(dev, 2)
    assert raw == "A920"
    descriptor = dev.ctrl_transfer(0x80, 6, 0x0100, 0, 18)
    assert bytes(descriptor[8:12]) == VID.to_bytes(2, "little") + PID.to_bytes(2, "little")


def test_speed_follows_packet_size() -> None:
    devices = [
        SimulatedUsbDevice(VID, PID, str(size), None, None, RecordingEchoEngine(), size)
        for size in (64, 512, 1024)
    ]
    with SimulatedUsbBackend(devices) as sim:
        found = {d.serial_number: d for d in usb.core.find(find_all=True, backend=sim)}
        assert [found[s].speed for s in ("64", "512", "1024")] == [2, 3, 4]
        assert found["1024"].bcdUSB == 0x0300
        assert found["64"].manufacturer is None


def test_invalid_packet_size_is_refused(engine: RecordingEchoEngine) -> None:
    with pytest.raises(ValueError, match="not a valid bulk size"):
        SimulatedUsbDevice(VID, PID, SERIAL, None, None, engine, 500)


def test_hotplug_assigns_addresses_and_updates_enumeration(
    backend: SimulatedUsbBackend, device: SimulatedUsbDevice
) -> None:
    other = backend.add(SimulatedUsbDevice(VID, PID, "B", None, None, RecordingEchoEngine()))
    assert other.address == 3
    assert len(list(usb.core.find(find_all=True, backend=backend))) == 2
    device.unplug()
    assert [d.serial_number for d in usb.core.find(find_all=True, backend=backend)] == ["B"]
    backend.add(device)  # plugged back in: new address, like the kernel does
    assert device.attached and device.address == 4
    backend.remove(other)
    assert backend.devices == (device,)


def test_bulk_round_trip_and_transfer_log(
    dev: usb.core.Device, device: SimulatedUsbDevice, engine: RecordingEchoEngine
) -> None:
    assert not device.engine_running  # enumeration and string reads do not start it
    assert dev.write(OUT, b"hello", 1000) == 5
    assert bytes(dev.read(IN, 512, 1000)) == b"hello"
    assert engine.received == [b"hello"]
    assert list(device.transfers) == [
        TransferRecord("out", OUT, 5),
        TransferRecord("in", IN, 5),
    ]


def test_zlp_ends_a_whole_packet_write(
    dev: usb.core.Device, device: SimulatedUsbDevice, engine: RecordingEchoEngine
) -> None:
    dev.write(OUT, b"a" * 512, 1000)
    time.sleep(0.05)
    assert engine.received == []  # the device's 16 KiB read has not ended yet
    dev.write(OUT, b"", 1000)
    assert bytes(dev.read(IN, 512, 1000)) == b"a" * 512
    assert (device.zlp_count, device.missing_zlp_count, device.stray_zlp_count) == (1, 0, 0)


def test_missing_zlp_stalls_then_merges(
    dev: usb.core.Device, device: SimulatedUsbDevice, engine: RecordingEchoEngine
) -> None:
    dev.write(OUT, b"a" * 512, 1000)
    with pytest.raises(usb.core.USBTimeoutError):
        dev.read(IN, 1024, 100)
    dev.write(OUT, b"b" * 24, 1000)
    assert bytes(dev.read(IN, 1024, 1000)) == b"a" * 512 + b"b" * 24
    assert engine.received == [b"a" * 512 + b"b" * 24]
    assert device.missing_zlp_count == 1


def test_full_device_read_is_delivered_without_zlp(
    dev: usb.core.Device, engine: RecordingEchoEngine
) -> None:
    dev.write(OUT, b"c" * 16384, 1000)
    assert bytes(dev.read(IN, 16384, 1000)) == b"c" * 16384
    assert engine.received == [b"c" * 16384]


def test_empty_write_is_a_stray_zlp(dev: usb.core.Device, device: SimulatedUsbDevice) -> None:
    dev.write(OUT, b"", 1000)
    assert (device.zlp_count, device.stray_zlp_count) == (1, 1)


def test_immediate_delivery_when_read_size_is_none(engine: RecordingEchoEngine) -> None:
    device = SimulatedUsbDevice(VID, PID, SERIAL, None, None, engine, device_read_size=None)
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        dev.write(OUT, b"a" * 512, 1000)
        assert bytes(dev.read(IN, 512, 1000)) == b"a" * 512
        assert device.missing_zlp_count == 0
        usb.util.dispose_resources(dev)


def test_read_timeout_raises_pyusb_timeout_error(dev: usb.core.Device) -> None:
    started = time.monotonic()
    with pytest.raises(usb.core.USBTimeoutError) as info:
        dev.read(IN, 512, 50)
    assert info.value.errno == errno.ETIMEDOUT
    assert info.value.backend_error_code == -7
    assert time.monotonic() - started < 1.0


def device_sending(*messages: bytes) -> SimulatedUsbDevice:
    return SimulatedUsbDevice(VID, PID, SERIAL, None, None, SenderEngine(*messages))


def test_device_sends_no_zlp_so_an_oversized_read_waits() -> None:
    with SimulatedUsbBackend([device_sending(b"x" * 512, b"y" * 10)]) as sim:
        dev = usb.core.find(backend=sim)
        # Both device writes land in one host transfer: 512 bytes did not end it.
        assert bytes(dev.read(IN, 4096, 1000)) == b"x" * 512 + b"y" * 10
        usb.util.dispose_resources(dev)
    with SimulatedUsbBackend([device_sending(b"x" * 512)]) as sim:
        dev = usb.core.find(backend=sim)
        started = time.monotonic()
        assert bytes(dev.read(IN, 4096, 150)) == b"x" * 512  # partial data at the timeout
        assert time.monotonic() - started >= 0.14
        usb.util.dispose_resources(dev)


def test_short_buffer_splits_on_packets_or_overflows() -> None:
    with SimulatedUsbBackend([device_sending(b"x" * 1000, b"y" * 600)]) as sim:
        dev = usb.core.find(backend=sim)
        assert bytes(dev.read(IN, 512, 1000)) == b"x" * 512
        assert bytes(dev.read(IN, 512, 1000)) == b"x" * 488
        with pytest.raises(usb.core.USBError) as info:
            dev.read(IN, 100, 1000)  # buffer ends inside a packet of a longer transfer
        assert info.value.errno == errno.EOVERFLOW
        usb.util.dispose_resources(dev)


def test_read_into_caller_buffer(dev: usb.core.Device) -> None:
    dev.write(OUT, b"abc", 1000)
    buffer = array.array("B", bytes(512))
    assert dev.read(IN, buffer, 1000) == 3
    assert bytes(buffer[:3]) == b"abc"


def test_unplug_fails_transfers_with_enodev(
    dev: usb.core.Device, device: SimulatedUsbDevice
) -> None:
    dev.write(OUT, b"start the engine", 1000)
    dev.read(IN, 512, 1000)
    unplugger = threading.Timer(0.05, device.unplug)
    unplugger.start()
    with pytest.raises(usb.core.USBError) as info:
        dev.read(IN, 512, 5000)
    assert info.value.errno == errno.ENODEV
    with pytest.raises(usb.core.USBError) as info:
        dev.write(OUT, b"x", 1000)
    assert info.value.errno == errno.ENODEV
    unplugger.join()  # unplug() returns once the engine thread has stopped
    assert not device.engine_running


def test_access_denied_blocks_open_but_not_descriptors(engine: RecordingEchoEngine) -> None:
    device = SimulatedUsbDevice(VID, PID, SERIAL, None, None, engine, access_denied=True)
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        assert dev.idVendor == VID
        assert dev.langids == ()
        with pytest.raises(ValueError, match="no langid"):
            dev.serial_number  # noqa: B018
        with pytest.raises(usb.core.USBError) as info:
            dev.write(OUT, b"x", 1000)
        assert info.value.errno == errno.EACCES


def test_second_handle_cannot_claim(backend: SimulatedUsbBackend, dev: usb.core.Device) -> None:
    usb.util.claim_interface(dev, 0)
    other = usb.core.Device(backend.devices[0], backend)
    with pytest.raises(usb.core.USBError) as info:
        usb.util.claim_interface(other, 0)
    assert info.value.errno == errno.EBUSY
    usb.util.dispose_resources(dev)
    usb.util.claim_interface(other, 0)
    usb.util.dispose_resources(other)


def test_kernel_driver_must_be_detached_before_claim(engine: RecordingEchoEngine) -> None:
    device = SimulatedUsbDevice(VID, PID, SERIAL, None, None, engine, kernel_driver_active=True)
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        assert dev.is_kernel_driver_active(0)
        with pytest.raises(usb.core.USBError) as info:
            usb.util.claim_interface(dev, 0)
        assert info.value.errno == errno.EBUSY
        dev.detach_kernel_driver(0)
        usb.util.claim_interface(dev, 0)
        with pytest.raises(usb.core.USBError):
            dev.attach_kernel_driver(0)  # still claimed
        usb.util.release_interface(dev, 0)
        dev.attach_kernel_driver(0)
        assert device.kernel_driver[0] and device.detach_count == 1
        usb.util.dispose_resources(dev)


def test_unknown_control_requests_stall(dev: usb.core.Device) -> None:
    with pytest.raises(usb.core.USBError) as info:
        dev.ctrl_transfer(0xC0, 0x33, 0, 0, 2)  # vendor request, e.g. Android accessory
    assert info.value.errno == errno.EPIPE


def test_other_interfaces_carry_no_data(engine: RecordingEchoEngine) -> None:
    device = SimulatedUsbDevice(
        VID, PID, SERIAL, None, None, engine, extra_interfaces=[(0x06, 0x01, 0x01)]
    )
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        assert [i.bInterfaceNumber for i in dev.get_active_configuration()] == [0, 1]
        with pytest.raises(usb.core.USBError) as info:
            dev.write(0x02, b"x", 1000)
        assert info.value.errno == errno.EPIPE
        assert dev.write(OUT, b"x", 1000) == 1
        usb.util.dispose_resources(dev)


def test_engine_closing_its_end_looks_like_a_disconnect() -> None:
    class QuittingEngine:
        def serve(self, transport: Transport, stop: threading.Event) -> None:
            transport.read(1 << 20, 1.0)
            transport.close()

    device = SimulatedUsbDevice(VID, PID, SERIAL, None, None, QuittingEngine())
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        dev.write(OUT, b"bye", 1000)
        with pytest.raises(usb.core.USBError) as info:
            dev.read(IN, 512, 2000)
        assert info.value.errno == errno.ENODEV
        assert not device.attached
        assert list(usb.core.find(find_all=True, backend=sim)) == []


def test_reset_drops_half_sent_data(dev: usb.core.Device, device: SimulatedUsbDevice) -> None:
    dev.write(OUT, b"a" * 512, 1000)  # waits for a ZLP that never comes
    dev.reset()
    dev.write(OUT, b"b", 1000)
    assert bytes(dev.read(IN, 512, 1000)) == b"b"


def test_close_stops_engines_and_they_restart(
    backend: SimulatedUsbBackend, dev: usb.core.Device, device: SimulatedUsbDevice
) -> None:
    dev.write(OUT, b"1", 1000)
    assert device.engine_running
    backend.close()
    assert not device.engine_running
    dev.write(OUT, b"2", 1000)
    assert bytes(dev.read(IN, 512, 1000)) == b"2"


# --- production-locked units and reboots ---------------------------------------------------------


class LockableEngine(RecordingEchoEngine):
    """An echo engine with the ``state.usb_debugging`` switch the ADB simulator has."""

    def __init__(self, usb_debugging: bool) -> None:
        super().__init__()
        self.state = types.SimpleNamespace(usb_debugging=usb_debugging)


def interface_classes(dev: usb.core.Device) -> list[tuple[int, int, int]]:
    return [
        (i.bInterfaceClass, i.bInterfaceSubClass, i.bInterfaceProtocol)
        for i in dev.get_active_configuration()
    ]


def test_debugging_off_leaves_only_mtp_on_the_bus() -> None:
    engine = LockableEngine(usb_debugging=False)
    device = SimulatedUsbDevice(VID, PID, SERIAL, "PAX", "A920", engine)
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        assert interface_classes(dev) == [MTP_INTERFACE]
        assert usb.util.get_string(dev, dev.iSerialNumber) == SERIAL  # still readable
        with pytest.raises(ValueError, match="Invalid endpoint"):
            dev.write(OUT, b"x", 1000)  # the ADB endpoints are gone with the interface
        assert not device.engine_running
        usb.util.dispose_resources(dev)

        engine.state.usb_debugging = True  # switched on: the ADB interface is back
        dev = usb.core.find(backend=sim)
        assert interface_classes(dev) == [(0xFF, 0x42, 0x01)]
        assert dev.write(OUT, b"x", 1000) == 1
        usb.util.dispose_resources(dev)


def test_debugging_off_keeps_the_other_interfaces_only() -> None:
    engine = LockableEngine(usb_debugging=False)
    device = SimulatedUsbDevice(
        VID, PID, SERIAL, None, None, engine, extra_interfaces=[(0x06, 0x01, 0x01)]
    )
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        assert interface_classes(dev) == [(0x06, 0x01, 0x01)]  # PTP, no ADB
        usb.util.dispose_resources(dev)


class RebootingEngine:
    """Goes down for ``seconds`` when it reads ``reboot``, as adbd's ``reboot:`` service does."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reboots = 0
        self.offline_until = 0.0

    def serve(self, transport: Transport, stop: threading.Event) -> None:
        while not stop.is_set():
            data = transport.read(1 << 20, 0.02)
            if data == b"reboot":
                self.reboots += 1
                self.offline_until = time.monotonic() + self.seconds
                transport.close()
                return
            if data:
                transport.write(data)


def test_reboot_re_enumerates_by_itself_after_the_delay() -> None:
    engine = RebootingEngine(0.3)
    device = SimulatedUsbDevice(VID, PID, SERIAL, None, None, engine)
    with SimulatedUsbBackend([device]) as sim:
        dev = usb.core.find(backend=sim)
        first_address = dev.address
        dev.write(OUT, b"reboot", 1000)
        usb.util.dispose_resources(dev)
        deadline = time.monotonic() + 1.0
        while device.attached and time.monotonic() < deadline:  # the engine closes its end
            time.sleep(0.01)
        assert not device.attached and device.rebooting
        assert usb.core.find(backend=sim) is None  # off the bus while it boots

        deadline = time.monotonic() + 3.0
        while not device.attached and time.monotonic() < deadline:
            time.sleep(0.02)
        assert device.attached and not device.rebooting
        assert time.monotonic() >= engine.offline_until
        dev = usb.core.find(backend=sim)
        assert dev is not None and dev.address != first_address  # a new enumeration
        dev.write(OUT, b"hello", 1000)
        assert bytes(dev.read(IN, 512, 1000)) == b"hello"
        usb.util.dispose_resources(dev)


def test_closing_the_backend_cancels_a_pending_re_enumeration() -> None:
    engine = RebootingEngine(30.0)
    device = SimulatedUsbDevice(VID, PID, SERIAL, None, None, engine)
    sim = SimulatedUsbBackend([device])
    dev = usb.core.find(backend=sim)
    dev.write(OUT, b"reboot", 1000)
    with pytest.raises(usb.core.USBError):
        dev.read(IN, 512, 1000)
    usb.util.dispose_resources(dev)
    assert device.rebooting
    sim.close()  # the autouse fixture fails the test if the timer thread outlives this
    assert not device.rebooting and not device.attached


def test_a_vanished_engine_without_reboot_stays_unplugged() -> None:
    engine = RebootingEngine(0.0)
    engine.reboots = 0
    device = SimulatedUsbDevice(VID, PID, SERIAL, None, None, engine)
    with SimulatedUsbBackend([device]):
        device._went_away("power loss")  # not a reboot: the cable stays "pulled"
        assert not device.attached and not device.rebooting
