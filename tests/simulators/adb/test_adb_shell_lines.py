"""The simulated shell runs the command lines clients send as mksh/toybox on a device do:
sequences, pipes, redirections, expansion, quoting, ``sh -c``, and toybox's output formats."""

from __future__ import annotations

import pytest

from posdiag.simulators.adb.shell import AndroidShell, ShellResult
from posdiag.simulators.adb.shell_parse import ShellSyntaxError, parse
from posdiag.simulators.adb.shell_props import standard_properties
from posdiag.simulators.adb.state import AndroidState, load_android

NOT_FOUND = "/system/bin/sh: {}: inaccessible or not found\n"


@pytest.fixture
def sh() -> AndroidShell:
    return AndroidShell(load_android("activated", "pax-a920"))


def run(sh: AndroidShell, line: str) -> ShellResult:
    return sh.run(line)


# --- sequences, status ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "stdout", "code"),
    [
        ("false || echo b", "b\n", 0),
        ("true || echo b", "", 0),
        ("false && echo a || echo c", "c\n", 0),
        ("true && false; echo $?", "1\n", 0),
        ("! true; echo $?", "1\n", 0),
        ("frob; echo $?", "127\n", 0),
        ("exit 300", "", 44),
        ("sh -c 'exit 3'; echo $?", "3\n", 0),
        ("sh -c 'echo $0 $1' zero one", "zero one\n", 0),
        ("(exit 4); echo $?", "4\n", 0),
        ("(cd /sdcard); pwd", "/\n", 0),
        ("cd /sdcard && pwd", "/sdcard\n", 0),
        ("{ echo a; echo b; } | wc -l", "2\n", 0),
        ("echo a\necho b", "a\nb\n", 0),
        ("echo a # a comment", "a\n", 0),
    ],
)
def test_sequences_and_status(sh: AndroidShell, line: str, stdout: str, code: int) -> None:
    result = run(sh, line)
    assert (result.stdout, result.exit_code) == (stdout, code), result


def test_unknown_commands_as_mksh_reports_them(sh: AndroidShell) -> None:
    assert run(sh, "frob -x") == ShellResult(127, "", NOT_FOUND.format("frob"))
    assert run(sh, "/no/such/tool") == ShellResult(127, "", NOT_FOUND.format("/no/such/tool"))
    assert run(sh, "/system/bin/getprop ro.fac.mach").stdout == "A920\n"
    nested = run(sh, "sh -c frob")
    assert nested == ShellResult(127, "", "sh: frob: inaccessible or not found\n")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("echo a |", "syntax error: unexpected EOF"),
        ("| echo", "syntax error: '|' unexpected"),
        ("echo a && && echo b", "syntax error: '&&' unexpected"),
        ('echo "open', "no closing quote"),
        ("echo >", "syntax error: 'newline' unexpected"),
        ("if true; then echo; fi", "syntax error: 'if' unexpected"),
    ],
)
def test_syntax_errors(sh: AndroidShell, line: str, message: str) -> None:
    assert run(sh, line) == ShellResult(1, "", f"/system/bin/sh: {message}\n")


def test_the_parser_keeps_quoting_per_piece() -> None:
    (item,) = parse("echo 'a|b' \"$X\"c\\;d 2>&1").items
    (command,) = item.first.commands
    assert len(command.words) == 3  # echo, 'a|b', "$X"c\;d
    assert [(r.fd, r.op) for r in command.redirects] == [(2, ">&")]
    with pytest.raises(ShellSyntaxError):
        parse("echo $(" * 20 + ")" * 20)


