"""Babel extractors for posdiag's catalogue (``drivers/locale/babel.cfg`` names them).

Two places hold sentences a person reads besides the ``_("...")`` calls Babel's own Python
extractor finds:

* ``_()`` inside an f-string (``f"<th>{html.escape(_('Firmware'))}</th>"``): on Python before
  3.12 an f-string is one token to Babel's tokenizer, so the call inside is never seen.
  :func:`extract_python` runs Babel's extractor, then finds such calls in the syntax tree.
* what an activation recipe of the device catalogue ``means`` ("a SIM card is inserted and
  unlocked: it belongs to the merchant or the estate, remove it"), written in TOML beside the
  recipe and shown through ``_()`` when the driver builds the evidence
  (:func:`extract_catalogue_means`).
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

__all__ = ["extract_catalogue_means", "extract_python"]

Extracted = tuple[Any, ...]
"""``(line, function, message or messages, comments)``, what Babel expects of an extractor."""


def extract_python(
    fileobj: IO[bytes], keywords: Mapping[str, Any], comment_tags: Any, options: Any
) -> Iterator[Extracted]:
    """Babel's Python extraction, plus the keyword calls inside f-strings it cannot see."""
    from babel.messages.extract import extract_python as babel_python

    source = fileobj.read()
    seen: set[tuple[Any, Any]] = set()
    found: Extracted  # Babel's own annotation of this tuple does not match what it yields
    for found in babel_python(io.BytesIO(source), keywords, comment_tags, options):
        seen.add((found[1], found[2]))
        yield found
    try:
        tree = ast.parse(source)
    except SyntaxError:  # Babel reported what it could; the interpreter will say the rest
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr):
            continue
        for call in ast.walk(node):
            if not (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in keywords
            ):
                continue
            strings = tuple(
                arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
                for arg in call.args
            )
            if not strings or strings[0] is None:
                continue  # _(variable): the sentence is marked where it is defined
            message: str | tuple[str | None, ...] = strings[0] if len(strings) == 1 else strings
            if (call.func.id, message) not in seen:
                seen.add((call.func.id, message))
                yield call.lineno, call.func.id, message, []


def extract_catalogue_means(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: Any
) -> Iterator[Extracted]:
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


_MEANS = re.compile(r'^\s*means\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:#.*)?$')


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
