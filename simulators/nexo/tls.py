"""TLS material for a simulated nexo terminal: a private CA and a leaf named as Adyen names it.

A real Adyen terminal presents a certificate chained to Adyen's root whose CN is
``<POIID>.test.terminal.adyen.com``; the address does not match that name, so clients check the
chain and then the CN (the official libraries' ``TerminalCommonNameValidator``, the Node
library's CN check). The simulator cannot hold Adyen's key, so it makes a private CA at start
and issues a leaf with that CN, plus SAN IP ``127.0.0.1`` and DNS ``localhost`` for generic
clients that check the host name. Clients trust the CA file (``ca.pem``) the simulator writes.

Key generation is the slow part (an EC P-256 key is milliseconds, RSA would be much more), and
a test session starts many simulated terminals: :func:`material_for` caches the CA once per
process and the leaf per POIID. The private keys never leave the process except as the leaf
key file written with mode 0600 into the simulator's 0700 directory (``ssl`` loads it from a
file).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CN_SUFFIX", "TlsMaterial", "common_name", "material_for", "write_material"]

CN_SUFFIX = ".test.terminal.adyen.com"
"""A TEST terminal's certificate name after its POIID (reference §7)."""
CA_NAME = "posdiag simulated Adyen terminal CA (not Adyen)"
VALIDITY = dt.timedelta(days=30)
"""Lifetime of the simulator's certificates: long enough for any session, short if leaked."""
BACKDATE = dt.timedelta(hours=1)
"""Certificates start an hour ago: a client whose clock is slightly behind still accepts them."""
CACHE_LIMIT = 256
"""Leaves remembered per process (one per POIID); a fleet larger than that regenerates."""

_lock = threading.Lock()
_ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None
_leaves: dict[str, TlsMaterial] = {}


@dataclass(frozen=True)
class TlsMaterial:
    """PEM bytes of the CA certificate and of the leaf (certificate + key) for one POIID."""

    poiid: str
    ca_pem: bytes
    leaf_pem: bytes
    key_pem: bytes


def common_name(poiid: str) -> str:
    """The CN a TEST terminal's certificate carries: ``<POIID>.test.terminal.adyen.com``."""
    return f"{poiid}{CN_SUFFIX}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    start = _now() - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _new_leaf(
    poiid: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> TlsMaterial:
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - BACKDATE
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name(poiid))]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName(common_name(poiid)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return TlsMaterial(
        poiid=poiid,
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        leaf_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def material_for(poiid: str) -> TlsMaterial:
    """The CA and a leaf for ``poiid``, made once per process and POIID (thread-safe)."""
    global _ca
    with _lock:
        cached = _leaves.get(poiid)
        if cached is not None:
            return cached
        if _ca is None or _ca[1].not_valid_after_utc - _now() < dt.timedelta(days=1):
            _ca = _new_ca()
            _leaves.clear()  # issued by the old CA
        material = _new_leaf(poiid, *_ca)
        if len(_leaves) >= CACHE_LIMIT:
            _leaves.pop(next(iter(_leaves)))
        _leaves[poiid] = material
        return material


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` from its first byte (never more readable, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)  # an existing file keeps its old mode through O_CREAT


def write_material(material: TlsMaterial, directory: Path) -> tuple[Path, Path, Path]:
    """Write ``ca.pem`` (0644), ``leaf.pem`` and ``leaf.key`` (0600) into ``directory``.

    Returns:
        The paths of the CA file, the leaf certificate and the leaf key.
    """
    ca_path = directory / "ca.pem"
    leaf_path = directory / "leaf.pem"
    key_path = directory / "leaf.key"
    _write_private(ca_path, material.ca_pem, 0o644)
    _write_private(leaf_path, material.leaf_pem, 0o600)
    _write_private(key_path, material.key_pem, 0o600)
    return ca_path, leaf_path, key_path
