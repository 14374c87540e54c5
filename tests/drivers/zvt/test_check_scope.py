"""How much a ZVT check asks the terminal: only the exchanges whose facts the verdict reads.

Every exchange is line time at 9600 baud, so the commands a check sends are pinned here against
what the simulated terminal received: no exchange whose facts another already gave (Feig's system
info repeats Status Enquiry's serial), the host dial-up (Diagnosis, seconds) only when the policy
reads host reachability or the operator asks, and a quick triage of identity, binding and
unsettled money without the kilobytes of the configuration printout.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.policy import check_scope, load_policy
from posdiag.agent.report import VerdictStatus
from posdiag.drivers.model import ActivationState, CheckScope
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.pytest_plugin import SimulatedZvt

REGISTRATION, STATUS, PRINTOUT, TOTALS, DIAGNOSIS, LOG_OFF = (
    "06 00",
    "05 01",
    "06 1a",
    "06 10",
    "06 70",
    "06 02",
)
FEIG_SYSTEM_INFO = "0f a1"


def checked(
    zvt_terminal: Callable[..., SimulatedZvt],
    zvt_driver: Callable[..., ZvtDriver],
    scenario: str,
    scope: CheckScope | None,
) -> tuple[list[str], Any]:
    simulated = zvt_terminal(scenario)
    terminal = ZvtTerminal(zvt_driver(simulated), f"zvt+sim://{scenario}")
    report = inspect_terminal(terminal, load_policy(None), simulated=True, scope=scope)
    return list(simulated.simulator.command_log), report


def test_a_standard_check_sends_each_needed_exchange_once(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    commands, report = checked(zvt_terminal, zvt_driver, "activated", None)
    # The shipped policy reads host reachability, so Diagnosis is needed; Feig's system info
    # is not: Status Enquiry gave the serial.
    assert commands == [REGISTRATION, STATUS, PRINTOUT, TOTALS, DIAGNOSIS, LOG_OFF]
    assert report.scope == "full"
    assert report.identity.serial
    assert report.network.host_reachable is True


def test_no_host_dial_up_when_the_policy_does_not_read_it(
    zvt_terminal: Callable[..., SimulatedZvt], zvt_driver: Callable[..., ZvtDriver]
) -> None:
    commands, report = checked(
        zvt_terminal, zvt_driver, "activated", CheckScope(quick=False, host_dialup=False)
    )
    assert DIAGNOSIS not in commands
    assert commands == [REGISTRATION, STATUS, PRINTOUT, TOTALS, LOG_OFF]
    assert report.scope == "standard"
    assert report.network.host_reachable is None
    assert report.firmware is not None


def test_the_policy_decides_the_dial_up_and_full_forces_it(tmp_path: Path) -> None:
    shipped = load_policy(None)
    assert check_scope(shipped).host_dialup is True
    assert check_scope(shipped, quick=True) == CheckScope(quick=True, host_dialup=False)
    relaxed_file = tmp_path / "policy.toml"
    relaxed_file.write_text("[network]\nrequire_host_reachable = false\n", encoding="utf-8")
    relaxed = load_policy(relaxed_file)
    assert check_scope(relaxed).host_dialup is False
    assert check_scope(relaxed, full=True).host_dialup is True


@pytest.mark.parametrize(
    ("scenario", "state", "verdict"),
    [
        ("fresh", ActivationState.NOT_ACTIVATED, VerdictStatus.READY),
        ("activated", ActivationState.ACTIVATED, VerdictStatus.WIPE_REQUIRED),
        ("unsettled", ActivationState.ACTIVATED, VerdictStatus.WIPE_REQUIRED),
    ],
)
def test_quick_triage_asks_for_identity_binding_and_money_only(
    zvt_terminal: Callable[..., SimulatedZvt],
    zvt_driver: Callable[..., ZvtDriver],
    scenario: str,
    state: ActivationState,
    verdict: VerdictStatus,
) -> None:
    commands, quick = checked(zvt_terminal, zvt_driver, scenario, CheckScope(quick=True))
    assert commands == [REGISTRATION, STATUS, TOTALS, LOG_OFF]
    _, full = checked(zvt_terminal, zvt_driver, scenario, None)
    assert quick.scope == "quick"
    assert quick.identity.serial == full.identity.serial
    assert quick.activation.state is state
    assert quick.activation.terminal_id == full.activation.terminal_id
    assert quick.merchant_data.pending_transactions == full.merchant_data.pending_transactions
    assert quick.firmware is None and quick.network is None
    assert quick.verdict.status is verdict
    if verdict is VerdictStatus.READY:
        # triage never certifies: its reason says the health was not read
        assert "quick check" in quick.verdict.reasons[0]
