"""Suite-wide fixtures: a PostgreSQL server for the ``postgres`` tests (see postgres_server.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def _postgres_helper() -> ModuleType:
    """tests/postgres_server.py by path: with --import-mode=importlib, tests/ is no package."""
    name = "posdiag_tests_postgres_server"
    if name not in sys.modules:
        path = Path(__file__).with_name("postgres_server.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A ``postgresql://`` URL of an empty database on a server started for this session.

    Skipped when no PostgreSQL binaries exist, unless ``POSDIAG_REQUIRE_POSTGRES=1`` (CI): there a
    missing server fails, so the shared-ledger tests can never silently stop running.
    """
    helper = _postgres_helper()
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(helper.running_server())
        except helper.PostgresUnavailable as reason:
            if os.environ.get("POSDIAG_REQUIRE_POSTGRES") == "1":
                pytest.fail(f"POSDIAG_REQUIRE_POSTGRES=1 but {reason}")
            pytest.skip(str(reason))
        yield server.url


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and the XDG folders inside ``tmp_path``: the default ledger, certificates, station
    key and ADB key of a test never touch (or read) the real user's."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    return home


@pytest.fixture(autouse=True)
def _english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts in English, whatever the developer's locale, and leaves English behind.

    The CLI chooses its language from ``LANG``/``LC_ALL`` when ``--lang`` is not given; a test
    that wants Chinese says so (``--lang zh-CN`` or ``set_language("zh_CN")``).
    """
    from posdiag.drivers.i18n import set_language

    for variable in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    set_language("en")
    yield
    set_language("en")
