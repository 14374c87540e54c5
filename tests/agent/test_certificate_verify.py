"""``posdiag verify CERT``: a human summary (verdict first), and ``--json`` for everything.

Certificates are signed here with the station key of the test's private home (so ``verify``
recognises "this station"), or with a stranger's key, and written as the wipe writes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.agent.certificate import (
    StationKey,
    default_key_path,
    document_bytes,
    sign_certificate,
)
from posdiag.drivers.i18n import set_language

from .test_certificate import SERIAL, content


@pytest.fixture(autouse=True)
def _home(cli_home: Path) -> Iterator[Path]:
    set_language("en")
    yield cli_home
    set_language("en")


def verify(*args: str | Path) -> Result:
    return CliRunner().invoke(cli.main, ["verify", *map(str, args)])


def write(tmp_path: Path, key: StationKey, name: str = "cert.json", **overrides: Any) -> Path:
    path = tmp_path / name
    path.write_bytes(document_bytes(sign_certificate(content(**overrides), key)))
    return path


def labelled(stdout: str) -> dict[str, str]:
    """The summary's ``Label   value`` lines as a mapping (first line of each label)."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        label, sep, value = line.partition("  ")
        if sep and label.strip() and not line.startswith(" "):
            found.setdefault(label.strip(), value.strip())
    return found


def test_summary_says_the_verdict_first_then_who_what_when(tmp_path: Path) -> None:
    station = StationKey.load_or_create()
    cert = write(tmp_path, station)
    result = verify(cert)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"VALID signature by station {station.fingerprint}"
    assert lines[1].strip() == "signed with this station's key"
    facts = labelled(result.stdout)
    assert facts["Outcome"] == "Erased with exceptions"
    assert facts["Terminal"] == f"FEIG ELECTRONIC cVEND plug, serial {SERIAL}"
    assert facts["Terminal ID (masked)"] == "****2000"
    assert facts["Merchant ID (masked)"] == "****0123"
    assert facts["Operator"] == "Jana Nováková (Depot technician)"
    assert facts["Organisation"] == "Example Depot GmbH"
    assert facts["Location"] == "Hamburg depot, bench 3"
    assert facts["Finished"] == "1 Jan 2026, 09:03:30 UTC"
    assert facts["Method"].startswith("Clear: merchant reset through ZVT")
    assert facts["Steps"] == "3 steps: 2 done, 2 verified by reading the terminal back"
    assert facts["Exceptions"].startswith("transaction journal could not be deleted")
    assert "delete_journal: not available" in result.stdout  # the step that did not take
    assert len(lines) < 30  # a summary, not the record
    assert '"schema"' not in result.stdout and "{" not in result.stdout


def test_missing_optional_fields_are_left_out(tmp_path: Path) -> None:
    cert = write(
        tmp_path,
        StationKey.load_or_create(),
        operator_title=None,
        organisation=None,
        location=None,
        destination=None,
    )
    result = verify(cert)
    assert result.exit_code == 0, result.output
    facts = labelled(result.stdout)
    assert facts["Operator"] == "Jana Nováková"
    for absent in ("Organisation", "Location", "Destination"):
        assert absent not in facts
    assert "None" not in result.stdout and "not recorded" not in result.stdout.lower()


def test_another_stations_certificate_says_so(tmp_path: Path) -> None:
    stranger = StationKey.generate()
    cert = write(tmp_path, stranger)
    result = verify(cert)
    assert result.exit_code == 0
    assert result.stdout.startswith(f"VALID signature by station {stranger.fingerprint}")
    assert "not this station's key" in result.stdout
    assert not default_key_path().exists()  # verifying never creates a station key


def test_a_trusted_key_is_named(tmp_path: Path) -> None:
    signer = StationKey.generate()
    cert = write(tmp_path, signer)
    pem = tmp_path / "signer.pub"
    pem.write_text(signer.public_key_pem())
    result = verify(cert, "--public-key", pem)
    assert result.exit_code == 0, result.output
    assert "the key you gave with --public-key made it" in result.stdout


def test_json_prints_the_verdict_and_the_whole_certificate(tmp_path: Path) -> None:
    station = StationKey.load_or_create()
    cert = write(tmp_path, station)
    result = verify(cert, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)  # one object, nothing else on stdout
    assert payload["schema"] == "posdiag.verify/1"
    assert payload["valid"] is True
    assert payload["signer"] == "this_station"
    assert payload["fingerprint"] == station.fingerprint
    assert payload["file"] == str(cert)
    assert payload["ledger"] is None
    document = json.loads(cert.read_bytes())
    assert payload["certificate"] == document["certificate"]


def test_an_invalid_certificate_shows_no_content_in_either_form(tmp_path: Path) -> None:
    cert = write(tmp_path, StationKey.load_or_create())
    cert.write_bytes(cert.read_bytes().replace(b'"name":"Jana', b'"name":"Jane', 1))
    human = verify(cert)
    assert human.exit_code == 1
    assert human.stdout.startswith("INVALID: signature does not match the content")
    assert "Jane" not in human.stdout and "Outcome" not in human.stdout
    machine = verify(cert, "--json")
    assert machine.exit_code == 1
    payload = json.loads(machine.stdout)
    assert payload["valid"] is False and payload["certificate"] is None
    assert "changed after signing" in payload["reason"]


def test_chinese_summary_keeps_its_structure(tmp_path: Path) -> None:
    cert = write(tmp_path, StationKey.load_or_create(), location="深圳仓库 3号工位")
    result = CliRunner().invoke(cli.main, ["--lang", "zh-CN", "verify", str(cert)])
    assert result.exit_code == 0, result.output
    assert "2026年1月1日 09:03:30 UTC" in result.stdout  # dates in the Chinese locale
    assert "深圳仓库 3号工位" in result.stdout
    assert len(result.stdout.splitlines()) < 30
