"""Watching what a terminal session announces (``posdiag.drivers.activity``) in tests."""

from __future__ import annotations

import gettext

from posdiag.drivers.activity import Activity
from posdiag.drivers.transport.base import Transport


class Tapped(Transport):
    """A transport that counts the bytes read through it (nothing else is changed)."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner.description)
        self.inner = inner
        self.count = 0

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    @property
    def is_open(self) -> bool:
        return self.inner.is_open

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def read(self, max_bytes: int, timeout: float) -> bytes:
        data = self.inner.read(max_bytes, timeout)
        self.count += len(data)
        return data

    def reset_input(self) -> None:
        self.inner.reset_input()


class Watcher:
    """A listener that keeps every announcement and the wire's byte count at that moment."""

    def __init__(self, transport: Tapped | None = None) -> None:
        self.transport = transport
        self.seen: list[tuple[Activity, int]] = []

    def __call__(self, activity: Activity) -> None:
        self.seen.append((activity, self.transport.count if self.transport else 0))

    @property
    def activities(self) -> list[Activity]:
        return [activity for activity, _ in self.seen]

    def sequence(self) -> list[str]:
        """The texts announced, each once per run of announcements (byte updates folded)."""
        texts: list[str] = []
        for activity in self.activities:
            if not texts or texts[-1] != activity.what:
                texts.append(activity.what)
        return texts


class Marked(gettext.NullTranslations):
    """A catalogue that marks every message it translates, to see what goes through ``_()``."""

    def gettext(self, message: str) -> str:
        return "«" + message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return "«" + (msgid1 if n == 1 else msgid2)
