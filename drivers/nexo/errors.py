"""nexo-specific errors, each a subclass of the shared typed errors.

Two families: a message that is not well-formed nexo JSON (:class:`NexoDecodeError`, a
ProtocolError like every other family's decode error), and a message that cannot be decrypted or
authenticated (:class:`NexoCryptoError`). The crypto error deliberately says the same thing for
every cause (bad padding, bad HMAC, bad Base64, bad nonce, header mismatch): a peer that learns
*which* check failed has an oracle, and the person at the bench needs one fact only, that the
shared key on the terminal and in posdiag differ.
"""

from __future__ import annotations

from ..errors import AuthenticationError, PosdiagError, ProtocolError
from ..i18n import _

__all__ = ["NexoCryptoError", "NexoDecodeError", "NexoError", "NexoUnknownKeyError"]


class NexoError(PosdiagError):
    """Base of every error the nexo (Adyen Terminal API) codec and driver raise on purpose."""


class NexoDecodeError(NexoError, ProtocolError):
    """A message that is not well-formed nexo JSON: bad JSON, wrong shape, too large, too deep.

    The message a person reads is one translated sentence; the technical ``detail`` (English,
    short, never containing message content beyond field names) follows it, as the ZVT decode
    errors do.

    Attributes:
        detail: what was wrong, for logs and for a simulator's ``errors=`` reply.
        path: the dotted path of the offending field (``SaleToPOIRequest.DiagnosisRequest``),
            when one is known; a device-role caller can echo it the way a terminal does.
    """

    def __init__(self, detail: str, *, path: str | None = None) -> None:
        super().__init__(
            _("a payment terminal message could not be read: {detail}").format(detail=detail)
        )
        self.detail = detail
        self.path = path


class NexoCryptoError(NexoError, AuthenticationError):
    """An encrypted message could not be decrypted or authenticated with the key we hold.

    One message for every cause on purpose (see the module docstring). Also an
    AuthenticationError: to the agent, a wrong shared key is a credential the terminal and the
    station disagree on, which the operator fixes in configuration, not at the cable.
    """

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message
            if message is not None
            else _("the terminal's message could not be decrypted: the shared key does not match")
        )


class NexoUnknownKeyError(NexoCryptoError):
    """The message names a key (identifier and version) that posdiag does not hold.

    Safe to tell apart from a wrong key: the identifier and version travel in clear text, so
    saying which one is missing reveals nothing an eavesdropper did not already see.

    Attributes:
        identifier: the KeyIdentifier the message named (cleaned, bounded).
        version: the KeyVersion it named, or None when it was not a number.
    """

    def __init__(self, identifier: str, version: int | None) -> None:
        super().__init__(
            _(
                "the terminal uses an encryption key posdiag does not have"
                " ({identifier}, version {version})"
            ).format(identifier=identifier, version="?" if version is None else version)
        )
        self.identifier = identifier
        self.version = version
