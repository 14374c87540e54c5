"""Tests for posdiag.drivers.zvt.printout: real Feig capture, generic set, selection, robustness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posdiag.drivers.zvt.printout import (
    PrintoutFacts,
    PrintoutInterface,
    _label_sets,
    _load_label_set,
    available_label_sets,
    decode_print_text,
    parse_printout,
)

CAPTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "captures" / "zvt-everest"
PRINTOUT_BLOB = CAPTURES / "print_system_configuration_reply.blob"

PRINT_TEXT_BLOCK = (0x06, 0xD3)
TAG_CONTAINER = 0x06
TAG_TEXT_BLOCK = 0x25
TAG_PRINT_LINE = 0x07


def _tlv(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Walk one level of BER-TLV; just enough for the capture (the real codec lives elsewhere)."""
    index = 0
    while index < len(data):
        tag = data[index]
        index += 1
        if tag & 0x1F == 0x1F:
            while True:
                byte = data[index]
                index += 1
                tag = tag << 8 | byte
                if not byte & 0x80:
                    break
        length = data[index]
        index += 1
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[index : index + size], "big")
            index += size
        yield tag, data[index : index + length]
        index += length


def _print_lines(apdu: bytes) -> list[str]:
    """Extract the print lines (tag 07 inside 06 / 25) of a ``06 D3`` text-block APDU."""
    assert tuple(apdu[:2]) == PRINT_TEXT_BLOCK
    if apdu[2] == 0xFF:
        length, data = int.from_bytes(apdu[3:5], "little"), apdu[5:]
    else:
        length, data = apdu[2], apdu[3:]
    assert len(data) == length
    (container,) = [value for tag, value in _tlv(data) if tag == TAG_CONTAINER]
    (block,) = [value for tag, value in _tlv(container) if tag == TAG_TEXT_BLOCK]
    return [decode_print_text(value) for tag, value in _tlv(block) if tag == TAG_PRINT_LINE]


@pytest.fixture(scope="module")
def capture_lines() -> list[str]:
    if not PRINTOUT_BLOB.is_file():
        pytest.skip(f"capture folder not present: {CAPTURES} (shared ZVT captures not checked out)")
    return _print_lines(PRINTOUT_BLOB.read_bytes())


@pytest.fixture(scope="module")
def feig(capture_lines: list[str]) -> PrintoutFacts:
    return parse_printout(capture_lines)


# --- the real Feig cVEND printout ----------------------------------------------------------------


def test_capture_is_read_as_40_column_lines(capture_lines: list[str]) -> None:
    assert len(capture_lines) == 118
    assert max(len(line) for line in capture_lines) == 40
    assert "" in capture_lines  # tag 07 with length 0 is an empty printed line


def test_capture_auto_selects_feig(feig: PrintoutFacts, capture_lines: list[str]) -> None:
    assert feig.vendor_labels == "feig"
    assert parse_printout(capture_lines, vendor="feig") == feig


def test_capture_identity(feig: PrintoutFacts) -> None:
    assert feig.serial == "17F59B1F"
    assert feig.hardware == "cVEND plug"
    assert feig.battery_voltage_mv == 3120
    assert feig.temperature_c == pytest.approx(46.8)


def test_capture_firmware_components(feig: PrintoutFacts) -> None:
    assert feig.firmware == {
        "PIN pad software": "SeW-700.02",
        "PIN pad release": "000.00008",
        "RFID reader": "FECLR-02.06.00",
        "Firmware": "cR02.01.01-00.09-2-2",
        "SDK": "02.01.01.09",
        "Terminal application": "GER-APP-v2.0.9",
        "General Texts": "02.01.02.00",
        "UI Texts": "02.01.03.00",
        "Receipt Texts": "02.01.04.00",
    }


def test_capture_host_section(feig: PrintoutFacts) -> None:
    assert feig.terminal_id == "52502000"
    assert feig.host == "213.183.19.105:30101"  # "IP:" under Kommunikationsparameter
    assert feig.host_operator == "PaySphere"
    assert feig.currency == "SEK"
    assert len(feig.merchant_lines) == 4
    assert feig.merchant_lines[-1] == "M\u00fcnchen"  # CP437 0x81 decoded
    assert not set(feig.merchant_lines) & set(feig.unparsed)


