"""A running simulated Adyen terminal: state, behaviour, HTTPS server, TLS files, key file.

:class:`NexoSimulator` puts the pieces together the way ``posdiag simulate nexo`` and the
``nexo_terminal`` fixture need them: at :meth:`~NexoSimulator.start` it makes a private 0700
directory holding ``ca.pem`` (the CA clients trust), the leaf certificate and key (0600), and
``key.toml`` (0600: the shared key's identifier, version and passphrase, for posdiag's
``key=`` address parameter), syncs once with its Adyen backend when it has one (registration),
starts the HTTPS server and sends its start events. :meth:`~NexoSimulator.stop` undoes all of
it, the directory included. :meth:`~NexoSimulator.disconnect` and
:meth:`~NexoSimulator.reconnect` pull and reconnect its network cable (the simulated bus):
the server stops and every open connection is cut, then it listens again on the same port with
the same state, CA and key files, so its address stays valid.

The address it prints is the contract with posdiag's nexo driver::

    nexo+https://HOST:PORT?poiid=<POIID>&ca=<path of ca.pem>&key=<path of key.toml>

(paths percent-encoded except ``/``; a wildcard listening address is named as 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self
from urllib.parse import quote, urlencode

import structlog

from posdiag.drivers.nexo.crypto import NexoKey

from . import tms
from .device import NexoDevice
from .engine import NexoEngine
from .events import EventSender
from .server import NexoHttpsServer
from .state import NexoState
from .tls import material_for, write_material

__all__ = ["NexoSimulator", "key_file_text"]

log = structlog.get_logger(__name__)


def key_file_text(key: NexoKey) -> str:
    """The TOML of a key file: ``identifier``, ``version``, ``passphrase`` (ASCII strings)."""
    return (
        f"identifier = {json.dumps(key.identifier)}\n"
        f"version = {int(key.version)}\n"
        f"passphrase = {json.dumps(key.passphrase)}\n"
    )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


class NexoSimulator:
    """A simulated Adyen terminal on HTTPS (see the module docstring).

    Args:
        state: the terminal's state (from :func:`~posdiag.simulators.nexo.state.load_nexo`).
        host, port: where to listen (port 0: a free one).
        clock: the terminal's clock (tests move it for the 48-hour ServiceID rule).
        sleep: how delays are waited out.

    Attributes:
        state, device, engine: the live state, the behaviour and the body-level engine.
        events: the EventNotification sender (``events.sent`` lists what was POSTed).
        directory: the private directory (None before start and after stop).
        ca_path, key_path: ``ca.pem`` and ``key.toml`` in it.
    """

    def __init__(
        self,
        state: NexoState,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state = state
        self.device = NexoDevice(state, clock=clock, sync=self._sync, sleep=sleep)
        self.engine = NexoEngine(state, self.device, sleep=sleep)
        self.events = EventSender(state, self.engine.terminal_key())
        self.host = host
        self.port = port
        self.directory: Path | None = None
        self.ca_path: Path | None = None
        self.key_path: Path | None = None
        self._server: NexoHttpsServer | None = None
        self._context: ssl.SSLContext | None = None

    @staticmethod
    def _sync(state: NexoState) -> None:
        tms.sync(state)

    @property
    def key(self) -> NexoKey:
        """The shared key clients use (``key.toml``'s; ``wrong_key`` does not change it)."""
        return self.engine.advertised_key()

    @property
    def address(self) -> str:
        """The posdiag address of this terminal (module docstring), kept while disconnected."""
        if self._context is None or self.ca_path is None or self.key_path is None:
            raise RuntimeError("the simulated nexo terminal is not running")
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        shown = f"[{host}]" if ":" in host else host
        query = urlencode(
            {"poiid": self.state.poiid, "ca": str(self.ca_path), "key": str(self.key_path)},
            quote_via=quote,
            safe="/",
        )
        return f"nexo+https://{shown}:{self.port}?{query}"

    def start(self) -> Self:
        """Write the TLS and key files, register with the backend, serve, send start events.

        Raises:
            OSError: the address cannot be listened on (the directory is removed again).
        """
        self.directory = Path(tempfile.mkdtemp(prefix="posdiag-nexo-"))  # mode 0700
        try:
            material = material_for(self.state.poiid)
            self.ca_path, leaf_path, leaf_key_path = write_material(material, self.directory)
            self.key_path = self.directory / "key.toml"
            _write_private(self.key_path, key_file_text(self.key))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(leaf_path, leaf_key_path)
            if self.state.tms_url:
                tms.sync(self.state)  # registration: the unit reports to Adyen at power-on
            self._server = NexoHttpsServer((self.host, self.port), self.engine, context)
            self._context = context
        except BaseException:
            self._remove_directory()
            raise
        self.host = str(self._server.server_address[0])
        self.port = self._server.port
        self._server.start()
        log.info("sim.nexo.started", poiid=self.state.poiid, port=self.port)
        self.events.send_async(list(self.state.start_events))
        return self

    @property
    def serving(self) -> bool:
        """Whether the HTTPS server is listening (started and not disconnected)."""
        return self._server is not None

    def disconnect(self) -> None:
        """Pull the network cable: stop listening and cut every open connection now.

        The state, the port and the files stay: :meth:`reconnect` serves again at the same
        address. Nothing happens when not serving.
        """
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            server.cut_connections()
            log.info("sim.nexo.disconnected", poiid=self.state.poiid, port=self.port)

    def reconnect(self) -> None:
        """Plug the cable back in: listen again on the same port, with the same state and files.

        Raises:
            RuntimeError: never started, or stopped.
            OSError: the port cannot be listened on again (another program took it).
        """
        if self._server is not None:
            return
        if self.directory is None or self._context is None:
            raise RuntimeError("the simulated nexo terminal is not started")
        self._server = NexoHttpsServer((self.host, self.port), self.engine, self._context)
        self._server.start()
        log.info("sim.nexo.reconnected", poiid=self.state.poiid, port=self.port)

    def stop(self) -> None:
        """Stop serving, let started event POSTs finish (bounded), remove the directory."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._context = None
        self.events.join()
        self._remove_directory()

    def _remove_directory(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
