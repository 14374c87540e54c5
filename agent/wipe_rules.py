"""The wipe's rules on reports: what refuses a wipe, and what a read-back must no longer find.

Pure decisions on :class:`~posdiag.agent.report.DeviceReport` records, apart from the workflow
that talks to the terminal, so each rule reads (and is tested) as the policy it is.
"""

from __future__ import annotations

import re

from posdiag.drivers.i18n import _, ngettext
from posdiag.drivers.model import ActivationState

from .policy import Policy
from .report import DeviceReport, activation_words, money_text
from .wipe_types import WipeOptions, WipeResult

__all__ = ["UNVERIFIABLE_EVIDENCE", "guard_reasons", "read_back_problems"]

# Activation evidence posdiag cannot remove over the cable: released in the TMS, not wiped.
# "account assignment" is a nexo terminal's merchant account and store (the same words as
# posdiag.drivers.nexo.terminal.ASSIGNMENT_SOURCE; not imported, to keep the driver unloaded).
UNVERIFIABLE_EVIDENCE = ("device policy", "accounts", "account assignment")
# An "app data" fact naming a package is data an app still holds; the other kind is the note
# that sizes could not be read. Facts are in the reader's language, package names never are.
_PACKAGE = re.compile(r"\b[a-z][a-z0-9_]*(?:\.[A-Za-z0-9_]+)+\b")
_FACT_HEAD = re.compile(r"[:：]")


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
            _(
                "tampered ({details}): verdict quarantine; a tampered unit is kept for "
                "investigation, never wiped"
            ).format(details="; ".join(report.tamper.details) or _("tamper reported"))
        )
    serial = report.identity.serial if report.identity else None
    if not serial:
        reasons.append(_("the terminal reported no serial number: it cannot be certified"))
    elif options.serial and options.serial.strip() != serial:
        reasons.append(
            _(
                "the terminal on the cable is serial {serial}, not {confirmed} as confirmed: "
                "check which terminal is connected"
            ).format(serial=serial, confirmed=options.serial.strip())
        )
    pending = report.merchant_data.pending_transactions if report.merchant_data else None
    if pending is not None and pending.count and pending.undelivered:
        # payments the terminal has not delivered to Adyen yet: only the terminal can deliver
        # them (nothing posdiag may send settles or closes anything), so the wipe waits for it
        reasons.append(
            ngettext(
                "{count} payment is still waiting on the terminal to be delivered to Adyen: "
                "connect the terminal to the internet and let it deliver it, then check again "
                "before wiping",
                "{count} payments are still waiting on the terminal to be delivered to Adyen: "
                "connect the terminal to the internet and let it deliver them, then check again "
                "before wiping",
                pending.count,
            ).format(count=pending.count)
        )
    elif pending is not None and pending.count and not (options.settle and can_settle):
        money = money_text(pending)
        if can_settle:
            reason = ngettext(
                "{count} unsettled transaction ({money}) would be lost: settle it first, or run "
                "again with --settle to have posdiag settle (End-of-Day)",
                "{count} unsettled transactions ({money}) would be lost: settle them first, or "
                "run again with --settle to have posdiag settle (End-of-Day)",
                pending.count,
            )
        else:
            reason = ngettext(
                "{count} unsettled transaction ({money}) would be lost, and this terminal "
                "cannot be settled over its cable: settle it in the payment app, then wipe",
                "{count} unsettled transactions ({money}) would be lost, and this terminal "
                "cannot be settled over its cable: settle them in the payment app, then wipe",
                pending.count,
            )
        reasons.append(reason.format(count=pending.count, money=money))
    activation = report.activation
    bound = activation is not None and activation.state in (
        ActivationState.ACTIVATED,
        ActivationState.PARTIAL,
    )
    if pending is None and bound and not options.confirmed_settled:
        reasons.append(
            _(
                "posdiag cannot read this terminal's open batch, so unsettled payments may "
                "remain: settle them in the payment app, then run again with --confirmed-settled"
            )
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
            _(
                "battery at {level}% and not charging (minimum {minimum}%): charge it first, a "
                "wipe must not die half-way"
            ).format(level=battery.level_pct, minimum=minimum)
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
        return [_("the terminal could not be read back after the wipe")]
    activation = after.activation
    for evidence in activation.evidence if activation else ():
        if evidence.source == "unreadable":
            result.exceptions.append(
                _("not verified after the wipe, the terminal did not say: {fact}").format(
                    fact=evidence.fact
                )
            )
    if activation and activation.terminal_id:
        problems.append(_("a terminal ID is still assigned"))
    merchant = after.merchant_data
    if merchant:
        if merchant.pending_transactions and merchant.pending_transactions.count:
            problems.append(_("unsettled transactions are still in the store"))
        if merchant.apps:
            problems.append(
                _("payment app data remains: {apps}").format(apps=", ".join(merchant.apps))
            )
        if merchant.files:
            count = len(merchant.files)
            problems.append(
                ngettext(
                    "{count} merchant file remains", "{count} merchant files remain", count
                ).format(count=count)
            )
        if merchant.network_profiles:
            count = len(merchant.network_profiles)
            problems.append(
                ngettext(
                    "{count} saved network remains", "{count} saved networks remain", count
                ).format(count=count)
            )
    if activation and activation.state in (ActivationState.ACTIVATED, ActivationState.PARTIAL):
        hard = [e for e in activation.evidence if e.source not in UNVERIFIABLE_EVIDENCE]
        soft = [e for e in activation.evidence if e.source in UNVERIFIABLE_EVIDENCE]
        if soft:
            result.exceptions.extend(
                _(
                    "{fact}: not removable over the cable (release it in the terminal "
                    "management system: posdiag wipe --release with its backend configured)"
                ).format(fact=_FACT_HEAD.split(e.fact, maxsplit=1)[0])
                for e in soft
            )
        if activation.terminal_id or any(
            e.source == "app data" and _PACKAGE.search(e.fact) for e in hard
        ):
            state = activation_words(activation.state.value)
            problems.append(_("still {state} after the wipe").format(state=state))
    return problems
