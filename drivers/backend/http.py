"""HTTP for backends: httpx with the rules a depot station needs around it.

httpx does the protocol (TLS, HTTP/1.1, pooling). This module adds what every backend call needs
and no connector should re-implement:

* **Deadlines.** Each call has connect/read timeouts and one overall deadline covering retries
  and waits; past it the call raises :class:`BackendUnavailable`.
* **Retries** on connection errors, timeouts, 429, 502, 503 and 504, with exponential back-off,
  and ``Retry-After`` honoured (seconds or an HTTP date), capped by the deadline: a backend that
  asks for an hour gets a clear "rate-limited" error instead of a frozen station.
* **Bounds.** An answer larger than ``max_body`` bytes is cut off and refused; JSON nesting
  deeper than Python's recursion limit and non-JSON answers become
  :class:`BackendProtocolError`, never a crash.
* **Secrets.** Error messages and log lines carry the method and the path only: never the query
  string (PAXSTORE puts its key and signature there), headers or bodies.
* **Rate and concurrency limits** per backend (``Limiter``), shared by every worker of a
  station, so 64 workers do not trip a backend's per-key quota.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from ..deadline import check_seconds
from .model import BackendProtocolError, BackendUnavailable

__all__ = ["DEFAULT_MAX_BODY", "HttpAnswer", "HttpClient", "Limiter", "retry_after_seconds"]

log = structlog.get_logger(__name__)

DEFAULT_MAX_BODY = 4 * 1024 * 1024
"""Largest answer a backend may send (a 100-terminal page is ~200 KB)."""
RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses a retry may cure: rate limiting and gateways; a 500 is the backend's own bug."""
MAX_RETRY_AFTER_S = 120.0
"""Longest ``Retry-After`` honoured by waiting; beyond it (or the deadline) the call fails."""


