"""Fleet files: simulated terminals and their plug schedule, and live edits of the file."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from posdiag.agent.fleet import FleetError, FleetPlayer, fleet_of, load_fleet, parse_fleet
from posdiag.simulators.bus import SimulatedBus

FLEET = """
[[terminal]]
scenario = "activated"
count = 2
options = { time_scale = "0" }

[[terminal]]
name = "flaky-cable"
family = "adb"
model = "sunmi-p2"
scenario = "unsettled"
unplug_at = 0.2
replug_at = 0.4

[[terminal]]
name = "late"
scenario = "fresh"
plug_at = 0.3
"""


@pytest.fixture
def bus() -> Iterator[SimulatedBus]:
    with SimulatedBus() as simulated:
        yield simulated


def test_fleet_file_expands_counts_and_schedules(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    fleet = load_fleet(path)
    assert [t.name for t in fleet] == ["terminal-1-1", "terminal-1-2", "flaky-cable", "late"]
    assert fleet[0].address == "zvt+sim://activated?time_scale=0&unit=1"
    assert fleet[2].address == "adb+sim://unsettled?model=sunmi-p2"
    assert fleet[2].events() == [(0.2, "unplug"), (0.4, "plug")]
    assert not fleet[3].plugged and fleet[3].events() == [(0.3, "plug")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no \\[\\[terminal\\]\\] entries"),
        ("[[terminal]]\nscenarion = 'fresh'", "unknown key"),
        ("[[terminal]]\nfamily = 'zvt'", "scenario is required"),
        ("[[terminal]]\nscenario = 'fresh'\nfamily = 'sdi'", "family must be zvt, adb or nexo"),
        ("[[terminal]]\nscenario = 'fresh'\ncount = 0", "count must be"),
        ("[[terminal]]\nscenario = 'fresh'\nreplug_at = 3", "replug_at needs"),
        ("[[terminal]]\nscenario = 'fresh'\nunplug_at = -1", "seconds"),
        ("[[terminal]]\nscenario = 'fresh'\nmodel = 'x'", "model is an adb or nexo option"),
        ("[[terminal]]\nscenario = 'a'\nname='x'\n[[terminal]]\nscenario = 'b'\nname='x'",
         "duplicate"),
        ("[[terminal]]\nscenario = 'fresh'\ncount = 2000", "from 1 to 1024"),
        ("[station]\nx = 1", "unknown section"),
    ],
)
def test_bad_fleet_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    with pytest.raises(FleetError, match=message):
        load_fleet(path)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="cannot read fleet file"):
        load_fleet(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[terminal]\nscenario=")
    with pytest.raises(FleetError, match="not valid TOML"):
        load_fleet(bad)


def test_player_plays_the_schedule(bus: SimulatedBus, tmp_path: Path) -> None:
    changes: list[float] = []
    fleet = parse_fleet(__import__("tomllib").loads(FLEET))
    player = FleetPlayer(bus, fleet, on_change=lambda: changes.append(time.monotonic()))
    player.start()
    try:
        flaky, late = player.addresses["flaky-cable"], player.addresses["late"]
        assert bus.plugged(flaky) and not bus.plugged(late) and not player.done()
        deadline = time.monotonic() + 3
        seen_unplugged = False
        while not player.done() and time.monotonic() < deadline:
            seen_unplugged |= not bus.plugged(flaky)
            time.sleep(0.01)
        assert player.done() and seen_unplugged
        assert bus.plugged(flaky) and bus.plugged(late)
        assert len(bus.discover()) == 4
        assert len(changes) >= 4  # the start, the pull, the replug, the late plug
    finally:
        player.stop()


def test_editing_the_file_plugs_and_unplugs(bus: SimulatedBus, tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text("[[terminal]]\nname = 'a'\nscenario = 'fresh'\n")
    player = FleetPlayer(bus, load_fleet(path), path=path)
    player.start()
    try:
        a = player.addresses["a"]

        def rewrite(text: str) -> None:
            path.write_text(text)
            stamp = time.time() + 1 + len(text)  # a distinct mtime even on coarse filesystems
            os.utime(path, (stamp, stamp))

        rewrite("[[terminal]]\nname = 'a'\nscenario = 'fresh'\nplugged = false\n")
        _wait(lambda: not bus.plugged(a))
        assert not bus.plugged(a)
        rewrite(
            "[[terminal]]\nname = 'a'\nscenario = 'fresh'\n"
            "[[terminal]]\nname = 'b'\nfamily = 'adb'\nscenario = 'fresh'\n"
        )
        _wait(lambda: "b" in player.addresses and bus.plugged(a))
        assert bus.plugged(a) and bus.plugged(player.addresses["b"])
        rewrite("[[terminal]]\nname = 'b'\nfamily = 'adb'\nscenario = 'fresh'\n")
        _wait(lambda: not bus.plugged(a))
        assert not bus.plugged(a)
        rewrite("this is not toml [")  # a bad edit is ignored, the run goes on
        time.sleep(0.7)
        assert bus.plugged(player.addresses["b"])
    finally:
        player.stop()


def _wait(condition: object, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.02)


def test_fleet_of_addresses() -> None:
    fleet = fleet_of(["zvt+sim://fresh", "adb+sim://fresh"])
    assert [t.plugged for t in fleet] == [True, True] and fleet[1].name == "terminal-2"
