"""Certificate files: written atomically and privately, checked for room before a wipe starts.

A certificate is three files of one name: ``<report_id>.json`` (the signed record, the proof),
``<report_id>.html`` and ``<report_id>.pdf`` (renderings to print or hand over).
A certificate is evidence, so a file is either absent or complete and is never replaced: each is
written under a temporary name in the same folder, flushed to disk (``fsync``), then published
by a hard link that fails if the name exists (a rename where the file system has no hard links),
and the folder itself is flushed so the name survives a power cut. Files are 0600 and the folders
posdiag creates 0700 whatever the umask: a certificate names a merchant's terminal and its data.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posdiag.drivers.i18n import _

from ..logs import get_logger
from .content import SAFE_ID, SCHEMA
from .errors import CertificateError
from .page import render_html
from .pdf import render_pdf
from .signing import document_bytes, verify_certificate

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "MIN_FREE_BYTES",
    "CertificateFiles",
    "certificate_paths",
    "ensure_private_folder",
    "pdf_path",
    "preflight_out_dir",
    "write_certificate",
    "write_certificate_files",
    "write_private_atomic",
]

log = get_logger(__name__)

FILE_MODE = 0o600
FOLDER_MODE = 0o700
MIN_FREE_BYTES = 5 * 1024 * 1024  # a certificate pair is ~30 kB; 5 MB leaves room for a batch
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _why(exc: OSError) -> str:
    """An OS error as a few plain words ("permission denied"), without errno jargon."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def ensure_private_folder(folder: Path) -> None:
    """Create ``folder`` and missing parents as 0700 (exactly, whatever the umask).

    Folders that exist are left as they are: an operator's ``--out`` is theirs to manage.

    Raises:
        OSError: when a folder cannot be created, or a part of the path is not a folder.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists():
        if current.is_symlink():  # dangling link: refuse rather than create through it
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), str(current))
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    if current.exists() and not current.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(current))
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if not path.is_dir():
                raise
            continue  # made by someone else at the same moment: theirs
        os.chmod(path, FOLDER_MODE)
        _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries, so a new name in it survives a power cut."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some file systems cannot open folders; the data itself was flushed
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _write_temporary(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to a new 0600 temporary file beside ``name``, flushed to disk."""
    tmp = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # exact mode whatever the umask
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _publish(tmp: Path, target: Path) -> None:
    """Give ``tmp`` its final name, never replacing an existing file (FileExistsError)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:
        # No hard links here (some network or FAT file systems): rename, still not replacing.
        if target.exists() or target.is_symlink():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.rename(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_private_atomic(path: Path, data: bytes) -> None:
    """Create ``path`` (0600) holding ``data``, atomically, never replacing an existing file.

    Args:
        path: the file; its folder is created 0700 when missing.
        data: the whole content.

    Raises:
        FileExistsError: the file exists.
        OSError: the folder cannot be created or written.
    """
    path = Path(path)
    ensure_private_folder(path.parent)
    tmp = _write_temporary(path.parent, path.name, data)
    _publish(tmp, path)
    _fsync_folder(path.parent)


def certificate_paths(out_dir: Path, report_id: str) -> tuple[Path, Path]:
    """``(<out_dir>/<report_id>.json, <out_dir>/<report_id>.html)`` for a safe report ID.

    Raises:
        CertificateError: if the report ID is not safe as a file name.
    """
    if not SAFE_ID.fullmatch(report_id):
        raise CertificateError(
            _("report_id {report_id!r} is not a safe file name").format(report_id=report_id)
        )
    out_dir = Path(out_dir)
    return out_dir / f"{report_id}.json", out_dir / f"{report_id}.html"


@dataclass(frozen=True)
class CertificateFiles:
    """Where one certificate's files are.

    Attributes:
        json: the signed record (the proof).
        html: the printable page.
        pdf: the PDF to hand over; None when it could not be rendered (logged: the signed
            record and the page are still written, a rendering never holds back the proof).
    """

    json: Path
    html: Path
    pdf: Path | None


def pdf_path(out_dir: Path, report_id: str) -> Path:
    """``<out_dir>/<report_id>.pdf``, beside the JSON and HTML of the same certificate.

    Raises:
        CertificateError: if the report ID is not safe as a file name.
    """
    json_path, _html = certificate_paths(out_dir, report_id)
    return json_path.with_name(f"{report_id}.pdf")


def _render_pdf(
    document: Mapping[str, Any], organisation: str | None, logo: Path | None
) -> bytes | None:
    """The PDF, or None when reportlab fails on it: the signed record must still be filed."""
    try:
        return render_pdf(document, organisation=organisation, logo=logo)
    except Exception as exc:  # a rendering library's failure of any kind; the proof goes on
        log.error("certificate.pdf_failed", error=str(exc)[:300], kind=type(exc).__name__)
        return None


def write_certificate(
    document: Mapping[str, Any],
    out_dir: Path,
    *,
    reuse_identical: bool = False,
    organisation: str | None = None,
    logo: Path | None = None,
) -> tuple[Path, Path]:
    """Store a signed certificate as JSON, HTML and PDF; ``(json_path, html_path)``.

    See :func:`write_certificate_files`, which this calls (and which also says where the PDF is).
    """
    files = write_certificate_files(
        document, out_dir, reuse_identical=reuse_identical, organisation=organisation, logo=logo
    )
    return files.json, files.html


def write_certificate_files(
    document: Mapping[str, Any],
    out_dir: Path,
    *,
    reuse_identical: bool = False,
    organisation: str | None = None,
    logo: Path | None = None,
) -> CertificateFiles:
    """Store a signed certificate as ``<report_id>.json``, its page ``.html`` and its ``.pdf``.

    The JSON file is exactly the document's RFC 8785 bytes (see :func:`document_bytes`). The
    document is verified first, so a damaged or unsigned certificate is never filed. None of the
    files may exist already: a certificate is evidence, and replacing one silently would destroy
    evidence. All are written to temporary names and flushed before any is published, and a
    failure to publish a rendering removes what was published: all or none. A PDF that cannot
    be rendered is logged and left out rather than holding back the proof.

    Args:
        document: what :func:`sign_certificate` returned.
        out_dir: the folder, created (0700) when missing.
        reuse_identical: re-issuing after a crash: a JSON file that holds exactly these bytes is
            this very certificate, so it is kept (and a missing page or PDF written) instead of
            refused.
        organisation: the depot's name for the renderings' header (station settings).
        logo: the depot's logo (PNG or JPEG) for the PDF's header (station settings).

    Returns:
        The files' paths.

    Raises:
        CertificateError: if the document does not verify or is not of the current schema, its
            report ID is unsafe as a file name, a file exists, or writing fails.
    """
    result = verify_certificate(document)
    if not result.ok or result.content is None:
        raise CertificateError(
            _("refusing to store an invalid certificate: {reason}").format(reason=result.reason)
        )
    if result.content.get("schema") != SCHEMA:
        raise CertificateError(_("only {SCHEMA} certificates are written").format(SCHEMA=SCHEMA))
    report_id = str(result.content.get("report_id", ""))
    json_path, html_path = certificate_paths(out_dir, report_id)
    printable_pdf = pdf_path(out_dir, report_id)
    folder = json_path.parent
    data = document_bytes(document)
    page = render_html(document, organisation=organisation).encode("utf-8")
    if reuse_identical and _holds(json_path, data):
        pdf_done = _write_missing(
            folder,
            [
                (html_path, lambda: page),
                (printable_pdf, lambda: _render_pdf(document, organisation, logo)),
            ],
        )
        log.info("certificate already written", report_id=report_id)
        return CertificateFiles(json_path, html_path, printable_pdf if pdf_done else None)
    pdf = _render_pdf(document, organisation, logo)
    wanted = [(json_path, data), (html_path, page)]
    if pdf is not None:
        wanted.append((printable_pdf, pdf))
    for path in (json_path, html_path, printable_pdf):
        if path.exists() or path.is_symlink():
            raise CertificateError(
                _("certificate {path} already exists; it is never overwritten").format(path=path)
            )
    temporaries: list[Path] = []
    published: list[Path] = []
    try:
        ensure_private_folder(folder)
        for path, content in wanted:
            temporaries.append(_write_temporary(folder, path.name, content))
        try:
            for tmp, (path, _content) in zip(temporaries, wanted, strict=True):
                _publish(tmp, path)
                published.append(path)
        except OSError:
            for path in reversed(published):  # keep them together: all or none
                path.unlink(missing_ok=True)
            raise
        _fsync_folder(folder)
    except FileExistsError as exc:
        raise CertificateError(
            _("certificate {value} already exists").format(value=exc.filename or json_path)
        ) from exc
    except OSError as exc:
        raise CertificateError(
            _("cannot write certificates to {folder}: {why}").format(folder=folder, why=_why(exc))
        ) from exc
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
    log.info(
        "certificate written",
        report_id=report_id,
        json=str(json_path),
        html=str(html_path),
        pdf=str(printable_pdf) if pdf is not None else None,
    )
    return CertificateFiles(json_path, html_path, printable_pdf if pdf is not None else None)


def _write_missing(folder: Path, renderings: list[tuple[Path, Callable[[], bytes | None]]]) -> bool:
    """Write each rendering whose file is missing (re-issue); whether the last one is there.

    Each entry is ``(path, make)`` where ``make()`` gives the bytes (or None: not renderable).

    Raises:
        CertificateError: a file cannot be written.
    """
    present = False
    for path, make in renderings:
        present = path.exists() or path.is_symlink()
        if present:
            continue
        content = make()
        if content is None:
            continue
        try:
            write_private_atomic(path, content)
        except FileExistsError:
            pass  # written by a concurrent re-issue: a rendering of the same certificate
        except OSError as exc:
            raise CertificateError(
                _("cannot write certificates to {folder}: {why}").format(
                    folder=folder, why=_why(exc)
                )
            ) from exc
        present = True
    return present


def _holds(path: Path, data: bytes) -> bool:
    """Whether ``path`` is a regular file (not a link) holding exactly ``data``."""
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with path.open("rb") as handle:
            return handle.read(len(data) + 1) == data
    except OSError:
        return False


def preflight_out_dir(out_dir: Path, min_free: int = MIN_FREE_BYTES) -> None:
    """Prove, before anything is erased, that certificates can be written to ``out_dir``.

    Creates the folder (0700) when missing, creates, flushes and removes a probe file in it, and
    checks there are at least ``min_free`` bytes free for an unprivileged user: a wipe whose
    certificate cannot be filed would leave an erased terminal without its proof.

    Args:
        out_dir: the certificate folder.
        min_free: bytes that must be free.

    Raises:
        CertificateError: one line naming the folder, the cause and what to do.
    """
    folder = Path(out_dir)
    advice = _("choose another folder with --out")
    try:
        ensure_private_folder(folder)
        probe = folder / f".posdiag-probe.{os.getpid()}.{uuid.uuid4().hex}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
        try:
            os.write(fd, b"posdiag preflight\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
        stats = os.statvfs(folder)
    except NotADirectoryError as exc:
        where = exc.filename or folder
        raise CertificateError(
            _(
                "cannot write certificates to {folder}: {where} is a file, not a folder; {advice}"
            ).format(folder=folder, where=where, advice=advice)
        ) from exc
    except FileExistsError as exc:
        raise CertificateError(
            _("cannot write certificates to {folder}: it is a file, not a folder; {advice}").format(
                folder=folder, advice=advice
            )
        ) from exc
    except OSError as exc:
        raise CertificateError(
            _("cannot write certificates to {folder}: {why}; {advice}").format(
                folder=folder, why=_why(exc), advice=advice
            )
        ) from exc
    free = stats.f_bavail * stats.f_frsize
    if free < min_free:
        raise CertificateError(
            _(
                "cannot write certificates to {folder}: only {free} kB free (a wipe needs "
                "{needed} MB); free some space or {advice}"
            ).format(
                folder=folder, free=free // 1024, needed=min_free // (1024 * 1024), advice=advice
            )
        )
