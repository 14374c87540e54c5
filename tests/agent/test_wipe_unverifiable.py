"""A wipe whose read-back the terminal does not answer says so; it never passes silence as clean.

Found by the campaign's faulted sessions: with ``dumpsys`` refused or answered with nothing, the
device policy read as "no device owner" and the certificate said nothing of the terminal
management app still holding the unit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from posdiag.agent import cli


@pytest.mark.parametrize("fault", ["fail_command", "lie_about"])
def test_unanswered_read_back_is_named_on_the_result(
    isolated_home: Path, tmp_path: Path, fault: str
) -> None:
    result = CliRunner().invoke(
        cli.main,
        [
            "wipe",
            f"adb+sim://activated?model=sunmi-p2&{fault}=dumpsys",
            "--yes",
            "--operator",
            "Jana",
            "--json",
            "--out",
            str(tmp_path / "certs"),
        ],
    )
    wiped = json.loads(result.stdout)
    assert wiped["outcome"] == "erased_with_exceptions"
    unverified = [e for e in wiped["exceptions"] if e.startswith("not verified after the wipe")]
    assert any("device policy" in e for e in unverified)
    assert any("accounts" in e for e in unverified)
    assert any("wifi" in e for e in unverified)


def test_a_check_says_which_facts_it_could_not_read(isolated_home: Path) -> None:
    result = CliRunner().invoke(
        cli.main, ["check", "adb+sim://fresh?model=sunmi-p2&lie_about=dumpsys", "--json"]
    )
    report = json.loads(result.stdout)
    unreadable = [
        e["fact"] for e in report["activation"]["evidence"] if e["source"] == "unreadable"
    ]
    assert any(fact.startswith("device policy") for fact in unreadable)
    assert report["activation"]["state"] != "not_activated"  # silence is not "not bound"
