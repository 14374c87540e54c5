"""``posdiag wipe``, ``posdiag verify`` and ``posdiag station-key`` from the command line.

In-process through click's CliRunner (fast, output captured) and, for what only a real process
shows (a pipe on stdin, the console script), as subprocesses. Every test points ``HOME``,
``XDG_DATA_HOME`` and ``XDG_CONFIG_HOME`` into ``tmp_path``: the default ledger, the default
certificate folder and the station key all land there, never in the real user folders.

Exit codes of ``wipe``: 0 erased, 1 erased with exceptions, 4 not erased, 5 aborted, 6 refused,
2 usage error, 3 unreachable.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.agent.certificate import verify_certificate
from posdiag.agent.ledger import Ledger, RunStatus, sqlite_url
from posdiag.drivers.zvt.connection import Link
from posdiag.simulators import registry
from posdiag.simulators.attach import TcpAttachment

TID = "52502000"
PASSWORD = "314159"
POSDIAG = Path(sys.executable).with_name("posdiag")
SUNMI = "adb+sim://activated?model=sunmi-p2"

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


class TtyRunner(CliRunner):
    """A CliRunner whose stdin claims to be a terminal, as an operator's shell is."""

    @contextlib.contextmanager
    def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with super().isolation(*args, **kwargs) as streams:
            sys.stdin.isatty = lambda: True  # type: ignore[method-assign]
            yield streams


@pytest.fixture
def invoke() -> Invoke:
    def run(*args: str, input: str | None = None, tty: bool = False) -> Result:
        runner = TtyRunner() if tty else CliRunner()
        return runner.invoke(cli.main, list(args), input=input)

    return run


def wipe(invoke: Invoke, address: str, *args: str, **kwargs: Any) -> Result:
    return invoke("wipe", address, "--operator", "Jana", *args, **kwargs)


def data_dir(home: Path) -> Path:
    return home / "data" / "posdiag"


def certificates(home: Path) -> list[Path]:
    """Certificates in the default folders (simulated terminals have their own, see below)."""
    found: list[Path] = []
    for name in ("certificates", "simulated-certificates"):
        folder = data_dir(home) / name
        found += sorted(folder.glob("*.json")) if folder.exists() else []
    return found


def simulated_ledger(home: Path) -> str:
    """The ledger simulated terminals' wipes go to when --ledger does not name one."""
    return sqlite_url(data_dir(home) / "simulated-ledger.sqlite3")


# --- wipe ----------------------------------------------------------------------------------------


