"""The nexo driver's typed errors: key and CA configuration, TLS identity, terminal refusals.

The codec's own errors (a message that cannot be read, a message that cannot be decrypted) are
in :mod:`.errors`; these are the driver's and the transport's, each a subclass of the shared
typed errors so the agent's existing handling (one readable line, the exit code, ``zh_CN``)
applies without a nexo branch:

* configuration the operator fixes before anything is sent (a key file others can read, no CA
  for the terminal's certificate): :class:`~posdiag.drivers.errors.AddressError`, the usage
  exit code;
* a terminal whose certificate is not the one expected, or that refuses posdiag's key:
  :class:`~posdiag.drivers.errors.AuthenticationError`, one line in the driver's words and no
  report (nothing a terminal says over a connection we cannot trust is evidence);
* a terminal that is busy, or refuses a request: :class:`~posdiag.drivers.errors.DeviceError`;
* an answer that is not a nexo answer to what we asked:
  :class:`~posdiag.drivers.errors.ProtocolError`.
"""

from __future__ import annotations

from ..errors import AddressError, AuthenticationError, DeviceError, ProtocolError
from ..i18n import _
from .errors import NexoCryptoError, NexoError

__all__ = [
    "NexoBusyError",
    "NexoCertificateError",
    "NexoCommandError",
    "NexoConfigError",
    "NexoKeyRejectedError",
    "NexoKeyRequiredError",
    "NexoMessageFormatError",
    "NexoNoKeyOnTerminalError",
    "NexoReplyError",
]


class NexoConfigError(NexoError, AddressError):
    """A key file, passphrase file, CA file or ``[nexo]`` setting posdiag cannot use.

    An AddressError because it is fixed where the address and the station's settings are
    written, before any terminal is asked anything.
    """


class NexoCertificateError(NexoError, AuthenticationError):
    """The terminal's TLS certificate is not the one posdiag expects (chain or common name).

    Attributes:
        common_name: the certificate's CN as presented (cleaned, bounded), when one was read.
    """

    def __init__(self, message: str, common_name: str | None = None) -> None:
        super().__init__(message)
        self.common_name = common_name


class NexoKeyRejectedError(NexoCryptoError):
    """The terminal answered ``crypto error``: its shared key and posdiag's differ."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "the terminal rejected posdiag's key: check the key identifier, version and "
                "passphrase configured for it"
            )
        )


class NexoNoKeyOnTerminalError(NexoCryptoError):
    """posdiag encrypted its request but the terminal has no key and read it as clear text."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "the terminal has no encryption key configured, so it cannot read posdiag's "
                "encrypted request: set its key in the Adyen Customer Area, or (TEST terminals "
                "only) check it without a key"
            )
        )


class NexoKeyRequiredError(NexoCryptoError):
    """The terminal (a LIVE one) refuses clear-text requests: posdiag has no key for it."""

    def __init__(self) -> None:
        super().__init__(
            _(
                "the terminal accepts only encrypted requests: configure its key (key=FILE in "
                "the address, the station's [nexo] settings or POSDIAG_NEXO_* variables)"
            )
        )


class NexoBusyError(NexoError, DeviceError):
    """The terminal is in a transaction or its admin menu (``ErrorCondition: Busy``).

    Adyen's advice is not to retry blindly; the running transaction's ServiceID is what an
    AbortRequest needs.

    Attributes:
        service_id: the running transaction's ServiceID, when the terminal said it.
        admin_menu: the terminal's admin menu is open (nothing to abort: close it on the unit).
    """

    def __init__(self, service_id: str | None = None, *, admin_menu: bool = False) -> None:
        if admin_menu:
            message = _(
                "the terminal's admin menu is open: close it on the terminal, then try again"
            )
        elif service_id:
            message = _(
                "the terminal is busy with a transaction (service {service}): finish or cancel "
                "it on the terminal, then try again"
            ).format(service=service_id)
        else:
            message = _("the terminal is busy: finish what it is doing, then try again")
        super().__init__(message)
        self.service_id = service_id
        self.admin_menu = admin_menu


class NexoCommandError(NexoError, DeviceError):
    """The terminal answered ``Result: Failure`` with another ErrorCondition.

    Attributes:
        condition: the ErrorCondition (cleaned), e.g. ``NotAllowed``; None when absent.
        category: the request's MessageCategory.
    """

    def __init__(self, message: str, *, condition: str | None, category: str) -> None:
        super().__init__(message)
        self.condition = condition
        self.category = category


class NexoMessageFormatError(NexoCommandError):
    """The terminal could not read posdiag's request (``ErrorCondition: MessageFormat``).

    Attributes:
        errors: what the terminal said was wrong, cleaned of control sequences and bounded.
    """

    def __init__(self, category: str, errors: str) -> None:
        if errors:
            message = _("the terminal refused posdiag's {category} request: {errors}").format(
                category=category, errors=errors
            )
        else:
            message = _("the terminal refused posdiag's {category} request as malformed").format(
                category=category
            )
        super().__init__(message, condition="MessageFormat", category=category)
        self.errors = errors


class NexoReplyError(NexoError, ProtocolError):
    """An answer that is not a nexo answer to the request sent (wrong status, header, shape)."""
