"""The plugin inside another project's pytest run: its logs, and the documented examples.

Each test runs pytest in a subprocess on a throw-away project (pytester), as a CI user's suite
would run: the plugin is loaded from the installed entry points, structlog starts unconfigured,
and what the user would see on the terminal is what the test reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posdiag.simulators.adb.state import available_profiles
from posdiag.simulators.adb.state import available_scenarios as adb_scenarios
from posdiag.simulators.backend.catalog import KINDS
from posdiag.simulators.backend.pytest_fixtures import backend_faults
from posdiag.simulators.registry import fault_names
from posdiag.simulators.zvt.state import available_scenarios as zvt_scenarios

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
API_PAGE = REPO / "simulators" / "README.md"
# What posdiag logs while a ZVT and an ADB session run: none of it may reach a user's output.
POSDIAG_LINES = re.compile(
    r"zvt\.tx|zvt\.rx|sim\.zvt|sim\.adb|adb\.connected|simulator listening|transport open|"
    r"transport closed|posdiag\.(drivers|simulators)[\w.]*: "  # a logger name heading a line
)
USING_FIXTURES = """
    import structlog

    def test_a_session(zvt_terminal, zvt_driver, adb_terminal, adb_driver):
        terminal = zvt_terminal("unsettled", attach="tcp")
        driver = zvt_driver(terminal)
        driver.register()
        driver.end_of_day()
        assert terminal.state.transactions == []
        android = adb_driver(adb_terminal("activated", model="pax-a920", attach="tcp"))
        assert android.shell("getprop ro.fac.sn").text.strip() == "0820533061"
        print("the project's own print")
"""


@pytest.fixture(autouse=True)
def _plugins_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest finds posdiag's plugin through its entry points, as a user's does."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_PLUGINS", raising=False)


def _output(result: pytest.RunResult) -> str:
    return "\n".join([*result.outlines, *result.errlines])


def _section(text: str, heading: str) -> str:
    """The Markdown section under ``heading`` (up to the next heading of its level or above)."""
    level = len(heading) - len(heading.lstrip("#"))
    start = text.index(heading + "\n")
    end_pattern = re.compile(rf"^#{{1,{level}}} ", re.MULTILINE)
    match = end_pattern.search(text, start + len(heading))
    return text[start : match.start() if match else len(text)]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def _run_blocks(pytester: pytest.Pytester, blocks: list[str]) -> None:
    """Run each block as a test module of a fresh project: every test in it must pass."""
    assert blocks, "no python example found"
    files = {f"test_example_{number}": block for number, block in enumerate(blocks)}
    pytester.makepyfile(**files)
    expected = sum(len(re.findall(r"^def test_", block, re.MULTILINE)) for block in blocks)
    assert expected, "the examples hold no test"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", timeout=180)
    assert result.ret == 0, _output(result)
    result.assert_outcomes(passed=expected)


# --- logs ---------------------------------------------------------------------------------------


def test_a_passing_test_prints_no_posdiag_log_lines_even_with_s(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USING_FIXTURES)
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=1)
    output = _output(result)
    assert "the project's own print" in output  # -s really showed the test's output
    assert not POSDIAG_LINES.search(output), output


def test_a_failing_test_shows_no_posdiag_lines_in_its_captured_output(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(USING_FIXTURES.replace("print(", "assert False, ("))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(failed=1)
    assert not POSDIAG_LINES.search(_output(result)), _output(result)


@pytest.mark.parametrize(
    ("args", "ini", "shown", "hidden"),
    [
        (["--posdiag-logs"], "", "zvt.tx", None),
        (["--posdiag-log-level", "info"], "", "simulator listening", "zvt.tx"),
        ([], "info", "simulator listening", "zvt.tx"),
        (["--posdiag-log-level", "off"], "debug", None, "zvt.tx"),
    ],
)
def test_logs_are_shown_when_asked_for(
    pytester: pytest.Pytester, args: list[str], ini: str, shown: str | None, hidden: str | None
) -> None:
    pytester.makepyfile(USING_FIXTURES)
    if ini:
        pytester.makeini(f"[pytest]\nposdiag_log_level = {ini}\n")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", *args, timeout=120)
    result.assert_outcomes(passed=1)
    output = _output(result)
    if shown:
        assert shown in output
        assert "posdiag.simulators.attach" in output  # the logger's name says where it came from
    if hidden:
        assert hidden not in output


def test_an_unknown_log_level_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass\n")
    result = pytester.runpytest_subprocess("--posdiag-log-level", "loud", timeout=60)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown log level 'loud'" in _output(result)


def test_caplog_sees_posdiag_warnings_and_debug_when_asked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import logging

        import structlog

        def test_warnings_reach_caplog(caplog, zvt_terminal, zvt_driver):
            zvt_driver(zvt_terminal("activated")).status_enquiry()
            structlog.get_logger("posdiag.drivers.example").warning("made.up", serial="X1")
            structlog.get_logger("posdiag.drivers.example").info("too.quiet")
            messages = [record.getMessage() for record in caplog.records]
            assert messages == ["made.up serial='X1'"]
            assert caplog.records[0].name == "posdiag.drivers.example"
            assert caplog.records[0].filename.startswith("test_caplog_sees")  # the caller

        def test_debug_when_the_test_asks(caplog, zvt_terminal, zvt_driver):
            caplog.set_level(logging.DEBUG, logger="posdiag")
            zvt_driver(zvt_terminal("activated")).status_enquiry()
            assert any(r.getMessage().startswith("zvt.tx") for r in caplog.records)
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)
    assert not POSDIAG_LINES.search(_output(result)), _output(result)


def test_the_projects_own_structlog_loggers_are_left_alone(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import structlog

        def test_mine(zvt_terminal):
            zvt_terminal("activated", attach="tcp")
            structlog.get_logger("myapp").info("my own event", answer=42)
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=1)
    output = _output(result)
    assert "my own event" in output and "answer=42" in output  # structlog's default: printed
    assert not POSDIAG_LINES.search(output), output


def test_a_project_that_configured_structlog_keeps_its_configuration(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import structlog

        structlog.configure(processors=[structlog.processors.KeyValueRenderer()])
        """
    )
    pytester.makepyfile(
        """
        def test_mine(zvt_terminal):
            zvt_terminal("activated", attach="tcp")
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=1)
    assert "event='simulator listening'" in _output(result)  # their renderer, their choice


def test_quiet_again_after_a_test_reset_structlog(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        import structlog

        @pytest.fixture
        def resets():
            yield
            structlog.reset_defaults()  # what a CLI test's teardown does

        def test_resets(resets):
            pass

        def test_after(zvt_terminal, zvt_driver):
            zvt_driver(zvt_terminal("activated", attach="tcp")).status_enquiry()

        def test_simulators_stopped_after_the_reset(zvt_terminal, zvt_driver, resets):
            zvt_driver(zvt_terminal("activated", attach="tcp")).status_enquiry()
        """
    )
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider", timeout=60)
    result.assert_outcomes(passed=3)
    assert not POSDIAG_LINES.search(_output(result)), _output(result)


