"""Fixtures shared by the agent's CLI tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from posdiag.agent import cli


@pytest.fixture
def cli_home(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private home (the default ledgers land there), plain wide consoles, no ZVT password
    from the caller's environment, and the root logger given back as it was: the CLI configures
    logging per invocation and would otherwise leak handlers into the next test."""
    monkeypatch.delenv("POSDIAG_ZVT_PASSWORD", raising=False)
    monkeypatch.setattr(cli, "out", Console(width=200, color_system=None, force_terminal=False))
    monkeypatch.setattr(
        cli, "err", Console(stderr=True, soft_wrap=True, color_system=None, force_terminal=False)
    )
    root = logging.getLogger()
    level = root.level
    yield isolated_home
    for handler in list(root.handlers):
        if handler.get_name() == "posdiag":
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()
