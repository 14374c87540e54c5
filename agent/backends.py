"""Backends in the agent: ask them about a terminal, merge with the device, release, report lost.

The merge rule (one activation conclusion from the device and every backend consulted):

1. **Bound in any backend → activated**, whatever the device says: a unit the TMS or acquirer
   still assigns to a merchant is not free to go back, even with a clean device.
2. **Unbound (or disabled) in every backend that knows the unit, but the device holds merchant
   data or a binding → partial**, with both facts: the binding is gone, the data is not.
3. **Unbound everywhere and a clean device → not activated.**
4. A backend that does not know the unit adds that fact and decides nothing; a backend that
   cannot be reached adds "not consulted: why" and decides nothing. The check never becomes
   ``unreachable`` because a backend is down: the device's answer stands.

The conclusion's first evidence line (source :data:`~posdiag.agent.policy.MERGE_SOURCE`) says
which side said what; the verdict quotes it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posdiag.drivers.backend.config import BackendConfig, load_backends
from posdiag.drivers.backend.model import (
    Backend,
    BackendAuthError,
    BackendConfigError,
    BackendError,
    BackendRecord,
    BackendRefused,
    Binding,
    ChangeResult,
    ChangeStatus,
    TerminalKey,
)
from posdiag.drivers.i18n import _
from posdiag.drivers.model import Activation, ActivationState, Evidence, Identity, WipeStep
from posdiag.drivers.text import clean_text

from .logs import get_logger
from .policy import MERGE_SOURCE
from .report import DeviceReport

log = get_logger(__name__)

__all__ = ["BackendView", "Backends", "merge_activation", "view_json"]

FREE = (Binding.UNBOUND, Binding.DISABLED)
BULK_MIN = 10
"""Units from which a backend's bulk query (one paged list) beats asking for each."""


@dataclass(frozen=True)
class BackendView:
    """What one backend said about one terminal, or why it was not consulted."""

    name: str
    kind: str
    record: BackendRecord | None = None
    error: str | None = None
    auth_failed: bool = False
    """The backend refused the credentials (a configuration problem, not a network one)."""

    @property
    def consulted(self) -> bool:
        """The backend answered (whatever it said)."""
        return self.record is not None


def view_json(view: BackendView) -> dict[str, Any]:
    """The report's ``backends[]`` entry (identifiers already masked by the driver)."""
    record = view.record
    if record is None:
        return {"name": view.name, "kind": view.kind, "consulted": False, "error": view.error}
    return {
        "name": view.name,
        "kind": view.kind,
        "consulted": True,
        "binding": record.binding.value,
        "status": record.status,
        "pending": record.pending,
        "backend_id": record.backend_id,
        "merchant": record.merchant,
        "store": record.store,
        "model": record.model,
        "firmware": record.firmware,
        "last_seen": record.last_seen,
        "online": record.online,
        "battery_pct": record.battery_pct,
        "evidence": [{"source": e.source, "fact": e.fact} for e in record.evidence],
    }


def _device_words(device: Activation | None) -> str:
    return device.state.value if device else "nothing (not connected)"


def merge_activation(device: Activation | None, views: list[BackendView]) -> Activation | None:
    """One activation from the device's and the backends' evidence (the module's rule)."""
    if not views:
        return device
    evidence: list[Evidence] = []
    for view in views:
        source = f"backend {view.name}"
        if view.record is None:
            evidence.append(Evidence(source, f"not consulted: {view.error}"))
            continue
        record = view.record
        state = record.binding.value + (" (change pending)" if record.pending else "")
        evidence.append(Evidence(source, f"{state}; status {record.status or '-'}"))
        evidence.extend(Evidence(source, f"{e.source}: {e.fact}") for e in record.evidence)
    known = [
        v.record for v in views if v.record is not None and v.record.binding is not Binding.UNKNOWN
    ]
    bound = [r for r in known if r.binding is Binding.BOUND]
    device_state = device.state if device else ActivationState.UNKNOWN
    if bound:
        state = ActivationState.ACTIVATED
        rule = (
            f"bound in {', '.join(r.backend for r in bound)}; the device says "
            f"{_device_words(device)}: a backend binding decides"
        )
    elif known:
        names = ", ".join(r.backend for r in known)
        if device_state in (ActivationState.ACTIVATED, ActivationState.PARTIAL):
            state = ActivationState.PARTIAL
            rule = f"unbound in {names}, but the device still holds merchant data or a binding"
        elif device_state is ActivationState.NOT_ACTIVATED or device is None:
            state = ActivationState.NOT_ACTIVATED
            rule = f"unbound in {names}; the device says {_device_words(device)}"
        else:
            state = device_state
            rule = f"unbound in {names}; the device could not tell"
    else:
        if device is None:
            state = ActivationState.UNKNOWN
            rule = "no backend knows this unit and no device was read"
        else:
            state = device.state
            rule = f"no backend answered for this unit: the device decides ({device.state.value})"
    merged = [Evidence(MERGE_SOURCE, rule), *(device.evidence if device else ()), *evidence]
    if device is None:
        return Activation(state=state, evidence=tuple(merged), host_registered=bool(bound) or None)
    return Activation(
        state=state,
        terminal_id=device.terminal_id,
        merchant_id=device.merchant_id,
        keys_loaded=device.keys_loaded,
        host_registered=device.host_registered,
        evidence=tuple(merged),
        device_state=device.device_state,
        status_code=device.status_code,
        status_text=device.status_text,
    )


def _failed(config: BackendConfig, exc: BackendError) -> BackendView:
    """The view of a backend that could not answer, saying why."""
    return BackendView(
        config.name,
        config.kind,
        error=clean_text(exc, 300),
        auth_failed=isinstance(exc, BackendAuthError),
    )


