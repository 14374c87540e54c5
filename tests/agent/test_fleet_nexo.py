"""nexo (Adyen) terminals in fleets: HTTPS simulators on the simulated bus.

A nexo unit is a network device: plugged in, its HTTPS server listens; pulled out, the server
stops and its open connections are cut; plugged back, it serves the same state on the same
port, so the address the station saw stays valid and a half-done wipe resumes.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from posdiag.agent import cli
from posdiag.agent.connect import open_terminal
from posdiag.agent.fleet import FleetError, load_fleet
from posdiag.agent.inspect import inspect_terminal
from posdiag.agent.ledger import Ledger, RunStatus, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.station import SlotResult, Station, summarise
from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import AddressError
from posdiag.drivers.nexo.messages import dumps
from posdiag.simulators.bus import SimulatedBus

MIXED = """
[[terminal]]
scenario = "fresh"

[[terminal]]
family = "adb"
model = "sunmi-p2"
scenario = "fresh"

[[terminal]]
name = "adyen"
family = "nexo"
scenario = "fresh"
count = 2

[[terminal]]
name = "adyen-bound"
family = "nexo"
model = "P400Plus"
scenario = "activated"
plug_at = 0.3
"""


@pytest.fixture
def bus() -> Iterator[SimulatedBus]:
    with SimulatedBus() as simulated:
        yield simulated


def check(address: str) -> str:
    terminal = open_terminal(parse_address(address))
    return inspect_terminal(terminal, load_policy(None)).verdict.status.value


def _wait(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


# --- the fleet file ------------------------------------------------------------------------------


def test_nexo_entries_are_read(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(MIXED)
    fleet = load_fleet(path)
    assert [t.name for t in fleet][2:] == ["adyen-1", "adyen-2", "adyen-bound"]
    assert fleet[2].address == "nexo+sim://fresh?unit=1"
    assert fleet[4].address == "nexo+sim://activated?model=P400Plus"
    assert not fleet[4].plugged and fleet[4].events() == [(0.3, "plug")]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("family = 'nexo'\nmodel = 'V500'", "unknown nexo model 'V500' \\(available: P400Plus"),
        ("family = 'nexo'\noptions = { serial = 'SIM-1' }", "a nexo serial is half of the POIID"),
        ("family = 'sdi'", "family must be zvt, adb or nexo"),
        ("model = 'V400m'", "model is an adb or nexo option"),
    ],
)
def test_bad_nexo_entries_are_one_line(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(f"[[terminal]]\nscenario = 'fresh'\n{entry}\n")
    with pytest.raises(FleetError, match=message) as error:
        load_fleet(path)
    assert "\n" not in str(error.value) and "terminal 1" in str(error.value)


def test_cli_bad_nexo_entries_are_usage_errors(cli_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text("[[terminal]]\nfamily = 'nexo'\nscenario = 'fresh'\nmodel = 'V500'\n")
    result = CliRunner().invoke(cli.main, ["station", "--fleet", str(path), "--json"])
    assert result.exit_code == 2
    assert "unknown nexo model 'V500'" in result.output and "Traceback" not in result.output
    path.write_text("[[terminal]]\nfamily = 'nexo'\nscenario = 'no-such-case'\n")
    result = CliRunner().invoke(cli.main, ["station", "--fleet", str(path), "--json"])
    assert result.exit_code == 2
    assert "unknown simulated nexo scenario 'no-such-case'" in result.output


# --- the bus -------------------------------------------------------------------------------------


def test_a_nexo_unit_is_found_at_its_real_address(bus: SimulatedBus) -> None:
    address = bus.add("nexo+sim://activated?model=S1F2")
    (found,) = bus.discover()
    assert found.address == address and found.family == "nexo" and found.kind == "simulator"
    assert address.startswith("nexo+https://127.0.0.1:") and "poiid=S1F2-SIM" in address
    assert "ca=" in address and "key=" in address
    assert found.model_guess == "simulated Adyen terminal S1F2"
    assert check(address) == "wipe_required"  # opened by the normal nexo driver


def test_unplug_cuts_a_running_request_and_replug_serves_the_same_state(
    bus: SimulatedBus,
) -> None:
    address = bus.add("nexo+sim://activated?slow=3")
    simulator = bus.engine(address)
    port, directory, state = simulator.port, simulator.directory, simulator.state
    assert simulator.ca_path is not None
    trust = ssl.create_default_context(cafile=str(simulator.ca_path))
    url = f"https://127.0.0.1:{port}/nexo"
    errors: list[BaseException] = []
    started = time.monotonic()

    def post() -> None:
        with httpx.Client(verify=trust, timeout=10, trust_env=False) as client:
            try:
                client.post(url, content=dumps({"SaleToPOIRequest": {}}))
            except httpx.HTTPError as exc:
                errors.append(exc)

    thread = threading.Thread(target=post)
    thread.start()
    _wait(lambda: bool(simulator._server and simulator._server._open))
    time.sleep(0.1)  # the request is in, waiting on the slow answer
    bus.unplug(address)
    thread.join(5)
    assert errors and time.monotonic() - started < 2.5  # the line died, not the answer came
    assert bus.discover() == [] and not bus.plugged(address)
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, verify=trust, timeout=2, trust_env=False)
    simulator.state.faults.slow = 0.0  # a change while pulled out stays
    bus.plug(address)
    assert [f.address for f in bus.discover()] == [address]
    assert simulator.port == port and simulator.directory == directory
    assert bus.engine(address) is simulator and simulator.state is state
    begun = time.monotonic()
    assert check(address) == "wipe_required"  # the same files, key and state: not slow now
    assert time.monotonic() - begun < 2.5


def test_plugged_out_from_the_start_and_close_stops_everything() -> None:
    bus = SimulatedBus()
    address = bus.add("nexo+sim://fresh", plugged=False)
    simulator = bus.engine(address)
    assert bus.discover() == [] and not simulator.serving
    bus.plug(address)
    assert check(address) == "ready"
    directory = simulator.directory
    assert directory is not None and directory.exists()
    bus.close()
    assert not simulator.serving and not directory.exists()
    assert bus.discover() == []
    with pytest.raises(AddressError):
        bus.plug(address)


def test_every_nexo_unit_is_its_own(bus: SimulatedBus) -> None:
    first = bus.add("nexo+sim://fresh?unit=1")
    second = bus.add("nexo+sim://fresh?unit=2")
    assert first != second
    serials = {bus.engine(a).state.serial for a in (first, second)}
    assert len(serials) == 2 and all(s.isalnum() for s in serials)


# --- the station ---------------------------------------------------------------------------------


def test_cli_fleet_of_zvt_adb_and_nexo(cli_home: Path, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(MIXED)
    ledger = sqlite_url(tmp_path / "ledger.sqlite3")
    result = CliRunner().invoke(
        cli.main, ["station", "--fleet", str(fleet), "--json", "--ledger", ledger]
    )
    assert result.exit_code == 0, result.output  # checked: a verdict for every terminal
    summary = json.loads(result.output.splitlines()[-1])
    assert summary["terminals"] == 5
    assert summary["counts"] == {"ready": 4, "wipe_required": 1}
    nexo = [r for r in summary["results"] if r["address"].startswith("nexo+https://127.0.0.1:")]
    assert len(nexo) == 3 and len({r["serial"] for r in nexo}) == 3
    with Ledger(ledger) as records:
        assert records.verify_chain().ok
    result = CliRunner().invoke(
        cli.main,
        [
            "station", "--fleet", str(fleet), "--mode", "wipe", "--yes", "--operator", "Dana",
            "--json", "--ledger", ledger, "--out", str(tmp_path / "certs"),
        ],
    )
    summary = json.loads(result.output.splitlines()[-1])
    # the bound unit keeps its Adyen binding without --release: an exception, not a failure
    assert summary["counts"] == {"erased": 4, "erased_with_exceptions": 1}, result.output
    for certificate in (tmp_path / "certs").glob("*.json"):
        assert '"simulated":true' in certificate.read_text().replace(" ", "")


def test_a_nexo_unit_pulled_mid_wipe_resumes_when_plugged_back(
    bus: SimulatedBus, cli_home: Path, tmp_path: Path
) -> None:
    address = bus.add("nexo+sim://fresh")
    pulled = threading.Event()

    def on_event(update: SlotResult) -> None:
        # the cable comes out as the wipe starts: its Logout requests meet a dead line
        if update.stage == "wiping" and not pulled.is_set():
            pulled.set()
            bus.unplug(address)

    ledger_url = sqlite_url(tmp_path / "ledger.sqlite3")
    station = Station(
        "wipe",
        load_policy(None),
        operator="Dana Depot",
        assume_yes=True,
        ledger_url=ledger_url,
        out_dir=tmp_path / "certs",
        on_event=on_event,
        simulated=True,
    )
    replugged = threading.Event()
    results: list[SlotResult] = []
    thread = threading.Thread(
        target=lambda: results.extend(
            station.watch(0.05, discover_fn=bus.discover, until=replugged.is_set)
        ),
        daemon=True,
    )
    thread.start()
    try:
        _wait(lambda: pulled.is_set() and bool(station._slots) and station._slots[0].final)
        assert station._slots[0].final is not None
        assert station._slots[0].final.verdict_or_outcome == "aborted"
        bus.plug(address)
        station.notify_change()
        _wait(lambda: len(station._slots) == 2 and station._slots[1].final is not None)
        replugged.set()
        thread.join(10)
    finally:
        station.stop_event.set()
        thread.join(10)
    assert [r.verdict_or_outcome for r in results] == ["aborted", "erased"]
    assert summarise(results)["counts"] == {"erased": 1}
    with Ledger(ledger_url) as ledger:
        runs = [r for r in ledger.runs(limit=10) if not r.options.get("refused")]
        assert ledger.verify_chain().ok
    assert len(runs) == 1  # resumed, not started again
    assert runs[0].status is RunStatus.FINISHED and runs[0].outcome == "erased"
    assert bus.engine(address).state.logins == {}
