"""Timer and timeout options refuse inf, nan, negative and absurd values with one line.

``inf`` disables a timer, ``nan`` compares false with everything (a wait loop on it never
ends), a negative value is a typo, and a timeout longer than a day lets one terminal hold a
station slot for good: none of them may reach a driver.
"""

from __future__ import annotations

import pytest

from posdiag.drivers.address import parse_address
from posdiag.drivers.deadline import Deadline, check_seconds
from posdiag.drivers.errors import AddressError, DeadlineExceeded, TransportTimeout


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "NaN", "-1", "86401", "1e9", "٣"])
@pytest.mark.parametrize("name", ["t1", "t2", "t3", "t4", "timeout", "auth_timeout"])
def test_absurd_durations_are_refused(name: str, value: str) -> None:
    address = parse_address(f"zvt+tcp://h:1?{name}={value}")
    with pytest.raises(AddressError, match=f"option {name}=") as caught:
        address.option_float(name, 5.0)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("2.5", 2.5), ("86400", 86400.0)])
def test_sane_durations_pass(value: str, expected: float) -> None:
    assert parse_address(f"zvt+tcp://h:1?t3={value}").option_float("t3", 5.0) == expected


@pytest.mark.parametrize("value", ["-9600", "٣٣", "１２", "9" * 30, "1e3"])
def test_whole_number_options_refuse_odd_values(value: str) -> None:
    with pytest.raises(AddressError, match="baud="):
        parse_address(f"zvt+serial:///dev/ttyACM0?baud={value}").option_int("baud", 9600)


def test_whole_number_option_maximum() -> None:
    address = parse_address("zvt+serial:///dev/ttyACM0?baud=115200")
    assert address.option_int("baud", 9600) == 115200
    with pytest.raises(AddressError, match="too large"):
        address.option_int("baud", 9600, maximum=100_000)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -0.1, 86_400.5])
def test_check_seconds(value: float) -> None:
    with pytest.raises(AddressError, match="t2"):
        check_seconds("t2", value)
    assert check_seconds("t2", 5) == 5.0


def test_deadline_semantics() -> None:
    deadline = Deadline()
    assert deadline.remaining() is None and deadline.clip(7.0) == 7.0
    deadline.check()
    deadline.set(10.0)  # long past on the monotonic clock
    with pytest.raises(DeadlineExceeded, match="the terminal did not finish in time"):
        deadline.clip(1.0)
    assert isinstance(DeadlineExceeded(), TransportTimeout)
    deadline.set(None)
    deadline.check()
    with pytest.raises(ValueError):
        deadline.set(float("inf"))