def test_capture_interfaces(feig: PrintoutFacts) -> None:
    assert feig.interfaces == (
        PrintoutInterface(
            name="eth0",
            up=True,
            mode="DHCP",
            mac="00:1C:9B:0F:E1:CC",
            ip="192.168.23.51",
            netmask="255.255.255.0",
            gateway="192.168.23.1",
        ),
        PrintoutInterface(
            name="usb0",
            up=False,
            mode="DHCP",
            mac="56:A3:00:5A:99:BD",
            ip=None,
            netmask=None,
            gateway="192.168.23.1",
        ),
    )
    assert feig.modem == "nein"


def test_capture_wrapped_url_and_wrapped_certificate_labels(feig: PrintoutFacts) -> None:
    assert feig.tms_url == "wss://ol-staging.tms.feig.de:443/location-publisher/dev/api/v1"
    assert feig.certificates == {"client_auth": "16.03.2031", "server_auth": "16.03.2031"}


def test_capture_ecr_ports(feig: PrintoutFacts) -> None:
    assert feig.ecr_ports == (
        "OPI tcp 20002 device 0.0.0.0:20006",
        "OPI tcp 20003 tls device 0.0.0.0:20006",
        "ZVT serial 9600 8N2",
        "ZVT tcp 22000",
        "ZVT serial 9600 8N2",
        "ZVT tcp 22001 tls",
        "MDB",
    )


def test_capture_leaves_only_the_unlabelled_version_line_unparsed(feig: PrintoutFacts) -> None:
    assert feig.unparsed == ("000.00001",)


def test_repr_keeps_merchant_identifiers_out(feig: PrintoutFacts) -> None:
    text = repr(feig)
    assert "52502000" not in text
    assert "M\u00fcnchen" not in text
    assert "17F59B1F" in text


def test_generic_set_on_feig_printout_is_weaker_but_works(capture_lines: list[str]) -> None:
    facts = parse_printout(capture_lines, vendor="generic")
    assert facts.vendor_labels == "generic"
    assert facts.hardware == "cVEND plug"
    assert facts.firmware["Firmware"] == "cR02.01.01-00.09-2-2"


# --- generic label set ---------------------------------------------------------------------------

GENERIC_PRINTOUT = [
    "         ** Device Information **        ",
    "2024-05-01 10:22:13",
    "Serial No.:                    SN-004711",
    "Model:                          Move5000",
    "Software:                         4.2.17",
    "Firmware Version:             FW 1.0.3-b",
    "TID:                            12345678",
    "Battery:                          3,95 V",
    "Temperature:                    38,5 C",
    "Currency:                            EUR",
    "Host:                pay.example.net:443",
    "",
    "wlan0: UP, STATIC",
    "IP Address:                    10.0.0.7",
    "MAC:                   AA:BB:CC:DD:EE:FF",
    "Netmask:                  255.255.255.0",
    "Gateway:                       10.0.0.1",
    "",
    "Modem:                              none",
    "TMS URL: https://tms.example.com/termina",
    "ls/v2/config",
    "Some other line",
]


def test_generic_printout_auto_selects_generic() -> None:
    facts = parse_printout(GENERIC_PRINTOUT)
    assert facts.vendor_labels == "generic"
    assert facts.serial == "SN-004711"
    assert facts.hardware == "Move5000"
    assert facts.firmware == {"Software": "4.2.17", "Firmware": "FW 1.0.3-b"}
    assert facts.terminal_id == "12345678"
    assert facts.battery_voltage_mv == 3950
    assert facts.temperature_c == pytest.approx(38.5)
    assert facts.currency == "EUR"
    assert facts.host == "pay.example.net:443"
    assert facts.interfaces == (
        PrintoutInterface(
            name="wlan0",
            up=True,
            mode="STATIC",
            mac="AA:BB:CC:DD:EE:FF",
            ip="10.0.0.7",
            netmask="255.255.255.0",
            gateway="10.0.0.1",
        ),
    )
    assert facts.modem == "none"
    assert facts.tms_url == "https://tms.example.com/terminals/v2/config"
    assert facts.unparsed == ("Some other line",)