def test_json_wipe_of_an_activated_zvt_terminal(invoke: Invoke, _isolate: Path) -> None:
    result = wipe(invoke, "zvt+sim://activated", "--yes", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "posdiag.wipe/1"
    assert data["outcome"] == "erased"
    assert data["resumed"] is False
    assert [s["name"] for s in data["steps"]] == ["reset_terminal_id", "log_off", "factory_reset"]
    assert all(s["status"] == "done" and s["verified"] is True for s in data["steps"])
    certificate = Path(data["certificate"])
    assert certificate.exists() and Path(data["printable"]).exists()
    # a simulated terminal: the simulated default folder and ledger, never the depot's
    assert certificate.parent == data_dir(_isolate) / "simulated-certificates"
    assert (data_dir(_isolate) / "simulated-ledger.sqlite3").exists()
    assert not (data_dir(_isolate) / "ledger.sqlite3").exists()
    assert "simulated-ledger.sqlite3" in result.stderr
    assert TID not in result.output


def test_human_output_shows_outcome_steps_and_certificate(invoke: Invoke, _isolate: Path) -> None:
    result = wipe(invoke, "zvt+sim://activated", "--yes")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.lstrip().startswith("ERASED")
    assert "FEIG ELECTRONIC cVEND plug serial 17F59B1F" in text
    header = next(line for line in text.splitlines() if "step" in line and "erases" in line)
    assert header.split() == ["step", "erases", "status", "verified", "detail"]
    for name in ("reset_terminal_id", "log_off", "factory_reset"):
        assert re.search(rf"{name}\s.*\sdone\s+yes\s", text), name
    (certificate,) = certificates(_isolate)
    assert f"certificate: {certificate}" in text
    assert f"printable:   {certificate.with_suffix('.html')}" in text
    assert TID not in text


def test_human_output_of_exceptions_and_reasons(invoke: Invoke) -> None:
    result = wipe(invoke, SUNMI, "--yes")
    assert result.exit_code == 1, result.output
    assert result.stdout.lstrip().startswith("ERASED WITH EXCEPTIONS")
    assert "• exception: device owner com.sunmi.mdm" in result.stdout
    refused = wipe(invoke, "zvt+sim://unsettled", "--yes")
    assert refused.exit_code == 6
    assert refused.stdout.lstrip().startswith("REFUSED")
    assert "• 3 unsettled transactions (€47.57)" in refused.stdout
    assert "certificate:" not in refused.stdout


def test_out_puts_the_certificate_there(invoke: Invoke, tmp_path: Path, _isolate: Path) -> None:
    out = tmp_path / "depot" / "certs"
    result = wipe(invoke, "zvt+sim://activated", "--yes", "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert Path(data["certificate"]).parent == out
    assert sorted(p.suffix for p in out.iterdir()) == [".html", ".json", ".pdf"]
    assert certificates(_isolate) == []


def test_ledger_option_chooses_the_database(invoke: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "station.sqlite3"
    result = wipe(invoke, "zvt+sim://activated", "--yes", "--ledger", sqlite_url(db))
    assert result.exit_code == 0, result.output
    with Ledger(sqlite_url(db)) as ledger:
        (run,) = ledger.runs()
        assert run.status is RunStatus.FINISHED and run.outcome is not None
        assert run.outcome.value == "erased" and run.operator == "Jana"
        assert ledger.verify_chain().ok


EXIT_CASES = {
    "erased": ("zvt+sim://activated", (), 0),
    "erased_with_exceptions": (SUNMI, (), 1),
    "not_erased": ("zvt+sim://activated?lie_about=061B&fail_command=0FA10255", (), 4),
    "aborted": ("zvt+sim://activated?power_loss_at=061B", (), 5),
    "refused": ("zvt+sim://tampered", (), 6),
    "settled then erased": ("zvt+sim://unsettled", ("--settle",), 0),
    "not settled": ("zvt+sim://unsettled", (), 6),
    "serial mismatch": ("zvt+sim://activated", ("--serial", "12345678"), 6),
    "android cannot settle": ("adb+sim://unsettled?model=pax-a920", ("--settle",), 6),
    "android battery flat": ("adb+sim://low-battery", (), 6),
    "android lies": (f"{SUNMI}&lie_about=rm", (), 4),
}


@pytest.mark.parametrize("case", list(EXIT_CASES))
def test_exit_code_per_outcome(invoke: Invoke, case: str) -> None:
    address, extra, code = EXIT_CASES[case]
    result = wipe(invoke, address, "--yes", "--json", *extra)
    assert result.exit_code == code, result.output
    data = json.loads(result.stdout)
    expected = {0: "erased", 1: "erased_with_exceptions", 4: "not_erased", 5: "aborted"}
    assert data["outcome"] == expected.get(code, "refused")
    assert (data["certificate"] is not None) == (code in (0, 1, 4))
    if code in (4, 5, 6):
        assert data["reasons"]


def test_unreachable_terminal_is_exit_3(invoke: Invoke) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once the socket is closed
    result = wipe(invoke, f"zvt+tcp://127.0.0.1:{port}", "--yes")
    assert result.exit_code == 3, result.output
    assert "on the same network" in result.stdout  # what to try; the socket error is for --debug


def test_usage_errors_are_exit_2(invoke: Invoke) -> None:
    no_operator = invoke("wipe", "zvt+sim://activated", "--yes")
    assert no_operator.exit_code == 2 and "--operator" in no_operator.stderr
    bad_address = wipe(invoke, "zvt+sim://nonsense", "--yes")
    assert bad_address.exit_code == 2 and "unknown simulated scenario" in bad_address.stderr
    wrong_password = wipe(invoke, "zvt+sim://activated", "--yes", "--password", "123456")
    assert wrong_password.exit_code == 2 and "password" in wrong_password.stderr
    assert "Traceback" not in wrong_password.output


# --- confirmation --------------------------------------------------------------------------------


def test_without_yes_and_without_a_terminal_it_refuses_to_ask(invoke: Invoke) -> None:
    result = wipe(invoke, "zvt+sim://activated", input="17F59B1F\n")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "posdiag: error: a wipe needs confirmation: run it in a terminal, or pass --yes"
    ]
    assert result.stdout == ""


def test_interactive_confirmation_with_the_right_serial_proceeds(invoke: Invoke) -> None:
    result = wipe(invoke, "zvt+sim://activated", input="17F59B1F\n", tty=True)
    assert result.exit_code == 0, result.output
    assert "Wipe FEIG ELECTRONIC cVEND plug, serial 17F59B1F" in result.stderr
    assert "This erases:" in result.stderr
    assert "Type the terminal's serial number to erase it" in result.stderr
    assert result.stdout.lstrip().startswith("ERASED")


@pytest.mark.parametrize("typed", ["17F59B1E", "", "yes"])
def test_interactive_confirmation_with_a_wrong_serial_aborts(
    invoke: Invoke, typed: str, _isolate: Path
) -> None:
    # click re-prompts on an empty answer; the second line ends the input
    result = wipe(invoke, "zvt+sim://activated", input=f"{typed}\nno\n", tty=True)
    assert result.exit_code == 5, result.output
    assert result.stdout.lstrip().startswith("ABORTED")
    assert "did not confirm" in result.stdout
    assert certificates(_isolate) == []


def test_refusals_come_before_the_question(invoke: Invoke) -> None:
    for address in ("zvt+sim://tampered", "adb+sim://unsettled?model=sunmi-p2"):
        result = wipe(invoke, address, "--settle", input="17F59B1F\nPC02P0CN01234\n", tty=True)
        assert result.exit_code == 6, result.output
        assert "Type the terminal's serial" not in result.stderr
        assert result.stdout.lstrip().startswith("REFUSED")
    assert "cannot be settled over its cable" in result.stdout


def test_yes_is_still_checked_against_the_serial(invoke: Invoke) -> None:
    good = wipe(invoke, "zvt+sim://activated", "--yes", "--serial", "17F59B1F")
    assert good.exit_code == 0, good.output
    bad = wipe(invoke, "zvt+sim://activated", "--yes", "--serial", "17F59B1E")
    assert bad.exit_code == 6
    assert "serial 17F59B1F, not 17F59B1E" in bad.stdout


# --- verify and station-key ----------------------------------------------------------------------


@pytest.fixture
def certificate(invoke: Invoke) -> Path:
    result = wipe(invoke, SUNMI, "--yes", "--json")
    assert result.exit_code == 1, result.output
    return Path(json.loads(result.stdout)["certificate"])


def test_verify_prints_a_valid_certificate(invoke: Invoke, certificate: Path) -> None:
    result = invoke("verify", str(certificate))
    assert result.exit_code == 0, result.output
    first, _, rest = result.stdout.partition("\n")
    assert first.startswith("VALID signature by station ")
    assert "signed with this station's key" in rest
    assert "Erased with exceptions" in rest
    assert "SUNMI P2_PRO, serial PC02P0CN01234" in rest
    assert re.search(r"^Operator +Jana$", rest, re.MULTILINE)
    assert "steps: 5 done, 5 verified" in rest
    full = invoke("verify", str(certificate), "--json")
    assert full.exit_code == 0, full.output
    content = json.loads(full.stdout)["certificate"]
    assert content["outcome"] == "erased_with_exceptions"
    assert content["media"]["serial_number"] == "PC02P0CN01234"
    assert content["person"]["name"] == "Jana"
    assert content["steps"][0]["name"] == "clear:com.sunmi.payment.service"


def test_verify_against_the_station_key(invoke: Invoke, certificate: Path, tmp_path: Path) -> None:
    key = invoke("station-key")
    assert key.exit_code == 0
    pem = tmp_path / "station.pub"
    pem.write_text(key.stdout)
    assert invoke("verify", str(certificate), "--public-key", str(pem)).exit_code == 0
    other = tmp_path / "other.pub"
    from posdiag.agent.certificate import StationKey

    other.write_text(StationKey.generate().public_key_pem())
    wrong = invoke("verify", str(certificate), "--public-key", str(other))
    assert wrong.exit_code == 1
    assert wrong.stdout.startswith("INVALID: signed by station")


def test_one_flipped_character_makes_the_certificate_invalid(
    invoke: Invoke, certificate: Path
) -> None:
    text = certificate.read_text(encoding="utf-8")
    assert '"name":"Jana"' in text  # the file is its RFC 8785 form: no whitespace
    certificate.write_text(text.replace('"name":"Jana"', '"name":"Jane"', 1), encoding="utf-8")
    assert not verify_certificate(certificate.read_text(encoding="utf-8")).ok
    result = invoke("verify", str(certificate))
    assert result.exit_code == 1
    assert result.stdout.startswith("INVALID: ")
    assert "changed after signing" in result.stdout
    assert '"outcome"' not in result.stdout  # unverified content is never printed


def test_verify_usage_errors(invoke: Invoke, tmp_path: Path) -> None:
    assert invoke("verify").exit_code == 2
    missing = invoke("verify", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    result = invoke("verify", str(junk))
    assert result.exit_code == 1 and result.stdout.startswith("INVALID")


def test_verify_ledger_intact_then_tampered(invoke: Invoke, _isolate: Path) -> None:
    assert wipe(invoke, "zvt+sim://activated", "--yes").exit_code == 0
    assert wipe(invoke, "zvt+sim://tampered", "--yes").exit_code == 6
    intact = invoke("verify", "--ledger", simulated_ledger(_isolate))
    assert intact.exit_code == 0, intact.output
    assert "ledger intact" in intact.stdout
    db = data_dir(_isolate) / "simulated-ledger.sqlite3"
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        changed = conn.execute(
            "UPDATE audit_log SET data_json = replace(data_json, 'tampered', 'fine') "
            "WHERE event = 'wipe_run.recorded' AND data_json LIKE '%refused%'"
        ).rowcount
    assert changed == 1
    broken = invoke("verify", "--ledger", simulated_ledger(_isolate))
    assert broken.exit_code == 1
    assert broken.stdout.startswith("LEDGER TAMPERED")
    assert "audit log entry" in broken.stdout
    assert "changed after it was written" in broken.stdout


def test_verify_ledger_by_url(invoke: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "elsewhere.sqlite3"
    assert wipe(invoke, "zvt+sim://activated", "--yes", "--ledger", sqlite_url(db)).exit_code == 0
    result = invoke("verify", "--ledger", sqlite_url(db))
    assert result.exit_code == 0 and "intact" in result.stdout
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)")
    assert invoke("verify", "--ledger", sqlite_url(db)).exit_code == 1


def test_station_key_prints_the_public_key(invoke: Invoke, _isolate: Path) -> None:
    result = invoke("station-key")
    assert result.exit_code == 0
    pem = result.stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert pem.rstrip().endswith("-----END PUBLIC KEY-----")
    assert "PRIVATE" not in result.output
    assert result.stderr.startswith("fingerprint ")
    key_file = _isolate / "config" / "posdiag" / "station_ed25519.pem"
    assert key_file.exists() and key_file.stat().st_mode & 0o077 == 0
    again = invoke("station-key")
    assert again.stdout == pem  # the same key every time


def test_certificate_is_signed_by_the_station_key(
    invoke: Invoke, certificate: Path, _isolate: Path
) -> None:
    pem = invoke("station-key").stdout
    assert verify_certificate(certificate.read_text(encoding="utf-8"), pem).ok


# --- no secret in any output ---------------------------------------------------------------------


@pytest.fixture
def zvt_with_password() -> Iterator[str]:
    """A simulated terminal with a non-default password on loopback TCP, in this process."""
    simulator = registry.create_zvt(
        "activated", {"time_scale": "0", "password": PASSWORD}, Link.TCP
    )
    attachment = TcpAttachment(simulator)
    host, port = attachment.start()
    try:
        yield f"zvt+tcp://{host}:{port}"
    finally:
        attachment.stop()


def test_debug_json_logs_and_outputs_hold_no_secret(
    invoke: Invoke, zvt_with_password: str, _isolate: Path
) -> None:
    logs = ("--log-format", "json", "--log-level", "debug")
    runs = [
        invoke(
            *logs, "wipe", f"{zvt_with_password}?password={PASSWORD}", "--operator", "J", "--yes"
        ),
        invoke(*logs, "wipe", SUNMI, "--operator", "J", "--yes", "--json"),
        invoke(*logs, "verify", str(certificates(_isolate)[0])),
    ]
    assert [r.exit_code for r in runs] == [0, 1, 0], [r.output for r in runs]
    events = [json.loads(line) for r in runs for line in r.stderr.splitlines() if line.strip()]
    assert any(e["event"] == "wipe.done" for e in events)
    files = [p for p in data_dir(_isolate).rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".json", ".html", ".sqlite3"}
    text = "\n".join(r.output for r in runs)
    text += "\n".join(p.read_bytes().decode("utf-8", "replace") for p in files)
    for secret in (TID, PASSWORD, "merchant-0042", "Cafe-Beispiel", "Cafe-Backoffice", "MID-0042"):
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text), secret
    assert "PRIVATE KEY" not in text


# --- the console script --------------------------------------------------------------------------


@pytest.mark.skipif(not POSDIAG.exists(), reason=f"{POSDIAG} is not installed")
def test_console_script_wipe_and_verify(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    piped = subprocess.run(
        [str(POSDIAG), "wipe", "zvt+sim://activated", "--operator", "Jana"],
        input="17F59B1F\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert piped.returncode == 2
    assert "a wipe needs confirmation" in piped.stderr and "Traceback" not in piped.stderr
    done = subprocess.run(
        [str(POSDIAG), "wipe", "zvt+sim://activated", "--operator", "Jana", "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["outcome"] == "erased"
    certificate = Path(data["certificate"])
    assert certificate.is_relative_to(tmp_path)  # isolated: not the real data folder
    checked = subprocess.run(
        [str(POSDIAG), "verify", str(certificate)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert checked.returncode == 0 and checked.stdout.startswith("VALID signature")
