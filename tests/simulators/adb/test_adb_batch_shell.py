"""The simulated shell runs posdiag's batch line as sh would: ``;`` sequences, ``echo``, ``$?``.

The batch line is built by the real :class:`~posdiag.drivers.adb.batch.CommandBatch` and its
output cut back by the real splitter; every section must equal what the same command prints
run alone, with its own exit status, so a check reads the same facts either way.
"""

from __future__ import annotations

import pytest

from posdiag.drivers.adb.batch import CommandBatch
from posdiag.simulators.adb.shell import AndroidShell, PowerLoss, ShellResult
from posdiag.simulators.adb.state import load_android

COMMANDS = [
    "getprop",
    "dumpsys battery",
    "dumpsys telephony.registry",
    "dumpsys wifi",
    "settings get global airplane_mode_on",
    "pm list packages",
    "dumpsys diskstats",
    "dumpsys device_policy",
    "dumpsys account",
    "dumpsys package com.pax.paydroid",
    "dumpsys package com.example.not.installed",
    "ls -1Ap /sdcard/PAX/",
    "ls -1Ap /sdcard/no-such-dir/",
    "cat /sdcard/PAX/batch/unsettled.json",
    "cat /sdcard/none.json",
    "frobnicate",
]


def test_dollar_question_mark_is_the_last_status() -> None:
    sh = AndroidShell(load_android("activated", "pax-a920"))
    assert sh.run("true; echo s=$?").stdout == "s=0\n"
    assert sh.run("false; echo s=$?").stdout == "s=1\n"
    assert sh.run("frobnicate; echo $?").stdout == "127\n"
    assert sh.run("ls /sdcard/nowhere/; echo a.$?; echo b.$?").stdout == "a.1\nb.0\n"
    assert sh.run("false && echo x; echo $?").stdout == "1\n"  # && skipped: a's status
    assert sh.run("echo $?").stdout == "0\n"


def test_a_line_interleaves_stdout_and_stderr_per_command_for_a_legacy_shell() -> None:
    sh = AndroidShell(load_android("activated", "pax-a920"))
    result = sh.run("echo a; ls /sdcard/nowhere/; echo b")
    assert (result.stdout, result.stderr) == (
        "a\nb\n",
        "ls: /sdcard/nowhere/: No such file or directory\n",  # toybox: the operand as given
    )
    assert result.merged == "a\nls: /sdcard/nowhere/: No such file or directory\nb\n"
    single = sh.run("ls /sdcard/nowhere/")
    assert single.merged == single.stdout + single.stderr


@pytest.mark.parametrize("model", ["pax-a920", "newland-n910", "sunmi-p2"])
@pytest.mark.parametrize("scenario", ["activated", "unsettled", "fresh"])
def test_each_section_of_a_batch_is_what_the_command_prints_alone(
    model: str, scenario: str
) -> None:
    alone = AndroidShell(load_android(scenario, model))
    batched = AndroidShell(load_android(scenario, model))
    batch = CommandBatch(COMMANDS)
    (line,) = batch.lines(1 << 20)
    result = batched.run(line.text)
    # shell v2: stdout alone is split; a legacy shell: stdout and stderr interleaved
    v2 = batch.split(line, result.stdout.encode())
    legacy = batch.split(line, result.merged.encode())
    for section, plain in zip(v2, legacy, strict=True):
        own: ShellResult = alone.run(COMMANDS[section.index])
        assert section.body.decode() == own.stdout, COMMANDS[section.index]
        assert section.status == own.exit_code, COMMANDS[section.index]
        assert plain.body.decode() == own.merged
    assert [s.status for s in v2][-1] == 127


def test_power_lost_mid_line_keeps_what_the_earlier_commands_printed() -> None:
    state = load_android("activated", "pax-a920", {"faults": {"power_loss_at": "dumpsys wifi"}})
    batch = CommandBatch(COMMANDS)
    (line,) = batch.lines(1 << 20)
    with pytest.raises(PowerLoss) as lost:
        AndroidShell(state).run(line.text)
    before = lost.value.before.stdout.encode()
    kept = batch.split(line, before, partial=True)
    assert [s.index for s in kept] == [0, 1, 2]  # getprop, battery, telephony
    assert before.endswith(batch.begin(3) + b"\n")  # wifi had begun
    assert state.faults.power_loss_at == ""
