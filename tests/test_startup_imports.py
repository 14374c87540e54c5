"""Start-up stays lazy: each command imports what it uses, and ``--version`` almost nothing.

``posdiag --version`` and ``posdiag check`` of a simulated terminal are measured by the benchmark
(figure 5); what keeps them fast is that the launcher answers ``--version`` before the command
line loads, the command line imports only what every command needs, each command imports the
rest itself, and a check loads the driver and simulator of its own family only. The probes run
in a fresh interpreter, because the test session has long imported everything.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from posdiag.agent import __version__

REPO = Path(__file__).resolve().parents[1]

# Modules only some commands need (check/wipe: drivers; wipe/verify/report: database and crypto;
# station: rich.live; list: pyusb and structlog once logging is configured).
LAZY = (
    "sqlalchemy",
    "cryptography",
    "rich.live",
    "rich.table",
    "usb",
    "libusb_package",
    "structlog",
    "asyncio",
    "tomllib",
    "posdiag.agent.connect",
    "posdiag.agent.inspect",
    "posdiag.agent.ledger",
    "posdiag.agent.certificate",
    "posdiag.agent.station",
    "posdiag.drivers.adb",
    "posdiag.drivers.zvt",
    "posdiag.drivers.transport",
    "posdiag.drivers.catalogue",
    "posdiag.simulators",
)

# What ``posdiag --version`` must not load: the command line itself and the version lookup.
VERSION_LAZY = (*LAZY, "click", "rich", "rich.console", "importlib.metadata", "posdiag.agent.cli")

# What no check of a simulated terminal needs, whatever its family: the other commands, the
# database, USB, HTTP (a simulated unit without a TMS), ADB keys (a unit asking for no AUTH),
# and the catalogue compiler (English reads no catalogue at all).
CHECK_LAZY = (
    "sqlalchemy",
    "cryptography",
    "httpx",
    "usb",
    "libusb_package",
    "rich.live",
    "babel.messages",
    "importlib.metadata",
    "posdiag.agent.ledger",
    "posdiag.agent.certificate",
    "posdiag.agent.station",
    "posdiag.agent.cli_station",
    "posdiag.agent.cli_simulate",
    "posdiag.agent.wipe",
)
ZVT_CHECK_LAZY = (*CHECK_LAZY, "posdiag.drivers.adb", "posdiag.simulators.adb.engine")
ADB_CHECK_LAZY = (*CHECK_LAZY, "posdiag.drivers.zvt", "posdiag.simulators.zvt.engine")

PROBE = (
    "import json, sys\n"
    "import posdiag.agent.cli\n"
    "print(json.dumps(sorted(set(sys.modules) & set(json.loads(sys.argv[1])))))\n"
)

# Runs the console script's entry point in-process with the given arguments; its output is
# kept apart so the last line is only the JSON of what got loaded.
COMMAND_PROBE = (
    "import contextlib, io, json, sys\n"
    "watched = set(json.loads(sys.argv[1]))\n"
    "sys.argv = ['posdiag', *sys.argv[2:]]\n"
    "from posdiag.agent.launch import main\n"
    "code = 0\n"
    "with contextlib.redirect_stdout(io.StringIO()) as printed:\n"
    "    try:\n"
    "        main()\n"
    "    except SystemExit as exc:\n"
    "        code = exc.code\n"
    "loaded = sorted(set(sys.modules) & watched)\n"
    "print(json.dumps({'loaded': loaded, 'printed': printed.getvalue(), 'code': code}))\n"
)


def loaded_by(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(LAZY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def run_command(watched: tuple[str, ...], *args: str, home: Path) -> dict[str, object]:
    """One command through the launcher in a fresh interpreter, in English, in a private home."""
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "LANG": "C.UTF-8",
    }
    for variable in ("LC_ALL", "LC_MESSAGES", "LANGUAGE", "POSDIAG_ZVT_PASSWORD"):
        env.pop(variable, None)
    done = subprocess.run(
        [sys.executable, "-c", COMMAND_PROBE, json.dumps(watched), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_importing_the_cli_loads_none_of_the_heavy_modules() -> None:
    assert loaded_by(PROBE) == []


@pytest.mark.parametrize("module", ["posdiag.agent.logs", "posdiag.agent.report"])
def test_shared_agent_modules_do_not_pull_in_drivers_or_structlog(module: str) -> None:
    code = PROBE.replace("posdiag.agent.cli", module)
    assert loaded_by(code) == []


def test_version_is_answered_without_the_command_line(tmp_path: Path) -> None:
    result = run_command(VERSION_LAZY, "--version", home=tmp_path)
    assert result["loaded"] == []
    assert result["printed"] == f"posdiag, version {__version__}\n"
    assert result["code"] == 0


def test_the_launcher_says_what_click_says(tmp_path: Path) -> None:
    # --version beside another option goes through click's own version option
    fast = run_command(VERSION_LAZY, "--version", home=tmp_path)
    through_click = run_command(VERSION_LAZY, "--log-level", "warning", "--version", home=tmp_path)
    assert "click" in through_click["loaded"]
    assert fast["printed"] == through_click["printed"]


@pytest.mark.parametrize(
    ("address", "watched"),
    [
        ("zvt+sim://activated?time_scale=0", ZVT_CHECK_LAZY),
        ("adb+sim://activated?model=pax-a920&time_scale=0", ADB_CHECK_LAZY),
    ],
)
def test_a_check_loads_its_own_family_only(
    address: str, watched: tuple[str, ...], tmp_path: Path
) -> None:
    result = run_command(watched, "check", address, home=tmp_path)
    assert result["code"] == 1  # both scenarios are activated: checked, not ready
    assert "WIPE REQUIRED" in str(result["printed"])
    assert result["loaded"] == []


def test_the_console_script_is_the_launcher() -> None:
    (script,) = importlib.metadata.entry_points(group="console_scripts", name="posdiag")
    assert script.value == "posdiag.agent.launch:main"


def test_the_version_has_one_source() -> None:
    # The build reads posdiag.agent.__version__; a stale install (reinstall after a bump) or a
    # version typed into pyproject.toml again would make the two disagree.
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "posdiag.agent.__version__"
    }
    assert importlib.metadata.version("posdiag") == __version__


def test_an_edited_catalogue_is_compiled_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A .po edited since the last build is compiled (Babel) and kept beside it, dated like the
    # .po, so the next Chinese process reads the .mo instead of compiling again.
    from posdiag.drivers import i18n

    folder = tmp_path / "zh_CN" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po = folder / "posdiag.po"
    po.write_bytes((i18n.LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "posdiag.po").read_bytes())
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    compiled: list[Path] = []
    real_compile = i18n.compile_catalogue

    def counting(source: Path) -> bytes:
        compiled.append(source)
        return real_compile(source)

    monkeypatch.setattr(i18n, "compile_catalogue", counting)
    try:
        for _ in range(2):
            i18n.set_language("zh_CN")
            assert i18n._("Ledger") == "台账"
    finally:
        i18n.set_language("en")
    assert compiled == [po]
    mo = folder / "posdiag.mo"
    assert mo.stat().st_mtime_ns == po.stat().st_mtime_ns
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]
