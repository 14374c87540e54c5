"""The reliability campaign's machinery works: each section, run tiny in-process, tries things.

Zero defects is *not* asserted here: that is ``python -m campaign --quick``'s exit status in CI
(``.ci/run``). These tests check that every section produces counts, and that the detectors
the sections rely on do fire on a planted defect, so a campaign that checks nothing cannot pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from campaign import backends, certs, codecs, hostile, kills, secretsgrep, sessions, tamper
from campaign.__main__ import SECTIONS, main, table_markdown
from campaign.common import Outputs, SectionResult, Settings


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Outputs]]:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / "config"))
    work = tmp_path / "work"
    work.mkdir()
    yield Settings(quick=True, seed=7, workdir=work, scale=0.1), Outputs(work / "outputs")


def _ran(result: SectionResult) -> None:
    assert result.failed is None, result.failed
    assert result.rows and result.tried > 0
    assert all(row.tried > 0 for row in result.rows), [(r.label, r.tried) for r in result.rows]


def test_every_section_is_registered() -> None:
    assert set(SECTIONS) == {
        "codecs",
        "sessions",
        "kills",
        "tamper",
        "certificates",
        "hostile",
        "backends",
        "secrets",
    }


def test_backends(tiny: tuple[Settings, Outputs]) -> None:
    result = backends.run(*tiny)
    _ran(result)
    assert result.defects == 0, [(r.label, r.examples) for r in result.rows]


def test_the_backend_judge_counts_a_pending_or_missing_change_as_a_false_done() -> None:
    from posdiag.drivers.backend.model import (
        BackendRecord,
        Binding,
        ChangeResult,
        ChangeStatus,
        TerminalKey,
    )

    record = BackendRecord("t", "paxstore", TerminalKey(serial="X"), Binding.BOUND)
    done = ChangeResult("release", ChangeStatus.DONE, record)
    assert not backends._confirmed_ok("paxstore", "release", done, "bound", "pending")
    assert not backends._confirmed_ok("paxstore", "release", done, "bound", "bound")
    assert backends._confirmed_ok("paxstore", "release", done, "bound", "unbound")
    assert not backends._confirmed_ok("generic", "lost", done, "bound", "unbound")
    assert backends._confirmed_ok("adyen", "lost", done, "bound", "unbound")
    already = ChangeResult("lost", ChangeStatus.ALREADY, record)
    assert not backends._confirmed_ok("generic", "lost", already, "bound", "bound")
    assert backends._confirmed_ok("paxstore", "lost", already, "unbound", "unbound")


def test_codecs(tiny: tuple[Settings, Outputs]) -> None:
    result = codecs.run(*tiny)
    _ran(result)
    labels = {row.label for row in result.rows}
    assert {"ZVT serial ecr", "ZVT tcp pt", "ADB codec host", "ADB codec device"} <= labels


def test_codec_check_catches_an_untyped_error_and_a_fragmentation_difference() -> None:
    result = SectionResult("t", "t", codecs.COLUMNS)

    def crashes(chunks: list[bytes]) -> codecs.Outcome:
        raise KeyError("boom")

    def depends_on_chunks(chunks: list[bytes]) -> codecs.Outcome:
        return [len(chunks)], b"", None

    codecs.check(result, "crash", crashes, b"abc")
    codecs.check(result, "chunks", depends_on_chunks, b"abc")
    assert result.row("crash").defects["exception"] == 1
    assert result.row("chunks").defects["whole != bytewise"] == 1


def test_sessions(tiny: tuple[Settings, Outputs]) -> None:
    result = sessions.run(*tiny)
    assert result.failed is None
    assert result.tried == 5


def test_session_truth_reads_the_simulator() -> None:
    from campaign import sims

    activated, fresh = sims.zvt("activated"), sims.adb("fresh", "sunmi-p2")
    try:
        assert sessions.activated(activated) and not sessions.activated(fresh)
        hard, soft = sessions.leftovers(activated)
        assert any("terminal ID" in item for item in hard) and soft
        assert sessions.leftovers(fresh) == ([], [])
    finally:
        activated.stop()
        fresh.stop()


def test_tamper(tiny: tuple[Settings, Outputs]) -> None:
    result = tamper.run(*tiny)
    _ran(result)
    tables = {row.label for row in result.rows}
    assert {"devices", "wipe_runs", "wipe_steps", "certificates", "audit_log"} <= tables


def test_certificates(tiny: tuple[Settings, Outputs]) -> None:
    result = certs.run(*tiny)
    _ran(result)
    assert result.row("add a BOM").tried == 1


@pytest.mark.slow
def test_kills(tiny: tuple[Settings, Outputs]) -> None:
    result = kills.run(*tiny)
    _ran(result)


@pytest.mark.slow
def test_hostile(tiny: tuple[Settings, Outputs]) -> None:
    result = hostile.run(*tiny)
    _ran(result)
    assert hostile.controls_in(b"ok\x1b[2J") == ["U+001B"]
    assert hostile.controls_in("a\u202eb\n\tc".encode()) == ["U+202E"]


def test_secrets_grep_finds_a_planted_password(tiny: tuple[Settings, Outputs]) -> None:
    settings, outputs = tiny
    outputs.text("planted", "connecting to zvt+tcp://10.0.0.5:22000?password=583147\n")
    outputs.text("a hash is not a password", "sha256 a583147f00")
    result = secretsgrep.run(settings, outputs)
    _ran(result)
    assert result.row("subprocess output").defects["password"] == 1


def test_main_prints_tables_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["--quick", "--only", "certificates", "--seed", "3"])
    printed = capsys.readouterr().out
    assert "5 Certificate byte edits" in printed and "tried" in printed
    assert status in (0, 1)
    result = SectionResult("k", "Title", ("bad",))
    result.row("x").tried = 2
    result.row("x").defect("bad", "example")
    text = table_markdown([result])
    assert "| x | 2 | 1 |" in text and "example" in text
