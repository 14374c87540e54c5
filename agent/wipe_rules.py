"""The wipe's rules on reports: what refuses a wipe, and what a read-back must no longer find.

Pure decisions on :class:`~posdiag.agent.report.DeviceReport` records, apart from the workflow
that talks to the terminal, so each rule reads (and is tested) as the policy it is.
"""

from __future__ import annotations

from posdiag.drivers.model import ActivationState

from .policy import Policy
from .report import DeviceReport, money_text
from .wipe_types import WipeOptions, WipeResult

__all__ = ["UNVERIFIABLE_EVIDENCE", "guard_reasons", "read_back_problems"]

# Activation evidence posdiag cannot remove over the cable: released in the TMS, not wiped.
UNVERIFIABLE_EVIDENCE = ("device policy", "accounts")


def guard_reasons(
    report: DeviceReport, options: WipeOptions, policy: Policy, can_settle: bool = True
) -> list[str]:
    """Why this terminal must not be wiped now, each reason one line a person can act on.

    Args:
        report: the inspection before the wipe.
        options: the operator's decisions (serial confirmed, --settle, --confirmed-settled).
        policy: thresholds (battery minimum).
        can_settle: the terminal's plan has a settle step (End-of-Day over the cable).

    Returns:
        The reasons; empty when the wipe may go on.
    """
    reasons: list[str] = []
    if report.tamper and report.tamper.tampered:
        reasons.append(
            "tampered ("
            + ("; ".join(report.tamper.details) or "tamper reported")
            + "): verdict quarantine; a tampered unit is kept for investigation, never wiped"
        )
    serial = report.identity.serial if report.identity else None
    if not serial:
        reasons.append("the terminal reported no serial number: it cannot be certified")
    elif options.serial and options.serial.strip() != serial:
        reasons.append(
            f"the terminal on the cable is serial {serial}, not {options.serial.strip()} "
            "as confirmed: check which terminal is connected"
        )
    pending = report.merchant_data.pending_transactions if report.merchant_data else None
    if pending is not None and pending.count and not (options.settle and can_settle):
        money = money_text(pending)
        reasons.append(
            f"{pending.count} unsettled transaction(s) ({money}) would be lost: settle them "
            "first, or run again with --settle to have posdiag settle (End-of-Day)"
            if can_settle
            else f"{pending.count} unsettled transaction(s) ({money}) would be lost, and "
            "this terminal cannot be settled over its cable: settle them in the payment "
            "app, then wipe"
        )
    activation = report.activation
    bound = activation is not None and activation.state in (
        ActivationState.ACTIVATED,
        ActivationState.PARTIAL,
    )
    if pending is None and bound and not options.confirmed_settled:
        reasons.append(
            "posdiag cannot read this terminal's open batch, so unsettled payments may "
            "remain: settle them in the payment app, then run again with --confirmed-settled"
        )
    battery = report.battery
    minimum = policy.get("battery", "min_level_pct")
    if (
        battery
        and battery.level_pct is not None
        and battery.level_pct < minimum
        and not battery.charging
    ):
        reasons.append(
            f"battery at {battery.level_pct}% and not charging (minimum {minimum}%): "
            "charge it first, a wipe must not die half-way"
        )
    return reasons


def read_back_problems(after: DeviceReport, result: WipeResult) -> list[str]:
    """What a fresh inspection after the wipe still finds of the merchant.

    Evidence posdiag cannot remove over the cable (device policy, accounts) becomes an exception
    on ``result`` rather than a problem: it is released in the terminal management system.

    Returns:
        The problems; any one of them makes the outcome ``not_erased``.
    """
    problems: list[str] = []
    if after.identity is None:
        return ["the terminal could not be read back after the wipe"]
    activation = after.activation
    for evidence in activation.evidence if activation else ():
        if evidence.source == "unreadable":
            result.exceptions.append(
                f"not verified after the wipe, the terminal did not say: {evidence.fact}"
            )
    if activation and activation.terminal_id:
        problems.append("a terminal ID is still assigned")
    merchant = after.merchant_data
    if merchant:
        if merchant.pending_transactions and merchant.pending_transactions.count:
            problems.append("unsettled transactions are still in the store")
        if merchant.apps:
            problems.append(f"payment app data remains: {', '.join(merchant.apps)}")
        if merchant.files:
            problems.append(f"{len(merchant.files)} merchant file(s) remain")
        if merchant.network_profiles:
            problems.append(f"{len(merchant.network_profiles)} saved network(s) remain")
    if activation and activation.state in (ActivationState.ACTIVATED, ActivationState.PARTIAL):
        hard = [e for e in activation.evidence if e.source not in UNVERIFIABLE_EVIDENCE]
        soft = [e for e in activation.evidence if e.source in UNVERIFIABLE_EVIDENCE]
        if soft:
            result.exceptions.extend(
                f"{e.fact.split(':')[0]}: not removable over the cable (release it in the "
                "terminal management system: posdiag wipe --release with its backend configured)"
                for e in soft
            )
        if activation.terminal_id or any(
            e.source == "app data" and "holds" in e.fact for e in hard
        ):
            problems.append(f"still {activation.state.value} after the wipe")
    return problems
