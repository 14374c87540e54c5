"""PAXSTORE (PAX's terminal management system) through its third-party system Open API.

``connect(config)`` gives the :class:`PaxstoreBackend` for a ``kind = "paxstore"`` entry of the
backends file; :mod:`.signing` holds the sans-IO request signing, :mod:`.client` the API calls.
"""

from __future__ import annotations

from .backend import PaxstoreBackend, connect

__all__ = ["PaxstoreBackend", "connect"]
