"""What `posdiag verify` and `posdiag report` say about the ledger's and certificates' integrity.

Verification itself lives with the data (:meth:`posdiag.agent.ledger.Ledger.verify`,
:func:`posdiag.agent.certificate.verify_certificate`); this module turns results into the lines
a person reads and decides which manifest rows can be presented as valid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from posdiag.drivers.i18n import _, ngettext
from posdiag.drivers.text import clean_text

from .ledger import Ledger, LedgerVerification

__all__ = [
    "CertificateInLedger",
    "certificate_in_ledger",
    "ledger_lines",
    "row_marks",
]

SHOWN_PROBLEMS: Final = 20
"""Problems listed one per line; the rest are counted (``posdiag verify --ledger --json`` has
none of them cut either, up to the verifier's own cap)."""


def ledger_lines(result: LedgerVerification) -> list[str]:
    """The lines `posdiag verify --ledger` prints, first the verdict, then what is wrong."""
    if result.ok:
        return [
            _(
                "ledger intact: {entries} audit entries chained, {records} records match their "
                "seals"
            ).format(entries=result.chain.rows, records=result.rows_checked)
        ]
    count = result.problem_count + (not result.chain.ok)
    lines = [
        ngettext(
            "LEDGER TAMPERED: {count} problem found",
            "LEDGER TAMPERED: {count} problems found",
            count,
        ).format(count=count)
    ]
    if not result.chain.ok:
        lines.append(
            "  "
            + _("audit log entry {entry}: {why}").format(
                entry=result.chain.first_bad_id, why=result.chain.reason
            )
        )
    for problem in result.problems[:SHOWN_PROBLEMS]:
        lines.append(f"  {clean_text(str(problem), limit=300)}")
    hidden = result.problem_count - min(len(result.problems), SHOWN_PROBLEMS)
    if hidden > 0:
        lines.append("  " + _("… and {count} more").format(count=hidden))
    return lines


def row_marks(result: LedgerVerification) -> dict[str, dict[str, str]]:
    """For each sealed table, the keys of the rows that failed and why (for manifests)."""
    marks: dict[str, dict[str, str]] = {}
    for problem in result.problems:
        if problem.key is not None:
            marks.setdefault(problem.table, {}).setdefault(problem.key, problem.reason)
    return marks


@dataclass(frozen=True)
class CertificateInLedger:
    """Whether a certificate file is the one the ledger recorded."""

    ok: bool
    reason: str


def certificate_in_ledger(ledger: Ledger, report_id: Any, data: bytes) -> CertificateInLedger:
    """Compare a certificate file's exact bytes with the hash the ledger recorded for it.

    The ledger's own row is also checked against its seal: a record edited to match a forged
    file is caught there.
    """
    record = ledger.certificate_by_report_id(str(report_id))
    if record is None:
        return CertificateInLedger(False, _("this ledger has no record of this certificate"))
    digest = hashlib.sha256(data).hexdigest()
    if digest != record.sha256:
        return CertificateInLedger(
            False,
            _(
                "this file is not the certificate the ledger recorded (its SHA-256 differs): it "
                "was changed after it was issued"
            ),
        )
    verification = ledger.verify()
    bad = row_marks(verification)
    run_bad = str(record.run_id) in bad.get("wipe_runs", {})
    row_bad = str(record.id) in bad.get("certificates", {})
    if run_bad or row_bad or not verification.chain.ok:
        return CertificateInLedger(
            False,
            _(
                "the ledger's record of this certificate fails verification; run posdiag verify "
                "--ledger for details"
            ),
        )
    return CertificateInLedger(
        True, _("recorded in the ledger for wipe run {run}").format(run=record.run_id)
    )
