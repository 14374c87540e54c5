"""A station batch: one wipe and one certificate per terminal, whatever the cable does.

A terminal pulled out and plugged back in after its wipe is recognised by family and serial;
simulated fleets have one serial per unit on every path; fleet files are bounded; continuing a
batch issues the certificates it still owes before working any terminal.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.agent.certificate import verify_certificate
from posdiag.agent.fleet import MAX_TERMINALS, FleetError, parse_fleet
from posdiag.agent.ledger import Ledger, RunStatus, sqlite_url
from posdiag.agent.policy import load_policy
from posdiag.agent.station import SlotResult, Station, simulated_fleet, summarise
from posdiag.simulators.bus import SimulatedBus

LOOSE_CABLE = """
[[terminal]]
scenario = "activated"
count = 2

[[terminal]]
name = "loose-cable"
family = "adb"
model = "sunmi-p2"
scenario = "activated"
options = { time_scale = 0 }
unplug_at = 2.5
replug_at = 3.0
"""


@pytest.fixture(autouse=True)
def home(cli_home: Path) -> Path:
    return cli_home


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


# --- unplugged and plugged back in --------------------------------------------------------------


def test_a_replugged_erased_terminal_is_not_wiped_or_certified_again(tmp_path: Path) -> None:
    """Pulled out right after its wipe and plugged back in: recognised by its serial."""
    out = tmp_path / "certs"
    ledger_url = sqlite_url(tmp_path / "l.db")
    replugged = threading.Event()
    with SimulatedBus() as bus:
        loose = bus.add("adb+sim://activated?model=sunmi-p2&time_scale=0")
        other = bus.add("zvt+sim://activated")
        station = Station(
            "wipe",
            load_policy(None),
            operator="Dana",
            assume_yes=True,
            out_dir=out,
            ledger_url=ledger_url,
        )

        def replug() -> None:
            bus.plug(loose)
            replugged.set()
            station.notify_change()

        pulled = threading.Event()

        def on_event(update: SlotResult) -> None:
            if update.address == loose and update.stage == "done" and not pulled.is_set():
                pulled.set()
                bus.unplug(loose)  # the loose cable, once the wipe is done
                station.notify_change()
                threading.Timer(0.3, replug).start()

        station.on_event = on_event
        results = station.watch(0.05, discover_fn=bus.discover, until=replugged.is_set)
    summary = summarise(results, batch=station.batch)
    slots = [r for r in results if r.address == loose]
    assert len(slots) == 2, slots  # worked twice (plugged in twice)…
    first, again = slots
    assert first.verdict_or_outcome in ("erased", "erased_with_exceptions") and first.certificate
    assert again.already_erased and again.verdict_or_outcome == first.verdict_or_outcome
    assert "already erased in this batch" in " ".join(again.reasons)
    assert again.certificate == first.certificate
    assert summary["already_erased"] == [{"address": loose, "serial": first.serial}]
    assert summary["terminals"] == 2 and summary["ok"]
    assert any(r.address == other for r in results)
    # …wiped and certified once: one certificate and one finished run per serial
    certificates = sorted(out.glob("*.json"))
    assert len(certificates) == 2, [p.name for p in certificates]
    assert all(verify_certificate(p.read_bytes()).ok for p in certificates)
    with Ledger(ledger_url) as ledger:
        runs = [r for r in ledger.runs(limit=100) if r.status is RunStatus.FINISHED]
    assert sorted(r.serial for r in runs) == sorted({r.serial for r in results if r.serial})


def test_the_fleet_examples_loose_cable_gets_one_certificate(tmp_path: Path) -> None:
    """The README's fleet shape through the CLI (pulled out well after its wipe ended)."""
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(LOOSE_CABLE)
    out = tmp_path / "certs"
    result = invoke(
        "station",
        "--fleet",
        str(fleet),
        "--mode",
        "wipe",
        "--yes",
        "--operator",
        "Dana",
        "--ledger",
        sqlite_url(tmp_path / "l.db"),
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "already erased in this batch, not wiped again" in result.stdout
    assert "3 terminals" in result.stdout
    assert len(list(out.glob("*.json"))) == 3


# --- one serial per simulated unit ---------------------------------------------------------------


def test_simulated_fleets_have_distinct_serials_on_the_run_path(tmp_path: Path) -> None:
    fleet = simulated_fleet(30)  # more than one lap of the scenario pattern
    station = Station(
        "check", load_policy(None), ledger_url=sqlite_url(tmp_path / "l.db"), max_parallel=4
    )
    results = station.run(fleet)
    serials = [(r.family, r.serial) for r in results]
    assert all(serial for _, serial in serials)
    assert len(set(serials)) == len(fleet) == 30


def test_simulated_fleet_serials_are_stable_across_runs() -> None:
    assert simulated_fleet(30) == simulated_fleet(30)  # a continued batch finds the same units
    assert simulated_fleet(5, seed=3)[0] == simulated_fleet(4)[3]


def test_the_cli_fleet_path_has_distinct_serials(tmp_path: Path) -> None:
    result = invoke(
        "station",
        "--simulate",
        "30",
        "--max-parallel",
        "8",
        "--json",
        "--ledger",
        sqlite_url(tmp_path / "l.db"),
    )
    summary = json.loads(result.stdout.splitlines()[-1])
    serials = [(row["family"], row["serial"]) for row in summary["results"]]
    assert len(set(serials)) == 30


# --- fleet files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("count = 0", "count must be a whole number from 1"),
        ("count = 1000000000", "count must be a whole number from 1"),
        ("plug_at = inf", "plug_at must be a number of seconds"),
        ("plug_at = nan", "plug_at must be a number of seconds"),
        ("unplug_at = -1.0", "unplug_at must be a number of seconds"),
        ("replug_at = 1e12\nunplug_at = 1.0", "replug_at must be a number of seconds"),
        ('options = { time_scale = "inf" }', "option time_scale"),
        ("options = { latency = -2 }", "option latency"),
        ("options = { stall = [1, 2] }", "option stall must be"),
    ],
)
def test_bad_fleet_values_are_one_line(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(f'[[terminal]]\nscenario = "fresh"\n{entry}\n')
    result = invoke("station", "--fleet", str(path))
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("posdiag: error: "), lines
    assert message in lines[0]


def test_fleet_total_is_bounded_before_expanding() -> None:
    entries = [{"scenario": "fresh", "count": MAX_TERMINALS}, {"scenario": "fresh"}]
    with pytest.raises(FleetError, match=f"more than {MAX_TERMINALS} terminals"):
        parse_fleet({"terminal": entries})
    assert len(parse_fleet({"terminal": entries[:1]})) == MAX_TERMINALS


# --- continuing a batch issues the certificates it owes -----------------------------------------


def test_continuing_a_batch_reissues_its_pending_certificates(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    ledger_url = sqlite_url(tmp_path / "l.db")

    def break_out_dir(update: SlotResult) -> None:
        """Once the steps ran the certificate folder is gone (a disk pulled, a mount lost)."""
        if update.stage == "verifying" and not out.is_file():
            if out.exists():
                out.rename(tmp_path / "moved")
            out.write_text("in the way")

    def station(**kwargs: object) -> Station:
        return Station(
            "wipe",
            load_policy(None),
            operator="Dana",
            assume_yes=True,
            out_dir=out,
            ledger_url=ledger_url,
            **kwargs,  # type: ignore[arg-type]
        )

    first = station(on_event=break_out_dir)
    (result,) = first.run(["zvt+sim://activated?serial=5C000001"])
    assert result.certificate is None
    with Ledger(ledger_url) as ledger:
        assert len(ledger.awaiting_certificate(batch=first.batch)) == 1
    out.unlink()  # the folder is back
    assert station(batch=first.batch).run([]) == []  # no terminal is worked at all
    with Ledger(ledger_url) as ledger:
        assert ledger.awaiting_certificate() == []
        (run,) = ledger.runs(limit=10)
        assert run.status is RunStatus.FINISHED
    (certificate,) = out.glob("*.json")
    assert verify_certificate(certificate.read_bytes()).ok