class Backends:
    """The configured backends, their connectors opened on first use (thread-safe)."""

    def __init__(self, configs: list[BackendConfig]) -> None:
        self.configs = configs
        self._open: dict[str, Backend] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path | None = None) -> Backends:
        """From the backends file (the default one may be absent: then none is configured)."""
        return cls(load_backends(path))

    def __bool__(self) -> bool:
        return bool(self.configs)

    def backend(self, config: BackendConfig) -> Backend:
        """The connector of one configured backend."""
        from posdiag.drivers.backend.registry import open_backend

        with self._lock:
            if config.name not in self._open:
                self._open[config.name] = open_backend(config)
            return self._open[config.name]

    def close(self) -> None:
        """Close every opened connector."""
        with self._lock:
            for backend in self._open.values():
                backend.close()
            self._open.clear()

    def matching(self, identity: Identity | None) -> list[BackendConfig]:
        """The backends that may know this terminal (all of them for a bare serial)."""
        if identity is None or (identity.vendor is None and identity.model is None):
            return list(self.configs)
        return [
            c
            for c in self.configs
            if c.match.accepts(identity.vendor, identity.model, identity.serial)
        ]

    def consult(self, key: TerminalKey, identity: Identity | None = None) -> list[BackendView]:
        """Look the unit up in every matching backend; a failing one says why, never raises."""
        return [self._view(config, key) for config in self.matching(identity)]

    def _view(self, config: BackendConfig, key: TerminalKey) -> BackendView:
        """One backend's view of one unit; a failure is the view's ``error``, not an exception."""
        try:
            record = self.backend(config).lookup(key)
        except BackendConfigError:
            raise
        except BackendError as exc:
            # the report says it (evidence, reasons): the log line is for --log-level info
            log.info("backend.lookup_failed", backend=config.name, error=str(exc))
            return _failed(config, exc)
        return BackendView(config.name, config.kind, record=record)

    def consult_many(self, keys: list[TerminalKey]) -> dict[TerminalKey, list[BackendView]]:
        """Many units at once: one bulk query per backend that has one (``lookup_many``).

        Backends without a bulk query are asked unit by unit; a backend that fails says why
        for every unit, as ``consult`` does.
        """
        views: dict[TerminalKey, list[BackendView]] = {key: [] for key in keys}
        for config in self.configs:
            backend = self.backend(config)
            bulk = getattr(backend, "lookup_many", None)
            try:
                if callable(bulk) and len(keys) >= BULK_MIN:
                    records = bulk(keys)
                    for key in keys:
                        views[key].append(
                            BackendView(config.name, config.kind, record=records[key])
                        )
                    continue
            except BackendConfigError:
                raise
            except BackendError as exc:
                log.info("backend.bulk_failed", backend=config.name, error=str(exc))
            for key in keys:
                views[key].append(self._view(config, key))
        return views

    def enrich(self, report: DeviceReport, policy: Any) -> None:
        """Add the backends' view to a device report and decide its verdict again."""
        from .policy import decide

        identity = report.identity
        if not self.configs or identity is None or not (identity.serial or identity.tusn):
            return
        key = TerminalKey(serial=identity.serial, tusn=identity.tusn)
        views = self.consult(key, identity)
        if not views:
            return
        report.backends = [view_json(v) for v in views]
        report.activation = merge_activation(report.activation, views)
        if report.verdict.status.value != "unreachable":
            report.verdict = decide(report, policy)

    def release_steps(self, report: DeviceReport) -> list[WipeStep]:
        """One journaled, verified ``release:NAME`` step per backend that holds the unit."""
        identity = report.identity
        if identity is None or not (identity.serial or identity.tusn):
            return []
        key = TerminalKey(serial=identity.serial, tusn=identity.tusn)
        steps = []
        for entry in report.backends:
            if not entry.get("consulted") or entry.get("binding") == Binding.UNKNOWN.value:
                continue
            config = next(c for c in self.configs if c.name == entry["name"])
            steps.append(self._release_step(config, key))
        return steps

    def _release_step(self, config: BackendConfig, key: TerminalKey) -> WipeStep:
        def run() -> None:
            change = self.backend(config).release(key)
            log.info("backend.release", backend=config.name, status=change.status.value)
            if change.status is ChangeStatus.REFUSED:
                raise BackendRefused(
                    _("{name} refused the release: {detail}").format(
                        name=config.name, detail=change.detail
                    )
                )

        def done() -> bool:
            record = self.backend(config).lookup(key)
            return record.binding is Binding.UNBOUND and not record.pending

        return WipeStep(
            name=f"release:{config.name}",
            erases=_("the unit's binding in {name} ({kind}): released to the depot").format(
                name=config.name, kind=config.kind
            ),
            run=run,
            done=done,
            optional=True,
        )

    def still_bound(self, report: DeviceReport) -> list[str]:
        """Exceptions for a wiped unit a backend still binds (the certificate must say so)."""
        return [
            _("still bound in {name} ({status}): release it there (posdiag wipe --release)").format(
                name=entry["name"], status=entry.get("status") or "bound"
            )
            for entry in report.backends
            if entry.get("consulted") and entry.get("binding") == Binding.BOUND.value
        ]

    def report_lost(
        self, key: TerminalKey, reason: str
    ) -> list[tuple[BackendConfig, ChangeResult]]:
        """Disable or lock the unit in every backend that knows it; each confirmed by a lookup."""
        results = []
        for config in self.configs:
            backend = self.backend(config)
            before = backend.lookup(key)
            if before.binding is Binding.UNKNOWN:
                continue
            results.append((config, backend.report_lost(key, reason)))
        return results
