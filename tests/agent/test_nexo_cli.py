"""nexo terminals from the command line: check, wipe (with Adyen's backend), station, settings.

Every test runs posdiag's CLI in-process against simulated Adyen terminals over real HTTPS on
loopback (the ``nexo_terminal`` fixture), and, for the binding, against the simulated Adyen
Management API the terminal synchronises with, so a release there shows on the terminal.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.agent.cli_backend import mark_simulated
from posdiag.agent.policy import decide, load_policy
from posdiag.agent.report import DeviceReport
from posdiag.agent.wipe_rules import UNVERIFIABLE_EVIDENCE
from posdiag.drivers.model import Health
from posdiag.drivers.nexo.terminal import ASSIGNMENT_SOURCE
from posdiag.simulators.backend.catalog import create_backend_simulator
from posdiag.simulators.backend.server import BackendSimulator
from posdiag.simulators.nexo.pytest_fixtures import SimulatedNexo

Factory = Callable[..., SimulatedNexo]


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


@pytest.fixture
def adyen(tmp_path: Path) -> Iterator[tuple[BackendSimulator, Path]]:
    sim = create_backend_simulator("adyen", ())
    with sim:
        path = tmp_path / "adyen.toml"
        path.write_text(mark_simulated(sim.backends_toml("adyen")), encoding="utf-8")
        os.chmod(path, 0o600)
        yield sim, path


def ledger(tmp_path: Path) -> list[str]:
    return ["--ledger", f"sqlite:///{tmp_path / 'ledger.sqlite3'}"]


# --- check -------------------------------------------------------------------------------------


def test_check_json_is_a_full_report(nexo_terminal: Factory) -> None:
    sim = nexo_terminal("activated")
    result = invoke("check", "--json", sim.address)
    assert result.exit_code == 1, result.output  # not ready: bound to a merchant
    report = json.loads(result.stdout)
    assert report["family"] == "nexo"
    device = report["device"]
    assert (device["vendor"], device["model"], device["serial"]) == ("Adyen", "V400m", "324688179")
    assert report["activation"]["state"] == "activated"
    assert report["activation"]["merchant_id"] == "****_POS"
    assert report["firmware"]["components"] == {"Adyen firmware": "adyen_v1_49p5"}
    assert report["battery"]["level_pct"] == 87
    assert report["network"]["host_reachable"] is True
    assert report["merchant_data"]["pending_transactions"]["count"] == 0
    assert report["tamper"] == {"tampered": False, "details": []}
    assert report["verdict"]["status"] == "wipe_required"
    assert report["errors"] == [] and report["unsupported"] == []
    text = result.stdout
    assert sim.key.passphrase not in text and "AcmeRetail_NL_POS" not in text


def test_a_fresh_unit_is_ready(nexo_terminal: Factory) -> None:
    result = invoke("check", nexo_terminal("fresh", "P400Plus").address)
    assert result.exit_code == 0, result.output
    assert "READY" in result.stdout


@pytest.mark.parametrize(
    ("scenario", "overrides", "reason"),
    [
        ("printer-fault", None, "the printer is out of order: send the terminal for repair"),
        (
            "fresh",
            {"printer": "PaperJam"},
            "the printer reports a paper jam: clear it and check again",
        ),
        ("no-network", None, "payment host not reachable"),
        ("low-battery", None, "battery at 4% and not charging (minimum 20%)"),
        ("busy", None, "the terminal is busy with a transaction (service P7X2K9Q1)"),
    ],
)
def test_faults_are_service_required_with_an_action(
    nexo_terminal: Factory, scenario: str, overrides: dict[str, object] | None, reason: str
) -> None:
    sim = nexo_terminal(scenario, overrides={"terminal": overrides} if overrides else None)
    result = invoke("check", "--json", sim.address)
    report = json.loads(result.stdout)
    assert report["verdict"]["status"] == "service_required", report["verdict"]
    assert any(r.startswith(reason) for r in report["verdict"]["reasons"]), report["verdict"]


def test_health_faults_reach_the_policy_as_reasons() -> None:
    report = DeviceReport("nexo+https://x", "nexo", "2026-01-01T00:00:00Z")
    from posdiag.drivers.model import Identity

    report.identity = Identity(vendor="Adyen", model="V400m", serial="1")
    report.health = Health(faults=("the printer reports a paper jam: clear it and check again",))
    verdict = decide(report, load_policy())
    assert verdict.status.value == "service_required"
    assert verdict.reasons == ("the printer reports a paper jam: clear it and check again",)


def test_a_tampered_unit_goes_to_quarantine(nexo_terminal: Factory) -> None:
    report = json.loads(invoke("check", "--json", nexo_terminal("tampered").address).stdout)
    assert report["verdict"]["status"] == "quarantine"


def test_a_rejected_key_is_one_line_and_a_usage_error(nexo_terminal: Factory) -> None:
    result = invoke("check", nexo_terminal("activated", wrong_key=True).address)
    assert result.exit_code == 2
    assert "the terminal rejected posdiag's key" in result.output
    assert "Traceback" not in result.output


def test_another_terminal_at_the_address_is_refused(nexo_terminal: Factory) -> None:
    sim = nexo_terminal("activated")
    address = sim.address.replace("V400m-324688179", "V400m-111111111")
    result = invoke("check", address)
    assert result.exit_code == 2
    assert "is V400m-324688179, not V400m-111111111" in result.output
    assert sim.simulator.device.categories_seen == []  # nothing was sent to it


def test_an_unreachable_address_says_check_the_network(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ca = tmp_path / "ca.pem"
    from posdiag.simulators.nexo.tls import material_for

    ca.write_bytes(material_for("V400m-324688179").ca_pem)
    result = invoke(
        "check", "--json", f"nexo+https://127.0.0.1:{port}?poiid=V400m-324688179&ca={ca}"
    )
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["verdict"]["status"] == "unreachable"
    assert "cannot be reached on the network" in report["verdict"]["reasons"][0]


def test_without_a_ca_the_operator_is_told_where_to_put_one() -> None:
    result = invoke("check", "nexo+https://127.0.0.1:1?poiid=V400m-324688179")
    assert result.exit_code == 2
    assert "no CA to check the terminal's certificate against" in result.output


def test_a_public_key_file_is_refused(nexo_terminal: Factory) -> None:
    sim = nexo_terminal("activated")
    os.chmod(sim.key_path, 0o644)
    result = invoke("check", sim.address)
    assert result.exit_code == 2
    assert f"chmod 600 {sim.key_path}" in result.output
    assert sim.simulator.device.categories_seen == []


def test_a_passphrase_in_the_address_is_refused(nexo_terminal: Factory) -> None:
    result = invoke("check", "nexo+https://127.0.0.1:1?passphrase=Posdiag-Sim-Key-1!")
    assert result.exit_code == 2
    assert "must not hold the passphrase" in result.output
    assert "Posdiag-Sim-Key-1" not in result.output


# --- settings ------------------------------------------------------------------------------------


def test_the_station_settings_give_the_key_and_the_ca(
    nexo_terminal: Factory, tmp_path: Path
) -> None:
    sim = nexo_terminal("activated")
    passphrase = tmp_path / "nexo-passphrase"
    passphrase.write_text(sim.key.passphrase + "\n", encoding="ascii")
    os.chmod(passphrase, 0o600)
    settings = tmp_path / "station.toml"
    settings.write_text(
        "[nexo]\n"
        f'key_identifier = "{sim.key.identifier}"\n'
        f"key_version = {sim.key.version}\n"
        'passphrase_file = "nexo-passphrase"\n'
        f'ca_file = "{sim.ca_path}"\n',
        encoding="utf-8",
    )
    bare = f"nexo+https://127.0.0.1:{sim.port}"  # no poiid, no ca, no key: the settings' own
    result = invoke("--config", str(settings), "check", "--json", bare)
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["device"]["device_name"] == "V400m-324688179"  # read from the certificate
    assert report["activation"]["keys_loaded"] is True


def test_the_environment_gives_the_key(
    nexo_terminal: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = nexo_terminal("fresh")
    monkeypatch.setenv("POSDIAG_NEXO_KEY_IDENTIFIER", sim.key.identifier)
    monkeypatch.setenv("POSDIAG_NEXO_KEY_VERSION", str(sim.key.version))
    monkeypatch.setenv("POSDIAG_NEXO_PASSPHRASE", sim.key.passphrase)
    address = f"nexo+https://127.0.0.1:{sim.port}?ca={sim.ca_path}"
    report = json.loads(invoke("check", "--json", address).stdout)
    assert report["activation"]["keys_loaded"] is True


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[nexo]\nkey_identifer = "K"\n', "unknown setting nexo.key_identifer"),
        ('[nexo]\nkey_identifier = "K"\n', "set both nexo.key_identifier and nexo.key_version"),
        ('[nexo]\nkey_identifier = "K"\nkey_version = "1"\n', "nexo.key_version must be"),
        ('[nexo]\npassphrase_file = "p"\n', "needs nexo.key_identifier"),
        ('nexo = "x"\n', "nexo must be a table"),
    ],
)
def test_a_bad_nexo_table_is_one_line(tmp_path: Path, table: str, message: str) -> None:
    settings = tmp_path / "station.toml"
    settings.write_text(table, encoding="utf-8")
    result = invoke("--config", str(settings), "check", "nexo+https://127.0.0.1:1")
    assert result.exit_code == 2
    assert message in result.output


# --- wipe ----------------------------------------------------------------------------------------


def test_wipe_release_reassigns_to_inventory_and_is_erased(
    nexo_terminal: Factory, adyen: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    backend, path = adyen
    sim = nexo_terminal("activated", tms=backend.api_url)
    sim.state.logins["POS-CASHDESK-1"] = {}
    out = tmp_path / "certs"
    check = json.loads(invoke("check", "--json", "--backends", str(path), sim.address).stdout)
    assert check["backends"][0]["binding"] == "bound"  # found by the POIID's serial
    assert check["activation"]["state"] == "activated"
    result = invoke(
        "wipe",
        sim.address,
        "--release",
        "--yes",
        "--operator",
        "Dana",
        "--backends",
        str(path),
        "--out",
        str(out),
        "--json",
        *ledger(tmp_path),
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["outcome"] == "erased"
    assert [(s["name"], s["status"], s["verified"]) for s in outcome["steps"]] == [
        ("logout", "done", True),
        ("release:adyen", "done", True),
    ]
    assert sim.state.assignment == "inventory" and sim.state.merchant_account is None
    assert sim.state.logins == {}
    (certificate,) = out.glob("*.json")
    text = certificate.read_text()
    assert "nexo Retailer (Adyen Terminal API) over HTTPS" in text
    assert sim.key.passphrase not in text and "AcmeRetail_NL_POS" not in text
    database = (tmp_path / "ledger.sqlite3").read_bytes()
    assert sim.key.passphrase.encode() not in database


def test_wipe_without_release_keeps_the_binding_as_an_exception(
    nexo_terminal: Factory, tmp_path: Path
) -> None:
    sim = nexo_terminal("activated")
    result = invoke(
        "wipe",
        sim.address,
        "--yes",
        "--operator",
        "Dana",
        "--out",
        str(tmp_path / "c"),
        "--json",
        *ledger(tmp_path),
    )
    assert result.exit_code == 1, result.output
    outcome = json.loads(result.stdout)
    assert outcome["outcome"] == "erased_with_exceptions"
    assert any(
        e.startswith("merchant account ****_POS, store ****L-01: not removable over the cable")
        for e in outcome["exceptions"]
    )
    assert sim.state.merchant_account == "AcmeRetail_NL_POS"  # nothing destroyed locally


def test_wipe_refuses_while_payments_wait_to_be_delivered(
    nexo_terminal: Factory, adyen: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    backend, path = adyen
    sim = nexo_terminal("unsettled", tms=backend.api_url)
    result = invoke(
        "wipe",
        sim.address,
        "--release",
        "--settle",
        "--yes",
        "--operator",
        "Dana",
        "--backends",
        str(path),
        "--out",
        str(tmp_path / "c"),
        "--json",
        *ledger(tmp_path),
    )
    assert result.exit_code == 6, result.output
    outcome = json.loads(result.stdout)
    assert outcome["outcome"] == "refused"
    assert outcome["reasons"] == [
        "3 payments are still waiting on the terminal to be delivered to Adyen: connect the "
        "terminal to the internet and let it deliver them, then check again before wiping"
    ]
    assert outcome["steps"] == []
    assert sim.state.unconfirmed_batch_count == 3 and sim.state.assignment == "boarded"
    assert "Reconciliation" not in sim.simulator.device.categories_seen


def test_the_binding_evidence_is_released_not_wiped() -> None:
    assert ASSIGNMENT_SOURCE in UNVERIFIABLE_EVIDENCE


# --- station -------------------------------------------------------------------------------------


def test_a_station_checks_nexo_terminals(nexo_terminal: Factory, tmp_path: Path) -> None:
    first = nexo_terminal("fresh")
    second = nexo_terminal("activated", "P400Plus")
    result = invoke(
        "station",
        first.address,
        second.address,
        "--json",
        *ledger(tmp_path),
        "--operator",
        "Dana",
    )
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["counts"] == {"ready": 1, "wipe_required": 1}, result.stdout
    assert first.key.passphrase not in result.stdout


def test_a_wipe_station_releases_nexo_terminals(
    nexo_terminal: Factory, adyen: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    backend, path = adyen
    sims = [
        nexo_terminal("activated", serial=serial, tms=backend.api_url)
        for serial in ("324688101", "324688102")
    ]
    result = invoke(
        "station",
        *(s.address for s in sims),
        "--mode",
        "wipe",
        "--release",
        "--yes",
        "--operator",
        "Dana",
        "--backends",
        str(path),
        "--out",
        str(tmp_path / "certs"),
        "--json",
        *ledger(tmp_path),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["counts"] == {"erased": 2}
    assert {s.state.assignment for s in sims} == {"inventory"}


# --- language ------------------------------------------------------------------------------------


def test_a_nexo_check_reads_in_chinese(nexo_terminal: Factory) -> None:
    sim = nexo_terminal("fresh", overrides={"terminal": {"printer": "PaperJam"}})
    result = invoke("--lang", "zh-CN", "check", sim.address)
    assert result.exit_code == 1
    assert "打印机" in result.stdout  # the paper jam's action, translated


def test_a_station_checks_nexo_beside_zvt_and_android_terminals(
    nexo_terminal: Factory,
    zvt_terminal: Callable[..., object],
    adb_terminal: Callable[..., object],
    tmp_path: Path,
) -> None:
    """One station run over the three families, each reached as a real unit is (TCP, HTTPS)."""
    nexo = nexo_terminal("printer-fault")
    zvt = zvt_terminal("fresh", attach="tcp")
    android = adb_terminal("activated", attach="tcp")
    result = invoke(
        "station",
        nexo.address,
        zvt.address,  # type: ignore[attr-defined]
        android.address,  # type: ignore[attr-defined]
        "--json",
        *ledger(tmp_path),
        "--operator",
        "Dana",
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    summary = lines[-1]
    assert summary["counts"] == {
        "ready": 1,
        "service_required": 1,
        "wipe_required": 1,
    }, result.stdout
    assert nexo.key.passphrase not in result.stdout
