"""One HTTP request body in, one answer out: JSON, the envelope, encryption, errors, faults.

``NexoEngine.respond(body)`` is everything a simulated Adyen terminal does with a POSTed body
except the HTTP framing (``server.py``) and the terminal's behaviour (``device.py``), so it can
be tested without sockets. In order:

1. Faults at the wire: ``drop`` (close without answering), ``slow`` (wait before answering,
   seconds as given, not scaled), then the terminal's own ``latency`` (scaled by
   ``time_scale``); ``malformed_json`` replaces the next N answers by bytes that are not JSON.
2. Not JSON → HTTP 400, ``{"errors": ["Bad JSON: line L, column C: <what>"]}``. Adyen documents
   a "Bad JSON" reply with line number and description; its exact status and shape are
   UNVERIFIED.
3. No ``SaleToPOIRequest`` at the top → HTTP 400, ``{"errors": ["At toplevel, field
   SaleToPOIRequest: Missing", "At toplevel: Missing"]}`` (reference §5, seen on real units).
4. Encrypted (``NexoBlob``/``SecurityTrailer``):
   * the terminal has a key: decrypt with it; any failure (unknown KeyIdentifier/KeyVersion,
     wrong passphrase, bad HMAC, padding, Base64) → HTTP 400 (status UNVERIFIED: "non-2xx"),
     ``{"errors": ["Nexo Service: crypto error (3)"], "ServiceID": "-NULL-"}``; the answer to
     a request that decrypted is encrypted with the same key and a fresh nonce;
   * the terminal has no key: it reads the envelope as cleartext, so the body is missing and
     two fields are unexpected → HTTP 200 with a cleartext ``SaleToPOIResponse`` whose
     Response is ``MessageFormat`` with ``errors=At SaleToPOIRequest, field <Category>Request:
     Missing`` and ``warnings=At SaleToPOIRequest, field SecurityTrailer: Unexpected; At
     SaleToPOIRequest, field NexoBlob: Unexpected``. Real units were seen answering this both
     as such a response and as raw ``{"errors", "warnings"}`` JSON (reference §5); the status
     of the response form is UNVERIFIED: 200, as every other nexo response.
5. Cleartext while the terminal holds a key: served when the scenario's ``allow_cleartext``
   is true (a TEST terminal: "cleartext allowed for testing only"), else HTTP 200 with a
   ``MessageFormat`` response carrying ``note=Direct API REQUIRES payload crypto on live,
   cleartext allowed for testing only`` (the wording a LIVE unit used; status UNVERIFIED).
6. The message must decode (header, one body named after the category): otherwise a
   ``MessageFormat`` response (HTTP 200) naming the field, as Adyen's schema errors do.
7. The device answers; None (an AbortRequest) is HTTP 200 with an empty body.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from posdiag.drivers.nexo.crypto import NexoKey, decrypt_message, encrypt_message, is_encrypted
from posdiag.drivers.nexo.errors import NexoCryptoError, NexoDecodeError
from posdiag.drivers.nexo.messages import (
    REQUEST,
    MessageHeader,
    NexoMessage,
    decode_message,
    dumps,
    encode_message,
    loads_any,
)

from .device import NexoDevice
from .state import NexoState

__all__ = ["CRYPTO_ERROR", "MALFORMED", "TOPLEVEL_ERRORS", "Answer", "NexoEngine"]

log = structlog.get_logger(__name__)

CRYPTO_ERROR = {"errors": ["Nexo Service: crypto error (3)"], "ServiceID": "-NULL-"}
TOPLEVEL_ERRORS = {
    "errors": ["At toplevel, field SaleToPOIRequest: Missing", "At toplevel: Missing"]
}
MALFORMED = b"<html><body>\x00502 terminal application restarting</body></html>\n\x1b[0m{"
"""What a ``malformed_json`` answer carries instead of JSON."""
LIVE_NOTE = "Direct API REQUIRES payload crypto on live, cleartext allowed for testing only"
NO_KEY_WARNINGS = (
    "At SaleToPOIRequest, field SecurityTrailer: Unexpected; "
    "At SaleToPOIRequest, field NexoBlob: Unexpected"
)
WRONG_KEY_SUFFIX = "-not-the-advertised-one"
"""Appended to the passphrase the terminal really holds under the ``wrong_key`` fault."""


@dataclass(frozen=True)
class Answer:
    """What the HTTP layer sends back.

    Attributes:
        status: HTTP status.
        body: the body bytes (empty for an AbortRequest).
        content_type: the Content-Type header.
        drop: close the connection without sending anything (the ``drop`` fault).
    """

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False


def _json(status: int, payload: dict[str, Any]) -> Answer:
    return Answer(status, dumps(payload))


def _bad_json(body: bytes) -> Answer:
    """Adyen's "Bad JSON" reply: where the parser stopped and why (stdlib message, bounded)."""
    where = "line 1, column 1"
    reason = "not valid JSON"
    try:
        json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        reason = "not valid UTF-8"
    except json.JSONDecodeError as exc:
        where, reason = f"line {exc.lineno}, column {exc.colno}", exc.msg[:80]
    except (ValueError, RecursionError):
        pass
    return _json(400, {"errors": [f"Bad JSON: {where}: {reason}"]})


