"""The one error type of the certificate package, shared by its modules."""

from __future__ import annotations

from posdiag.drivers.errors import PosdiagError

__all__ = ["CertificateError"]


class CertificateError(PosdiagError):
    """A certificate could not be built, signed, stored or the station key could not be used."""
