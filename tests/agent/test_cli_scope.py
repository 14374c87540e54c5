"""``posdiag check --quick`` / ``--full`` and ``posdiag station --quick``: how much a check asks.

A quick check sorts a pile: identity, binding, unsettled money and tamper, and a verdict that
never claims health it did not read. ``--full`` adds the host dial-up whatever the policy reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


@pytest.mark.parametrize(
    ("scenario", "verdict", "code"),
    [
        ("fresh", "ready", 0),
        ("activated", "wipe_required", 1),
        ("unsettled", "wipe_required", 1),
        ("tampered", "quarantine", 1),
        ("low-battery", "ready", 0),  # its battery is not read by triage
    ],
)
def test_quick_check_sorts_by_binding_money_and_tamper(
    invoke: Invoke, scenario: str, verdict: str, code: int
) -> None:
    result = invoke("check", "--quick", "--json", f"zvt+sim://{scenario}")
    assert result.exit_code == code, result.output
    report = json.loads(result.stdout)
    assert report["scope"] == "quick"
    assert report["verdict"]["status"] == verdict
    assert report["firmware"] is None and report["battery"] is None and report["network"] is None
    assert report["device"]["serial"]


def test_quick_check_says_what_it_did_not_read(invoke: Invoke) -> None:
    result = invoke("check", "--quick", "zvt+sim://fresh")
    assert result.exit_code == 0, result.output
    assert "quick check" in result.stdout
    assert "Firmware" not in result.stdout and "Battery" not in result.stdout
    assert "not available on this terminal" not in result.stdout


def test_full_check_dials_the_host_even_when_the_policy_does_not_read_it(
    invoke: Invoke, tmp_path: Path
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text("[network]\nrequire_host_reachable = false\n", encoding="utf-8")
    standard = json.loads(
        invoke("check", "--json", "--policy", str(policy), "zvt+sim://activated").stdout
    )
    assert standard["scope"] == "standard"
    assert standard["network"]["host_reachable"] is None
    full = json.loads(
        invoke("check", "--json", "--full", "--policy", str(policy), "zvt+sim://activated").stdout
    )
    assert full["scope"] == "full"
    assert full["network"]["host_reachable"] is True


def test_quick_and_full_exclude_each_other(invoke: Invoke) -> None:
    result = invoke("check", "--quick", "--full", "zvt+sim://fresh")
    assert result.exit_code == 2
    assert "--quick" in result.stderr and "--full" in result.stderr


def test_station_quick_triage(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke(
        "station",
        "--quick",
        "--json",
        "--ledger",
        str(tmp_path / "ledger.db"),
        "zvt+sim://fresh",
        "zvt+sim://tampered",
        "adb+sim://activated?model=pax-a920",
    )
    summary = json.loads(result.stdout.splitlines()[-1])
    verdicts = {r["address"].split("?")[0]: r["verdict_or_outcome"] for r in summary["results"]}
    assert verdicts == {
        "zvt+sim://fresh": "ready",
        "zvt+sim://tampered": "quarantine",
        "adb+sim://activated": "wipe_required",
    }


def test_station_quick_is_refused_for_wipes(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke(
        "station", "--quick", "--mode", "wipe", "--operator", "A", "--yes", "zvt+sim://fresh"
    )
    assert result.exit_code == 2
    assert "--quick" in result.stderr