# --- the documented examples --------------------------------------------------------------------


def test_the_readme_plugin_example_runs_as_written(pytester: pytest.Pytester) -> None:
    section = _section(README.read_text(encoding="utf-8"), "### In your own tests")
    _run_blocks(pytester, _python_blocks(section))


def test_the_api_page_examples_run_as_written(pytester: pytest.Pytester) -> None:
    section = _section(API_PAGE.read_text(encoding="utf-8"), "## Example tests")
    _run_blocks(pytester, _python_blocks(section))


def test_the_api_page_names_every_scenario_profile_fault_and_fixture() -> None:
    page = API_PAGE.read_text(encoding="utf-8")
    names = {
        *zvt_scenarios(),
        *adb_scenarios(),
        *available_profiles(),
        *fault_names("zvt"),
        *fault_names("adb"),
        *(fault for kind in KINDS for fault in backend_faults(kind)),
        *KINDS,
        "zvt_terminal",
        "zvt_driver",
        "adb_terminal",
        "adb_driver",
        "backend_simulator",
        "--posdiag-logs",
        "posdiag_log_level",
    }
    missing = sorted(
        name for name in names if not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", page)
    )
    assert not missing, f"simulators/README.md does not document: {missing}"


@pytest.mark.parametrize("path", [README, API_PAGE])
def test_local_adb_examples_avoid_the_adb_servers_emulator_ports(path: Path) -> None:
    # adb start-server probes 127.0.0.1:5555-5585 for emulators and would take the simulator's
    # one connection; a LAN terminal's adb+tcp://192.0.2.10:5555 is another matter.
    text = path.read_text(encoding="utf-8")
    ports = [int(port) for port in re.findall(r"(?:127\.0\.0\.1|localhost):(\d+)", text)]
    assert ports, "no local port in the examples any more: is this test still needed?"
    clashing = [port for port in ports if 5555 <= port <= 5585]
    assert not clashing, f"{path.name}: local ports in adb's emulator scan range: {clashing}"
