"""What a wipe station learns from its ledger before it starts: open wipes and a batch's past.

A station may be continued after a crash or a stop (``posdiag station --batch ID``): terminals
the batch erased already are not wiped again, certificates it still owes are issued from the
ledger alone, and wipes left open are announced (they resume when their terminals show up).
Kept apart from :mod:`posdiag.agent.station`, whose workers only consult the result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from .ledger import Ledger
from .wipe import default_certificate_dir, reissue_pending_certificates

__all__ = ["previous_runs"]

log = structlog.get_logger("posdiag.agent.station")

DoneInBatch = dict[tuple[str, str], dict[str, Any]]


def previous_runs(
    ledger_url: str | None,
    busy_timeout: float,
    continued_batch: str | None,
    key: Any,
    out_dir: Path | None,
    logo: Path | None = None,
) -> DoneInBatch:
    """Announce open wipes; for a continued batch, the terminals it erased (family, serial).

    Only records that pass verification count: a forged "erased" row must not make the station
    skip a terminal that still holds merchant data. Any failure here is logged and leaves the
    station working (each wipe checks its own run).
    """
    done: DoneInBatch = {}
    try:
        with Ledger(ledger_url, busy_timeout=busy_timeout) as ledger:
            unfinished = [run for run in ledger.runs(limit=1000) if run.status == "running"]
            if continued_batch:
                from .manifest import wipe_rows

                _reissue_certificates(ledger, key, out_dir, continued_batch, logo)
                verification = ledger.verify()
                done = {
                    (row["family"], row["serial"]): row
                    for row in wipe_rows(
                        ledger,
                        batch=continued_batch,
                        include_simulated=True,
                        verification=verification,
                    )
                    if row["outcome"] in ("erased", "erased_with_exceptions")
                    and row["integrity"] == "verified"
                }
                if not verification.ok:
                    log.warning(
                        "station.ledger_tampered",
                        problems=verification.problem_count,
                        note="records that fail verification are not trusted: their "
                        "terminals are worked again; run posdiag verify --ledger",
                    )
    except Exception as exc:  # the station still works; each wipe checks its own run
        log.warning("station.unfinished_unknown", error=str(exc))
        return {}
    if unfinished:
        log.warning(
            "station.unfinished_wipes",
            count=len(unfinished),
            terminals=[f"{run.family} {run.serial}" for run in unfinished],
            note="open in the ledger (interrupted here, or running on another station that "
            "shares it); an interrupted one resumes when its terminal is worked again",
        )
    return done


def _reissue_certificates(
    ledger: Ledger, key: Any, out_dir: Path | None, batch: str, logo: Path | None
) -> None:
    """Issue the certificates the continued batch still owes, from the ledger alone.

    A run whose terminal was erased but whose certificate could not be written (full disk,
    crash between the two) waits in state ``certifying``; continuing its batch finishes it
    without touching the terminal again, before any terminal is worked.
    """
    from .certificate import CertificateError

    try:
        issued = reissue_pending_certificates(
            ledger, key, out_dir or default_certificate_dir(), batch=batch, logo=logo
        )
    except CertificateError as exc:  # those runs stay certifying; the next --batch retries
        log.warning("station.certificates_pending", batch=batch, error=str(exc))
        return
    if issued:
        log.warning(
            "station.certificates_reissued",
            batch=batch,
            count=len(issued),
            files=[str(path) for path in issued],
        )
