"""A plain nexo client for the simulator tests: ``http.client`` + ``ssl`` and the codec's host role.

Deliberately not posdiag's driver: these tests pin what the simulated terminal puts on the wire,
so the client is the smallest thing that speaks HTTPS with the simulator's CA, encrypts with the
shared key and decrypts the answer.
"""

from __future__ import annotations

import http.client
import itertools
import json
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from posdiag.drivers.nexo.additional import parse_additional
from posdiag.drivers.nexo.crypto import NexoKey, decrypt_message, encrypt_message, is_encrypted
from posdiag.drivers.nexo.messages import NexoMessage, dumps, encode_message
from posdiag.simulators.pytest_plugin import SimulatedNexo

SALE_ID = "POSDIAG-TEST"
_ids = itertools.count(1)


def service_id() -> str:
    """A fresh ServiceID (1–10 alphanumerics)."""
    return f"S{next(_ids)}"


@dataclass
class Reply:
    """One HTTP answer: status, raw body, and the decoded (decrypted) JSON when there is one."""

    status: int
    raw: bytes
    obj: Any = None
    encrypted: bool = False

    def body(self, name: str) -> dict[str, Any]:
        """The ``<Category>Response`` object of a SaleToPOIResponse."""
        return dict(self.obj["SaleToPOIResponse"][name])

    def additional(self, name: str) -> dict[str, str]:
        """The decoded AdditionalResponse of that body."""
        return parse_additional(self.body(name)["Response"].get("AdditionalResponse", ""))


class NexoTestClient:
    """POSTs to one simulated terminal over HTTPS, trusting its CA only."""

    sale_id = SALE_ID

    def __init__(self, terminal: SimulatedNexo, key: NexoKey | None = None) -> None:
        self.terminal = terminal
        self.poiid = terminal.poiid
        self.key = key or terminal.key
        self.context = ssl.create_default_context(cafile=str(terminal.ca_path))

    @staticmethod
    def sid() -> str:
        """A fresh ServiceID."""
        return service_id()

    def connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.terminal.host, self.terminal.port, context=self.context, timeout=10
        )

    def post_raw(
        self, body: bytes | Iterable[bytes], *, path: str = "/nexo", chunked: bool = False
    ) -> Reply:
        conn = self.connection()
        try:
            headers = {"Content-Type": "application/json"}
            if chunked:
                headers["Transfer-Encoding"] = "chunked"
                headers["Connection"] = "close"
                conn.request("POST", path, body=iter(body), headers=headers, encode_chunked=True)
            else:
                assert isinstance(body, bytes)
                conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            raw = response.read()
            status = response.status
        finally:
            conn.close()
        reply = Reply(status, raw)
        try:
            obj = json.loads(raw) if raw else None
        except ValueError:
            return reply
        if isinstance(obj, dict) and is_encrypted(obj):
            reply.obj, _ = decrypt_message(obj, self.key)
            reply.encrypted = True
        else:
            reply.obj = obj
        return reply

    def send(self, message: NexoMessage, *, encrypt: bool = True, **kwargs: Any) -> Reply:
        wire = encode_message(message)
        if encrypt:
            wire = encrypt_message(wire, self.key)
        return self.post_raw(dumps(wire), **kwargs)


@pytest.fixture
def nexo_client() -> Callable[..., NexoTestClient]:
    """``nexo_client(terminal, key=None)``: a plain HTTPS client for a simulated terminal."""
    return NexoTestClient
