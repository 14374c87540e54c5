"""Backends from the command line: check, wipe --release, sn: checks, lost, station --scan.

Everything runs against the simulated backends over real HTTP on loopback, and the simulated
Android terminal syncs with its simulated TMS as a real one does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.agent.cli_backend import mark_simulated
from posdiag.simulators.backend.catalog import create_backend_simulator
from posdiag.simulators.backend.server import BackendSimulator

PAX_SERIAL = "0820533061"  # the pax-a920 profile's vendor serial (ro.fac.sn)


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), input=stdin)


def backends_file(sim: BackendSimulator, folder: Path, kind: str) -> Path:
    path = folder / f"{kind}.toml"
    path.write_text(mark_simulated(sim.backends_toml(kind)), encoding="utf-8")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def paxstore(tmp_path: Path) -> Iterator[tuple[BackendSimulator, Path]]:
    sim = create_backend_simulator("paxstore", (f"{PAX_SERIAL}=bound",))
    with sim:
        yield sim, backends_file(sim, tmp_path, "paxstore")


@pytest.fixture
def generic(tmp_path: Path) -> Iterator[tuple[BackendSimulator, Path]]:
    sim = create_backend_simulator("generic", ("LKL00000001=bound", "LKL00000002=unbound"))
    with sim:
        yield sim, backends_file(sim, tmp_path, "generic")


def test_wipe_release_ends_erased_with_the_tms_state_before_and_after(
    paxstore: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    sim, path = paxstore
    address = f"adb+sim://activated?model=pax-a920&tms={sim.api_url}"
    out = tmp_path / "certs"
    result = invoke(
        "wipe", address, "--release", "--yes", "--operator", "Dana", "--backends", str(path),
        "--out", str(out), "--json",
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["outcome"] == "erased"
    release = [s for s in outcome["steps"] if s["name"] == "release:paxstore"]
    assert release and release[0]["status"] == "done" and release[0]["verified"] is True
    (certificate,) = out.glob("*.json")
    content = json.loads(certificate.read_text())["certificate"]
    states = {when: [e["binding"] for e in views] for when, views in content["backends"].items()}
    assert states == {"before": ["bound"], "after": ["unbound"]}
    assert sim.terminals[PAX_SERIAL].released_device_owner
    assert "Returns" not in certificate.read_text()  # names are masked on the certificate
    page = certificate.with_suffix(".html").read_text()
    assert "Terminal management / acquirer backends" in page and "unbound" in page


def test_without_release_a_tms_bound_unit_is_an_exception_on_the_certificate(
    paxstore: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    sim, path = paxstore
    address = f"adb+sim://activated?model=pax-a920&tms={sim.api_url}"
    result = invoke(
        "wipe", address, "--yes", "--operator", "Dana", "--backends", str(path), "--json",
    )
    outcome = json.loads(result.stdout)
    assert outcome["outcome"] == "erased_with_exceptions"
    assert any("still bound in paxstore" in e for e in outcome["exceptions"])
    assert sim.terminals[PAX_SERIAL].state == "bound"  # nothing released without --release


def test_check_merges_the_device_with_its_backend(paxstore: tuple[BackendSimulator, Path]) -> None:
    _, path = paxstore
    address = f"adb+sim://fresh?model=pax-a920&serial={PAX_SERIAL}"
    result = invoke("check", address, "--backends", str(path), "--json")
    report = json.loads(result.stdout)
    assert report["backends"][0]["binding"] == "bound"
    assert report["activation"]["state"] == "activated"  # the backend binding decides
    assert any("bound in paxstore" in r for r in report["verdict"]["reasons"])


def test_a_backend_that_is_down_leaves_the_device_answer(tmp_path: Path) -> None:
    sim = create_backend_simulator("paxstore", (f"{PAX_SERIAL}=bound",))
    path = backends_file(sim, tmp_path, "paxstore")  # never started: nothing listens
    sim.stop()
    result = invoke("check", "adb+sim://fresh?model=pax-a920", "--backends", str(path), "--json")
    report = json.loads(result.stdout)
    assert report["verdict"]["status"] != "unreachable"
    assert report["backends"][0]["consulted"] is False
    assert "not consulted" in json.dumps(report["activation"]["evidence"])


def test_check_by_serial_alone_shows_the_binding_with_evidence(
    generic: tuple[BackendSimulator, Path],
) -> None:
    _, path = generic
    bound = invoke("check", "sn:LKL00000001", "--backends", str(path), "--json")
    assert bound.exit_code == 1
    report = json.loads(bound.stdout)
    assert report["family"] == "backend" and report["activation"]["state"] == "activated"
    assert report["backends"][0]["evidence"]
    free = invoke("check", "LKL00000002", "--backends", str(path), "--json")  # a bare label
    assert free.exit_code == 0 and json.loads(free.stdout)["verdict"]["status"] == "ready"
    unknown = invoke("check", "sn:NOPE123", "--backends", str(path), "--json")
    assert json.loads(unknown.stdout)["verdict"]["status"] == "service_required"


def test_lost_disables_the_unit_verifies_it_and_records_it(
    generic: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    sim, path = generic
    ledger = tmp_path / "ledger.sqlite3"
    result = invoke(
        "lost", "LKL00000001", "--reason", "stolen", "--operator", "Dana", "--yes",
        "--backends", str(path), "--ledger", f"sqlite:///{ledger}", "--json",
    )
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["confirmed"] and outcome["outcomes"][0]["binding_after"] == "disabled"
    assert sim.terminals["LKL00000001"].state == "disabled"
    assert invoke("verify", "--ledger", f"sqlite:///{ledger}").exit_code == 0
    again = invoke("check", "sn:LKL00000001", "--backends", str(path), "--json")
    assert json.loads(again.stdout)["verdict"]["status"] == "quarantine"


def test_lost_needs_confirmation(generic: tuple[BackendSimulator, Path]) -> None:
    _, path = generic
    result = invoke("lost", "LKL00000001", "--reason", "x", "--operator", "D", "--backends",
                    str(path))
    assert result.exit_code == 2 and "confirmation" in result.output


def test_station_scan_records_each_scanned_label(
    generic: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    _, path = generic
    ledger = tmp_path / "ledger.sqlite3"
    scanned = "LKL00000002\nSN:LKL00000001\n\n# a comment\nLKL00000002\n"
    result = invoke(
        "station", "--scan", "--backends", str(path), "--operator", "Dana",
        "--ledger", f"sqlite:///{ledger}", stdin=scanned,
    )
    assert result.exit_code == 1  # one scanned unit is still bound
    assert "scanned: ready 1, wipe_required 1" in result.stdout
    report = invoke("report", "--ledger", f"sqlite:///{ledger}", "--kind", "checks",
                    "--include-simulated")
    assert "LKL00000001" in report.stdout and "LKL00000002" in report.stdout


def test_a_backends_file_others_can_read_is_refused(
    generic: tuple[BackendSimulator, Path],
) -> None:
    _, path = generic
    os.chmod(path, 0o644)
    result = invoke("check", "sn:LKL00000001", "--backends", str(path))
    assert result.exit_code == 2
    assert "chmod 600" in result.output and "secret" not in result.output.split("(")[0]


def test_sn_without_a_backend_says_where_to_configure_one() -> None:
    result = invoke("check", "sn:LKL00000001")
    assert result.exit_code == 2 and "no backend is configured" in result.output


def test_a_wipe_station_releases_every_unit_in_its_tms(tmp_path: Path) -> None:
    serials = ("1850047741", "1850047742", "1850047743")
    sim = create_backend_simulator("paxstore", tuple(f"{s}=bound" for s in serials))
    with sim:
        path = backends_file(sim, tmp_path, "paxstore")
        addresses = [
            f"adb+sim://activated?model=pax-a920&serial={s}&tms={sim.api_url}" for s in serials
        ]
        result = invoke(
            "station", *addresses, "--mode", "wipe", "--release", "--yes", "--operator", "Dana",
            "--backends", str(path), "--out", str(tmp_path / "certs"), "--json",
        )
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.splitlines()[-1])
        assert summary["counts"] == {"erased": 3}
        assert {sim.terminals[s].released_device_owner for s in serials} == {True}


def test_release_goes_with_wipe_mode(generic: tuple[BackendSimulator, Path]) -> None:
    _, path = generic
    result = invoke("station", "zvt+sim://fresh", "--release", "--backends", str(path))
    assert result.exit_code == 2 and "--release goes with --mode wipe" in result.output


def test_the_policy_can_release_after_every_wipe(
    paxstore: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    sim, path = paxstore
    policy = tmp_path / "policy.toml"
    policy.write_text("[backends]\nrelease_after_wipe = true\n", encoding="utf-8")
    address = f"adb+sim://activated?model=pax-a920&tms={sim.api_url}"
    result = invoke(
        "wipe", address, "--yes", "--operator", "Dana", "--backends", str(path),
        "--policy", str(policy), "--json",
    )
    assert json.loads(result.stdout)["outcome"] == "erased", result.output
    assert sim.terminals[PAX_SERIAL].released_device_owner


def test_no_credential_or_full_merchant_id_reaches_an_output_the_ledger_or_a_certificate(
    paxstore: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    sim, path = paxstore
    secrets = [
        line.split("=", 1)[1].strip().strip('"')
        for line in path.read_text().splitlines()
        if line.split("=", 1)[0].strip() in ("key", "secret")
    ]
    assert len(secrets) == 2 and all(len(s) > 10 for s in secrets)
    merchant = sim.terminals[PAX_SERIAL].merchant
    assert merchant and len(merchant) > 6
    ledger, out = tmp_path / "ledger.sqlite3", tmp_path / "certs"
    address = f"adb+sim://activated?model=pax-a920&tms={sim.api_url}"
    records = ["--ledger", f"sqlite:///{ledger}", "--out", str(out), "--backends", str(path)]
    debug = ("--log-format", "json", "--log-level", "debug")
    outputs = [
        invoke(*debug, "check", address, "--backends", str(path), "--json"),
        invoke(*debug, "wipe", address, "--release", "--yes", "--operator", "D", *records),
        invoke(*debug, "check", f"sn:{PAX_SERIAL}", "--backends", str(path)),
        invoke(*debug, "lost", PAX_SERIAL, "--reason", "x", "--operator", "D", "--yes",
               "--backends", str(path), "--ledger", f"sqlite:///{ledger}"),
    ]
    texts = [r.stdout + r.stderr for r in outputs]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*")
              if p.is_file() and p != path]
    signatures = [h for h in sim.api_log if h[3]]  # the signature headers the connector sent
    assert signatures
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert merchant not in text
        for *_, signature in signatures:
            assert signature not in text


def test_simulate_backend_prints_its_url_and_a_private_ready_backends_file() -> None:
    import signal
    import stat
    import subprocess
    import sys

    posdiag = Path(sys.executable).with_name("posdiag")
    proc = subprocess.Popen(
        [str(posdiag), "simulate", "backend", "--kind", "adyen", "--terminal", "000150183300099"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        path = Path(proc.stdout.readline().strip())
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v3")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        checked = invoke("check", "sn:000150183300099", "--backends", str(path), "--json")
        assert json.loads(checked.stdout)["backends"][0]["binding"] == "bound"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_simulate_backend_refuses_a_bad_terminal_in_one_line() -> None:
    result = invoke("simulate", "backend", "--terminal", "A B=bound")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    result = invoke("simulate", "backend", "--terminal", "ABC=sold")
    assert result.exit_code == 2 and "bound, unbound, disabled" in result.output


def test_the_manifest_lists_lost_units(
    generic: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    _, path = generic
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    invoke("check", "sn:LKL00000002", "--backends", str(path))
    lost = invoke("lost", "LKL00000001", "--reason", "stolen", "--operator", "D", "--yes",
                  "--backends", str(path), "--ledger", url)
    assert lost.exit_code == 0, lost.output
    listed = invoke("report", "--ledger", url, "--kind", "lost", "--include-simulated",
                    "--format", "json")
    rows = json.loads(listed.stdout)
    assert [(r["serial"], r["verdict"]) for r in rows] == [("LKL00000001", "quarantine")]
    assert rows[0]["address"] == "lost:sn:LKL00000001"


def test_a_scanned_pile_is_looked_up_in_one_bulk_query(tmp_path: Path) -> None:
    serials = [f"11700000{i:02d}" for i in range(12)]
    states = ["bound" if i % 3 else "unbound" for i in range(12)]
    seeds = [f"{s}={st}" for s, st in zip(serials, states, strict=True)]
    sim = create_backend_simulator("paxstore", seeds)
    with sim:
        path = backends_file(sim, tmp_path, "paxstore")
        scanned = "\n".join([*serials, "UNKNOWN0001"]) + "\n"
        result = invoke(
            "station", "--scan", "--backends", str(path), "--ledger",
            f"sqlite:///{tmp_path / 'l.sqlite3'}", stdin=scanned,
        )
        assert "scanned: ready 4, service_required 1, wipe_required 8" in result.stdout
        paths = [entry[1] for entry in sim.api_log]
    assert paths.count("/p-market-api/v1/3rdsys/terminal") == 0  # no call per unit
    assert any(p.endswith("/v1/3rdsys/terminals") for p in paths)


def test_wrong_credentials_are_one_line_and_a_usage_error(
    generic: tuple[BackendSimulator, Path], tmp_path: Path
) -> None:
    _, path = generic
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "\n".join(
            'secret = "WRONGSECRETVALUE"' if line.startswith("secret") else line
            for line in path.read_text().splitlines()
        ),
        encoding="utf-8",
    )
    os.chmod(bad, 0o600)
    result = invoke("check", "sn:LKL00000001", "--backends", str(bad))
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and "WRONGSECRETVALUE" not in result.output


def test_a_backend_that_is_down_makes_a_serial_check_unreachable(tmp_path: Path) -> None:
    sim = create_backend_simulator("generic", ("LKL00000001=bound",))
    path = backends_file(sim, tmp_path, "generic")
    sim.stop()  # never served: nothing listens
    result = invoke("check", "sn:LKL00000001", "--backends", str(path), "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["verdict"]["status"] == "unreachable"


def test_a_simulated_fleet_syncs_with_its_tms_and_is_released(tmp_path: Path) -> None:
    sim = create_backend_simulator("paxstore", ("1170000001=bound",))
    with sim:
        path = backends_file(sim, tmp_path, "paxstore")
        fleet = tmp_path / "fleet.toml"
        fleet.write_text(
            "[[terminal]]\nfamily = \"adb\"\nscenario = \"activated\"\nmodel = \"pax-a920\"\n"
            f"count = 2\noptions = {{ time_scale = \"0\", tms = \"{sim.api_url}\" }}\n",
            encoding="utf-8",
        )
        result = invoke(
            "station", "--fleet", str(fleet), "--mode", "wipe", "--release", "--yes",
            "--operator", "Dana", "--backends", str(path), "--json",
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout.splitlines()[-1])["counts"] == {"erased": 2}
        enrolled = [t for s, t in sim.terminals.items() if s != "1170000001"]
        assert len(enrolled) == 2 and all(t.released_device_owner for t in enrolled)
