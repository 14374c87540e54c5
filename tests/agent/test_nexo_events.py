"""nexo EventNotifications: received over real HTTP, recorded per terminal, read by the check.

The receiver runs on loopback; simulated Adyen terminals POST their events to it as real ones do
(encrypted with their shared key), and ``posdiag check`` runs in-process against the same
terminals, so the whole path — HTTP, decryption, the event log on disk, the tamper probe and the
verdict — is the real one. The console commands run as real processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli, nexo_events
from posdiag.agent.nexo_events import MAX_BODY, EventReceiver, parse_listen
from posdiag.drivers.nexo.builders import diagnosis_request, event_notification
from posdiag.drivers.nexo.crypto import NexoKey, encrypt_message
from posdiag.drivers.nexo.event_log import NexoEventLog
from posdiag.drivers.nexo.keys import ENV_IDENTIFIER, ENV_PASSPHRASE, ENV_VERSION, resolve_key
from posdiag.drivers.nexo.messages import dumps, encode_message
from posdiag.simulators.nexo.pytest_fixtures import SimulatedNexo
from posdiag.simulators.nexo.state import KeyConfig

Factory = Callable[..., SimulatedNexo]
POSDIAG = Path(sys.executable).with_name("posdiag")
SIM_KEY = NexoKey(KeyConfig.identifier, KeyConfig.version, KeyConfig.passphrase)
"""The key every simulated terminal holds unless a scenario says otherwise."""
WAIT_S = 10.0


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in (ENV_IDENTIFIER, ENV_VERSION, ENV_PASSPHRASE):
        monkeypatch.delenv(name, raising=False)
    return cli_home


def station_key(monkeypatch: pytest.MonkeyPatch, key: NexoKey = SIM_KEY) -> None:
    """Give the station the terminals' shared key the way a depot does without a settings file."""
    monkeypatch.setenv(ENV_IDENTIFIER, key.identifier)
    monkeypatch.setenv(ENV_VERSION, str(key.version))
    monkeypatch.setenv(ENV_PASSPHRASE, key.passphrase)


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventReceiver]:
    """A receiver on a free loopback port with the station's key (resolved as a check does)."""
    station_key(monkeypatch)
    key, source = resolve_key(None, None)
    assert source == "environment"
    with EventReceiver("127.0.0.1", 0, key=key) as running:
        yield running


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


def check(address: str) -> dict[str, object]:
    result = invoke("check", "--json", address)
    assert result.exit_code in (0, 1), result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


def alarm_body(poiid: str, key: NexoKey | None, *, message: str = "Tamper detected") -> bytes:
    notification = event_notification(
        "E1",
        None,
        poiid,
        event="SecurityAlarm",
        timestamp="2027-01-15T09:02:35.697Z",
        details={"message": message},
        maintenance_required=True,
    )
    wire = encode_message(notification)
    return dumps(encrypt_message(wire, key) if key is not None else wire)


def post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        url,
        content=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=WAIT_S,
        trust_env=False,
    )


# --- the check reads what the terminal sent ----------------------------------------------------


def test_a_tampered_terminal_s_security_alarm_is_in_its_check(
    receiver: EventReceiver, nexo_terminal: Factory
) -> None:
    sim = nexo_terminal("tampered", event_url=receiver.url)
    events = sim.simulator.events
    assert events.wait(3, WAIT_S)
    assert [(e.event, e.status) for e in events.sent] == [
        ("Initialised", 200), ("NetworkConnected", 200), ("SecurityAlarm", 200),
    ]
    assert receiver.counts["recorded"] == 3
    report = check(sim.address)
    tamper = report["tamper"]
    assert isinstance(tamper, dict) and tamper["tampered"] is True
    details = tamper["details"]
    assert "the terminal reports a security fault (SecurityOKFlag false)" in details
    alarm = next(d for d in details if "SecurityAlarm" in d)
    assert re.fullmatch(
        r"the terminal sent a SecurityAlarm, received \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC "
        r"\(terminal time \d{4}-\d\d-\d\dT[0-9:.]+Z\): "
        r"message=Tamper detected: the terminal is locked",
        alarm,
    ), alarm
    verdict = report["verdict"]
    assert isinstance(verdict, dict) and verdict["status"] == "quarantine"


