"""Tests for posdiag.drivers.address: every accepted form, display(), options and bad input."""

from __future__ import annotations

import pytest

from posdiag.drivers.address import Address, parse_address
from posdiag.drivers.errors import AddressError, PosdiagError

# --- accepted forms -------------------------------------------------------------------------


def test_serial_with_options() -> None:
    address = parse_address("zvt+serial:///dev/ttyACM0?baud=115200")
    assert address == Address("zvt", "serial", "/dev/ttyACM0", {"baud": "115200"})
    assert address.option_int("baud", 9600) == 115200


def test_serial_without_options() -> None:
    assert parse_address("zvt+serial:///dev/ttyACM0") == Address("zvt", "serial", "/dev/ttyACM0")


def test_tcp_with_port() -> None:
    address = parse_address("zvt+tcp://10.0.0.5:22000")
    assert (address.family, address.link, address.target) == ("zvt", "tcp", "10.0.0.5:22000")
    assert address.host_port == ("10.0.0.5", 22000)


def test_tcp_hostname() -> None:
    assert parse_address("zvt+tcp://terminal.local:20008").host_port == ("terminal.local", 20008)


def test_tcp_default_port_is_20007() -> None:
    address = parse_address("zvt+tcp://10.0.0.5")
    assert address.target == "10.0.0.5:20007"
    assert address.host_port == ("10.0.0.5", 20007)


def test_tcp_ipv6() -> None:
    address = parse_address("zvt+tcp://[::1]:22000")
    assert address.target == "[::1]:22000"
    assert address.host_port == ("::1", 22000)
    assert address.display() == "zvt+tcp://[::1]:22000"


def test_tcp_ipv6_default_port() -> None:
    address = parse_address("zvt+tcp://[fe80::1]")
    assert address.target == "[fe80::1]:20007"
    assert address.host_port == ("fe80::1", 20007)


def test_tcp_options() -> None:
    address = parse_address("zvt+tcp://10.0.0.5:20007?password=123456&timeout=2.5")
    assert address.options == {"password": "123456", "timeout": "2.5"}
    assert address.option_float("timeout", 5.0) == 2.5


def test_sim() -> None:
    assert parse_address("zvt+sim://activated") == Address("zvt", "sim", "activated")


def test_sim_with_path_and_options() -> None:
    address = parse_address("zvt+sim://activated/busy?delay=0.1")
    assert address.target == "activated/busy"
    assert address.options == {"delay": "0.1"}


@pytest.mark.parametrize("device", ["/dev/ttyUSB0", "/dev/serial/by-id/usb-Ingenico-if00"])
def test_bare_unix_device_is_zvt_serial(device: str) -> None:
    assert parse_address(device) == Address("zvt", "serial", device)


@pytest.mark.parametrize("device", ["COM3", "com12", r"\\.\COM10"])
def test_bare_windows_port_is_zvt_serial(device: str) -> None:
    assert parse_address(device) == Address("zvt", "serial", device)


def test_surrounding_whitespace_is_ignored() -> None:
    assert parse_address("  zvt+sim://activated \n") == Address("zvt", "sim", "activated")
    assert parse_address(" /dev/ttyUSB0 ").target == "/dev/ttyUSB0"


def test_scheme_is_case_insensitive() -> None:
    assert parse_address("ZVT+TCP://10.0.0.5:1").link == "tcp"


def test_blank_option_values_are_kept() -> None:
    assert parse_address("zvt+tcp://h:1?password=").options == {"password": ""}


# --- display() and round trips --------------------------------------------------------------


def test_display_hides_password() -> None:
    address = parse_address("zvt+serial:///dev/ttyACM0?baud=9600&password=000000")
    assert address.display() == "zvt+serial:///dev/ttyACM0?baud=9600"
    assert str(address) == "zvt+serial:///dev/ttyACM0?baud=9600"


def test_display_with_secrets_keeps_password() -> None:
    address = parse_address("zvt+tcp://10.0.0.5:20007?password=123456")
    assert address.display(with_secrets=True) == "zvt+tcp://10.0.0.5:20007?password=123456"
    assert address.display() == "zvt+tcp://10.0.0.5:20007"


def test_display_only_password_leaves_no_dangling_query() -> None:
    assert parse_address("zvt+sim://activated?password=1").display() == "zvt+sim://activated"


def test_display_of_bare_device_is_canonical() -> None:
    assert parse_address("/dev/ttyUSB0").display() == "zvt+serial:///dev/ttyUSB0"
    assert parse_address("zvt+tcp://h").display() == "zvt+tcp://h:20007"


