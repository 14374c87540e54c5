"""The station and the CLI edge against hostile terminals: no control sequences, no secrets.

Every output channel is read back as bytes and searched: the live table (a real pseudo
terminal), JSON lines, the summary (human and JSON), log lines, the ledger file and the
certificates. Simulated terminals with the ``hostile_text`` fault send ANSI screen clears, OSC
title changes, bidi overrides and NUL in every text the agent shows; addresses carry
``?password=123456``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support.terminal import read_screen
from click.testing import CliRunner, Result
from rich.console import Console

from posdiag.agent import cli
from posdiag.agent.logs import configure_logging, get_logger
from posdiag.agent.render import render_report, render_summary, safe
from posdiag.agent.report import DeviceReport, Verdict, VerdictStatus
from posdiag.agent.station import SlotResult, shown_address
from posdiag.drivers.model import Identity

POSDIAG = Path(sys.executable).with_name("posdiag")
PASSWORD = "123456"
# What a hostile terminal sends; none of it may reach a screen, a log line or a file.
PAYLOADS = ("\x1b[2J", "\x1b[31m", "\x1b]0;", "\u202e", "\x00", "\x9b")
HOSTILE = "\x1b[2J\x1b[31m\x1b]0;pwned\x07\u202ex\x00\u200b\x9b31m"
# Serials chosen so that no simulated value contains the password's digits by chance.
ADB = f"adb+sim://activated?model=pax-a920&hostile_text=1&password={PASSWORD}&serial=PAXHOSTILE1"
ZVT = "zvt+sim://activated?hostile_text=1"
ZVT_SECRET = f"zvt+sim://fresh?password={PASSWORD}"  # rejected: the error path must not leak it


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args))


def leaks_password(text: str) -> bool:
    """The password as a value of its own, not six digits inside a hash, UUID or timestamp.

    Ledgers and certificates are full of random hex and microsecond timestamps in which
    "123456" turns up by chance (a CI run failed so); a leaked password stands between
    non-alphanumeric characters (``password=123456&``, a quoted value, a line), and not after
    a timestamp's decimal point.
    """
    return re.search(rf"(?<![0-9A-Za-z.]){PASSWORD}(?![0-9A-Za-z])", text) is not None


def assert_clean(text: str, where: str) -> None:
    for payload in PAYLOADS:
        assert payload not in text, f"{payload!r} reached {where}"


def files_text(*folders: Path) -> str:
    """Every file under the folders, as text (bytes decoded with replacement)."""
    return "\n".join(
        path.read_bytes().decode("utf-8", "replace")
        for folder in folders
        if folder.exists()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    )


# --- secrets -----------------------------------------------------------------------------------


def test_station_never_shows_or_stores_an_address_password(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    out = tmp_path / "certs"
    common = ["--mode", "wipe", "--yes", "--operator", "Dana", "--settle"]
    records = ["--ledger", f"sqlite:///{ledger}", "--out", str(out)]
    debug = ("--log-format", "json", "--log-level", "debug")
    terminals = (ADB, ZVT, ZVT_SECRET)
    lines = invoke(*debug, "station", *terminals, *common, *records)
    summary = invoke("--log-level", "info", "station", *terminals, *common, *records, "--json")
    human = invoke("--log-level", "info", "station", *terminals, *common, *records)
    for result in (lines, summary, human):
        assert result.exit_code in (0, 1), result.output
    # the run did reach the terminals and record them: the grep below is over real records
    rows = [json.loads(line) for line in lines.stdout.splitlines() if line.startswith("{")]
    assert any(row["stage"] == "done" for row in rows)
    assert json.loads(summary.stdout.splitlines()[-1])["terminals"] == 3
    assert "terminals" in human.stdout
    assert ledger.stat().st_size > 0 and list(out.glob("*.json"))
    channels = {
        "JSON lines": lines.stdout,
        "JSON logs": lines.stderr,
        "summary (JSON)": summary.stdout,
        "summary (human)": human.stdout,
        "log lines": summary.stderr + human.stderr,
        "ledger and certificates": files_text(tmp_path),
    }
    for name, text in channels.items():
        assert not leaks_password(text), f"the password reached the {name}"


def test_shown_address_masks_secrets_even_when_the_address_does_not_parse() -> None:
    assert shown_address(f"zvt+tcp://10.0.0.5:22000?password={PASSWORD}") == (
        "zvt+tcp://10.0.0.5:22000"
    )
    broken = shown_address(f"zvt+tcp://10.0.0.5:0?password={PASSWORD}&x=1")
    assert PASSWORD not in broken and "password=****" in broken
    assert_clean(shown_address("zvt+serial:///dev/tty\x1b[2JUSB0"), "a shown address")


@pytest.mark.skipif(not POSDIAG.exists(), reason=f"{POSDIAG} is not installed")
def test_live_table_on_a_real_terminal_is_clean_and_secret_free(tmp_path: Path) -> None:
    """The rich live view only runs on a tty: run the station on a pseudo terminal."""
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "COLUMNS": "240",
        "LINES": "50",
    }
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [
            str(POSDIAG),
            "--log-level",
            "info",
            "station",
            ADB,
            ZVT,
            ZVT_SECRET,
            "--ledger",
            f"sqlite:///{tmp_path / 'l.db'}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    screen = read_screen(master, process)
    os.close(master)
    stderr = process.communicate(timeout=30)[1].decode("utf-8", "replace")
    assert process.returncode in (0, 1), stderr
    text = screen.decode("utf-8", "replace")
    assert "PAXHOSTILE1" in text  # the table was drawn, with the terminal's serial
    assert PASSWORD not in text and PASSWORD not in stderr
    for payload in ("\x1b[2J", "\x1b]0;", "\u202e", "\x00"):  # rich's own cursor codes may stay
        assert payload not in text, payload
    assert_clean(stderr, "the log lines")


# --- control sequences -------------------------------------------------------------------------


def test_station_json_lines_and_summary_carry_no_control_sequences(tmp_path: Path) -> None:
    records = ["--ledger", f"sqlite:///{tmp_path / 'l.db'}"]
    lines = invoke("--log-level", "debug", "station", ADB, ZVT, *records)
    human = invoke("station", ADB, ZVT, *records)
    assert lines.exit_code in (0, 1) and human.exit_code in (0, 1), lines.output
    rows = [json.loads(line) for line in lines.stdout.splitlines() if line.startswith("{")]
    models = {row["model"] for row in rows if row["model"]}
    assert models  # the hostile terminals were identified
    for row in rows:
        for field in ("model", "serial", "address", "stage"):
            assert_clean(str(row[field]), f"the {field} of a JSON line")
        for reason in row["reasons"]:
            assert_clean(reason, "a reason in a JSON line")
    assert_clean(lines.stderr, "the log lines")
    assert_clean(human.stdout, "the summary")


def test_check_output_of_hostile_terminals_is_clean() -> None:
    for address in (ADB, ZVT):
        human = invoke("--log-level", "debug", "check", address)
        assert human.exit_code in (0, 1), human.output
        assert_clean(human.stdout, f"check {address}")
        assert_clean(human.stderr, f"the logs of check {address}")


def hostile_report() -> DeviceReport:
    """A report as an unsanitised driver would have built it (the render must not trust it)."""
    report = DeviceReport(address="zvt+sim://x", family="zvt", checked_at="2026-01-01T00:00:00Z")
    report.identity = Identity(vendor="Evil" + HOSTILE, model="M\x1b[2J", serial="S" + HOSTILE)
    report.errors.append("firmware: " + HOSTILE)
    report.verdict = Verdict(VerdictStatus.WIPE_REQUIRED, ("bound to" + HOSTILE,))
    return report


def test_render_cleans_what_the_device_said() -> None:
    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    console.print(render_report(hostile_report()))
    console.print(render_summary([hostile_report()]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "Evil" in text and "bound to" in text
    assert_clean(text, "the rendered report")


def test_safe_keeps_lines_and_cleans_each() -> None:
    assert safe("a\x1b[31m\nb\u202e") == "a\nb\ufffd"
    assert safe(None) == "None"
    assert len(safe("W" * 100_000, limit=50)) == 50


def test_slot_results_are_cleaned_before_anyone_sees_them() -> None:
    slot = SlotResult(
        "zvt+sim://x", "zvt", model="M" + HOSTILE, serial="S" + HOSTILE, reasons=(HOSTILE,)
    )
    cleaned = slot.cleaned()
    assert_clean(json.dumps(cleaned.to_json(), ensure_ascii=False), "a slot")
    assert cleaned.model is not None and cleaned.model.startswith("M")


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_log_lines_are_sanitised(fmt: str) -> None:
    stream = io.StringIO()
    configure_logging(fmt, "debug", stream=stream)  # type: ignore[arg-type]
    log = get_logger("posdiag.test")
    log.warning("device" + HOSTILE, model=HOSTILE, nested={"k": [HOSTILE]})
    try:
        raise ValueError("quoted" + HOSTILE)
    except ValueError:
        log.exception("failed")
    logging.getLogger("pyserial.like").warning("std %s", HOSTILE)
    text = stream.getvalue()
    assert "device" in text and "quoted" in text and "std" in text
    assert_clean(text, f"{fmt} logs")
    if fmt == "json":
        assert all(json.loads(line) for line in text.splitlines())
