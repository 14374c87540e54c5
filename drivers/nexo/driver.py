"""The nexo driver: typed, read-only operations on an Adyen terminal over HTTPS.

One request is in flight at a time (a terminal serves one POS dialogue at a time, and a station
must never interleave its own): a lock covers a request and, when the terminal says
``LoggedOut``, the login and the one retry that follow. Every request

1. gets a new ServiceID, recorded before it is sent (:mod:`.service_ids`: unique per terminal
   for 48 hours, across posdiag runs);
2. is built by the codec (:mod:`.builders`, which has no builder that moves money), encrypted
   with the terminal's shared key when one is configured (:mod:`.crypto`), and POSTed
   (:mod:`.transport`: certificate name checked, answer bounded, deadline kept);
3. is answered by the terminal in the same HTTP response; the answer is decrypted (a clear
   answer to an encrypted request is an error: it is how a terminal without a key, or an
   impostor, answers), decoded, and matched to the request (category, ServiceID, POIID);
4. ends in a typed result, or a typed error the agent words for the operator: a rejected key
   (``crypto error``), a busy terminal (with the running transaction's ServiceID, which
   :meth:`NexoDriver.abort` takes), a request the terminal could not read, a refusal.

The operations are Diagnosis, Login, Logout, GetTotals, PreviousReconciliation and Abort. There
is no payment, refund, reversal or ``SaleReconciliation``: a SaleReconciliation closes the
terminal's batch, and posdiag never moves money or closes a merchant's period.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import structlog

from ..errors import TransportTimeout
from ..i18n import _
from ..text import clean_text
from .builders import (
    abort_request,
    diagnosis_request,
    get_totals_request,
    login_request,
    logout_request,
    previous_reconciliation_request,
)
from .crypto import NexoKey, decrypt_message, encrypt_message, is_encrypted
from .errors import NexoDecodeError
from .failures import (
    NexoBusyError,
    NexoCertificateError,
    NexoCommandError,
    NexoConfigError,
    NexoKeyRejectedError,
    NexoKeyRequiredError,
    NexoMessageFormatError,
    NexoNoKeyOnTerminalError,
    NexoReplyError,
)
from .jsonwire import dumps, loads
from .messages import RESPONSE, NexoMessage, ServiceRef, decode_message, encode_message
from .readers import (
    Diagnosis,
    LoginResult,
    ResponseStatus,
    TotalsResult,
    read_diagnosis,
    read_login,
    read_response,
    read_totals,
)
from .service_ids import ServiceIdStore
from .transport import HttpsTransport, NexoReply

__all__ = ["HOST_DIAGNOSIS_TIMEOUT_S", "NexoDriver", "default_sale_id"]

log = structlog.get_logger(__name__)

HOST_DIAGNOSIS_TIMEOUT_S = 60.0
"""A host diagnosis makes the terminal contact its acquirer: seconds, sometimes most of a minute."""
MAX_SALE_ID = 32
MAX_ERRORS_TEXT = 300
"""Longest terminal error text shown (a MessageFormat ``errors=`` list can be long)."""
_SALE_ID_JUNK = re.compile(r"[^A-Za-z0-9-]+")
_NO_KEY_MARKS = (b"NexoBlob: Unexpected", b"SecurityTrailer: Unexpected")
_LIVE_NEEDS_CRYPTO = "requires payload crypto"


def default_sale_id(station: str | None = None) -> str:
    """``posdiag-<station>``: the SaleID posdiag logs in with (this computer's name by default).

    Only letters, digits and ``-``, at most 32 characters: it appears in the terminal's list of
    logged-in POS systems and in its reports.
    """
    name = _SALE_ID_JUNK.sub("-", station if station is not None else socket.gethostname())
    name = name.strip("-")[: MAX_SALE_ID - len("posdiag-")].strip("-")
    return f"posdiag-{name}" if name else "posdiag"


@cache
def _software_version() -> str:
    """The version the LoginRequest announces (``0`` from a bare source checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("posdiag")
    except PackageNotFoundError:
        return "0"


class NexoDriver:
    """Read-only Terminal API operations on one terminal.

    Args:
        transport: the HTTPS transport to the terminal.
        key: the terminal's shared key (None: clear text, which only TEST terminals accept).
        poiid: the terminal's POIID; None: read from its certificate when the driver opens.
        sale_id: the SaleID posdiag uses (:func:`default_sale_id`).
        service_ids: the ServiceID store (default: the user's data folder).
        clock: the wall clock, for the LoginRequest's DateTime.
        host_timeout_s: time a host diagnosis may take.
    """

    def __init__(
        self,
        transport: HttpsTransport,
        *,
        key: NexoKey | None = None,
        poiid: str | None = None,
        sale_id: str | None = None,
        service_ids: ServiceIdStore | None = None,
        clock: Callable[[], float] = time.time,
        host_timeout_s: float = HOST_DIAGNOSIS_TIMEOUT_S,
    ) -> None:
        self.transport = transport
        self.key = key
        self._poiid = poiid
        self.sale_id = sale_id or default_sale_id()
        self.service_ids = service_ids or ServiceIdStore()
        self.clock = clock
        self.host_timeout_s = host_timeout_s
        self.logged_in = False
        self._lock = threading.Lock()
        self._opened = False

    def __repr__(self) -> str:
        return f"NexoDriver(where={self.transport.where!r}, encrypted={self.key is not None})"

    # --- session ---------------------------------------------------------------------------------

    @property
    def poiid(self) -> str | None:
        """The terminal's POIID: the address's, else its certificate's (after :meth:`open`)."""
        return self._poiid

    @property
    def encrypted(self) -> bool:
        """Whether requests are encrypted (a key is configured)."""
        return self.key is not None

    def open(self) -> None:
        """Prepare the transport; learn the POIID from the certificate when none was given.

        Raises:
            NexoCertificateError: the certificate is not an Adyen terminal's, or it is a legacy
                one that names no terminal and the address gave no POIID either.
            TransportError: the terminal cannot be reached.
        """
        if self._opened:
            return
        self.transport.open()
        if self._poiid is None:
            peer = self.transport.probe()
            if peer.poiid is None:
                # the operator's to fix, before any request: one line, like a wrong certificate
                raise NexoCertificateError(
                    _(
                        "the terminal's certificate does not name the terminal (a legacy "
                        "certificate): add its POIID to the address (?poiid=V400m-324688179)"
                    )
                )
            self._poiid = peer.poiid
        self.transport.poiid = self._poiid  # every later connection must be this terminal
        self._opened = True

    def close(self) -> None:
        """Release the connection (the terminal keeps no session for posdiag but its login)."""
        self.transport.close()
        self._opened = False

    def set_deadline(self, at: float | None) -> None:
        """After ``at`` (``time.monotonic()``) every request raises DeadlineExceeded."""
        self.transport.set_deadline(at)

    # --- operations ------------------------------------------------------------------------------

    def diagnosis(self, host: bool = False) -> Diagnosis:
        """The terminal's state; with ``host`` it also tests its acquirer host (slower)."""
        message = self._request(
            lambda sid: diagnosis_request(
                sid, self.sale_id, self._need_poiid(), host_diagnosis=host
            ),
            timeout_s=self.host_timeout_s if host else None,
        )
        assert message is not None
        return read_diagnosis(message)

    def login(self) -> LoginResult:
        """Log posdiag's SaleID in (required before GetTotals and Reconciliation)."""
        message = self._request(self._login_builder(), relogin=False)
        assert message is not None
        self.logged_in = True
        return read_login(message)

    def logout(self, sale_id: str | None = None) -> ResponseStatus:
        """Log a SaleID out (posdiag's by default); one already logged out counts as done."""
        who = sale_id or self.sale_id
        try:
            message = self._request(
                lambda sid: logout_request(sid, who, self._need_poiid()), relogin=False
            )
        except NexoCommandError as exc:
            if exc.condition != "LoggedOut":
                raise
            status = ResponseStatus("Failure", "LoggedOut")
        else:
            assert message is not None
            status = read_response(message)
        if who == self.sale_id:
            self.logged_in = False
        return status

    def get_totals(self) -> TotalsResult:
        """The open period's totals, without closing it (logs in first when needed)."""
        if not self.logged_in:
            self.login()
        message = self._request(
            lambda sid: get_totals_request(sid, self.sale_id, self._need_poiid())
        )
        assert message is not None
        return read_totals(message)

    def previous_reconciliation(self, reconciliation_id: str) -> TotalsResult:
        """An earlier period's report (``PreviousReconciliation``: it starts no new period)."""
        if not self.logged_in:
            self.login()
        message = self._request(
            lambda sid: previous_reconciliation_request(
                sid, self.sale_id, self._need_poiid(), poi_reconciliation_id=reconciliation_id
            )
        )
        assert message is not None
        return read_totals(message)

    def abort(self, service_id: str) -> None:
        """Ask the terminal to abort the transaction running as ``service_id``.

        The abort has its own new ServiceID and no answer of its own (nexo.md §4); the
        running transaction ends ``Aborted``. Whether it did is read back by a Diagnosis.
        """
        reference = ServiceRef(service_id=service_id, sale_id=None, poiid=self._poiid)
        self._request(
            lambda sid: abort_request(
                sid, self.sale_id, self._need_poiid(), message_reference=reference
            ),
            relogin=False,
            answer_expected=False,
        )

    # --- the exchange ----------------------------------------------------------------------------

    def _need_poiid(self) -> str:
        if self._poiid is None:
            raise NexoConfigError(
                _("the terminal's POIID is not known: add it to the address (?poiid=…)")
            )
        return self._poiid

    def _request(
        self,
        build: Callable[[str], NexoMessage],
        *,
        timeout_s: float | None = None,
        relogin: bool = True,
        answer_expected: bool = True,
    ) -> NexoMessage | None:
        """One request under the lock; after ``LoggedOut``, log in and try once more."""
        # another thread's request may be a host diagnosis: wait as long as one may take
        wait = self.transport.deadline.clip(self.host_timeout_s + self.transport.timeout_s)
        if not self._lock.acquire(timeout=wait):
            self.transport.deadline.check()
            raise TransportTimeout(_("another request to the terminal did not finish in time"))
        try:
            self.open()  # under the lock: two first requests must not both probe the terminal
            try:
                return self._send(build, timeout_s, answer_expected)
            except NexoCommandError as exc:
                if not relogin or exc.condition != "LoggedOut":
                    raise
            log.info("nexo.relogin", where=self.transport.where)
            self.logged_in = False
            self._send(self._login_builder(), None, True)
            self.logged_in = True
            return self._send(build, timeout_s, answer_expected)
        finally:
            self._lock.release()

    def _login_builder(self) -> Callable[[str], NexoMessage]:
        stamp = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="seconds")
        return lambda sid: login_request(
            sid,
            self.sale_id,
            self._need_poiid(),
            date_time=stamp.replace("+00:00", "Z"),
            manufacturer_id="posdiag",
            application_name="posdiag",
            software_version=_software_version(),
        )

    def _send(
        self, build: Callable[[str], NexoMessage], timeout_s: float | None, answer_expected: bool
    ) -> NexoMessage | None:
        """Build, record, encrypt, post, and read one request's answer (the lock is held)."""
        poiid = self._need_poiid()
        request = build(self.service_ids.new(poiid))
        clear = encode_message(request)
        wire = encrypt_message(clear, self.key) if self.key is not None else clear
        category = request.header.message_category
        log.debug(
            "nexo.request",
            category=category,
            service=request.header.service_id,
            encrypted=self.key is not None,
        )
        reply = self.transport.post(dumps(wire), timeout_s=timeout_s)
        answer = self._read(reply, request)
        if answer is None:
            if answer_expected:
                raise NexoReplyError(
                    _("the terminal sent no answer to the {category} request").format(
                        category=category
                    )
                )
            return None
        self._check_result(answer, category)
        return answer

    def _read(self, reply: NexoReply, request: NexoMessage) -> NexoMessage | None:
        """The decoded answer to ``request``, or the typed error the reply amounts to."""
        category = request.header.message_category
        body = reply.body
        if not 200 <= reply.status < 300:
            self._http_failure(reply, category)
        if not body.strip():
            return None
        try:
            obj = loads(body)
        except NexoDecodeError:
            if b"crypto error" in body:
                raise NexoKeyRejectedError() from None
            raise
        if "errors" in obj and not any(top in obj for top in (RESPONSE, "SaleToPOIRequest")):
            self._raise_errors(obj, category)  # a bare error list, whatever the status said
        if is_encrypted(obj):
            if self.key is None:
                raise NexoKeyRequiredError()
            obj, _plain = decrypt_message(obj, self.key)
        elif self.key is not None:
            # an encrypted request answered in clear: a terminal without a key, or not the terminal
            if _says_no_key(obj, body):
                raise NexoNoKeyOnTerminalError()
            raise NexoReplyError(
                _(
                    "the terminal answered posdiag's encrypted {category} request in clear text"
                ).format(category=category)
            )
        message = decode_message(obj)
        self._match(message, request)
        return message

    def _http_failure(self, reply: NexoReply, category: str) -> None:
        """Raise the error a non-2xx answer stands for (Adyen puts an ``errors`` list in it)."""
        if b"crypto error" in reply.body:
            raise NexoKeyRejectedError()
        try:
            obj = loads(reply.body) if reply.body.strip() else {}
        except NexoDecodeError:
            obj = {}
        if obj.get("errors"):
            self._raise_errors(obj, category)
        raise NexoReplyError(
            _("the terminal answered the {category} request with HTTP status {status}").format(
                category=category, status=reply.status
            )
        )

    @staticmethod
    def _raise_errors(obj: dict[str, object], category: str) -> None:
        """A bare ``{"errors": [...], "warnings": [...]}`` answer as its typed error."""
        errors = obj.get("errors")
        warnings = obj.get("warnings")
        texts = [
            item
            for group in (errors, warnings)
            if isinstance(group, list)
            for item in group[:16]
            if isinstance(item, str)
        ]
        joined = " ".join(texts)
        if "crypto error" in joined:
            raise NexoKeyRejectedError()
        if any(mark.decode() in joined for mark in _NO_KEY_MARKS):
            raise NexoNoKeyOnTerminalError()
        shown = (
            "; ".join(item for item in errors[:16] if isinstance(item, str))
            if isinstance(errors, list)
            else ""
        )
        raise NexoMessageFormatError(category, clean_text(shown, MAX_ERRORS_TEXT))

    def _match(self, answer: NexoMessage, request: NexoMessage) -> None:
        """The answer must be this request's: a response of its category and ServiceID."""
        asked, got = request.header, answer.header
        problem = None
        if answer.top != RESPONSE:
            problem = "not a response"
        elif got.message_category != asked.message_category:
            problem = f"category {clean_text(got.message_category, 40)}"
        elif got.service_id is not None and got.service_id != asked.service_id:
            problem = "another ServiceID"
        elif got.poiid is not None and got.poiid != asked.poiid:
            problem = f"POIID {clean_text(got.poiid, 40)}"
        if problem:
            raise NexoReplyError(
                _("the terminal's answer does not match the {category} request ({problem})").format(
                    category=asked.message_category, problem=problem
                )
            )

    def _check_result(self, answer: NexoMessage, category: str) -> None:
        """Raise the typed error a ``Result: Failure`` stands for; Success and Partial pass."""
        status = read_response(answer)
        if status.result != "Failure":
            return
        condition = status.error_condition
        said = status.additional.get("message", "")
        errors = status.additional.get("errors", "")
        warnings = status.additional.get("warnings", "")
        if _LIVE_NEEDS_CRYPTO in " ".join(status.additional.values()).lower():
            raise NexoKeyRequiredError()
        if condition == "Busy":
            running = status.additional.get("serviceId") or status.additional.get("ServiceID")
            raise NexoBusyError(
                clean_text(running, 10) if running else None, admin_menu="ADMIN_MENU" in said
            )
        if condition == "MessageFormat":
            if any(mark.decode() in warnings + errors for mark in _NO_KEY_MARKS):
                raise NexoNoKeyOnTerminalError()
            raise NexoMessageFormatError(category, clean_text(errors or said, MAX_ERRORS_TEXT))
        shown = clean_text(said or errors, MAX_ERRORS_TEXT)
        word = condition or _("no reason given")
        message = (
            _("the terminal refused the {category} request ({condition}): {said}")
            if shown
            else _("the terminal refused the {category} request ({condition})")
        ).format(category=category, condition=word, said=shown)
        raise NexoCommandError(message, condition=condition, category=category)


def _says_no_key(obj: dict[str, Any], body: bytes) -> bool:
    """Whether a clear answer says the terminal read our envelope as clear text (it has no key).

    Adyen's terminals then complain that ``NexoBlob`` and ``SecurityTrailer`` are unexpected,
    in a bare error list or in a MessageFormat response's (form-encoded) AdditionalResponse.
    """
    if any(mark in body for mark in _NO_KEY_MARKS):
        return True
    try:
        status = read_response(decode_message(obj))
    except NexoDecodeError:
        return False
    said = " ".join(status.additional.values())
    return any(mark.decode() in said for mark in _NO_KEY_MARKS)