# --- pipes and filters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "stdout"),
    [
        ("getprop | grep -c ro.fac", "3\n"),
        ("getprop | grep -E 'ro\\.fac\\.(sn|mach)' | wc -l", "2\n"),
        ("printf 'a\\nB\\nc\\n' | grep -vi b", "a\nc\n"),
        ("printf 'a\\nb\\nc\\n' | grep -n -e b -e c", "2:b\n3:c\n"),
        ("printf '1\\n2\\n3\\n4\\n' | head -n 2", "1\n2\n"),
        ("printf '1\\n2\\n3\\n4\\n' | head -3 | tail -1", "3\n"),
        ("printf '1\\n2\\n3\\n4\\n' | tail -n +3", "3\n4\n"),
        ("echo 'a b  c' | wc -w", "3\n"),
        ("printf 'abc' | wc -c", "3\n"),
        ("echo a:b:c | cut -d: -f2,3", "b:c\n"),
        ("echo hello | tr a-z A-Z", "HELLO\n"),
        ("echo hello | tr -d l", "heo\n"),
        ("printf 'b\\na\\nb\\n' | sort | uniq -c", "      1 a\n      2 b\n"),
        ("printf '10\\n9\\n' | sort -n", "9\n10\n"),
        ("echo hello | sed 's/l/L/g'", "heLLo\n"),
        ("echo a | grep -q a && echo found", "found\n"),
        ("echo a | grep b; echo $?", "1\n"),
    ],
)
def test_pipelines_to_filters(sh: AndroidShell, line: str, stdout: str) -> None:
    assert run(sh, line).stdout == stdout


def test_a_pipeline_has_the_last_stage_status(sh: AndroidShell) -> None:
    assert run(sh, "false | true").exit_code == 0
    assert run(sh, "true | false").exit_code == 1
    assert run(sh, "echo x | exit 5; echo $?").stdout == "5\n"  # exit ends the stage only


# --- redirections ---------------------------------------------------------------------------------


def test_redirections_route_stdout_and_stderr(sh: AndroidShell) -> None:
    assert run(sh, "ls /nope 2>&1") == ShellResult(1, "ls: /nope: No such file or directory\n", "")
    assert run(sh, "ls /nope 2>/dev/null; echo $?") == ShellResult(0, "1\n")
    assert run(sh, "echo a >/dev/null") == ShellResult(0)
    assert run(sh, "ls /nope >/dev/null 2>&1") == ShellResult(1)
    # order matters: stderr to the old stdout (the pipe), then stdout to /dev/null
    assert run(sh, "ls /nope 2>&1 >/dev/null | wc -l").stdout == "1\n"


def test_redirections_write_the_file_tree_where_permitted(sh: AndroidShell) -> None:
    assert run(sh, "echo one > /data/local/tmp/f; echo two >> /data/local/tmp/f").exit_code == 0
    assert run(sh, "cat < /data/local/tmp/f").stdout == "one\ntwo\n"
    assert sh.state.tree.read("/data/local/tmp/f") == b"one\ntwo\n"
    assert run(sh, "echo x > /data/local/tmp/f; cat /data/local/tmp/f").stdout == "x\n"
    refused = run(sh, "echo x > /system/f; echo $?")
    assert refused.stderr == "/system/bin/sh: can't create /system/f: Read-only file system\n"
    assert refused.stdout == "1\n"
    assert "Permission denied" in run(sh, "echo x > /data/f").stderr
    missing = run(sh, "cat < /nope")
    assert missing == ShellResult(
        1, "", "/system/bin/sh: can't open /nope: No such file or directory\n"
    )


# --- expansion and quoting ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "stdout"),
    [
        ("echo $HOME", "/\n"),
        ("echo ${EXTERNAL_STORAGE}/x", "/sdcard/x\n"),
        ("echo '$HOME' \"$HOME\"", "$HOME /\n"),
        ("echo \\$HOME", "$HOME\n"),
        ("X=1; echo $X", "1\n"),
        ("X='a  b'; echo $X; echo \"$X\"", "a b\na  b\n"),
        ("echo ${NOPE:-default} ${HOME:+set}", "default set\n"),
        ("P=/a/b/c.txt; echo ${P##*/} ${P%.txt} ${#P}", "c.txt /a/b/c 10\n"),
        ("echo $(echo nested $(echo deep))", "nested deep\n"),
        ("echo `getprop ro.fac.mach`", "A920\n"),
        ("echo \"a;b\" 'c&&d' e\\|f", "a;b c&&d e|f\n"),
        ("echo -n a; echo b", "ab\n"),
        ("echo 'a\\tb'", "a\tb\n"),
        ("echo -E 'a\\tb'", "a\\tb\n"),
        ("printf '%s-%03d\\n' x 7", "x-007\n"),
    ],
)
def test_expansion_and_quoting(sh: AndroidShell, line: str, stdout: str) -> None:
    assert run(sh, line).stdout == stdout


