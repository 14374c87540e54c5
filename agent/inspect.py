"""Run every probe of the Terminal contract against one terminal and build its report.

A probe that says ``unsupported`` is recorded as such; a probe that fails is recorded as an
error and the others still run, so one broken answer never hides the rest. Only a terminal that
cannot be reached at all ends as ``unreachable``.
"""

from __future__ import annotations

import time

import structlog

from posdiag.drivers.errors import (
    AuthenticationError,
    PosdiagError,
    ProtocolError,
    TransportError,
    UnsupportedError,
)
from posdiag.drivers.model import Terminal

from .policy import Policy, decide
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


def inspect_terminal(
    terminal: Terminal, policy: Policy, *, simulated: bool = False, keep_open: bool = False
) -> DeviceReport:
    """Probe the terminal and decide its verdict.

    Args:
        terminal: the terminal to probe.
        policy: thresholds for the verdict.
        simulated: mark the report as coming from a simulator.
        keep_open: leave the connection open (the wipe goes on using it).

    Raises:
        AuthenticationError: the terminal rejected the password (no report can be trusted).
    """
    started = time.monotonic()
    report = DeviceReport(
        address=terminal.address,
        family=terminal.family,
        checked_at=utc_now_text(),
        simulated=simulated,
    )
    try:
        for probe in PROBES:
            try:
                value = getattr(terminal, probe)()
            except UnsupportedError as exc:
                report.unsupported.append(f"{probe}: {exc}")
                continue
            except (TransportError, ProtocolError) as exc:
                if probe == PROBES[0]:
                    report.errors.append(str(exc))
                    break  # nothing answered: unreachable
                report.errors.append(f"{probe}: {exc}")
                continue
            except AuthenticationError:
                raise  # the operator must supply the right credentials; no report is trustworthy
            except PosdiagError as exc:
                report.errors.append(f"{probe}: {exc}")
                continue
            setattr(report, FIELD.get(probe, probe), value)
        facts = getattr(terminal, "facts", None)
        if callable(facts) and report.identity is not None:
            report.errors.extend(getattr(facts(), "errors", []))
    finally:
        if not keep_open:
            terminal.close()
    report.duration_s = time.monotonic() - started
    report.verdict = (
        decide(report, policy)
        if report.identity
        else Verdict(VerdictStatus.UNREACHABLE, tuple(report.errors) or ("no answer",))
    )
    log.info(
        "check.done",
        address=report.address,
        verdict=report.verdict.status.value,
        seconds=round(report.duration_s, 2),
    )
    return report
