"""ADB-specific errors, each a subclass of the shared typed errors."""

from __future__ import annotations

from ..errors import (
    AuthenticationError,
    ConnectionRefused,
    DebuggingLockedError,
    DeviceError,
    TransportClosed,
    TransportTimeout,
    UnsupportedError,
    UsbDebuggingOff,
)


class AdbAuthError(AuthenticationError):
    """The device did not accept our key (the operator did not allow it, or refused it)."""


class AdbTimeoutError(TransportTimeout):
    """The device did not answer in time."""


class AdbCommandError(DeviceError):
    """The device refused a service (stream refused) or a file operation failed."""


class AdbUnsupportedError(UnsupportedError):
    """The device needs something posdiag does not speak (e.g. TLS wireless debugging)."""


class AdbDebuggingLockedError(AdbAuthError, DebuggingLockedError):
    """The terminal does not let a debugging host in at all.

    USB debugging is disabled (adbd closes the link without a word) or its operator never
    allows a key.

    A production-locked unit, not a fault: its message sends the operator to the unit's
    backend, through which its binding can still be checked, instead of a protocol error.
    """


class AdbDebuggingDisabledError(AdbDebuggingLockedError, TransportClosed):
    """USB debugging is disabled: the link dropped before the terminal sent a single byte.

    Also a TransportClosed, because that is what happened on the wire and what callers that
    handle a dropped link look for.
    """


class AdbPortClosedError(ConnectionRefused):
    """The ADB port of a network address refused the connection.

    What an Android unit whose network debugging is off gives, but also a wrong port or another
    machine at that address: not a locked unit for sure, so an unreachable one whose message
    names the likely cause and the backend.
    """


class AdbUsbDebuggingOffError(AdbDebuggingLockedError, UsbDebuggingOff):
    """A terminal is attached on USB without an ADB interface: its USB debugging is off.

    The driver's translated wording of the transport's :class:`UsbDebuggingOff`; still a
    DeviceNotFound (there is no ADB device to open) for callers that look for one.
    """
