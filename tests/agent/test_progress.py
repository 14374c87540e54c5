"""What a person at a bench sees while a check or a wipe runs, and the wipe's confirmation.

On a terminal screen a live line says which exchange is in progress in plain words; piped or
with ``--json`` nothing extra is printed. A mistyped serial at the wipe's confirmation is asked
again (three tries), never an abort of a terminal already half-talked-to. The console script runs
on a real pseudo-terminal here, as a technician's laptop would run it.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _support.terminal import read_screen
from click.testing import CliRunner

from posdiag.agent import cli
from posdiag.agent.progress import size_text
from posdiag.drivers.i18n import set_language

POSDIAG = str(Path(sys.executable).with_name("posdiag"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "POSDIAG_"))}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        LANG="C.UTF-8",
        LANGUAGE="",
        TERM="xterm",
        COLUMNS="120",
    )
    return env


def on_a_terminal(
    args: list[str], home: Path, answers: tuple[str, ...] = (), timeout: float = 60.0
) -> tuple[int, str]:
    """Run posdiag with stdin, stdout and stderr on one pseudo-terminal; answer its prompts."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [POSDIAG, *args], stdin=slave, stdout=slave, stderr=slave, env=_env(home), close_fds=True
    )
    os.close(slave)
    pending = list(answers)

    def reply(screen: bytes) -> bytes | None:
        if pending and screen.rstrip().endswith(b":"):
            return pending.pop(0).encode() + b"\r"
        return None

    try:
        output = read_screen(master, process, timeout, reply)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    return code, ANSI.sub("", output.decode("utf-8", "replace"))


def test_a_slow_check_shows_the_exchange_in_plain_words_on_a_screen(tmp_path: Path) -> None:
    code, shown = on_a_terminal(["check", "zvt+sim://activated?time_scale=1"], tmp_path)
    assert code == 1, shown
    assert "reading the system configuration printout" in shown
    assert re.search(r"printout · \d+ (B|KB)", shown), shown  # bytes as they arrive
    assert "WIPE REQUIRED" in shown


def test_piped_output_gets_no_progress_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [POSDIAG, "check", "zvt+sim://activated?time_scale=1"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "printout" not in done.stderr and "⠋" not in done.stderr
    as_json = subprocess.run(
        [POSDIAG, "check", "--json", "zvt+sim://activated"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert as_json.stdout.lstrip().startswith("{") and "reading" not in as_json.stderr


def wipe_args(tmp_path: Path) -> list[str]:
    return [
        "wipe",
        "zvt+sim://activated",
        "--operator",
        "Jana",
        "--out",
        str(tmp_path / "certificates"),
        "--ledger",
        str(tmp_path / "ledger.sqlite3"),
    ]


def test_a_mistyped_serial_is_asked_again_then_the_wipe_runs(tmp_path: Path) -> None:
    code, shown = on_a_terminal(wipe_args(tmp_path), tmp_path, ("17F59B1E", "17f59b1f", "17F59B1F"))
    assert "That is not this terminal's serial number (2 tries left)." in shown
    assert "That is not this terminal's serial number (1 try left)." in shown
    assert code == 0, shown
    assert "ERASED" in shown
    assert len(list((tmp_path / "certificates").glob("*.json"))) == 1


def test_three_wrong_serials_erase_nothing(tmp_path: Path) -> None:
    code, shown = on_a_terminal(wipe_args(tmp_path), tmp_path, ("A", "B", "C"))
    assert code == 5, shown  # aborted: not confirmed
    assert "did not confirm" in shown
    assert not (tmp_path / "certificates").exists() or not any(
        (tmp_path / "certificates").glob("*.json")
    )


@pytest.mark.usefixtures("plain_cli")
def test_an_empty_answer_stops_at_once() -> None:
    runner = CliRunner()
    with runner.isolation(input="\n"):
        assert cli.confirm_serial("Wipe X, serial 1", "1") is False
    with runner.isolation(input="2\n1\n"):
        assert cli.confirm_serial("Wipe X, serial 1", "1") is True


def test_sizes_read_as_a_person_reads_them() -> None:
    assert size_text(812) == "812 B"
    assert size_text(1234) == "1.2 KB"
    assert size_text(3_400_000) == "3.4 MB"
    set_language("zh_CN")
    assert size_text(1234) == "1.2 KB"