def test_an_alarm_makes_a_terminal_tampered_although_its_flag_is_ok(
    receiver: EventReceiver, nexo_terminal: Factory
) -> None:
    sim = nexo_terminal("activated")
    before = check(sim.address)
    assert before["tamper"] == {"tampered": False, "details": []}
    response = post(receiver.url, alarm_body(sim.poiid, sim.key, message="Case opened"))
    assert (response.status_code, response.content) == (200, b"")  # terminals expect no body
    after = check(sim.address)
    tamper = after["tamper"]
    assert isinstance(tamper, dict) and tamper["tampered"] is True
    assert len(tamper["details"]) == 1  # the flag is still true: the alarm alone says so
    assert "SecurityAlarm" in tamper["details"][0]
    assert tamper["details"][0].endswith("message=Case opened")
    verdict = after["verdict"]
    assert isinstance(verdict, dict) and verdict["status"] == "quarantine"
    # a wipe is refused for a tampered unit
    result = invoke("wipe", sim.address, "--yes", "--operator", "Dana")
    assert result.exit_code == 6, result.output  # refused
    assert "never wiped" in result.output and "message=Case opened" in result.output
    # once the unit was examined, its events are removed on purpose, and it checks clean again
    result = invoke("nexo-events", "--forget", sim.poiid)
    assert result.exit_code == 0, result.output
    assert "Removed 1 recorded event of" in result.stderr
    assert check(sim.address)["tamper"] == {"tampered": False, "details": []}


def test_other_terminals_alarms_do_not_count(
    receiver: EventReceiver, nexo_terminal: Factory
) -> None:
    sim = nexo_terminal("activated")
    assert post(receiver.url, alarm_body("V400m-999999999", SIM_KEY)).status_code == 200
    assert check(sim.address)["tamper"] == {"tampered": False, "details": []}


# --- what is dropped ---------------------------------------------------------------------------


def test_events_the_station_key_does_not_authenticate_are_dropped(
    receiver: EventReceiver, nexo_terminal: Factory
) -> None:
    sim = nexo_terminal("tampered", event_url=receiver.url, wrong_key=True)
    assert sim.simulator.events.wait(3, WAIT_S)
    assert {e.status for e in sim.simulator.events.sent} == {403}
    other_pass = NexoKey(SIM_KEY.identifier, SIM_KEY.version, "Another-Pass-99!")
    other_id = NexoKey("someone-else", 1, SIM_KEY.passphrase)
    assert post(receiver.url, alarm_body(sim.poiid, other_pass)).status_code == 403
    assert post(receiver.url, alarm_body(sim.poiid, other_id)).status_code == 403
    assert post(receiver.url, alarm_body(sim.poiid, None)).status_code == 403  # clear: forgeable
    assert receiver.counts["dropped"] == 6 and receiver.counts["recorded"] == 0
    assert NexoEventLog().recent(sim.poiid) == []


def test_without_a_station_key_clear_events_count_and_say_so(nexo_terminal: Factory) -> None:
    with EventReceiver("127.0.0.1", 0, key=None) as receiver:
        sim = nexo_terminal("activated")
        assert post(receiver.url, alarm_body(sim.poiid, sim.key)).status_code == 403  # no key
        assert post(receiver.url, alarm_body(sim.poiid, None)).status_code == 200
    tamper = check(sim.address)["tamper"]
    assert isinstance(tamper, dict) and tamper["tampered"] is True
    assert "unencrypted: the station had no key to authenticate it" in tamper["details"][0]


