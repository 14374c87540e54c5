"""Certificate files: written atomically and privately, checked for room before a wipe starts.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..logs import get_logger
from .content import SAFE_ID, SCHEMA
from .errors import CertificateError
from .page import render_html
from .signing import document_bytes, verify_certificate

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "MIN_FREE_BYTES",
    "certificate_paths",
    "ensure_private_folder",
    "preflight_out_dir",
    "write_certificate",
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
        raise CertificateError(f"report_id {report_id!r} is not a safe file name")
    out_dir = Path(out_dir)
    return out_dir / f"{report_id}.json", out_dir / f"{report_id}.html"


def write_certificate(
    document: Mapping[str, Any], out_dir: Path, *, reuse_identical: bool = False
) -> tuple[Path, Path]:
    """Store a signed certificate as ``<report_id>.json`` and its printable ``<report_id>.html``.

    The JSON file is exactly the document's RFC 8785 bytes (see :func:`document_bytes`). The
    document is verified first, so a damaged or unsigned certificate is never filed. Neither file
    may exist already: a certificate is evidence, and replacing one silently would destroy
    evidence. Both files are written to temporary names and flushed before either is published,
    and a failure to publish the page removes the JSON again: both or neither.

    Args:
        document: what :func:`sign_certificate` returned.
        out_dir: the folder, created (0700) when missing.
        reuse_identical: re-issuing after a crash: a JSON file that holds exactly these bytes is
            this very certificate, so it is kept (and a missing page written) instead of refused.

    Returns:
        ``(json_path, html_path)``.

    Raises:
        CertificateError: if the document does not verify or is not of the current schema, its
            report ID is unsafe as a file name, either file exists, or writing fails.
    """
    result = verify_certificate(document)
    if not result.ok or result.content is None:
        raise CertificateError(f"refusing to store an invalid certificate: {result.reason}")
    if result.content.get("schema") != SCHEMA:
        raise CertificateError(f"only {SCHEMA} certificates are written")
    json_path, html_path = certificate_paths(out_dir, str(result.content.get("report_id", "")))
    folder = json_path.parent
    data = document_bytes(document)
    page = render_html(document).encode("utf-8")
    if reuse_identical and _holds(json_path, data):
        if not (html_path.exists() or html_path.is_symlink()):
            try:
                write_private_atomic(html_path, page)
            except FileExistsError:
                pass  # written by a concurrent re-issue: a page of the same certificate
            except OSError as exc:
                raise CertificateError(
                    f"cannot write certificates to {folder}: {_why(exc)}"
                ) from exc
        log.info("certificate already written", report_id=result.content.get("report_id"))
        return json_path, html_path
    for path in (json_path, html_path):
        if path.exists() or path.is_symlink():
            raise CertificateError(f"certificate {path} already exists; it is never overwritten")
    temporaries: list[Path] = []
    try:
        ensure_private_folder(folder)
        temporaries.append(_write_temporary(folder, json_path.name, data))
        temporaries.append(_write_temporary(folder, html_path.name, page))
        _publish(temporaries[0], json_path)
        try:
            _publish(temporaries[1], html_path)
        except OSError:
            json_path.unlink(missing_ok=True)  # keep the pair together: both or neither
            raise
        _fsync_folder(folder)
    except FileExistsError as exc:
        raise CertificateError(f"certificate {exc.filename or json_path} already exists") from exc
    except OSError as exc:
        raise CertificateError(f"cannot write certificates to {folder}: {_why(exc)}") from exc
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
    log.info(
        "certificate written",
        report_id=result.content.get("report_id"),
        json=str(json_path),
        html=str(html_path),
    )
    return json_path, html_path


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
    advice = "choose another folder with --out"
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
            f"cannot write certificates to {folder}: {where} is a file, not a folder; {advice}"
        ) from exc
    except FileExistsError as exc:
        raise CertificateError(
            f"cannot write certificates to {folder}: it is a file, not a folder; {advice}"
        ) from exc
    except OSError as exc:
        raise CertificateError(
            f"cannot write certificates to {folder}: {_why(exc)}; {advice}"
        ) from exc
    free = stats.f_bavail * stats.f_frsize
    if free < min_free:
        raise CertificateError(
            f"cannot write certificates to {folder}: only {free // 1024} kB free (a wipe needs "
            f"{min_free // (1024 * 1024)} MB); free some space or {advice}"
        )
