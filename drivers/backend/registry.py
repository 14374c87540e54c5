"""Open a configured backend: kind → connector, with one shared HTTP client and limiter each.

Connectors are imported when first used, so a check with no backend configured pays nothing.
Each kind's package exposes ``connect(config) -> Backend`` (building its client with
``http_client``).
"""

from __future__ import annotations

import importlib
import threading

from .config import KINDS, BackendConfig
from .http import HttpClient, Limiter
from .model import Backend, BackendConfigError

__all__ = ["http_client", "open_backend"]

_LIMITERS: dict[tuple[str, str], Limiter] = {}
_LIMITERS_LOCK = threading.Lock()


def _limiter(config: BackendConfig) -> Limiter:
    """One limiter per configured backend in this process, shared by every worker."""
    key = (config.name, config.url)
    with _LIMITERS_LOCK:
        if key not in _LIMITERS:
            _LIMITERS[key] = Limiter(config.concurrency, config.rate)
        return _LIMITERS[key]


def http_client(config: BackendConfig, api_root: str = "") -> HttpClient:
    """The HTTP client a connector uses, built from the backend's settings."""
    return HttpClient(
        config.name,
        config.url + api_root,
        timeout_s=config.timeout,
        deadline_s=config.deadline,
        retries=config.retries,
        verify=config.ca or True,
        limiter=_limiter(config),
    )


def open_backend(config: BackendConfig) -> Backend:
    """The connector for ``config``."""
    if config.kind not in KINDS:
        raise BackendConfigError(f"backend {config.name!r}: unknown kind {config.kind!r}")
    module = importlib.import_module(f"{__package__}.{config.kind}")
    backend: Backend = module.connect(config)
    return backend
