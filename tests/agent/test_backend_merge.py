"""The merge rule: one activation conclusion from the device and the backends (agent/backends)."""

from __future__ import annotations

import pytest

from posdiag.agent.backends import BackendView, merge_activation
from posdiag.agent.policy import MERGE_SOURCE
from posdiag.drivers.backend.model import BackendRecord, Binding, TerminalKey
from posdiag.drivers.model import Activation, ActivationState, Evidence

KEY = TerminalKey(serial="1850047731")


def view(binding: Binding | None, name: str = "tms", error: str = "cannot connect") -> BackendView:
    if binding is None:
        return BackendView(name, "paxstore", error=error)
    record = BackendRecord(backend=name, kind="paxstore", key=KEY, binding=binding, status="A")
    return BackendView(name, "paxstore", record=record)


def device(state: ActivationState) -> Activation:
    return Activation(state=state, evidence=(Evidence("device policy", "device owner x"),))


@pytest.mark.parametrize(
    ("device_state", "backend", "expected"),
    [
        # 1. bound in a backend decides, whatever the device says
        (ActivationState.NOT_ACTIVATED, Binding.BOUND, ActivationState.ACTIVATED),
        (ActivationState.ACTIVATED, Binding.BOUND, ActivationState.ACTIVATED),
        (None, Binding.BOUND, ActivationState.ACTIVATED),
        # 2. unbound there, merchant data still on the device: partial, both facts
        (ActivationState.ACTIVATED, Binding.UNBOUND, ActivationState.PARTIAL),
        (ActivationState.PARTIAL, Binding.DISABLED, ActivationState.PARTIAL),
        # 3. unbound and a clean device
        (ActivationState.NOT_ACTIVATED, Binding.UNBOUND, ActivationState.NOT_ACTIVATED),
        (None, Binding.UNBOUND, ActivationState.NOT_ACTIVATED),
        # 4. a backend that does not know the unit, or is down, decides nothing
        (ActivationState.ACTIVATED, Binding.UNKNOWN, ActivationState.ACTIVATED),
        (ActivationState.NOT_ACTIVATED, None, ActivationState.NOT_ACTIVATED),
        (None, None, ActivationState.UNKNOWN),
    ],
)
def test_the_merge_rule(
    device_state: ActivationState | None, backend: Binding | None, expected: ActivationState
) -> None:
    merged = merge_activation(device(device_state) if device_state else None, [view(backend)])
    assert merged is not None and merged.state is expected
    rule = merged.evidence[0]
    assert rule.source == MERGE_SOURCE and rule.fact  # the verdict quotes which side said what
    sources = {e.source for e in merged.evidence}
    assert "backend tms" in sources
    if device_state is not None:
        assert "device policy" in sources  # the device's own evidence is kept


def test_an_unreachable_backend_is_named_and_never_makes_the_check_unreachable() -> None:
    merged = merge_activation(device(ActivationState.ACTIVATED), [view(None, error="down (503)")])
    assert merged is not None and merged.state is ActivationState.ACTIVATED
    assert any("not consulted: down (503)" in e.fact for e in merged.evidence)


def test_one_bound_backend_outweighs_an_unbound_one() -> None:
    views = [view(Binding.UNBOUND, "acquirer"), view(Binding.BOUND, "tms")]
    merged = merge_activation(device(ActivationState.NOT_ACTIVATED), views)
    assert merged is not None and merged.state is ActivationState.ACTIVATED
    assert "bound in tms" in merged.evidence[0].fact


def test_no_backend_configured_leaves_the_device_answer_untouched() -> None:
    original = device(ActivationState.PARTIAL)
    assert merge_activation(original, []) is original