@pytest.mark.parametrize(
    "text",
    [
        "zvt+serial:///dev/ttyACM0?baud=115200&password=000000",
        "zvt+tcp://10.0.0.5:20007?password=12%2634&timeout=3",
        "zvt+tcp://[::1]:22000",
        "zvt+sim://activated",
        "/dev/ttyUSB0",
        "COM3",
        r"\\.\COM10",
    ],
)
def test_display_round_trips(text: str) -> None:
    """The ledger stores display(with_secrets=True); it must parse back to the same address."""
    address = parse_address(text)
    assert parse_address(address.display(with_secrets=True)) == address
    assert parse_address(address.display()).target == address.target


def test_option_values_are_url_decoded() -> None:
    assert parse_address("zvt+tcp://h:1?password=12%2634").options["password"] == "12&34"


# --- options --------------------------------------------------------------------------------


def test_option_defaults_when_absent() -> None:
    address = parse_address("zvt+sim://activated")
    assert address.option_int("baud", 9600) == 9600
    assert address.option_float("timeout", 5.0) == 5.0


def test_option_int_rejects_non_numbers() -> None:
    address = parse_address("zvt+serial:///dev/ttyACM0?baud=fast")
    with pytest.raises(AddressError, match=r"option baud='fast' in .* is not a number"):
        address.option_int("baud", 9600)


def test_option_int_rejects_float_text() -> None:
    with pytest.raises(AddressError, match=r"baud='9600\.5'"):
        parse_address("zvt+serial:///dev/ttyACM0?baud=9600.5").option_int("baud", 9600)


def test_option_float_rejects_non_numbers() -> None:
    address = parse_address("zvt+tcp://h:1?timeout=soon")
    with pytest.raises(AddressError, match=r"option timeout='soon' in .* is not a number"):
        address.option_float("timeout", 5.0)


def test_option_float_accepts_integers() -> None:
    assert parse_address("zvt+tcp://h:1?timeout=3").option_float("timeout", 5.0) == 3.0


def test_option_error_does_not_leak_password() -> None:
    address = parse_address("zvt+tcp://h:1?timeout=soon&password=424242")
    with pytest.raises(AddressError) as excinfo:
        address.option_float("timeout", 5.0)
    assert "424242" not in str(excinfo.value)


def test_host_port_rejects_non_tcp() -> None:
    with pytest.raises(AddressError, match="not a TCP address"):
        _ = parse_address("zvt+sim://activated").host_port


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty device address"),
        ("   ", "empty device address"),
        ("foo", r"'foo' is not a device address \(expected e\.g\. zvt\+serial://"),
        ("http://x", r"unknown address scheme 'http' .*known: zvt\+serial, zvt\+tcp, zvt\+sim"),
        ("zvt://x", "unknown address scheme 'zvt'"),
        ("abc+tcp://x:1", "unknown address scheme 'abc\\+tcp'"),
        ("zvt+usb://x", r"zvt terminals are not reached over 'usb' \(use one of serial, tcp, sim"),
        ("zvt+tcp://:1", r"names no host \(zvt\+tcp://HOST:PORT\)"),
        ("zvt+tcp://", "names no host"),
        ("zvt+tcp://h:notaport", "has an invalid port"),
        ("zvt+tcp://h:70000", "has an invalid port"),
        ("zvt+tcp://h:0", "has an invalid port"),
        ("zvt+tcp://[::1", "is not a valid address"),
        ("zvt+serial://", r"names no serial device \(zvt\+serial:///dev/ttyACM0\)"),
        ("zvt+serial://dev/ttyACM0", "needs three slashes"),
        ("zvt+sim://", r"names no scenario \(zvt\+sim://activated\)"),
        ("COM3?baud=9600", "is not a device address"),
    ],
)
def test_bad_input_raises_address_error(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_address(text)


def test_address_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_address("foo")
    assert issubclass(AddressError, ValueError)
    assert issubclass(AddressError, PosdiagError)


def test_error_messages_quote_the_input() -> None:
    with pytest.raises(AddressError) as excinfo:
        parse_address("zvt+tcp://h:notaport")
    assert "'zvt+tcp://h:notaport'" in str(excinfo.value)


# --- value semantics ------------------------------------------------------------------------


def test_addresses_compare_by_value_including_options() -> None:
    assert parse_address("zvt+tcp://h:1?a=1") == parse_address("zvt+tcp://h:1?a=1")
    assert parse_address("zvt+tcp://h:1?a=1") != parse_address("zvt+tcp://h:1?a=2")


def test_addresses_are_hashable_and_frozen() -> None:
    address = parse_address("zvt+tcp://h:1?a=1")
    assert hash(address) == hash(parse_address("zvt+tcp://h:1?a=2"))
    with pytest.raises(AttributeError):
        address.link = "serial"  # type: ignore[misc, unused-ignore]
