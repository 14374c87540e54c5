"""Option types of the command line: numbers that must be sane before anything starts.

A timer of ``inf`` never fires, ``nan`` compares false with everything (a wait loop never ends),
a negative one is a typo, and "a day and more" is one too. Every timing option of every command
uses :class:`Seconds`, every bounded count :class:`Count`, so they all refuse the same values
with the same one line and exit code 2 (:class:`OneLineUsageError`).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import click

from posdiag.drivers.i18n import N_, _

__all__ = ["MAX_SECONDS", "SECONDS", "TIME_SCALE", "Count", "OneLineUsageError", "Seconds"]


MAX_SECONDS = 86_400.0
"""The longest timer, timeout or deadline any option accepts: one day (more is a typo)."""


class OneLineUsageError(click.UsageError):
    """A usage error shown as posdiag shows every error: one line on stderr, exit 2.

    Click would print the command's usage and a hint around it; a bad value deserves one
    readable line, like every other usage error of posdiag.
    """

    def show(self, file: Any = None) -> None:
        """Print ``posdiag: error: MESSAGE`` on stderr, as the CLI's ``fail`` does."""
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]{escape(_('posdiag: error:'))}[/] {escape(self.format_message())}",
            highlight=False,
        )


class Seconds(click.ParamType):
    """A number of seconds for a timer, timeout or deadline option: finite and bounded.

    ``float`` would take ``inf`` (a deadline that never comes), ``nan`` (every comparison
    false: no deadline either) and negative values; every timing option of the CLI uses this
    type instead, so they all refuse the same values with the same one line.

    Args:
        minimum: the smallest value accepted.
        inclusive: whether ``minimum`` itself is accepted (0 is no deadline at all).
        maximum: the largest value accepted (one day by default).
        what: how the value is named in errors.
    """

    name = "seconds"

    def __init__(
        self,
        minimum: float = 0.0,
        *,
        inclusive: bool = False,
        maximum: float = MAX_SECONDS,
        what: str = N_("a number of seconds"),
    ) -> None:
        self.minimum = minimum
        self.inclusive = inclusive
        self.maximum = maximum
        self.what = what

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        """The value as a float, or one line and exit 2."""
        option = param.opts[0] if param is not None and param.opts else "value"
        number = math.nan
        if not isinstance(value, bool):
            with contextlib.suppress(ValueError):
                number = float(value if isinstance(value, int | float) else str(value).strip())
        if math.isnan(number) or math.isinf(number):
            raise OneLineUsageError(
                _("{option} wants {what} (a finite number), not {value}").format(
                    option=option, what=_(self.what), value=value
                )
            )
        if number < self.minimum or (number == self.minimum and not self.inclusive):
            bound = (
                _("{option} wants {what} of at least {minimum}, not {value}")
                if self.inclusive
                else _("{option} wants {what} of more than {minimum}, not {value}")
            )
            raise OneLineUsageError(
                bound.format(
                    option=option, what=_(self.what), minimum=f"{self.minimum:g}", value=value
                )
            )
        if number > self.maximum:
            most = (
                _("{option} wants {what} of at most {maximum} (one day), not {value}")
                if self.maximum == MAX_SECONDS
                else _("{option} wants {what} of at most {maximum}, not {value}")
            )
            raise OneLineUsageError(
                most.format(
                    option=option, what=_(self.what), maximum=f"{self.maximum:g}", value=value
                )
            )
        return number


class Count(click.ParamType):
    """A whole number within bounds (terminals, workers), refused in one line otherwise."""

    name = "count"

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        """The value as an int, or one line and exit 2."""
        option = param.opts[0] if param is not None and param.opts else "value"
        try:
            number = (
                value
                if isinstance(value, int) and not isinstance(value, bool)
                else int(str(value).strip())
            )
        except ValueError:
            raise OneLineUsageError(
                _("{option}: {value} is not a whole number").format(
                    option=option, value=repr(value)
                )
            ) from None
        if not self.minimum <= number <= self.maximum:
            raise OneLineUsageError(
                _("{option}: {number} is out of range ({minimum} to {maximum})").format(
                    option=option, number=number, minimum=self.minimum, maximum=self.maximum
                )
            )
        return number


SECONDS = Seconds()
"""Timers, timeouts and deadlines: more than 0, at most one day."""
TIME_SCALE = Seconds(0.0, inclusive=True, maximum=1000.0, what=N_("a time factor"))
"""A simulator's time factor: 0 (as fast as possible) to 1000 times realistic."""