@dataclass(frozen=True)
class HttpAnswer:
    """One HTTP answer, bounded: status, the headers a connector reads, the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    content_type: str

    def json(self, what: str) -> Any:
        """The body as JSON, or a one-line :class:`BackendProtocolError` naming ``what``."""
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise BackendProtocolError(f"{what}: the answer is not JSON") from None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or HTTP date), else None."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text[:9]))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class Limiter:
    """At most ``concurrency`` calls in flight and ``per_second`` starts per second.

    One limiter per configured backend, shared by all the station's workers (thread-safe).
    """

    def __init__(self, concurrency: int = 4, per_second: float = 10.0) -> None:
        if concurrency < 1 or concurrency > 256:
            raise ValueError("concurrency must be between 1 and 256")
        per_second = check_seconds("per_second", per_second, maximum=10_000)
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        self._slots = threading.BoundedSemaphore(concurrency)
        self._interval = 1.0 / per_second
        self._next_start = 0.0
        self._lock = threading.Lock()

    def acquire(self, deadline: float) -> None:
        """Wait for a slot and a start time, or raise BackendUnavailable at ``deadline``."""
        if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise BackendUnavailable("too many requests to this backend are waiting")
        with self._lock:
            start = max(time.monotonic(), self._next_start)
            self._next_start = start + self._interval
        wait = start - time.monotonic()
        if wait > 0:
            if start > deadline:
                self._slots.release()
                raise BackendUnavailable(
                    "the backend's rate limit leaves no time before the deadline"
                )
            time.sleep(wait)

    def release(self) -> None:
        """Give the slot back."""
        self._slots.release()


class HttpClient:
    """One backend's HTTP client: base URL, timeouts, retries, bounds, limiter.

    Args:
        name: the backend's configured name (for messages).
        base_url: the API root (``https://api.whatspos.com/p-market-api``).
        timeout_s: connect and read timeout of one attempt.
        deadline_s: the whole call, retries and waits included.
        retries: attempts after the first.
        verify: TLS verification (``True``, or a CA bundle path for a lab backend).
        limiter: shared rate/concurrency limiter.
        transport: an httpx transport (tests inject ``httpx.MockTransport`` only for the HTTP
            layer's own tests; connectors are tested against the simulators).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        deadline_s: float = 30.0,
        retries: int = 4,
        verify: bool | str = True,
        limiter: Limiter | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.timeout_s = check_seconds("timeout", timeout_s, maximum=600)
        self.deadline_s = check_seconds("deadline", deadline_s, maximum=3600)
        if not 0 <= retries <= 10:
            raise ValueError("retries must be between 0 and 10")
        self.retries = retries
        self.limiter = limiter or Limiter()
        self.max_body = max_body
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout_s),
            verify=verify,
            # iter_raw() reads the bytes as sent: ask for them uncompressed so the bound is real.
            headers={"accept-encoding": "identity", **dict(headers or {})},
            follow_redirects=False,
            transport=transport,
            trust_env=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        query: str = "",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        sign: Any = None,
    ) -> HttpAnswer:
        """Send one request (retried as the rules say) and return its bounded answer.

        Args:
            method: HTTP method.
            path: path under the base URL (``/v1/3rdsys/terminal``).
            query: the raw, already-encoded query string: signed backends sign these exact bytes.
            body: the raw body.
            headers: extra headers.
            sign: called before every attempt as ``sign()`` → ``(query, headers)`` or
                ``(query, headers, body)``, for backends whose signature covers a timestamp or
                nonce that must be fresh on a retry (in the query, a header, or the body).

        Raises:
            BackendUnavailable: down, slow or rate-limiting past the deadline.
            BackendProtocolError: an answer over the size bound.
        """
        what = f"{self.name}: {method} {path}"
        deadline = time.monotonic() + self.deadline_s
        attempt = 0
        answer: HttpAnswer | None
        wait: float | None
        while True:
            if sign is not None:
                signed = sign()
                query, signed_headers = signed[0], signed[1]
                if len(signed) > 2:
                    body = signed[2]
                headers = {**(headers or {}), **signed_headers}
            url = self.base_url + path + (f"?{query}" if query else "")
            self.limiter.acquire(deadline)
            try:
                answer = self._send(method, url, body, headers, deadline, what)
            except BackendUnavailable as exc:
                answer, failure, wait = None, str(exc), None
            finally:
                self.limiter.release()
            if answer is not None:
                if answer.status not in RETRY_STATUSES:
                    return answer
                failure = (
                    f"{what}: rate-limited (HTTP 429)"
                    if answer.status == 429
                    else f"{what}: the backend's gateway failed (HTTP {answer.status})"
                )
                wait = retry_after_seconds(answer.headers.get("retry-after"))
                if wait is not None and wait > MAX_RETRY_AFTER_S:
                    raise BackendUnavailable(f"{failure}; it asks to wait {wait:.0f} s")
            attempt += 1
            if attempt > self.retries:
                raise BackendUnavailable(failure)
            if wait is None:
                wait = min(8.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            if time.monotonic() + wait >= deadline:
                raise BackendUnavailable(f"{failure}; no time left to retry")
            log.info(
                "backend.retry",
                backend=self.name,
                path=path,
                attempt=attempt,
                wait_s=round(wait, 2),
            )
            time.sleep(wait)

    def _send(
        self,
        method: str,
        url: str,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        deadline: float,
        what: str,
    ) -> HttpAnswer:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BackendUnavailable(f"{what}: no answer in time")
        timeout = httpx.Timeout(min(self.timeout_s, left))
        try:
            with self._client.stream(
                method, url, content=body, headers=headers, timeout=timeout
            ) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > self.max_body:
                        raise BackendProtocolError(
                            f"{what}: the answer is larger than {self.max_body // 1024} KiB"
                        )
                    if time.monotonic() > deadline:
                        raise BackendUnavailable(f"{what}: the answer did not finish in time")
                    chunks.append(chunk)
                raw = b"".join(chunks)
                encoding = response.headers.get("content-encoding", "identity").lower()
                if encoding not in ("", "identity"):
                    raise BackendProtocolError(
                        f"{what}: the answer is compressed ({encoding[:20]})"
                    )
                return HttpAnswer(
                    status=response.status_code,
                    headers={k.lower(): v for k, v in response.headers.items()},
                    body=raw,
                    content_type=response.headers.get("content-type", "").split(";")[0].strip(),
                )
        except httpx.TimeoutException:
            raise BackendUnavailable(f"{what}: no answer in time") from None
        except httpx.ConnectError:
            raise BackendUnavailable(f"{what}: cannot connect to the backend") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            raise BackendUnavailable(
                f"{what}: the connection failed ({type(exc).__name__})"
            ) from None
