"""Certificate files: atomic, private whatever the umask, and the pre-wipe check of the folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posdiag.agent.certificate import (
    CertificateError,
    StationKey,
    build_certificate,
    document_bytes,
    preflight_out_dir,
    sign_certificate,
    verify_certificate,
    write_certificate,
    write_certificate_files,
    write_private_atomic,
)
from posdiag.agent.certificate import files as cert_files
from posdiag.agent.report import DeviceReport, Verdict, VerdictStatus, to_json
from posdiag.drivers.model import Identity


def signed_document(key: StationKey) -> dict[str, Any]:
    report = DeviceReport(
        address="zvt+sim://activated",
        family="zvt",
        checked_at="2026-01-01T09:55:00Z",
        identity=Identity(vendor="FEIG ELECTRONIC", model="cVEND plug", serial="17F59B1F"),
        verdict=Verdict(VerdictStatus.WIPE_REQUIRED, ("terminal is activated",)),
    )
    content = build_certificate(
        report=to_json(report),
        outcome="erased",
        steps=[{"name": "reset_terminal_id", "erases": "terminal ID", "status": "done"}],
        operator="Jana",
        method="ZVT reset",
        verification_method="read back",
        tool_version="0.1.0",
        started_at="2026-01-01T09:00:00Z",
        finished_at="2026-01-01T09:03:30Z",
    )
    return sign_certificate(content, key)


@pytest.fixture
def key() -> StationKey:
    return StationKey.generate()


@pytest.fixture(params=[0o000, 0o022])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_certificates_are_private_whatever_the_umask(
    tmp_path: Path, key: StationKey, umask: int
) -> None:
    out = tmp_path / "certs" / "2026" / "batch"
    document = signed_document(key)
    files = write_certificate_files(document, out)
    assert files.pdf is not None
    assert mode(files.json) == mode(files.html) == mode(files.pdf) == 0o600
    for folder in (out, out.parent, out.parent.parent):
        assert mode(folder) == 0o700, folder
    json_path = files.json
    assert json_path.read_bytes() == document_bytes(document)
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(path.name for path in (files.json, files.html, files.pdf))
    assert files.pdf == json_path.with_suffix(".pdf")
    assert files.pdf.read_bytes().startswith(b"%PDF-")
    assert verify_certificate(json_path.read_bytes()).ok


def test_an_existing_out_folder_keeps_its_mode(tmp_path: Path, key: StationKey) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    out.chmod(0o750)
    json_path, _ = write_certificate(signed_document(key), out)
    assert mode(out) == 0o750
    assert mode(json_path) == 0o600


def test_write_private_atomic_never_replaces(tmp_path: Path, umask: int) -> None:
    target = tmp_path / "a" / "file.json"
    write_private_atomic(target, b"one")
    assert target.read_bytes() == b"one" and mode(target) == 0o600
    assert mode(target.parent) == 0o700
    with pytest.raises(FileExistsError):
        write_private_atomic(target, b"two")
    assert target.read_bytes() == b"one"
    assert [p.name for p in target.parent.iterdir()] == ["file.json"]  # no temporary left


@pytest.mark.parametrize("suffix", [".html", ".pdf"])
def test_a_failed_rendering_leaves_no_file(
    tmp_path: Path, key: StationKey, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    publish = cert_files._publish

    def failing(tmp: Path, target: Path) -> None:
        if target.suffix == suffix:
            tmp.unlink()
            raise OSError(28, "No space left on device")
        publish(tmp, target)

    monkeypatch.setattr(cert_files, "_publish", failing)
    with pytest.raises(CertificateError, match="no space left on device"):
        write_certificate(signed_document(key), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_pdf_that_cannot_be_rendered_does_not_hold_back_the_proof(
    tmp_path: Path, key: StationKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reportlab failing (a bug, a font it cannot load) stands in here: the signed record and
    # its page are still filed, and the PDF is written by a later re-issue.
    def broken(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("renderer broke")

    document = signed_document(key)
    monkeypatch.setattr(cert_files, "render_pdf", broken)
    files = write_certificate_files(document, tmp_path)
    assert files.pdf is None
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".html", ".json"]
    monkeypatch.undo()
    again = write_certificate_files(document, tmp_path, reuse_identical=True)
    assert again.pdf is not None and again.pdf.read_bytes().startswith(b"%PDF-")
    assert mode(again.pdf) == 0o600


def test_an_existing_pdf_is_never_replaced(tmp_path: Path, key: StationKey) -> None:
    document = signed_document(key)
    report_id = document["certificate"]["report_id"]
    (tmp_path / f"{report_id}.pdf").write_bytes(b"older")
    with pytest.raises(CertificateError, match="already exists"):
        write_certificate(document, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [f"{report_id}.pdf"]
    assert (tmp_path / f"{report_id}.pdf").read_bytes() == b"older"


def test_a_failed_flush_leaves_nothing(
    tmp_path: Path, key: StationKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(cert_files.os, "fsync", no_fsync)
    with pytest.raises(CertificateError, match=r"cannot write certificates to .*input/output"):
        write_certificate(signed_document(key), tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- preflight -----------------------------------------------------------------------------------


def test_preflight_creates_a_private_folder_and_leaves_no_probe(tmp_path: Path, umask: int) -> None:
    out = tmp_path / "new" / "certs"
    preflight_out_dir(out)
    assert out.is_dir() and mode(out) == 0o700
    assert list(out.iterdir()) == []


def read_only_folder(tmp_path: Path) -> Path:
    """A folder nobody can write, even root (sysfs), else one made read-only by its mode."""
    if os.geteuid() == 0:
        return Path("/sys/fs")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder


def test_preflight_refuses_a_read_only_folder(tmp_path: Path) -> None:
    folder = read_only_folder(tmp_path)
    with pytest.raises(CertificateError) as caught:
        preflight_out_dir(folder)
    message = str(caught.value)
    assert message == (
        f"cannot write certificates to {folder}: permission denied; "
        "choose another folder with --out"
    )


def test_preflight_refuses_a_folder_it_cannot_create(tmp_path: Path) -> None:
    folder = read_only_folder(tmp_path) / "certs"
    with pytest.raises(CertificateError, match=r"^cannot write certificates to .*--out$"):
        preflight_out_dir(folder)
    assert not folder.exists()


def test_preflight_refuses_a_file(tmp_path: Path) -> None:
    file = tmp_path / "certs.json"
    file.write_text("not a folder")
    with pytest.raises(CertificateError, match="is a file, not a folder; choose another"):
        preflight_out_dir(file)
    with pytest.raises(CertificateError, match="is a file, not a folder"):
        preflight_out_dir(file / "below")
    assert file.read_text() == "not a folder"


def test_preflight_refuses_a_full_disk(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=r"kB free \(a wipe needs .* MB\); free some"):
        preflight_out_dir(tmp_path, min_free=1 << 62)
    assert list(tmp_path.iterdir()) == []