def test_environment_is_a_devices(sh: AndroidShell) -> None:
    env = dict(line.split("=", 1) for line in run(sh, "env").stdout.splitlines())
    assert env["HOME"] == "/" and env["ANDROID_ROOT"] == "/system"
    assert "/system/bin" in env["PATH"].split(":")


def test_test_and_brackets(sh: AndroidShell) -> None:
    assert run(sh, "[ -d /sdcard ] && [ ! -f /sdcard ] && echo ok").stdout == "ok\n"
    assert run(sh, "[ -e /nope ]; echo $?").stdout == "1\n"
    assert run(sh, "test 2 -gt 1 -a abc = abc; echo $?").stdout == "0\n"
    assert run(sh, "[ 1 -eq 1").exit_code == 2


# --- identity and system views --------------------------------------------------------------------


def test_id_whoami_uname(sh: AndroidShell) -> None:
    ident = run(sh, "id").stdout
    assert ident.startswith("uid=2000(shell) gid=2000(shell) groups=2000(shell),1004(input),")
    assert ident.endswith(" context=u:r:shell:s0\n")
    assert run(sh, "id -u; id -un; whoami").stdout == "2000\nshell\nshell\n"
    assert run(sh, "uname").stdout == "Linux\n"
    assert run(sh, "uname -m").stdout == "aarch64\n"
    assert run(sh, "uname -a").stdout.startswith("Linux localhost ")


def test_getprop_answers_the_standard_properties_by_name(sh: AndroidShell) -> None:
    state = sh.state
    for name, value in standard_properties(state).items():
        if name not in state.properties():
            assert run(sh, f"getprop {name}").stdout == f"{value}\n", name
    assert run(sh, "getprop ro.secure; getprop ro.debuggable").stdout == "1\n0\n"
    assert run(sh, "getprop ro.product.cpu.abilist").stdout == "arm64-v8a,armeabi-v7a,armeabi\n"
    assert run(sh, "getprop sys.boot_completed").stdout == "1\n"


def test_ps_has_toyboxs_columns(sh: AndroidShell) -> None:
    lines = run(sh, "ps -A").stdout.splitlines()
    assert lines[0].split() == ["USER", "PID", "PPID", "VSZ", "RSS", "WCHAN", "ADDR", "S", "NAME"]
    assert lines[0].startswith("USER           PID  PPID     VSZ    RSS WCHAN            ADDR S")
    assert lines[1] == "root             1     0 10782796  9508 SyS_epoll_wait      0 S init"
    names = {line.split()[-1] for line in lines[1:]}
    assert {"init", "system_server", "adbd", sh.state.payment_package} <= names
    assert run(sh, "ps -A | grep -c system_server").stdout == "1\n"


def test_ip_and_ifconfig_follow_the_network_state() -> None:
    online = AndroidShell(load_android("activated", "sunmi-p2"))
    addr = online.run("ip addr show wlan0").stdout
    assert "state UP" in addr and "inet 192.168.178." in addr
    assert "inet addr:192.168.178." in online.run("ifconfig wlan0").stdout
    offline = AndroidShell(load_android("no-network"))
    assert "inet 192.168" not in offline.run("ip addr").stdout
    assert "rmnet_data0" not in offline.run("ip addr").stdout


def test_dumpsys_power(sh: AndroidShell) -> None:
    assert run(sh, "dumpsys power | grep -E 'mWakefulness=|Display Power'").stdout == (
        "  mWakefulness=Awake\nDisplay Power: state=ON\n"
    )


# --- toybox ls and file tools ---------------------------------------------------------------------


