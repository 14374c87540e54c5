"""Build the wheel and check what ends up in it.

setup.py maps ``agent/``, ``drivers/`` and ``simulators/`` onto ``posdiag.<folder>``; a new
subfolder without ``__init__.py`` or a data file outside a package silently drops out of the
wheel, and only an installed posdiag would notice. The build runs on a copy of the tree so no
``build/`` or ``*.egg-info`` lands in the repository, and the expected file list comes from that
same copy so modules other people add while the test runs cannot make it flaky.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("agent", "drivers", "simulators")
TOP_LEVEL_IGNORED = {".venv", ".git", "build", "dist"}
IGNORED_ANYWHERE = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


@dataclass(frozen=True)
class BuiltWheel:
    source: Path
    names: frozenset[str]
    entry_points: str


def _ignore(directory: str, entries: list[str]) -> Iterable[str]:
    top = Path(directory).resolve() == REPO
    return [
        name
        for name in entries
        if name in IGNORED_ANYWHERE
        or name.endswith(".egg-info")
        or (top and name in TOP_LEVEL_IGNORED)
    ]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> BuiltWheel:
    base = tmp_path_factory.mktemp("packaging")
    source = base / "src"
    outdir = base / "dist"
    build_dir_existed = (REPO / "build").exists()
    shutil.copytree(REPO, source, ignore=_ignore)
    # --no-isolation: setuptools and wheel are already in the venv, and an isolated build
    # would need the network to fetch them.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(outdir)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"wheel build failed:\n{result.stdout}\n{result.stderr}"
    assert (REPO / "build").exists() == build_dir_existed, "the build touched the repository"
    (path,) = outdir.glob("*.whl")
    with zipfile.ZipFile(path) as archive:
        names = frozenset(archive.namelist())
        (entry_points_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(entry_points_name).decode()
    return BuiltWheel(source=source, names=names, entry_points=entry_points)


def _source_files(source: Path, pattern: str) -> list[str]:
    """Wheel paths expected for every ``pattern`` file under the mapped folders."""
    expected = []
    for root in ROOTS:
        for file in sorted((source / root).rglob(pattern)):
            relative = file.relative_to(source)
            if any(part in IGNORED_ANYWHERE for part in relative.parts):
                continue
            expected.append(str(PurePosixPath("posdiag", *relative.parts)))
    return expected


def test_every_module_is_in_the_wheel_under_posdiag(wheel: BuiltWheel) -> None:
    expected = _source_files(wheel.source, "*.py")
    assert any(name.endswith("agent/__init__.py") for name in expected)  # discovery works
    missing = [name for name in expected if name not in wheel.names]
    assert not missing, f"modules missing from the wheel (a folder without __init__.py?): {missing}"


def test_every_toml_data_file_is_in_the_wheel(wheel: BuiltWheel) -> None:
    expected = _source_files(wheel.source, "*.toml")
    missing = [name for name in expected if name not in wheel.names]
    assert not missing, f"data files missing from the wheel: {missing}"


def test_no_bare_top_level_packages(wheel: BuiltWheel) -> None:
    top_level = {PurePosixPath(name).parts[0] for name in wheel.names}
    bare = top_level & {*ROOTS, "tests", "bench"}
    assert not bare, f"generic top-level packages in the wheel: {sorted(bare)}"
    unexpected = {
        name
        for name in top_level
        if name != "posdiag" and not name.endswith((".dist-info", ".data"))
    }
    assert not unexpected, f"unexpected top-level entries: {sorted(unexpected)}"


def test_console_script_is_declared(wheel: BuiltWheel) -> None:
    parser = configparser.ConfigParser()
    parser.read_string(wheel.entry_points)
    assert parser.has_section("console_scripts")
    assert parser.get("console_scripts", "posdiag") == "posdiag.agent.launch:main"


def test_every_package_root_ships_its_type_marker(wheel: BuiltWheel) -> None:
    # PEP 561: without py.typed, mypy treats posdiag as untyped and a CI user's tests of the
    # fixtures (SimulatedZvt, SimulatedAdb…) are not type-checked at all.
    missing = [f"posdiag/{root}/py.typed" for root in ROOTS]
    missing = [name for name in missing if name not in wheel.names]
    assert not missing, f"type markers missing from the wheel: {missing}"


def test_the_pytest_plugins_are_declared(wheel: BuiltWheel) -> None:
    parser = configparser.ConfigParser()
    parser.read_string(wheel.entry_points)
    assert parser.get("pytest11", "posdiag") == "posdiag.simulators.pytest_plugin"
    assert parser.get("pytest11", "posdiag_backends") == (
        "posdiag.simulators.backend.pytest_fixtures"
    )


def test_the_chinese_catalogue_is_compiled_into_the_wheel(wheel: BuiltWheel) -> None:
    # The build compiles the .po (setup.py); an installed posdiag reads the .mo with the standard
    # library's gettext, so a wheel without it would speak English to a Chinese depot.
    locale = "posdiag/drivers/locale/zh_CN/LC_MESSAGES"
    assert f"{locale}/posdiag.mo" in wheel.names
    assert f"{locale}/posdiag.po" in wheel.names


def test_the_udev_rules_ship_with_the_package(wheel: BuiltWheel) -> None:
    assert "posdiag/drivers/catalogue/60-posdiag.rules" in wheel.names
