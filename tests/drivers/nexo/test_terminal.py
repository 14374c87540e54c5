"""The nexo Terminal contract against simulated Adyen terminals (real HTTPS, real encryption).

Every probe's record, per scenario and model; what a check asks (and what a quick one does not);
the terminal's own faults as actions; the wipe plan's Logout read back; hostile text cleaned.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posdiag.drivers.address import parse_address
from posdiag.drivers.errors import AuthenticationError, UnsupportedError
from posdiag.drivers.model import (
    ActivationState,
    Battery,
    CheckScope,
    PendingTransactions,
    Tamper,
)
from posdiag.drivers.nexo.driver import NexoDriver
from posdiag.drivers.nexo.errors import NexoCryptoError
from posdiag.drivers.nexo.failures import NexoNoKeyOnTerminalError
from posdiag.drivers.nexo.keys import load_key_file
from posdiag.drivers.nexo.service_ids import ServiceIdStore
from posdiag.drivers.nexo.terminal import ASSIGNMENT_SOURCE, NexoTerminal
from posdiag.drivers.nexo.transport import HttpsTransport
from posdiag.simulators.nexo.pytest_fixtures import SimulatedNexo

Factory = Callable[..., SimulatedNexo]


def open_nexo(sim: SimulatedNexo, folder: Path, **options: Any) -> NexoTerminal:
    """The terminal as connect.py builds it, with a private ServiceID folder."""
    address = parse_address(sim.address)
    pipe = HttpsTransport(
        sim.host,
        sim.port,
        address.url_path,
        ca_file=sim.ca_path,
        poiid=options.get("poiid", sim.poiid),
    )
    key = options.get("key", load_key_file(sim.key_path))
    driver = NexoDriver(
        pipe,
        key=key,
        poiid=options.get("poiid", sim.poiid),
        sale_id="posdiag-test",
        service_ids=ServiceIdStore(folder / "ids"),
    )
    return NexoTerminal(driver, str(address))


def seen(sim: SimulatedNexo) -> list[str]:
    return list(sim.simulator.device.categories_seen)


def test_an_activated_v400m_probe_by_probe(nexo_terminal: Factory, tmp_path: Path) -> None:
    sim = nexo_terminal("activated", "V400m")
    terminal = open_nexo(sim, tmp_path)

    identity = terminal.identify()
    assert (identity.vendor, identity.model, identity.serial) == ("Adyen", "V400m", "324688179")
    assert identity.device_name == "V400m-324688179"

    activation = terminal.activation()
    assert activation.state is ActivationState.ACTIVATED
    assert activation.merchant_id == "AcmeRetail_NL_POS"  # the report masks it
    assert activation.terminal_id is None  # a POIID is no merchant binding
    assert activation.keys_loaded is True
    assignment = [e for e in activation.evidence if e.source == ASSIGNMENT_SOURCE]
    assert assignment and "merchant account ****_POS, store ****L-01" in assignment[0].fact
    assert "AcmeRetail" not in " ".join(e.fact for e in activation.evidence)

    assert terminal.firmware().components == {"Adyen firmware": "adyen_v1_49p5"}
    network = terminal.network()
    assert network.host_reachable is True
    assert "acquirer host 0: reachable" in network.details
    assert terminal.battery() == Battery(present=True, level_pct=87)
    merchant = terminal.merchant_data()
    assert merchant.pending_transactions == PendingTransactions(0, None, undelivered=True)
    assert "merchant account ****_POS, store ****L-01" in merchant.notes
    assert terminal.tamper() == Tamper(False)
    health = terminal.health()
    assert health.faults == () and health.status == "global status OK, printer OK"
    assert seen(sim) == ["Diagnosis", "Diagnosis", "Login", "GetTotals", "Logout"]
    assert sim.state.logins == {}  # posdiag logged itself out again


def test_a_fresh_unit_is_not_activated(nexo_terminal: Factory, tmp_path: Path) -> None:
    terminal = open_nexo(nexo_terminal("fresh"), tmp_path)
    activation = terminal.activation()
    assert activation.state is ActivationState.NOT_ACTIVATED
    assert activation.merchant_id is None
    assert "no merchant account or store" in activation.evidence[0].fact


def test_a_quick_check_asks_one_diagnosis(nexo_terminal: Factory, tmp_path: Path) -> None:
    sim = nexo_terminal("unsettled")
    terminal = open_nexo(sim, tmp_path)
    terminal.set_scope(CheckScope(quick=True))
    backlog = PendingTransactions(3, None, undelivered=True)
    assert terminal.merchant_data().pending_transactions == backlog
    terminal.activation()
    assert seen(sim) == ["Diagnosis"]


def test_the_host_test_runs_for_the_policy_or_a_backlog(
    nexo_terminal: Factory, tmp_path: Path
) -> None:
    clean = nexo_terminal("activated")
    terminal = open_nexo(clean, tmp_path)
    terminal.set_scope(CheckScope(host_dialup=False))
    assert terminal.network().host_reachable is None
    assert seen(clean).count("Diagnosis") == 1
    backlog = nexo_terminal("unsettled")
    terminal = open_nexo(backlog, tmp_path)
    terminal.set_scope(CheckScope(host_dialup=False))
    assert terminal.network().host_reachable is True  # can it deliver its backlog?
    assert seen(backlog).count("Diagnosis") == 2


def test_unsettled_payments_and_open_totals(nexo_terminal: Factory, tmp_path: Path) -> None:
    merchant = open_nexo(nexo_terminal("unsettled"), tmp_path).merchant_data()
    assert merchant.pending_transactions == PendingTransactions(3, None, undelivered=True)
    assert merchant.notes[0] == (
        "3 payments not yet delivered to Adyen (the terminal does not report their amount)"
    )
    assert (
        "open period: 4 transactions, net €63.40 (read with GetTotals, not closed)"
        in merchant.notes
    )


def test_a_mains_powered_p400_plus_has_no_battery(nexo_terminal: Factory, tmp_path: Path) -> None:
    terminal = open_nexo(nexo_terminal("activated", "P400Plus"), tmp_path)
    identity = terminal.identify()
    assert (identity.model, identity.serial) == ("P400 Plus", "275008565")
    assert terminal.battery() == Battery(present=False)
    assert terminal.network().interfaces[0].name == "eth0"
    assert terminal.health().faults == ()


def test_an_s1f2(nexo_terminal: Factory, tmp_path: Path) -> None:
    terminal = open_nexo(nexo_terminal("low-battery", "S1F2"), tmp_path)
    assert terminal.identify().model == "S1F2"
    assert terminal.battery() == Battery(present=True, level_pct=4)


@pytest.mark.parametrize(
    ("overrides", "fault"),
    [
        ({"printer": "PaperJam"}, "the printer reports a paper jam: clear it and check again"),
        ({"printer": "NoPaper"}, "the printer has no paper: load a roll and check again"),
        ({"printer": "PaperLow"}, "the printer's paper is low: load a new roll"),
        ({"printer": "OutOfOrder"}, "the printer is out of order: send the terminal for repair"),
        ({"card_reader_ok": False}, "the card reader reports a fault: clean the card slot"),
        ({"ped_ok": False}, "the PIN pad reports a fault: send the terminal for repair"),
        ({"communication_ok": False}, "the terminal reports its communication as down: check"),
        ({"global_status": "Maintenance"}, "the terminal is in maintenance"),
    ],
)
def test_health_faults_say_what_to_do(
    nexo_terminal: Factory, tmp_path: Path, overrides: dict[str, Any], fault: str
) -> None:
    sim = nexo_terminal("fresh", overrides={"terminal": overrides})
    faults = open_nexo(sim, tmp_path).health().faults
    assert len(faults) == 1 and faults[0].startswith(fault)


def test_a_tampered_unit(nexo_terminal: Factory, tmp_path: Path) -> None:
    tamper = open_nexo(nexo_terminal("tampered"), tmp_path).tamper()
    assert tamper.tampered and "SecurityOKFlag false" in tamper.details[0]


def test_no_network_means_no_host(nexo_terminal: Factory, tmp_path: Path) -> None:
    network = open_nexo(nexo_terminal("no-network"), tmp_path).network()
    assert network.host_reachable is False
    assert "the terminal reports its communication as down" in network.details


def test_a_busy_terminal_is_identified_and_says_why(nexo_terminal: Factory, tmp_path: Path) -> None:
    sim = nexo_terminal("busy")
    terminal = open_nexo(sim, tmp_path)
    assert terminal.identify().serial == "324688179"  # from the POIID: no exchange needed
    assert terminal.activation().state is ActivationState.UNKNOWN
    assert terminal.health().faults == (
        "the terminal is busy with a transaction (service P7X2K9Q1): finish or cancel it on the "
        "terminal, then try again",
    )
    with pytest.raises(UnsupportedError):
        terminal.merchant_data()
    assert terminal.facts().errors[0].startswith("diagnosis: the terminal is busy")
    terminal.driver.abort("P7X2K9Q1")  # what an operator's tool may do with the ServiceID
    assert sim.state.busy_service_id is None
    assert terminal.refresh().busy is None
    assert terminal.activation().state is ActivationState.ACTIVATED


def test_hostile_text_from_the_terminal_is_cleaned(nexo_terminal: Factory, tmp_path: Path) -> None:
    hostile = {
        "firmware": "\x1b[2J\x1b]0;owned\x07adyen\u202e_v1",
        "merchant_account": "\x1b[31mEvil\x00Merchant" + "M" * 300,
        "network_profile": [{"Address": "10.0.0.9\x1b[5m", "Iface": "eth0\u202e"}],
    }
    terminal = open_nexo(nexo_terminal("fresh", overrides={"terminal": hostile}), tmp_path)
    texts = [
        *terminal.firmware().components.values(),
        *(e.fact for e in terminal.activation().evidence),
        *terminal.merchant_data().notes,
        *(i.ip or "" for i in terminal.network().interfaces),
        *(i.name for i in terminal.network().interfaces),
    ]
    for text in texts:
        assert (
            "\x1b" not in text
            and "\x00" not in text
            and "\u202e" not in text
            and "\x07" not in text
        )
    assert all(len(text) <= 512 for text in texts)


def test_the_wipe_logs_every_pos_system_out(nexo_terminal: Factory, tmp_path: Path) -> None:
    sim = nexo_terminal("activated")
    sim.state.logins["POS-CASHDESK-1"] = {}
    sim.state.logins["POS-CASHDESK-2"] = {}
    terminal = open_nexo(sim, tmp_path)
    plan = terminal.wipe_plan()
    assert [step.name for step in plan] == ["logout"]
    assert plan[0].done() is False
    plan[0].run()
    assert sim.state.logins == {}
    assert plan[0].done() is True
    assert "Reconciliation" not in seen(sim)  # nothing closes the merchant's period


def test_a_wrong_key_is_an_authentication_error(nexo_terminal: Factory, tmp_path: Path) -> None:
    sim = nexo_terminal("activated", wrong_key=True)
    with pytest.raises(NexoCryptoError) as caught:
        open_nexo(sim, tmp_path).identify()
    assert isinstance(caught.value, AuthenticationError)


def test_a_terminal_without_a_key(nexo_terminal: Factory, tmp_path: Path) -> None:
    sim = nexo_terminal("activated", no_key=True)
    with pytest.raises(NexoNoKeyOnTerminalError):
        open_nexo(sim, tmp_path).identify()


def test_clear_text_works_on_a_test_terminal_that_allows_it(
    nexo_terminal: Factory, tmp_path: Path
) -> None:
    terminal = open_nexo(nexo_terminal("fresh"), tmp_path, key=None)
    assert terminal.activation().keys_loaded is None
    assert terminal.identify().serial == "324688179"


def test_the_poiid_comes_from_the_certificate(nexo_terminal: Factory, tmp_path: Path) -> None:
    sim = nexo_terminal("fresh", "P400Plus")
    terminal = open_nexo(sim, tmp_path, poiid=None)
    assert terminal.identify().device_name == "P400Plus-275008565"
