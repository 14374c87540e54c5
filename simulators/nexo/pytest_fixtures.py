"""The ``nexo_terminal`` fixture: simulated Adyen terminals (nexo Retailer over HTTPS) for tests.

Part of the pytest plugin (:mod:`posdiag.simulators.pytest_plugin` registers it and re-exports
the names here); kept in the nexo package so the family's pieces stay together. See
``simulators/README.md``.

Example::

    def test_diagnosis(nexo_terminal):
        terminal = nexo_terminal("unsettled", model="P400Plus")
        answer = terminal.exchange(diagnosis_request("S1", "POS1", terminal.poiid))
        ...
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from posdiag.drivers.nexo.crypto import NexoKey, decrypt_message, encrypt_message, is_encrypted
from posdiag.drivers.nexo.messages import NexoMessage, dumps, encode_message, loads

from .. import registry
from ..pytest_support import check_names
from .simulator import NexoSimulator
from .state import Faults, NexoState

__all__ = ["NEXO_TEST_TIMEOUT", "SimulatedNexo", "nexo_terminal"]

NEXO_TEST_TIMEOUT = 5.0
"""Seconds :meth:`SimulatedNexo.exchange` waits for an answer."""
_FAULTS = frozenset(f.name for f in dataclasses.fields(Faults))
_OPTIONS = frozenset(
    {"time_scale", "scale", "latency", "serial", "tms", *registry.NEXO_OPTIONS}
)
_service_ids = itertools.count(1)


@dataclass
class SimulatedNexo:
    """A running simulated Adyen terminal and how to reach it.

    Attributes:
        scenario: the scenario it was started in (``fresh``, ``activated``, ``busy``…).
        model: the model profile (``V400m``, ``P400Plus``, ``S1F2``).
        simulator: the running :class:`~posdiag.simulators.nexo.simulator.NexoSimulator`
            (``simulator.device.categories_seen``, ``simulator.events.sent``…).
        address: ``nexo+https://127.0.0.1:PORT?poiid=…&ca=…&key=…``, what ``posdiag check``
            takes.
        host, port: where it listens (``127.0.0.1`` and a free port).
        ca_path: the CA file (``ca.pem``) its certificate chains to: trust it.
        key_path: the 0600 key file (``key.toml``) the address names.
        key: the shared key (identifier, version, passphrase) clients encrypt with.
    """

    scenario: str
    model: str
    simulator: NexoSimulator
    address: str
    host: str
    port: int
    ca_path: Path
    key_path: Path
    key: NexoKey
    _clients: list[Any] = field(default_factory=list, repr=False)

    @property
    def state(self) -> NexoState:
        """The live terminal state: read it to check effects, change it to set up a test.

        Hold ``simulator.device.lock`` while changing it if a request may be running.
        """
        return self.simulator.state

    @property
    def poiid(self) -> str:
        """The terminal's POIID (``V400m-324688179``), for request headers."""
        return self.simulator.state.poiid

    @property
    def url(self) -> str:
        """The endpoint a client POSTs to (``https://127.0.0.1:PORT/nexo``)."""
        return f"https://{self.host}:{self.port}/nexo"

    def client(self, **kwargs: Any) -> Any:
        """An ``httpx.Client`` trusting the terminal's CA (closed at teardown)."""
        import httpx

        kwargs.setdefault("verify", str(self.ca_path))
        kwargs.setdefault("timeout", NEXO_TEST_TIMEOUT)
        kwargs.setdefault("trust_env", False)
        client = httpx.Client(**kwargs)
        self._clients.append(client)
        return client

    def exchange(
        self, message: NexoMessage | Mapping[str, Any], *, encrypt: bool = True
    ) -> dict[str, Any] | None:
        """POST one request and return the decrypted answer object (None: an empty answer).

        Args:
            message: a codec message (``diagnosis_request(...)``) or its JSON object.
            encrypt: encrypt with :attr:`key` (the answer is decrypted with it too).

        Raises:
            httpx.HTTPStatusError: a non-2xx answer (its body is on ``response``).
        """
        wire = encode_message(message) if isinstance(message, NexoMessage) else dict(message)
        if encrypt:
            wire = encrypt_message(wire, self.key)
        client = self._clients[0] if self._clients else self.client()
        response = client.post(self.url, content=dumps(wire))
        response.raise_for_status()
        if not response.content:
            return None
        answer = loads(response.content)
        if is_encrypted(answer):
            return decrypt_message(answer, self.key)[0]
        return answer

    @staticmethod
    def new_service_id() -> str:
        """A ServiceID not used before in this process (``T1``, ``T2``…, at most 10 characters)."""
        return f"T{next(_service_ids) % 10**9}"

    def _stop(self) -> None:
        for client in self._clients:
            client.close()
        self.simulator.stop()


def _option_text(value: Any) -> str:
    """A Python value as the option text ``posdiag simulate`` would pass."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


@pytest.fixture
def nexo_terminal() -> Iterator[Callable[..., SimulatedNexo]]:
    """Factory of simulated Adyen terminals (nexo over HTTPS), stopped when the test ends.

    Call it as ``nexo_terminal(scenario="activated", model="V400m", *, overrides=None,
    **options)``:

    * ``scenario``: ``fresh``, ``activated``, ``unsettled``, ``no-network``, ``low-battery``,
      ``printer-fault``, ``tampered``, ``busy`` (an unknown one raises
      ``NexoScenarioError`` listing them).
    * ``model``: ``V400m`` (battery, printer), ``P400Plus`` (mains, no printer), ``S1F2``.
    * ``overrides``: data merged over the scenario in the TOML layout, e.g.
      ``{"terminal": {"battery_pct": 9}, "key": {"allow_cleartext": False}}``.
    * ``**options``: faults (``wrong_key``, ``no_key``, ``malformed_json=N``, ``slow=S``,
      ``drop=N``), ``time_scale`` (default 0), ``latency``, ``serial``, ``tms`` (a
      ``backend_simulator("adyen")``'s ``url``), ``event_url``, ``allow_cleartext``,
      ``additional_format`` (``form`` or ``base64-json``). Unknown names raise
      :class:`~posdiag.simulators.pytest_support.UnknownFaultError`.

    Returns:
        A started :class:`SimulatedNexo`.
    """
    started: list[SimulatedNexo] = []

    def make(
        scenario: str = "activated",
        model: str = "V400m",
        *,
        overrides: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> SimulatedNexo:
        check_names(options, _FAULTS, _OPTIONS, what="nexo_terminal")
        texts = {"time_scale": "0", **{k: _option_text(v) for k, v in options.items()}}
        simulator = registry.create_nexo(scenario, model, texts, dict(overrides or {}))
        simulator.start()
        assert simulator.ca_path is not None and simulator.key_path is not None
        terminal = SimulatedNexo(
            scenario=scenario,
            model=model,
            simulator=simulator,
            address=simulator.address,
            host=simulator.host,
            port=simulator.port,
            ca_path=simulator.ca_path,
            key_path=simulator.key_path,
            key=simulator.key,
        )
        started.append(terminal)
        return terminal

    yield make
    for terminal in reversed(started):
        terminal._stop()

