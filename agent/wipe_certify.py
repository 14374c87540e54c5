"""Issuing a wipe's certificate so that ``erased`` never exists without it.

The wipe records its outcome and the unsigned certificate content in one ledger write
(``finish_wipe_run(..., certificate=content)``: the run is then ``certifying``), signs, writes the
files atomically, and records the certificate, which makes the run ``finished`` in the same
transaction. A crash, a full disk or a ledger error anywhere in between leaves the run
``certifying`` with its content stored; :func:`reissue_pending_certificates` finishes the job from
the ledger alone, never touching a terminal, and the next ``posdiag wipe`` of that terminal (or
``station --batch``) calls it.

Re-issuing is idempotent because Ed25519 signatures are deterministic: the same content signed by
the same key gives the same file, byte for byte, so a file written before a crash but not yet
recorded is recognised and recorded rather than duplicated.

Before any destructive step, :func:`preflight` proves the certificate folder and the ledger can be
written, so a wipe is refused (the terminal untouched) rather than left without its proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posdiag.drivers.errors import PosdiagError
from posdiag.drivers.i18n import _

from . import __version__
from .certificate import (
    CertificateError,
    CertificateFiles,
    StationKey,
    build_certificate,
    preflight_out_dir,
    sign_certificate,
    write_certificate_files,
)
from .logs import get_logger
from .report import to_json, utc_now_text
from .wipe_types import CERTIFICATE_PENDING_EXIT

if TYPE_CHECKING:
    from .wipe_types import WipeOptions, WipeResult

__all__ = [
    "CERTIFICATE_PENDING_EXIT",
    "certificate_content",
    "issue_certificate",
    "pending_reason",
    "preflight",
    "reissue_pending_certificates",
]

log = get_logger(__name__)


def pending_reason(error: BaseException) -> str:
    """The one line an operator reads when a certificate could not be issued, and what to do."""
    return (
        f"the certificate could not be issued ({error}); the outcome is recorded: run posdiag "
        "wipe again (or the station with --batch) to issue it"
    )


def issue_certificate(
    ledger: Any,
    key: StationKey,
    run_id: int | None,
    content: Mapping[str, Any],
    out_dir: Path,
    *,
    logo: Path | None = None,
) -> CertificateFiles:
    """Sign ``content``, write its files atomically and record it for ``run_id``.

    A JSON file already there with exactly the bytes this signature gives (written before a
    crash, never recorded) is kept and recorded; one with other bytes is never replaced.

    Args:
        ledger: the ledger (``posdiag.agent.ledger.Ledger``), or None (tests: files only).
        key: the station key.
        run_id: the ``certifying`` run; None without a ledger.
        content: the unsigned certificate content stored with the run.
        out_dir: the certificate folder.
        logo: the depot's logo for the PDF's header (station settings).

    Returns:
        The signed record, its page and its PDF (None when the PDF could not be rendered).

    Raises:
        CertificateError: the content cannot be signed or the files cannot be written.
        LedgerError: the certificate cannot be recorded.
    """
    document = sign_certificate(content, key)
    files = write_certificate_files(document, out_dir, reuse_identical=True, logo=logo)
    if ledger is not None and run_id is not None:
        digest = hashlib.sha256(files.json.read_bytes()).hexdigest()
        ledger.record_certificate(run_id, str(content.get("report_id")), str(files.json), digest)
    log.info("certificate issued", run_id=run_id, report_id=content.get("report_id"))
    return files


def reissue_pending_certificates(
    ledger: Any,
    key: StationKey,
    out_dir: Path,
    batch: str | None = None,
    family: str | None = None,
    serial: str | None = None,
    logo: Path | None = None,
) -> list[Path]:
    """Issue the certificate of every ``certifying`` run (of that batch / terminal) from the ledger.

    Never touches a terminal: the content was fixed when the outcome was. Every pending run is
    tried even when one fails, so one bad run does not hold the others back.

    Args:
        ledger: the ledger.
        key: the station key (the same one gives the same files as a first attempt would have).
        out_dir: the certificate folder.
        batch: only runs of this station batch.
        family: only this family's terminals.
        serial: only this serial (with ``family``).
        logo: the depot's logo for the PDFs' header.

    Returns:
        The certificate JSON files issued, oldest run first.

    Raises:
        CertificateError: after trying them all, when any could not be issued (how many, and the
            first reason); those runs stay ``certifying``.
    """
    issued: list[Path] = []
    failures: list[str] = []
    for pending in ledger.awaiting_certificate(family=family, serial=serial, batch=batch):
        try:
            json_path = issue_certificate(
                ledger, key, pending.run_id, pending.content, out_dir, logo=logo
            ).json
        except PosdiagError as exc:
            log.warning("certificate.reissue_failed", run_id=pending.run_id, error=str(exc))
            failures.append(_("run {run_id}: {exc}").format(run_id=pending.run_id, exc=exc))
            continue
        ledger.audit("certificate.reissued", run_id=pending.run_id, path=str(json_path))
        issued.append(json_path)
    if failures:
        raise CertificateError(
            _("{len} pending certificate(s) could not be issued ({value})").format(
                len=len(failures), value=failures[0]
            )
        )
    return issued


def preflight(ledger: Any, out_dir: Path | None, **audit: Any) -> str | None:
    """Check, before a wipe changes anything, that its certificate and record can be kept.

    Args:
        ledger: the ledger, or None; it must take an audit write (``wipe.preflight``).
        out_dir: the certificate folder, or None when no certificate will be written.
        **audit: what the audit entry records (address, operator…).

    Returns:
        None when both can be written, else the one-line reason to refuse the wipe.
    """
    if out_dir is not None:
        try:
            preflight_out_dir(out_dir)
        except CertificateError as exc:
            return str(exc)
    if ledger is not None:
        try:
            ledger.audit("wipe.preflight", out_dir=str(out_dir) if out_dir else None, **audit)
        except PosdiagError as exc:
            return f"cannot write to the ledger ({exc}); fix it or choose another with --ledger"
    return None


def certificate_content(
    result: WipeResult, options: WipeOptions, started_at: str
) -> dict[str, Any]:
    """The unsigned certificate content of a decided wipe, as the ledger stores it.

    Args:
        result: the wipe's result; its outcome, steps, exceptions and first inspection.
        options: the operator's decisions (name, title, organisation, location, destination).
        started_at: when the wipe started (ISO 8601 with time zone).

    Raises:
        CertificateError: the content cannot be built (a missing field, a bad timestamp).
    """
    if result.before is None:
        raise CertificateError(_("a certificate needs the inspection before the wipe"))
    before = to_json(result.before)
    content = build_certificate(
        report=before,
        outcome=result.outcome.value,
        steps=[s.__dict__ for s in result.steps],
        operator=options.operator,
        operator_title=options.operator_title,
        organisation=options.organisation,
        location=options.location,
        destination=options.destination,
        sanitization="Clear",
        method=_method(before.get("family", "")),
        verification_method=_(
            "read back: a fresh inspection after the wipe (activation, terminal ID, merchant "
            "apps, saved networks, merchant files, unsettled transactions) and each step's "
            "own state check; a command's success reply alone is never counted"
        ),
        exceptions=result.exceptions
        + ([] if result.outcome.value != "not_erased" else result.reasons),
        tool_version=__version__,
        started_at=started_at,
        finished_at=utc_now_text(),
        backends=_backend_states(result),
    )
    return content


def _backend_states(result: WipeResult) -> dict[str, Any] | None:
    """Each backend's view of the unit before and after the wipe (None: none configured)."""
    before = result.before.backends if result.before else []
    after = result.after.backends if result.after else []
    if not before and not after:
        return None
    return {"before": list(before), "after": list(after)}


def _method(family: str) -> str:
    """The sanitization method as the certificate names it, per protocol family."""
    if family == "zvt":
        return _(
            "ZVT de-provisioning over the terminal's ECR interface: End-of-Day when consented, "
            "Terminal-ID reset (06 1B), Log-Off (06 02), vendor factory reset where available"
        )
    if family == "nexo":
        return _(
            "nexo Retailer (Adyen Terminal API) over HTTPS: every POS system logged out "
            "(Logout); the merchant binding released in Adyen by reassigning the terminal to "
            "the depot's inventory (Management API) when a release was run, after which the "
            "terminal removes its configuration when it synchronises"
        )
    return _(
        "Android shell over ADB: payment/merchant app data cleared (pm clear), saved Wi-Fi "
        "networks forgotten, merchant files deleted, factory reset where available"
    )