class NexoEngine:
    """The body-level behaviour of a simulated Adyen terminal (thread-safe).

    Args:
        state: the live state.
        device: the terminal's behaviour over that state.
        sleep: how delays are waited out (tests pass a no-op).
    """

    def __init__(
        self,
        state: NexoState,
        device: NexoDevice,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state = state
        self.device = device
        self.sleep = sleep
        self._faults = threading.Lock()
        self.requests = 0
        self.crypto_errors = 0

    def terminal_key(self) -> NexoKey | None:
        """The key the terminal really holds (None: none; differs under ``wrong_key``)."""
        if not self.state.key_configured:
            return None
        key = self.state.key
        passphrase = key.passphrase
        if self.state.faults.wrong_key:
            passphrase += WRONG_KEY_SUFFIX
        return NexoKey(key.identifier, key.version, passphrase)

    def advertised_key(self) -> NexoKey:
        """The key the terminal's address hands to clients (the scenario's, whatever faults)."""
        key = self.state.key
        return NexoKey(key.identifier, key.version, key.passphrase)

    # -- faults -----------------------------------------------------------------------------

    def _take(self, name: str) -> bool:
        """Use one shot of a counting fault; True when it fires."""
        with self._faults:
            left = getattr(self.state.faults, name)
            if left <= 0:
                return False
            setattr(self.state.faults, name, left - 1)
        log.debug("sim.nexo.fault", fault=name, left=left - 1)
        return True

    def respond(self, body: bytes) -> Answer:
        """Answer one POSTed body (see the module docstring for the order of rules)."""
        with self._faults:
            self.requests += 1
        if self._take("drop"):
            return Answer(0, drop=True)
        delay = self.state.faults.slow + self.state.timing.delay(self.state.timing.latency)
        if delay > 0:
            self.sleep(delay)
        answer = self._answer(body)
        if answer.body and self._take("malformed_json"):
            return dataclasses.replace(answer, body=MALFORMED)
        return answer

    # -- the rules --------------------------------------------------------------------------

    def _answer(self, body: bytes) -> Answer:
        try:
            obj = loads_any(body)
        except NexoDecodeError:
            return _bad_json(body)
        if not isinstance(obj, dict) or not isinstance(obj.get(REQUEST), dict):
            return _json(400, TOPLEVEL_ERRORS)
        if is_encrypted(obj):
            return self._encrypted(obj)
        if self.state.key_configured and not self.state.key.allow_cleartext:
            header = self._clear_header(obj)
            category = header.message_category if header else "Diagnosis"
            message = self.device.format_error(
                header, f"At SaleToPOIRequest, field {category}Request: Missing", note=LIVE_NOTE
            )
            return Answer(200, dumps(encode_message(message)))
        return self._serve(obj, key=None)

    def _clear_header(self, obj: dict[str, Any]) -> MessageHeader | None:
        try:
            return MessageHeader.from_json(obj[REQUEST].get("MessageHeader"))
        except NexoDecodeError:
            return None

    def _encrypted(self, obj: dict[str, Any]) -> Answer:
        key = self.terminal_key()
        if key is None:
            header = self._clear_header(obj)
            category = header.message_category if header else "Diagnosis"
            message = self.device.format_error(
                header,
                f"At SaleToPOIRequest, field {category}Request: Missing",
                warnings=NO_KEY_WARNINGS,
            )
            log.debug("sim.nexo.no_key")
            return Answer(200, dumps(encode_message(message)))
        try:
            clear, _plaintext = decrypt_message(obj, key)
        except NexoCryptoError:
            with self._faults:
                self.crypto_errors += 1
            log.debug("sim.nexo.crypto_error")
            return _json(400, CRYPTO_ERROR)
        except NexoDecodeError:  # it authenticated, but the plaintext is no message object
            return _json(400, TOPLEVEL_ERRORS)
        if not isinstance(clear.get(REQUEST), dict):
            return _json(400, TOPLEVEL_ERRORS)
        return self._serve(clear, key=key)

    def _serve(self, obj: dict[str, Any], key: NexoKey | None) -> Answer:
        try:
            message = decode_message(obj)
        except NexoDecodeError as exc:
            reply: NexoMessage | None = self.device.format_error(
                self._clear_header(obj), exc.detail
            )
        else:
            reply = self.device.handle(message)
        if reply is None:
            return Answer(200, b"")
        wire = encode_message(reply)
        if key is not None:
            wire = encrypt_message(wire, key)
        return Answer(200, dumps(wire))
