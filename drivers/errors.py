"""Typed errors shared by every layer below the agent.

The agent turns any of these into one readable line and an exit code, so every error carries a
message written for the person at the bench, not for the developer.
"""


class PosdiagError(Exception):
    """Base of every error posdiag raises on purpose; its message is shown to the user."""


class AddressError(PosdiagError, ValueError):
    """A device address string could not be understood."""


class TransportError(PosdiagError):
    """The byte pipe to the terminal failed."""


class TransportOpenError(TransportError):
    """The transport could not be opened (no such device, connection refused, busy port)."""


class DeviceNotFound(TransportOpenError):
    """No attached device matches the address (nothing plugged in, or none we may open)."""


class ConnectionRefused(TransportOpenError):
    """A TCP connect was refused: something answers at that address, nothing listens on the port.

    Typed so a driver can say what that means for its family (an Android unit whose network
    debugging is off refuses its ADB port) without claiming more: a wrong port, or another
    machine at that address, refuses just the same.
    """


class TransportTimeout(TransportError):
    """Nothing (or not enough) arrived before a deadline."""


class DeadlineExceeded(TransportTimeout):
    """The overall deadline of a check or wipe passed while the terminal was still busy.

    Raised by every read or exchange after ``Terminal.set_deadline(at)``'s instant, whatever the
    device keeps sending, so a hostile or stuck terminal cannot hold a station slot forever.
    """

    def __init__(self, message: str = "the terminal did not finish in time") -> None:
        super().__init__(message)


class TransportClosed(TransportError):
    """The other side went away: cable pulled, socket closed, simulator stopped."""


class ProtocolError(PosdiagError):
    """Bytes on the wire do not follow the protocol (malformed frame, bad checksum, garbage)."""


class ResponseTooLarge(ProtocolError):
    """One command's answer grew past its cap (bytes, lines or messages): the device is faulty.

    Caps keep the station's memory bounded whatever a terminal sends; the message says which cap
    was hit, in words for the person at the bench.
    """


class DeviceError(PosdiagError):
    """The terminal understood us and refused or failed the operation."""


class UnsupportedError(PosdiagError):
    """The terminal or its protocol cannot answer this question; never guessed around."""


class AuthenticationError(DeviceError):
    """The terminal rejected our credentials (a ZVT password, an ADB key)."""


class DebuggingLockedError(AuthenticationError):
    """The terminal lets no debugging host in at all: a production-locked unit, not a fault.

    Its binding can still be checked through its backend, and the message says so. An
    AuthenticationError because that is how the agent treats a door the terminal keeps shut:
    one line for the operator and the usage exit code, never "check the cable" (the cable is
    fine), and never a report built from a terminal that said nothing.
    """


class UsbDebuggingOff(DeviceNotFound, DebuggingLockedError):
    """A terminal is attached on USB, but without an ADB interface: its USB debugging is off.

    Android shows the ADB interface only while USB debugging is enabled; a production-locked
    unit enumerates with its MTP/PTP or charging interface alone. Raised by the USB transport,
    which knows no family, so the ADB driver maps it to its own, translated message.
    Also a DeviceNotFound: there is no ADB device to open, which is what the transport was
    asked for.

    Attributes:
        device: the attached unit(s), as the transport describes them (``usb 2fb8:2201
            serial 0820533061``), for the driver's message.
    """

    def __init__(self, message: str, device: str = "") -> None:
        super().__init__(message)
        self.device = device
