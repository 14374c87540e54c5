"""ADB-specific errors, each a subclass of the shared typed errors."""

from __future__ import annotations

from ..errors import AuthenticationError, DeviceError, TransportTimeout, UnsupportedError


class AdbAuthError(AuthenticationError):
    """The device did not accept our key (the operator did not allow it, or refused it)."""


class AdbTimeoutError(TransportTimeout):
    """The device did not answer in time."""


class AdbCommandError(DeviceError):
    """The device refused a service (stream refused) or a file operation failed."""


class AdbUnsupportedError(UnsupportedError):
    """The device needs something posdiag does not speak (e.g. TLS wireless debugging)."""
