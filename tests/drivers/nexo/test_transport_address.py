"""nexo addresses: the accepted forms, the refused ones, and a passphrase that never shows."""

from __future__ import annotations

import pytest

from posdiag.agent.slots import secrets_of, shown_address
from posdiag.drivers.address import Address, parse_address
from posdiag.drivers.errors import AddressError

SIM = (
    "nexo+https://127.0.0.1:40111?poiid=V400m-324688179"
    "&ca=/tmp/posdiag-nexo-x/ca.pem&key=/tmp/posdiag-nexo-x/key.toml"
)


def test_the_simulator_form() -> None:
    address = parse_address(SIM)
    assert (address.family, address.link, address.target) == (
        "nexo",
        "https",
        "127.0.0.1:40111/nexo",
    )
    assert address.host_port == ("127.0.0.1", 40111)
    assert address.url_path == "/nexo"
    assert address.options == {
        "poiid": "V400m-324688179",
        "ca": "/tmp/posdiag-nexo-x/ca.pem",
        "key": "/tmp/posdiag-nexo-x/key.toml",
    }
    assert address.display() == (
        "nexo+https://127.0.0.1:40111/nexo?poiid=V400m-324688179"
        "&ca=/tmp/posdiag-nexo-x/ca.pem&key=/tmp/posdiag-nexo-x/key.toml"
    )


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("nexo+https://10.0.0.7", "10.0.0.7:8443/nexo"),
        ("nexo+https://10.0.0.7:9443", "10.0.0.7:9443/nexo"),
        ("nexo+https://10.0.0.7/nexo/", "10.0.0.7:8443/nexo/"),
        (
            "nexo+https://terminal-3.shop.example:8443/api/nexo",
            "terminal-3.shop.example:8443/api/nexo",
        ),
        ("nexo+https://[fe80::1]", "[fe80::1]:8443/nexo"),
        ("NEXO+HTTPS://10.0.0.7", "10.0.0.7:8443/nexo"),
    ],
)
def test_defaults_and_forms(text: str, target: str) -> None:
    address = parse_address(text)
    assert address.target == target
    assert parse_address(address.display()) == address  # the display form parses back


def test_ipv6_host_port() -> None:
    address = parse_address("nexo+https://[::1]:9443/nexo")
    assert address.host_port == ("::1", 9443)
    assert address.display() == "nexo+https://[::1]:9443/nexo"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nexo+tcp://10.0.0.7", "not reached over 'tcp'"),
        ("nexo+https://", "names no host"),
        ("nexo+https://10.0.0.7:0", "invalid port"),
        ("nexo+https://10.0.0.7:99999", "invalid port"),
        ("nexo+https://10.0.0.7/../etc", "not a terminal path"),
        ("nexo+https://10.0.0.7/a b", "not a terminal path"),
        ("nexo+https://10.0.0.7?poid=V400m-1", "unknown option 'poid'"),
        ("nexo+https://10.0.0.7?poiid=V400m", "not a terminal POIID"),
        ("nexo+https://10.0.0.7?poiid=V400m-1/../x", "not a terminal POIID"),
        ("nexo+https://10.0.0.7?ca=", "must be a file path"),
        ("nexo+https://10.0.0.7?key=%00", "must be a file path"),
        ("nexo+https://10.0.0.7?timeout=x", None),
    ],
)
def test_bad_forms_are_address_errors(text: str, message: str | None) -> None:
    if message is None:
        address = parse_address(text)
        with pytest.raises(AddressError, match="not a number"):
            address.option_float("timeout", 15.0)
        return
    with pytest.raises(AddressError, match=message):
        parse_address(text)


def test_a_passphrase_in_the_address_is_refused_without_echoing_it() -> None:
    text = "nexo+https://10.0.0.7:0?passphrase=Sup3rSecret!pass&poiid=bad"
    with pytest.raises(AddressError) as caught:
        parse_address(text)
    assert "must not hold the passphrase" in str(caught.value)
    assert "Sup3rSecret" not in str(caught.value)
    assert "Sup3rSecret" not in shown_address(text)  # the station's shown form masks it too
    assert secrets_of(text) == ()  # it never parses, so it is never used either


def test_user_info_is_refused_without_echoing_it() -> None:
    with pytest.raises(AddressError) as caught:
        parse_address("nexo+https://admin:hunter2hunter2@10.0.0.7")
    assert "hunter2" not in str(caught.value)


def test_the_unknown_scheme_message_lists_nexo() -> None:
    with pytest.raises(AddressError, match=r"nexo\+https"):
        parse_address("nexus+https://10.0.0.7")


def test_addresses_compare_by_value() -> None:
    assert parse_address("nexo+https://10.0.0.7") == Address("nexo", "https", "10.0.0.7:8443/nexo")
    assert hash(parse_address("nexo+https://10.0.0.7")) == hash(
        parse_address("nexo+https://10.0.0.7:8443/nexo")
    )