@pytest.fixture
def files_shell() -> AndroidShell:
    files = {"/sdcard/M/a.txt": "12345", "/sdcard/M/sub/b.txt": "", "/sdcard/M/.h": "x"}
    state: AndroidState = load_android("fresh", overrides={"files": files})
    for path in (
        "/sdcard/M/a.txt",
        "/sdcard/M/sub/b.txt",
        "/sdcard/M/.h",
        "/sdcard/M/sub",
        "/sdcard/M",
    ):
        node = state.tree.lookup(path)
        assert node is not None
        node.mtime = 1704067200  # 2024-01-01 00:00 UTC
    return AndroidShell(state)


def test_ls_long_in_toybox_format(files_shell: AndroidShell) -> None:
    assert files_shell.run("ls -l /sdcard/M").stdout == (
        "total 8\n"
        "-rw-rw---- 1 root sdcard_rw    5 2024-01-01 00:00 a.txt\n"
        "drwxrwx--x 2 root sdcard_rw 4096 2024-01-01 00:00 sub\n"
    )
    la = files_shell.run("ls -la /sdcard/M").stdout.splitlines()
    assert [line.split()[-1] for line in la[1:]] == [".", "..", ".h", "a.txt", "sub"]


def test_ls_recursive_headers(files_shell: AndroidShell) -> None:
    assert files_shell.run("ls -R /sdcard/M").stdout == (
        "/sdcard/M:\na.txt\nsub\n\n/sdcard/M/sub:\nb.txt\n"
    )
    both = files_shell.run("ls /sdcard/M/a.txt /sdcard/M/sub").stdout
    assert both == "/sdcard/M/a.txt\n\n/sdcard/M/sub:\nb.txt\n"


def test_ls_options_and_errors(files_shell: AndroidShell) -> None:
    assert files_shell.run("ls -1ap /sdcard/M").stdout == "./\n../\n.h\na.txt\nsub/\n"
    assert files_shell.run("ls -d /sdcard/M").stdout == "/sdcard/M\n"
    assert files_shell.run("ls -l /sdcard").stdout.endswith(" /sdcard -> /storage/self/primary\n")
    assert files_shell.run("ls /nope") == ShellResult(
        1, "", "ls: /nope: No such file or directory\n"
    )
    assert files_shell.run("ls /data") == ShellResult(1, "", "ls: /data: Permission denied\n")
    assert files_shell.run("ls -z").stderr == "ls: Unknown option 'z' (see \"ls --help\")\n"


def test_mkdir_touch_rm_stat(files_shell: AndroidShell) -> None:
    sh = files_shell
    assert sh.run("mkdir -p /data/local/tmp/a/b && touch /data/local/tmp/a/b/f").exit_code == 0
    assert sh.run("ls -R /data/local/tmp/a").stdout == (
        "/data/local/tmp/a:\nb\n\n/data/local/tmp/a/b:\nf\n"
    )
    assert sh.run("stat -c '%n %s %U' /sdcard/M/a.txt").stdout == "/sdcard/M/a.txt 5 root\n"
    assert sh.run("mkdir /data/local/tmp/a").stderr == "mkdir: /data/local/tmp/a: File exists\n"
    assert sh.run("mkdir /system/x").stderr == "mkdir: /system/x: Read-only file system\n"
    assert sh.run("rm -r /data/local/tmp/a && ls /data/local/tmp/a").exit_code == 1
    assert sh.run("cd /sdcard/M && cat a.txt").stdout == "12345"


# --- bounds ---------------------------------------------------------------------------------------


def test_nesting_and_pipelines_are_bounded(sh: AndroidShell) -> None:
    deep = 'sh -c "sh -c \'sh -c \\"echo ok\\"\'"'
    assert run(sh, deep).stdout == "ok\n"
    line = "echo x" + " | cat" * 40
    assert "pipeline too long" in run(sh, line).stderr
    nested = "eval " * 20 + "echo hi"
    assert run(sh, nested).exit_code in (0, 1)


def test_faults_still_apply_per_simple_command_after_expansion() -> None:
    state = load_android("activated", overrides={"faults": {"fail_command": "pm clear"}})
    sh = AndroidShell(state)
    result = sh.run(f"P={state.payment_package}; pm clear $P 2>&1 | grep -c SecurityException")
    assert result.stdout == "1\n"
