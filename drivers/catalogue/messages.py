"""Babel extractor for the catalogue's human sentences (``means = "..."`` in its TOML files).

What a piece of activation evidence means ("a SIM card is inserted and unlocked: it belongs to
the merchant or the estate, remove it") is written in the catalogue beside the recipe that finds
it, and shown to the operator in their language: the driver passes it through ``_()`` when it
builds the evidence, and ``drivers/locale/babel.cfg`` runs this extractor so the sentence is in
the gettext catalogue like any ``_("...")`` in the sources.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO, Any

__all__ = ["extract_means"]

_MEANS = re.compile(r'^\s*means\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:#.*)?$')


def extract_means(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Yield Babel's ``(line, function, message, comments)`` for every ``means`` string.

    The TOML is also parsed whole, so the extracted text is exactly the value the loader reads
    (escapes resolved); a line this reading does not recognise is left to the loader's own checks.
    """
    import tomllib

    text = fileobj.read().decode("utf-8")
    values = {str(value) for value in _values(tomllib.loads(text))}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _MEANS.match(line)
        if match is None:
            continue
        value = tomllib.loads(f'v = "{match.group(1)}"')["v"]
        if value in values:
            yield number, None, value, []


def _values(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "means":
                yield value
            else:
                yield from _values(value)
    elif isinstance(node, list):
        for item in node:
            yield from _values(item)