def test_generic_addresses_without_interface_header_go_to_an_unnamed_interface() -> None:
    facts = parse_printout(["IP: 10.1.1.1", "MAC: 00:11:22:33:44:55"], vendor="generic")
    assert facts.interfaces == (
        PrintoutInterface(name="unnamed", ip="10.1.1.1", mac="00:11:22:33:44:55"),
    )


def test_host_and_port_on_separate_lines_are_combined() -> None:
    facts = parse_printout(["Host: 10.2.3.4", "Host Port: 3000"], vendor="generic")
    assert facts.host == "10.2.3.4:3000"


# --- label-set selection -------------------------------------------------------------------------


def test_available_label_sets() -> None:
    assert {"feig", "generic"} <= set(available_label_sets())
    assert available_label_sets() == sorted(available_label_sets())


def test_exactly_the_generic_set_is_marked_fallback() -> None:
    assert [name for name, ls in _label_sets().items() if ls.fallback] == ["generic"]


def test_vendor_alias_is_case_insensitive() -> None:
    facts = parse_printout(["Terminal Serien-Nr.:   ABC"], vendor="  FEIG Electronic ")
    assert facts.vendor_labels == "feig"
    assert facts.serial == "ABC"


def test_unknown_vendor_falls_back_to_auto_selection() -> None:
    assert parse_printout(GENERIC_PRINTOUT, vendor="no-such-vendor").vendor_labels == "generic"


def test_tie_prefers_the_fallback_set() -> None:
    # "Hardware" and "Firmware" mean the same in both sets: no evidence for a vendor.
    facts = parse_printout(["Hardware: X1", "Firmware: 1.0"])
    assert facts.vendor_labels == "generic"
    assert facts.hardware == "X1"


def test_empty_printout() -> None:
    facts = parse_printout([])
    assert facts == PrintoutFacts(vendor_labels="generic")


# --- sections and wrapping -----------------------------------------------------------------------


def test_ip_label_depends_on_the_section() -> None:
    lines = [
        "** Kommunikationsparameter **",
        "IP:                        10.9.9.9",
        "Port:                          3001",
        "** Kassen-Konfiguration **",
        "Kassenart                       ZVT",
        "Server Port:                  20007",
        "IP:                        10.8.8.8",
        "Port:                          4000",
    ]
    facts = parse_printout(lines, vendor="feig")
    assert facts.host == "10.9.9.9:3001"
    assert facts.ecr_ports == ("ZVT tcp 20007 device 10.8.8.8:4000",)


def test_ip_outside_its_sections_is_not_claimed() -> None:
    facts = parse_printout(["IP:  10.9.9.9"], vendor="feig")
    assert facts.host is None
    assert facts.unparsed == ("IP:  10.9.9.9",)


def test_merchant_text_is_not_misread_as_a_label() -> None:
    lines = [
        "** Host-Konfiguration **",
        "Terminal-ID     123",
        "Hardware Store Meier",
        "Hauptstr. 1",
    ]
    facts = parse_printout(lines, vendor="feig")
    assert facts.hardware is None
    assert facts.terminal_id == "123"
    assert facts.merchant_lines == ("Hardware Store Meier", "Hauptstr. 1")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["G\u00fcltigkeit Srv-Auth-", "Cert:      01.02.2030"], {"server_auth": "01.02.2030"}),
        (["G\u00fcltigkeit", "Clnt-Auth-Cert: 05.06.2029"], {"client_auth": "05.06.2029"}),
    ],
)
def test_wrapped_labels_are_rejoined(lines: list[str], expected: dict[str, str]) -> None:
    assert parse_printout(lines, vendor="feig").certificates == expected


def test_wrapped_label_joined_with_a_space() -> None:
    facts = parse_printout(["Terminal", "Version:        GER-APP-v9"], vendor="feig")
    assert facts.firmware == {"Terminal application": "GER-APP-v9"}


