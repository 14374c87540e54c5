"""HTTPS to a nexo terminal: one bounded POST at a time, to a certificate checked by its name.

A terminal on the shop network is an HTTPS server (``POST https://<ip>:8443/nexo``, reference
nexo.md §1). Its certificate chains to Adyen's root (or, for a simulator or a lab unit, to the
CA the address names), but it is issued to a name, not to the address it is reached at: the
host name never matches. So, as Adyen's own libraries do (§7), the chain is verified as usual
(``CERT_REQUIRED``) with host name matching turned off, and the leaf's common name is checked
instead:

* ``<POIID>.test.terminal.adyen.com`` or ``<POIID>.live.terminal.adyen.com``, where the POIID
  must be the one the address names, when it names one;
* ``legacy-terminal-certificate.test|live.terminal.adyen.com`` (older terminals; the POIID
  then comes from the address).

The check runs in httpcore's ``trace`` hook the moment the TLS handshake completes, before a
byte of the request is written, so a request is never sent to a terminal that is not the one
named. A failed check is :class:`~.failures.NexoCertificateError`, one line for the operator.

Every answer is bounded (:data:`MAX_ANSWER` bytes, read as it arrives) and every request has a
deadline (its own timeout, clipped by the terminal's overall deadline). Requests carry
``Connection: close``: terminals handle one client at a time, and a kept-alive socket a
terminal already closed is the commonest source of spurious failures. Connection failures
become posdiag's typed transport errors, so the agent words them as it does for every family.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog

from ..deadline import Deadline, check_seconds
from ..errors import (
    ConnectionRefused,
    DeviceNotFound,
    ResponseTooLarge,
    TransportClosed,
    TransportError,
    TransportOpenError,
    TransportTimeout,
)
from ..i18n import _
from ..text import clean_text
from .failures import NexoCertificateError, NexoConfigError

__all__ = [
    "MAX_ANSWER",
    "HttpsTransport",
    "NexoReply",
    "PeerCertificate",
    "check_common_name",
    "ssl_context",
]

log = structlog.get_logger(__name__)

MAX_ANSWER = 1 << 20
"""Largest answer read (1 MiB, the codec's own message bound): a Diagnosis is a few KB."""
DEFAULT_TIMEOUT_S = 15.0
_CN = re.compile(
    r"(?:(?P<poiid>[A-Za-z0-9]{1,32}-[A-Za-z0-9]{1,32})|legacy-terminal-certificate)"
    r"\.(?P<environment>test|live)\.terminal\.adyen\.com",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PeerCertificate:
    """What the terminal's certificate says about it.

    Attributes:
        common_name: the leaf's CN.
        environment: ``test`` or ``live`` (Adyen's two platforms).
        poiid: the POIID the CN names; None for a legacy certificate.
    """

    common_name: str
    environment: str
    poiid: str | None

    @property
    def legacy(self) -> bool:
        """A ``legacy-terminal-certificate`` (it names no terminal)."""
        return self.poiid is None


@dataclass(frozen=True)
class NexoReply:
    """One HTTP answer, bounded: the status and the raw body (empty for an AbortRequest)."""

    status: int
    body: bytes
    content_type: str


def check_common_name(common_name: str | None, expected_poiid: str | None) -> PeerCertificate:
    """The CN rule (nexo.md §7): an Adyen terminal name, naming ``expected_poiid`` when given.

    Raises:
        NexoCertificateError: no CN, a CN of another shape (``localhost``), or another POIID.
    """
    shown = clean_text(common_name or "", 120)
    match = _CN.fullmatch(common_name or "")
    if match is None:
        raise NexoCertificateError(
            _(
                "the terminal's certificate is issued to {name}, not to an Adyen terminal "
                "(POIID.test.terminal.adyen.com): this is not the terminal, or not a terminal"
            ).format(name=repr(shown) if shown else _("no name")),
            shown or None,
        )
    poiid = match.group("poiid")
    environment = match.group("environment").lower()
    if poiid is not None and expected_poiid is not None and poiid.lower() != expected_poiid.lower():
        raise NexoCertificateError(
            _(
                "the terminal at this address is {actual}, not {expected} as the address says: "
                "check the address (or its poiid=)"
            ).format(actual=poiid, expected=expected_poiid),
            shown,
        )
    return PeerCertificate(shown, environment, poiid)


def ssl_context(ca_file: Path) -> ssl.SSLContext:
    """A client context that verifies the chain against ``ca_file`` and not the host name.

    Raises:
        NexoConfigError: the file holds no usable certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the CN rule replaces it (module docstring)
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError, ValueError):
        raise NexoConfigError(
            _("the CA file {path} holds no certificate posdiag can use").format(path=ca_file)
        ) from None
    return context


def _common_name(ssl_object: Any) -> str | None:
    """The leaf's subject CN from ``getpeercert()`` (a verified peer's parsed certificate)."""
    try:
        cert = ssl_object.getpeercert()
    except (ValueError, AttributeError, ssl.SSLError):
        return None
    for rdn in (cert or {}).get("subject", ()):
        for name, value in rdn:
            if name == "commonName" and isinstance(value, str):
                return value
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and its causes (httpx wraps httpcore, which wraps the socket's error)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


class HttpsTransport:
    """POSTs to one terminal over HTTPS, checking its certificate's name on every connection.

    Args:
        host: the terminal's address or host name.
        port: its HTTPS port (8443).
        path: the request path (``/nexo``).
        ca_file: the CA the certificate must chain to.
        poiid: the POIID the certificate must name (None: any terminal name; then
            :meth:`probe` tells which).
        timeout_s: connect and read timeout of one request unless the request says otherwise.
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        *,
        ca_file: Path,
        poiid: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.ca_file = ca_file
        self.poiid = poiid
        self.timeout_s = check_seconds("timeout", timeout_s, maximum=600)
        self.peer: PeerCertificate | None = None
        self.deadline = Deadline()
        self._context: ssl.SSLContext | None = None
        self._client: httpx.Client | None = None

    @property
    def where(self) -> str:
        """``host:port`` as a person reads it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl_context(self.ca_file)
        return self._context

    def set_deadline(self, at: float | None) -> None:
        """After ``at`` (``time.monotonic()``) every request raises DeadlineExceeded."""
        self.deadline.set(at)

    def open(self) -> None:
        """Prepare the client (no connection yet: every request makes its own)."""
        if self._client is None:
            self._client = httpx.Client(
                verify=self._ssl(),
                trust_env=False,  # a proxy from the environment must not see terminal traffic
                follow_redirects=False,
                limits=httpx.Limits(max_connections=1, max_keepalive_connections=0),
                headers={
                    "content-type": "application/json",
                    "accept-encoding": "identity",  # the bound counts the bytes as sent
                    "connection": "close",
                },
            )

    def close(self) -> None:
        """Drop the client and any connection it holds."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- the certificate -------------------------------------------------------------------------

    def _checked(self, ssl_object: Any) -> PeerCertificate:
        peer = check_common_name(_common_name(ssl_object), self.poiid)
        if self.peer is None or self.peer != peer:
            log.info(
                "nexo.peer",
                where=self.where,
                environment=peer.environment,
                terminal=(peer.poiid or "legacy")[-4:],
            )
        self.peer = peer
        return peer

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """The httpcore hook: check the name the moment TLS is up, before the request is sent."""
        if event != "connection.start_tls.complete":
            return
        stream = info.get("return_value")
        if stream is None:
            return
        try:
            self._checked(stream.get_extra_info("ssl_object"))
        except NexoCertificateError:
            stream.close()  # httpcore never saw this stream returned: close it here
            raise

    def probe(self) -> PeerCertificate:
        """Connect, check the certificate, disconnect: who the terminal says it is.

        Used when the address names no POIID, to learn it before the first request (every
        request's header must name the terminal).
        """
        timeout = self._timeout(self.timeout_s)
        started = time.monotonic()
        try:
            with (
                socket.create_connection((self.host, self.port), timeout=timeout) as raw,
                self._ssl().wrap_socket(raw, server_hostname=self.host) as tls,
            ):
                return self._checked(tls)
        except NexoCertificateError:
            raise
        except (OSError, ssl.SSLError) as exc:
            raise self._failure(exc, time.monotonic() - started) from None

    # --- requests --------------------------------------------------------------------------------

    def _timeout(self, wanted: float) -> float:
        return self.deadline.clip(wanted)

    def post(self, body: bytes, *, timeout_s: float | None = None) -> NexoReply:
        """Send one request body and read its answer, bounded in size and time.

        Args:
            body: the JSON bytes.
            timeout_s: this request's time limit (a host diagnosis takes longer than a login).

        Raises:
            NexoCertificateError: the certificate is not the expected terminal's.
            TransportError: refused, unreachable, timed out, closed, or over the size bound.
            DeadlineExceeded: the terminal's overall deadline passed.
        """
        self.open()
        assert self._client is not None
        limit = self._timeout(timeout_s or self.timeout_s)
        started = time.monotonic()
        ends = started + limit
        url = httpx.URL(scheme="https", host=self.host, port=self.port, path=self.path)
        try:
            with self._client.stream(
                "POST",
                url,
                content=body,
                timeout=httpx.Timeout(limit),
                extensions={"trace": self._trace},
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > MAX_ANSWER:
                        raise ResponseTooLarge(
                            _("the terminal's answer is larger than {size} KiB").format(
                                size=MAX_ANSWER // 1024
                            )
                        )
                    if time.monotonic() > ends:
                        raise TransportTimeout(
                            _("the terminal's answer did not finish within {seconds} s").format(
                                seconds=f"{limit:.0f}"
                            )
                        )
                    self.deadline.check()
                    chunks.append(chunk)
                encoding = response.headers.get("content-encoding", "identity").lower()
                if encoding not in ("", "identity"):
                    raise TransportError(
                        _("the terminal's answer is compressed ({encoding})").format(
                            encoding=clean_text(encoding, 20)
                        )
                    )
                return NexoReply(
                    response.status_code,
                    b"".join(chunks),
                    response.headers.get("content-type", "").split(";")[0].strip().lower(),
                )
        except (NexoCertificateError, TransportError):
            raise
        except httpx.HTTPError as exc:
            raise self._failure(exc, time.monotonic() - started) from None

    def _failure(self, exc: BaseException, elapsed: float) -> Exception:
        """The typed error for a connection or TLS failure, in words for the operator."""
        chain = _causes(exc)
        for cause in chain:
            if isinstance(cause, ssl.SSLCertVerificationError):
                reason = clean_text(cause.verify_message or cause.reason or "", 120)
                return NexoCertificateError(
                    _(
                        "the terminal's certificate could not be verified against {ca} "
                        "({reason}): check the CA file, or that this is the terminal"
                    ).format(ca=self.ca_file, reason=reason or _("not trusted"))
                )
        for cause in chain:
            if isinstance(cause, ConnectionRefusedError):
                return ConnectionRefused(
                    _("{where} refused the connection: nothing listens on that port").format(
                        where=self.where
                    )
                )
            if isinstance(cause, socket.gaierror):
                return DeviceNotFound(
                    _("{host} is not a known host name").format(host=clean_text(self.host, 80))
                )
            if isinstance(cause, ssl.SSLError):
                return TransportOpenError(
                    _("the TLS handshake with {where} failed ({reason})").format(
                        where=self.where, reason=clean_text(cause.reason or cause, 80)
                    )
                )
        if any(isinstance(c, httpx.TimeoutException | TimeoutError) for c in chain):
            return TransportTimeout(
                _("{where} did not answer within {seconds} s").format(
                    where=self.where, seconds=f"{elapsed:.0f}"
                )
            )
        if any(isinstance(c, httpx.ConnectError) for c in chain) or isinstance(
            exc, OSError | httpx.ConnectError
        ):
            return TransportOpenError(
                _("cannot connect to {where} ({reason})").format(
                    where=self.where, reason=type(chain[-1]).__name__
                )
            )
        return TransportClosed(
            _("the connection to {where} broke ({reason})").format(
                where=self.where, reason=type(exc).__name__
            )
        )
