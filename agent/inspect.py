"""Run every probe of the Terminal contract against one terminal and build its report.

A probe that says ``unsupported`` is recorded as such; a probe that fails is recorded as an
error and the others still run, so one broken answer never hides the rest. Only a terminal that
cannot be reached at all ends as ``unreachable``.
"""

from __future__ import annotations

import time

import structlog

from posdiag.drivers.deadline import check_seconds
from posdiag.drivers.errors import (
    AuthenticationError,
    ConnectionRefused,
    DeadlineExceeded,
    DebuggingLockedError,
    DeviceNotFound,
    PosdiagError,
    ProtocolError,
    TransportError,
    TransportTimeout,
    UnsupportedError,
)
from posdiag.drivers.i18n import _
from posdiag.drivers.model import QUICK_PROBES, CheckScope, Terminal, apply_scope

from .policy import Policy, check_scope, decide
from .report import DeviceReport, Verdict, VerdictStatus, utc_now_text

log = structlog.get_logger(__name__)

PROBES = (
    "identify",
    "activation",
    "firmware",
    "network",
    "battery",
    "merchant_data",
    "tamper",
    "health",
)
FIELD = {"identify": "identity"}
DEFAULT_DEADLINE_S = {"zvt": 120.0, "adb": 90.0, "nexo": 120.0}
"""Seconds a check may take per family when the caller names no deadline: a ZVT session is a
handful of commands at 9600 baud plus a host dial-up; an ADB one a dozen shell commands; a nexo
one five HTTPS requests, one of them a host diagnosis of up to a minute."""
FALLBACK_DEADLINE_S = 120.0
"""For a family without its own default."""


def deadline_text(seconds: float) -> str:
    """The reason a check cut off by its deadline gives: one line for the person at the bench."""
    return _("the terminal did not finish in time ({seconds} s): restart it and try again").format(
        seconds=f"{seconds:g}"
    )


def unreachable_reason(address: str, error: BaseException | None = None) -> str:
    """Why nothing could be checked, and what to try, without protocol words.

    The exception's own text (what a protocol answered instead of what was expected) stays in
    the report's ``errors`` and under ``--debug``; the person at the bench gets the next move.
    """
    scheme = address.split("://", 1)[0] if "://" in address else "serial"
    link = scheme.rsplit("+", 1)[-1]
    if isinstance(error, DebuggingLockedError):
        return str(error)  # the driver's words: locked, and where its binding can be checked
    if isinstance(error, AuthenticationError):
        return _("The terminal refused the password: check it and try again.")
    if isinstance(error, ProtocolError) and not isinstance(error, TransportTimeout):
        return _(
            "The terminal answered, but not in a way posdiag understands: restart it and try "
            "again (details: --debug)."
        )
    if isinstance(error, ConnectionRefused) and scheme == "adb+tcp":
        return _(
            "Nothing answers on the terminal's ADB port: if the address and port are right, its "
            "network debugging is off, as on production-locked units. Its binding can still be "
            "checked through its backend (posdiag check with its TMS backend configured)."
        )
    if link in ("tcp", "https"):
        return _(
            "The terminal cannot be reached on the network: check that it is switched on, on "
            "the same network, and that the address and port are right; then try again."
        )
    if isinstance(error, DeviceNotFound) and link == "usb":
        return _(
            "No terminal was found on USB: plug it in with a data cable, unlock it and allow USB "
            "debugging if it asks, then try again (posdiag doctor checks this PC's USB access)."
        )
    if link == "usb" or scheme.startswith("adb"):
        return _(
            "The terminal does not answer over USB: unplug and reconnect the cable, allow USB "
            "debugging on its screen if asked, then try again."
        )
    if link == "sim":
        return _("The simulated terminal did not answer: try again.")
    return _(
        "The terminal does not answer on its cable: check that it is switched on and the "
        "cable is plugged in at both ends, then try again."
    )


def inspect_terminal(
    terminal: Terminal,
    policy: Policy,
    *,
    simulated: bool = False,
    keep_open: bool = False,
    deadline_s: float | None = None,
    scope: CheckScope | None = None,
) -> DeviceReport:
    """Probe the terminal and decide its verdict, within an overall deadline.

    Args:
        terminal: the terminal to probe.
        policy: thresholds for the verdict.
        simulated: mark the report as coming from a simulator.
        keep_open: leave the connection open (the wipe goes on using it); the deadline is
            lifted again so the caller can set its own.
        deadline_s: seconds the whole check may take (default: ``DEFAULT_DEADLINE_S`` of the
            family). A terminal still busy then ends ``unreachable``, whatever it keeps sending.
        scope: how much to ask (default: every probe, the host dial-up when the policy reads
            host reachability); a quick scope runs :data:`QUICK_PROBES` only.

    Raises:
        AuthenticationError: the terminal rejected the password (no report can be trusted).
    """
    started = time.monotonic()
    if deadline_s is None:
        deadline_s = DEFAULT_DEADLINE_S.get(terminal.family, FALLBACK_DEADLINE_S)
    deadline_s = check_seconds("deadline", deadline_s)
    terminal.set_deadline(started + deadline_s)
    if scope is None:
        scope = check_scope(policy)
    apply_scope(terminal, scope)
    probes = QUICK_PROBES if scope.quick else PROBES
    timed_out = False
    first_error: BaseException | None = None
    report = DeviceReport(
        address=terminal.address,
        family=terminal.family,
        checked_at=utc_now_text(),
        simulated=simulated,
        scope="quick" if scope.quick else "full" if scope.host_dialup else "standard",
    )
    try:
        for probe in probes:
            try:
                value = getattr(terminal, probe)()
            except DeadlineExceeded:
                timed_out = True
                break  # no probe may outlive the check; what was learnt is not a verdict
            except UnsupportedError as exc:
                report.unsupported.append(f"{probe}: {exc}")
                continue
            except AuthenticationError:
                # before TransportError: a locked unit's error is both (the link dropped, or no
                # ADB interface), and the operator needs its words, not "check the cable"
                raise  # the operator must supply the right credentials; no report is trustworthy
            except (TransportError, ProtocolError) as exc:
                if probe == probes[0]:
                    report.errors.append(str(exc))
                    first_error = exc
                    break  # nothing answered: unreachable
                report.errors.append(f"{probe}: {exc}")
                continue
            except PosdiagError as exc:
                report.errors.append(f"{probe}: {exc}")
                continue
            setattr(report, FIELD.get(probe, probe), value)
        facts = getattr(terminal, "facts", None)
        if callable(facts) and report.identity is not None and not timed_out:
            report.errors.extend(getattr(facts(), "errors", []))
    finally:
        if keep_open:
            terminal.set_deadline(None)
        else:
            terminal.close()
    report.duration_s = time.monotonic() - started
    if timed_out:
        reason = deadline_text(deadline_s)
        report.errors.append(reason)
        report.verdict = Verdict(VerdictStatus.UNREACHABLE, (reason,))
    else:
        report.verdict = (
            decide(report, policy)
            if report.identity
            else Verdict(
                VerdictStatus.UNREACHABLE, (unreachable_reason(report.address, first_error),)
            )
        )
    log.info(
        "check.done",
        address=report.address,
        verdict=report.verdict.status.value,
        seconds=round(report.duration_s, 2),
    )
    return report