def test_right_aligned_value_does_not_swallow_the_next_line() -> None:
    lines = ["Service Center:          wss://a.example", "something unrelated here, 40 chars wide"]
    facts = parse_printout(lines, vendor="feig")
    assert facts.tms_url == "wss://a.example"
    assert facts.unparsed == ("something unrelated here, 40 chars wide",)


def test_wrapped_value_stops_at_a_label() -> None:
    lines = ["Service Center:", "wss://x.example/a", "Hardware:   cVEND"]
    facts = parse_printout(lines, vendor="feig")
    assert facts.tms_url == "wss://x.example/a"
    assert facts.hardware == "cVEND"


# --- values --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "millivolts"),
    [
        ("3.12", 3120),
        ("3,12", 3120),
        ("3.9 V", 3900),
        ("3950 mV", 3950),
        ("3950", 3950),
        ("85 %", None),
        ("n/a", None),
        ("9" * 400, None),
    ],
)
def test_battery_values(value: str, millivolts: int | None) -> None:
    facts = parse_printout([f"Batteriespannung (V): {value}"], vendor="feig")
    assert facts.battery_voltage_mv == millivolts


@pytest.mark.parametrize(("value", "celsius"), [("46.8", 46.8), ("46,8", 46.8), ("-5 C", -5.0)])
def test_temperature_values(value: str, celsius: float) -> None:
    facts = parse_printout([f"Modultemperatur (C): {value}"], vendor="feig")
    assert facts.temperature_c == pytest.approx(celsius)


def test_decode_print_text() -> None:
    assert decode_print_text(b"M\x81nchen   ") == "M\u00fcnchen"
    assert decode_print_text(b"R\x84ume \x94l") == "R\u00e4ume \u00f6l"
    assert decode_print_text(b"") == ""


def test_embedded_line_breaks_are_split() -> None:
    facts = parse_printout(["Hardware: A\nFirmware: 2"], vendor="generic")
    assert facts.hardware == "A"
    assert facts.firmware == {"Firmware": "2"}


# --- label-set files -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"label": [{"text": "X", "fact": "nonsense"}]}, "fact"),
        ({"label": [{"text": "X", "fact": "firmware"}]}, "key"),
        ({"label": [{"text": "X", "fact": "serial", "sections": ["nowhere"]}]}, "section"),
        ({"label": [{"text": "X", "fact": "serial", "section": ["typo"]}]}, "unknown key"),
        ({"patterns": {"heading": "(no title group)"}}, "title"),
        ({"label_set": {"name": "other"}}, "name"),
    ],
)
def test_bad_label_set_data_is_rejected(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _load_label_set("test", data)


# --- robustness ----------------------------------------------------------------------------------

FRAGMENTS = [
    "** Host-Konfiguration **",
    "** Kassen-Konfiguration **",
    "** Terminal-Konfiguration **",
    "** Kommunikationsparameter **",
    "eth0: UP, DHCP",
    "usb0: DOWN",
    "Kassenart  ZVT",
    "Service Center:",
    "G\u00fcltigkeit Clnt-Auth-",
    "Cert:",
    "Batteriespannung (V):",
    "Modultemperatur (C):",
    "Battery:",
    "IP:",
    "Port:",
    "Host:",
    "TMS:",
    "",
]


@given(st.lists(st.text(max_size=60), max_size=40))
def test_random_text_never_raises(lines: list[str]) -> None:
    facts = parse_printout(lines)
    assert facts.vendor_labels in available_label_sets()
    for name in available_label_sets():
        assert parse_printout(lines, vendor=name).vendor_labels == name


@given(
    st.lists(
        st.one_of(
            st.sampled_from(FRAGMENTS),
            st.builds(lambda a, b: a + " " + b, st.sampled_from(FRAGMENTS), st.text(max_size=30)),
            st.text(max_size=40),
        ),
        max_size=40,
    )
)
def test_label_like_noise_never_raises(lines: list[str]) -> None:
    for vendor in (None, *available_label_sets()):
        facts = parse_printout(lines, vendor=vendor)
        assert all(isinstance(line, str) for line in facts.unparsed)
        assert facts.battery_voltage_mv is None or facts.battery_voltage_mv >= 0
