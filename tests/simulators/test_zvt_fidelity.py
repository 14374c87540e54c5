"""Issue 14 (ZVT): the simulator answers as real units do, and the driver reads them right.

Driver against simulator over the memory link: a card complete unit's ISO-8859-1 text, the
catalogue's charset and detection, a bare-status-byte completion, a tampered unit, German
decimal commas on receipts, Diagnosis's date/time step and a third-party ECR's ``0F 11``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest

from posdiag.drivers.catalogue import Catalogue, ModelEntry, load_catalogue
from posdiag.drivers.zvt.apdu import Apdu
from posdiag.drivers.zvt.driver import ZvtDriver
from posdiag.drivers.zvt.errors import ZvtCommandError, ZvtNotSupportedError
from posdiag.drivers.zvt.messages import (
    Completion,
    Initialisation,
    PositiveAck,
    StatusByteCompletion,
    StatusEnquiry,
    UnknownMessage,
)
from posdiag.drivers.zvt.terminal import ZvtTerminal
from posdiag.simulators.pytest_plugin import SimulatedZvt
from posdiag.simulators.zvt.device import Reply, ZvtDeviceModel, german_amount
from posdiag.simulators.zvt.state import Transaction, load_scenario

Terminal = Callable[..., SimulatedZvt]
Driver = Callable[..., ZvtDriver]


# --- character set ------------------------------------------------------------------------------


@pytest.mark.parametrize("allow_tlv", [True, False], ids=["06-D3", "06-D1"])
def test_card_complete_text_is_detected_and_decoded(
    zvt_terminal: Terminal, zvt_driver: Driver, allow_tlv: bool
) -> None:
    terminal = zvt_terminal("activated")
    terminal.state.charset = "iso-8859-1"  # a card complete unit
    driver = zvt_driver(terminal)
    assert driver.charset == "cp437"  # nothing known yet: the spec's default
    driver.register(allow_tlv=allow_tlv)
    lines = driver.print_system_configuration()
    assert driver.charset == "iso8859-1"  # "Währung" proved it
    assert any(line.startswith("Währung:") for line in lines)
    assert "Café Beispiel GmbH" in lines
    assert "80331 München" in lines
    assert not any("─" in line or "\ufffd" in line for line in lines)


def test_feig_text_stays_cp437(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    terminal = zvt_terminal("activated")
    driver = zvt_driver(terminal)
    driver.register()
    lines = driver.print_system_configuration()
    assert driver.charset == "cp437"
    assert "80331 München" in lines


def _catalogue(charset: str) -> Catalogue:
    base = load_catalogue()
    entry = ModelEntry(
        "test-cvend",
        "FEIG ELECTRONIC",
        "cVEND plug",
        "zvt",
        ("cVEND plug",),
        label_set="feig",
        charset=charset,
    )
    return Catalogue((entry, *base.models), base.adapters)


def test_the_catalogue_charset_reaches_the_driver(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    terminal = zvt_terminal("activated")
    terminal.state.charset = "iso-8859-1"
    driver = zvt_driver(terminal)
    zvt = ZvtTerminal(driver, "memory", _catalogue("iso-8859-1"))
    try:
        facts = zvt.facts()
        assert driver.charset == "iso8859-1"
        assert facts.printout is not None
        assert facts.printout.currency == "EUR"  # "Währung:" read as a label
        assert "80331 München" in facts.printout.merchant_lines
    finally:
        zvt.close()


def test_detection_overrules_a_wrong_catalogue_charset(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    terminal = zvt_terminal("activated")  # a Feig: CP437
    driver = zvt_driver(terminal)
    zvt = ZvtTerminal(driver, "memory", _catalogue("iso-8859-1"))
    try:
        facts = zvt.facts()
        assert driver.charset == "cp437"  # the printout's labels proved CP437
        assert facts.printout is not None
        assert "80331 München" in facts.printout.merchant_lines
        driver.set_charset("iso-8859-1")  # the catalogue again: the proof stands
        assert driver.charset == "cp437"
    finally:
        zvt.close()


# --- 06 0F with a bare status byte --------------------------------------------------------------


def test_bare_status_byte_completion_is_read_in_the_callers_context(
    zvt_terminal: Terminal, zvt_driver: Driver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def card_inserted(model: ZvtDeviceModel, message: StatusEnquiry) -> Reply:
        return Reply(PositiveAck(), [(0.0, Completion(b"\xdc"))])  # 06 0F 01 DC

    monkeypatch.setitem(ZvtDeviceModel._HANDLERS, StatusEnquiry, card_inserted)
    terminal = zvt_terminal("activated")
    driver = zvt_driver(terminal)
    report = driver.status_enquiry()
    assert report.terminal_status == 0xDC  # card inserted, as a Status-Enquiry means it
    assert report.terminal_id is None and report.sw_version is None
    result = driver.transact(StatusEnquiry(password="000000"))
    assert isinstance(result.completion, StatusByteCompletion)
    assert result.status_byte == 0xDC


# --- a tampered unit ----------------------------------------------------------------------------


def test_tampered_unit_reports_out_of_order_not_ready(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    terminal = zvt_terminal("tampered")
    report = zvt_driver(terminal).status_enquiry()
    assert report.terminal_status == 0xDF  # out of order
    assert report.device_state == 0x03  # fraud


def test_tampered_unit_refuses_end_of_day_and_keeps_its_store(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    terminal = zvt_terminal("tampered")
    terminal.state.transactions.append(Transaction(1250, receipt_number=1, trace_number=1))
    driver = zvt_driver(terminal)
    with pytest.raises(ZvtCommandError) as caught:
        driver.end_of_day()
    assert caught.value.code == 0xDF
    assert len(terminal.state.transactions) == 1  # nothing was settled
    with pytest.raises(ZvtCommandError) as again:
        driver.transact(Initialisation("000000"))
    assert again.value.code == 0xDF


def test_a_hand_built_tampered_state_is_out_of_order_too() -> None:
    state = load_scenario("activated")
    state.device_state = 0x03
    model = ZvtDeviceModel(state)
    assert model.terminal_status() == 0xDF
    assert model.status_report().terminal_status == 0xDF


# --- receipts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "text"), [(1250, "12,50 EUR"), (5, "0,05 EUR"), (123456, "1234,56 EUR")]
)
def test_german_amount(cents: int, text: str) -> None:
    assert german_amount(cents, "EUR") == text


def test_end_of_day_receipt_prints_a_decimal_comma(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    terminal = zvt_terminal("unsettled")
    driver = zvt_driver(terminal)
    driver.register()
    result = driver.end_of_day()
    summe = [line for line in result.print_lines if line.startswith("Summe")]
    assert summe and summe[0].endswith("47,57 EUR")  # 25,00 + 9,58 + 12,99
    assert result.totals is not None and result.totals.total_cents == 4757
    assert not any("47.57" in line for line in result.print_lines)


# --- Diagnosis ----------------------------------------------------------------------------------


def test_diagnosis_sends_its_date_and_time(zvt_terminal: Terminal, zvt_driver: Driver) -> None:
    terminal = zvt_terminal("activated")
    driver = zvt_driver(terminal)
    driver.register()
    before = datetime.datetime.now().replace(microsecond=0)
    result = driver.diagnosis()
    after = datetime.datetime.now()
    assert result.host_reachable
    assert result.terminal_time is not None
    assert before <= result.terminal_time <= after
    assert any(line.startswith(f"{result.terminal_time:%d.%m.%Y}") for line in result.print_lines)


# --- a third-party ECR's Print Turnover Report --------------------------------------------------


def test_vendor_class_print_turnover_report_is_not_supported(
    zvt_terminal: Terminal, zvt_driver: Driver
) -> None:
    """``0F 11`` is no ZVT command (class 0F is vendor-specific; a Feig knows only 0F A1).

    A real terminal answers a command it does not know with ``84 83 00`` (spec §2.66) and stays
    in step; so does the simulator.
    """
    terminal = zvt_terminal("activated")
    driver = zvt_driver(terminal)
    with pytest.raises(ZvtNotSupportedError) as caught:
        driver.transact(UnknownMessage(Apdu(0x0F, 0x11, bytes.fromhex("000000"))))
    assert caught.value.code == 0x83
    assert driver.status_enquiry().serial == terminal.state.serial  # still in step
