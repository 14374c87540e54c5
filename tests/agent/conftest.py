"""Fixtures shared by the agent's CLI tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result
from rich.console import Console

from posdiag.agent import (
    cli,
    cli_backend,
    cli_common,
    cli_doctor,
    cli_nexo_events,
    cli_records,
    cli_simulate,
    cli_station,
    cli_station_config,
    cli_station_view,
)


def plain_consoles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain wide consoles in every CLI module (each binds ``out``/``err`` when imported)."""
    out = Console(width=200, color_system=None, force_terminal=False)
    err = Console(stderr=True, soft_wrap=True, color_system=None, force_terminal=False)
    for module in (
        cli,
        cli_common,
        cli_station,
        cli_station_config,
        cli_station_view,
        cli_simulate,
        cli_backend,
        cli_doctor,
        cli_records,
        cli_nexo_events,
    ):
        for name, console in (("out", out), ("err", err)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, console)


@pytest.fixture
def cli_home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private home (the default ledgers land there), plain wide consoles, no ZVT password
    from the caller's environment, and the root logger given back as it was: the CLI configures
    logging per invocation and would otherwise leak handlers into the next test."""
    monkeypatch.delenv("POSDIAG_ZVT_PASSWORD", raising=False)
    plain_consoles(monkeypatch)
    root = logging.getLogger()
    level = root.level
    yield isolated_home
    for handler in list(root.handlers):
        if handler.get_name() == "posdiag":
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
def plain_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain wide consoles in every CLI module, for test modules with their own isolation."""
    plain_consoles(monkeypatch)


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """Run the CLI in-process (click's runner): ``invoke("check", "--json", ADDRESS)``."""

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli.main, list(args))

    return run
