"""Fixtures shared by the driver tests."""

from __future__ import annotations

import pytest
from _support.activity import Marked

from posdiag.drivers import i18n


@pytest.fixture
def marked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every message that goes through ``_()``/``ngettext`` comes out starting with «."""
    monkeypatch.setattr(i18n, "_translations", Marked())
    monkeypatch.setattr(i18n, "_chosen", True)
