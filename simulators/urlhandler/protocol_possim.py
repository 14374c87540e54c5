"""``possim://`` pyserial URL handler: a serial port backed by an in-process simulator.

``serial.serial_for_url("possim://zvt/activated?latency=0")`` gives a port whose other end is the
``zvt`` simulator in scenario ``activated`` (query parameters are handed to the simulator as
options). Everything that accepts a serial URL, the CLI included, can therefore be exercised
end to end without hardware, and the serial code path itself gets tested, not bypassed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from serial.serialutil import (
    PortNotOpenError,
    SerialBase,
    SerialException,
    SerialTimeoutException,
    Timeout,
    to_bytes,
)

from posdiag.drivers.errors import TransportClosed, TransportTimeout
from posdiag.drivers.transport.memory import MemoryTransport
from posdiag.simulators.attach import MemoryAttachment

SCHEME = "possim"
_BLOCKING_SLICE = 1.0
"""With ``timeout=None`` reads wait in slices of this many seconds (the memory link has no
"forever"); the result is the same as blocking."""


def parse_possim_url(url: str) -> tuple[str, str, dict[str, str]]:
    """Split ``possim://family/scenario?k=v`` into family, scenario and options.

    Raises:
        SerialException: the URL is not a possim URL or names no family; pyserial callers
            expect this type for a bad port name.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() != SCHEME:
        raise SerialException(f"expected a URL like possim://zvt/activated, not {url!r}")
    family = parts.netloc.lower()
    if not family:
        raise SerialException(f"{url!r} names no simulator family (possim://FAMILY/SCENARIO)")
    scenario = parts.path.strip("/")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    return family, scenario, options


class Serial(SerialBase):
    """A pyserial port whose far end is a simulator running in a background thread.

    Line settings (baud rate, parity, handshake lines) are accepted and ignored: the link is a
    memory pipe, and the simulator does not model line noise unless a scenario asks for it.
    """

    is_open: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._attachment: MemoryAttachment | None = None
        self._host: MemoryTransport | None = None
        super().__init__(*args, **kwargs)

    def open(self) -> None:
        """Create the simulator named by the URL and connect to it.

        Raises:
            SerialException: bad URL, unknown family/scenario, or the simulator failed to start.
        """
        if self._port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        family, scenario, options = self.from_url(self.portstr)
        if "bus" in options:
            # a terminal on a simulated bus: its simulator lives on between opens
            from posdiag.simulators.bus import open_link

            try:
                attachment = open_link(options["bus"], family)
            except Exception as exc:
                raise SerialException(str(exc)) from exc
            self._host = attachment.host
        else:
            try:
                # Imported here, not at module level: pyserial reports an ImportError raised
                # while importing a handler module as "protocol not known", hiding the error.
                from posdiag.simulators.registry import create_engine

                engine = create_engine(family, scenario, options)
            except SerialException:
                raise
            except Exception as exc:
                raise SerialException(f"cannot start simulator {self.portstr}: {exc}") from exc
            attachment = MemoryAttachment(engine, description=f"possim://{family}/{scenario}")
            self._host = attachment.start()
        self._attachment = attachment
        self._reconfigure_port()
        self.is_open = True

    def from_url(self, url: str) -> tuple[str, str, dict[str, str]]:
        """Parse the port URL (pyserial's name for this hook); see :func:`parse_possim_url`."""
        return parse_possim_url(url)

    def close(self) -> None:
        """Stop the simulator; the port can be opened again (with a fresh simulator)."""
        self.is_open = False
        attachment, self._attachment = self._attachment, None
        self._host = None
        if attachment is not None:
            attachment.stop()

    def _require_host(self) -> MemoryTransport:
        if not self.is_open or self._host is None:
            raise PortNotOpenError()
        return self._host

    def _reconfigure_port(self) -> None:
        """Nothing to configure on a memory link."""

    @property
    def in_waiting(self) -> int:
        """Bytes received from the simulator and not read yet."""
        return self._require_host().pending

    @property
    def out_waiting(self) -> int:
        """Always 0: writes are handed to the simulator immediately."""
        self._require_host()
        return 0

    def read(self, size: int = 1) -> bytes:
        """Read up to ``size`` bytes, honouring pyserial's timeout (None blocks, 0 polls)."""
        host = self._require_host()
        timeout = Timeout(self._timeout)
        data = bytearray()
        while len(data) < size:
            left = timeout.time_left()
            try:
                data += host.read(size - len(data), _BLOCKING_SLICE if left is None else left)
            except TransportClosed as exc:
                if data:
                    break
                raise SerialException(f"simulator disconnected: {exc}") from exc
            if timeout.expired():
                break
        return bytes(data)

    def write(self, data: Any) -> int:
        """Hand ``data`` to the simulator."""
        host = self._require_host()
        payload = to_bytes(data)
        try:
            host.write(payload)
        except TransportTimeout as exc:
            raise SerialTimeoutException(str(exc)) from exc
        except TransportClosed as exc:
            raise SerialException(f"simulator disconnected: {exc}") from exc
        return len(payload)

    def reset_input_buffer(self) -> None:
        """Discard bytes from the simulator that were not read yet."""
        self._require_host().reset_input()

    def reset_output_buffer(self) -> None:
        """Nothing is ever buffered on the way out."""
        self._require_host()

    def _update_break_state(self) -> None:
        """Breaks are not simulated."""

    def _update_rts_state(self) -> None:
        """RTS is accepted and ignored."""

    def _update_dtr_state(self) -> None:
        """DTR is accepted and ignored."""

    @property
    def cts(self) -> bool:
        """Clear To Send: the simulator is always ready."""
        self._require_host()
        return True

    @property
    def dsr(self) -> bool:
        """Data Set Ready: the simulator is always powered."""
        self._require_host()
        return True

    @property
    def ri(self) -> bool:
        """Ring Indicator: never ringing."""
        self._require_host()
        return False

    @property
    def cd(self) -> bool:
        """Carrier Detect: always present."""
        self._require_host()
        return True
