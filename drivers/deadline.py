"""One terminal-wide deadline that every read of a driver respects, and limit validation.

Protocol timers (ZVT T4, an ADB answer timeout) bound one wait, but a device may legally restart
them forever (a ZVT intermediate status every few seconds, an ADB stream that never stops). A
check or a wipe must still end, so the agent gives the terminal an instant (``set_deadline``);
from then on the drivers clip every wait to the time left and raise
:class:`~posdiag.drivers.errors.DeadlineExceeded` once it has passed, whatever the device keeps
sending.
"""

from __future__ import annotations

import math
import time

from .errors import AddressError, DeadlineExceeded

MAX_SECONDS = 86_400.0
"""Longest timer or timeout posdiag accepts (one day): anything longer is a typo or an attack."""


def check_seconds(name: str, value: float, *, maximum: float = MAX_SECONDS) -> float:
    """Return ``value`` when it is a sane duration in seconds, else raise a one-line error.

    ``inf`` would disable a timer, ``nan`` compares false with everything (so a ``wait <
    timeout`` loop never ends) and a negative value is a typo; none of them may reach a driver.

    Raises:
        AddressError: not a finite number between 0 and ``maximum``.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise AddressError(f"{name} must be a number of seconds, not {value!r}") from None
    if not math.isfinite(number):
        raise AddressError(f"{name} must be a finite number of seconds, not {value!r}")
    if number < 0:
        raise AddressError(f"{name} cannot be negative ({value!r})")
    if number > maximum:
        raise AddressError(f"{name}={value!r} is too long (at most {maximum:g} seconds)")
    return number


class Deadline:
    """A ``time.monotonic()`` instant after which every read fails (None: no deadline)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def set(self, at: float | None) -> None:
        """Set the instant, or lift the deadline with None.

        Raises:
            ValueError: ``at`` is not a finite number.
        """
        if at is not None and not math.isfinite(at):
            raise ValueError(f"a deadline must be a finite monotonic instant, not {at!r}")
        self.at = at

    def remaining(self) -> float | None:
        """Seconds left (never negative), or None without a deadline."""
        if self.at is None:
            return None
        return max(0.0, self.at - time.monotonic())

    def check(self) -> None:
        """Raise when the deadline has passed.

        Raises:
            DeadlineExceeded: the instant is past.
        """
        if self.at is not None and time.monotonic() >= self.at:
            raise DeadlineExceeded()

    def clip(self, wait: float) -> float:
        """``wait`` shortened to the time left; raises when none is left.

        Raises:
            DeadlineExceeded: the instant is past.
        """
        if self.at is None:
            return wait
        left = self.at - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        return min(wait, left)