def test_bodies_that_are_not_events_are_refused_and_nothing_is_recorded(
    receiver: EventReceiver,
) -> None:
    poiid = "V400m-324688179"
    url = receiver.url
    assert post(url, b"not json").status_code == 400
    assert post(url, b'{"hello": "world"}').status_code == 400
    assert post(url, b"[" * 10_000).status_code == 400
    diagnosis = encode_message(diagnosis_request("S1", "POS1", poiid))
    assert post(url, dumps(encrypt_message(diagnosis, SIM_KEY))).status_code == 400
    no_poiid = encode_message(
        event_notification(None, None, "x", event="SecurityAlarm", timestamp="t")
    )
    no_poiid["SaleToPOIRequest"]["MessageHeader"].pop("POIID")
    assert post(url, dumps(encrypt_message(no_poiid, SIM_KEY))).status_code == 400
    path_poiid = encode_message(
        event_notification(None, None, "../../etc", event="SecurityAlarm", timestamp="t")
    )
    assert post(url, dumps(encrypt_message(path_poiid, SIM_KEY))).status_code == 400
    no_timestamp = encode_message(
        event_notification(None, None, poiid, event="SecurityAlarm", timestamp="t")
    )
    no_timestamp["SaleToPOIRequest"]["EventNotification"].pop("TimeStamp")
    assert post(url, dumps(encrypt_message(no_timestamp, SIM_KEY))).status_code == 400
    huge = b'{"SaleToPOIRequest": {"x": "' + b"a" * MAX_BODY + b'"}}'
    assert post(url, huge).status_code == 413
    assert post(url, huge, **{"Transfer-Encoding": "chunked"}).status_code in (400, 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(MAX_BODY // 4096 + 2):
            yield b"a" * 4096

    chunked = httpx.post(url, content=chunks(), timeout=WAIT_S, trust_env=False)
    assert chunked.status_code == 413
    assert httpx.get(url, timeout=WAIT_S, trust_env=False).status_code == 405
    assert post(url.replace("/events", "/other"), alarm_body(poiid, SIM_KEY)).status_code == 404
    assert receiver.counts["recorded"] == 0
    assert NexoEventLog().recent(poiid) == []


def test_a_chunked_event_as_the_node_library_sends_it_is_recorded(
    receiver: EventReceiver,
) -> None:
    body = alarm_body("P400Plus-275008565", SIM_KEY)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    response = httpx.post(
        receiver.url.removesuffix("/events") + "/events/", content=chunks(), trust_env=False
    )
    assert response.status_code == 200
    assert [e.kind for e in NexoEventLog().recent("P400Plus-275008565")] == ["SecurityAlarm"]


def raw_request(receiver: EventReceiver, data: bytes) -> bytes:
    with socket.create_connection(receiver.bound, timeout=WAIT_S) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    return answer


def test_a_body_without_a_length_is_refused(receiver: EventReceiver) -> None:
    answer = raw_request(receiver, b"POST /events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411")
    both = b"POST /events HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}"
    assert raw_request(receiver, both).startswith(b"HTTP/1.1 400")


def test_a_peer_that_stalls_is_cut_off(
    receiver: EventReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nexo_events, "CONNECTION_DEADLINE_S", 0.5)
    started = time.monotonic()
    with socket.create_connection(receiver.bound, timeout=WAIT_S) as conn:
        conn.sendall(b"POST /events HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        while conn.recv(4096):  # the answer (if any), then the close
            pass
    assert time.monotonic() - started < 5.0
    assert receiver.counts["recorded"] == 0


def test_the_listen_address_is_checked() -> None:
    assert parse_listen("0.0.0.0:8090") == ("0.0.0.0", 8090)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen("station.local:80") == ("station.local", 80)
    for bad in ("8090", ":8090", "host:", "host:99999", "::1:80", "a b:80", "host:80x"):
        with pytest.raises(ValueError, match="is not HOST:PORT"):
            parse_listen(bad)


def test_a_wildcard_address_is_announced_as_a_reachable_one() -> None:
    with EventReceiver("0.0.0.0", 0, key=None) as receiver:
        host = urlhost(receiver.url)
        assert host != "0.0.0.0" and receiver.url.endswith(f":{receiver.bound[1]}/events")


def urlhost(url: str) -> str:
    return httpx.URL(url).host


# --- settings and the station ------------------------------------------------------------------


def test_event_listen_in_the_settings(cli_home: Path) -> None:
    folder = cli_home / "config" / "posdiag"
    folder.mkdir(parents=True)
    settings = folder / "station.toml"
    settings.write_text('[nexo]\nevent_listen = "0.0.0.0:8090"\n', encoding="utf-8")
    result = invoke("station", "--show-config", "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["settings"]["nexo.event_listen"]
    assert (row["value"], row["source"], row["option"]) == (
        "0.0.0.0:8090", "settings_file", "--nexo-events",
    )
    result = invoke("station", "--show-config", "--json", "--nexo-events", "127.0.0.1:9")
    row = json.loads(result.stdout)["settings"]["nexo.event_listen"]
    assert (row["value"], row["source"]) == ("127.0.0.1:9", "command_line")
    settings.write_text('[nexo]\nevent_listen = "8090"\n', encoding="utf-8")
    result = invoke("station", "--show-config")
    assert result.exit_code == 2
    assert "nexo.event_listen must be HOST:PORT" in result.output


def test_a_station_whose_event_address_is_taken_says_so(cli_home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("station", "--nexo-events", f"127.0.0.1:{port}", "zvt+sim://fresh")
    assert result.exit_code == 2
    assert f"cannot receive nexo events on 127.0.0.1:{port}" in result.output


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("POSDIAG_") and k not in ("FORCE_COLOR",)
    }
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        NO_COLOR="1",
        **extra,
    )
    return env


def wait_for(pattern: str, path: Path, process: subprocess.Popen[str]) -> re.Match[str]:
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found
        assert process.poll() is None, path.read_text(encoding="utf-8", errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not seen in {path.read_text(encoding='utf-8')}")


@pytest.mark.skipif(not POSDIAG.exists(), reason=f"{POSDIAG} is not installed")
def test_the_station_receives_events_while_it_runs(cli_home: Path, tmp_path: Path) -> None:
    env = child_env(
        cli_home,
        POSDIAG_NEXO_KEY_IDENTIFIER=SIM_KEY.identifier,
        POSDIAG_NEXO_KEY_VERSION=str(SIM_KEY.version),
        POSDIAG_NEXO_PASSPHRASE=SIM_KEY.passphrase,
    )
    stderr = tmp_path / "station.err"
    with stderr.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [str(POSDIAG), "station", "--nexo-events", "127.0.0.1:0", "--simulate", "1",
             "--keep-running", "--json"],
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
            text=True,
        )  # fmt: skip
    try:
        url = wait_for(r"Receiving nexo terminal events at (http://\S+)", stderr, process)[1]
        assert post(url, alarm_body("V400m-324688179", SIM_KEY)).status_code == 200
        recorded = NexoEventLog(cli_home / "data" / "posdiag" / "nexo-events")
        assert [e.kind for e in recorded.recent("V400m-324688179")] == ["SecurityAlarm"]
        process.send_signal(signal.SIGINT)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with pytest.raises(httpx.ConnectError):  # stopped with the station
        post(url, alarm_body("V400m-324688179", SIM_KEY))


@pytest.mark.skipif(not POSDIAG.exists(), reason=f"{POSDIAG} is not installed")
def test_nexo_events_prints_its_url_first_then_each_event(cli_home: Path, tmp_path: Path) -> None:
    stderr = tmp_path / "events.err"
    with stderr.open("w", encoding="utf-8") as errors:
        process = subprocess.Popen(
            [str(POSDIAG), "nexo-events", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=child_env(cli_home),
            text=True,
        )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/events", url), url
        response = post(url, alarm_body("S1F2-0001234567890", None))  # no key: clear accepted
        assert response.status_code == 200
        line = process.stdout.readline()
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  S1F2-0001234567890  SecurityAlarm  "
            r"message=Tamper detected\n",
            line,
        ), line
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = stderr.read_text(encoding="utf-8")
    assert "Set this URL as the terminals' event URL" in text
    assert "No nexo key is configured" in text
    recorded = NexoEventLog(cli_home / "data" / "posdiag" / "nexo-events")
    assert [e.encrypted for e in recorded.recent("S1F2-0001234567890")] == [False]


def test_nexo_events_needs_an_address_or_a_poiid(cli_home: Path) -> None:
    assert invoke("nexo-events").exit_code == 2
    result = invoke("nexo-events", "--listen", "nowhere")
    assert result.exit_code == 2 and "is not HOST:PORT" in result.output
    result = invoke("nexo-events", "--forget", "../etc")
    assert result.exit_code == 2 and "is not a POIID" in result.output
