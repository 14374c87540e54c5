"""ZVT-specific errors, each a subclass of the shared typed errors."""

from __future__ import annotations

from ..errors import AuthenticationError, DeviceError, ProtocolError, TransportTimeout


class ZvtDecodeError(ProtocolError):
    """Bytes that claim to be ZVT but cannot be decoded (length, BMP, TLV, BCD)."""


class ZvtProtocolError(ProtocolError):
    """The peer sends bytes, but not ZVT (wrong protocol, wrong baud rate, a babbling line)."""


class ZvtTransmissionError(ProtocolError):
    """The link layer gave up: NAKs or missing ACKs after the allowed repeats (PA00P016 §3.5)."""


class ZvtTimeoutError(TransportTimeout):
    """A ZVT timer (T2, T3 or T4) expired waiting for the terminal."""


class ZvtNoAnswerError(ZvtTransmissionError, TransportTimeout):
    """Every repeat of a frame met silence: nothing came back at all, not even noise.

    Still a transmission error (the link layer gave up), and also a timeout, so that the agent
    tells the operator to check the cable and power rather than blaming the protocol.
    """


class ZvtCommandError(DeviceError):
    """The terminal refused a command (``84 xx``) or aborted it (``06 1E <rc>``).

    Attributes:
        code: the error id of ``84 xx`` or the result code of ``06 1E``.
        command: the command name, for the message.
    """

    def __init__(self, message: str, *, code: int | None = None, command: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.command = command


class ZvtPasswordError(ZvtCommandError, AuthenticationError):
    """The terminal rejected the ZVT password."""


class ZvtNotSupportedError(ZvtCommandError):
    """The terminal answered ``84 83 00``: it does not offer this command."""
