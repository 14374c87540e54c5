"""The zh_CN catalogue against the sources: every sentence translated, nothing stale.

Babel extracts the messages from ``agent/`` and ``drivers/`` exactly as the maintainers' command
does (``drivers/locale/babel.cfg``); the test fails when the sources hold a message the catalogue
lacks (run the extract and update commands in babel.cfg, then translate), when the catalogue
holds one no source uses any more (stale), when an entry is untranslated or fuzzy, and when a
translation loses, renames or adds a ``{placeholder}`` (``str.format`` would raise or show the
wrong value to a Chinese operator).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

REPO = Path(__file__).resolve().parents[2]
LOCALE = REPO / "drivers" / "locale"
PO = LOCALE / "zh_CN" / "LC_MESSAGES" / "posdiag.po"
POT = LOCALE / "posdiag.pot"
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"(?<!\{)\{[^{}]*\}(?!\})")


def _extracted() -> dict[str | tuple[str, str], str]:
    """Every message the sources mark, with the first file that marks it (babel.cfg's map)."""
    with (LOCALE / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: dict[str | tuple[str, str], str] = {}
    for root in ("agent", "drivers"):
        for filename, _line, message, _comments, _context in extract_from_dir(
            REPO / root, method_map=method_map, options_map=options_map, keywords=KEYWORDS
        ):
            key = message if isinstance(message, str) else (message[0], message[1])
            found.setdefault(key, f"{root}/{filename}")
    return found


@pytest.fixture(scope="module")
def extracted() -> dict[str | tuple[str, str], str]:
    return _extracted()


@pytest.fixture(scope="module")
def catalogue() -> Iterator[object]:
    with PO.open("rb") as handle:
        yield read_po(handle, locale="zh_CN", domain="posdiag")


def _key(message_id: object) -> str | tuple[str, str]:
    if isinstance(message_id, str):
        return message_id
    assert isinstance(message_id, tuple | list)
    return (str(message_id[0]), str(message_id[1]))


def test_every_marked_sentence_is_in_the_catalogue(extracted: dict, catalogue: object) -> None:
    ids = {_key(m.id) for m in catalogue if m.id}  # type: ignore[attr-defined]
    missing = sorted((where, str(key)) for key, where in extracted.items() if key not in ids)
    assert not missing, (
        f"{len(missing)} messages are not in {PO.relative_to(REPO)} (run the extract and update "
        f"commands in drivers/locale/babel.cfg, then translate): {missing[:10]}"
    )


def test_no_catalogue_entry_is_stale(extracted: dict, catalogue: object) -> None:
    ids = [_key(m.id) for m in catalogue if m.id]  # type: ignore[attr-defined]
    stale = sorted(str(key) for key in ids if key not in extracted)
    assert not stale, f"{len(stale)} catalogue entries no source uses any more: {stale[:10]}"
    obsolete = list(catalogue.obsolete)  # type: ignore[attr-defined]
    assert not obsolete, "obsolete (#~) entries left in the catalogue"


def test_the_template_matches_the_sources(extracted: dict) -> None:
    with POT.open("rb") as handle:
        template = {_key(m.id) for m in read_po(handle) if m.id}
    assert template == set(extracted), "posdiag.pot is out of date: run the extract command"


def test_every_entry_is_translated_and_not_fuzzy(catalogue: object) -> None:
    untranslated = []
    for message in catalogue:  # type: ignore[attr-defined]
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        blank = [text for text in strings if not text.strip()]
        if message.fuzzy or (blank and str(_key(message.id)).strip()):
            untranslated.append(str(_key(message.id)))
    assert not untranslated, f"{len(untranslated)} untranslated or fuzzy: {untranslated[:10]}"


class _Anything:
    """A value every placeholder accepts (``{x}``, ``{x!r}``, ``{x:g}``): the format must run."""

    def __format__(self, spec: str) -> str:
        return "x"

    def __repr__(self) -> str:
        return "x"


class _Values(dict[str, _Anything]):
    def __missing__(self, key: str) -> _Anything:
        return _Anything()


def test_translations_keep_their_placeholders(catalogue: object) -> None:
    wrong = []
    for message in catalogue:  # type: ignore[attr-defined]
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[-1]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            if sorted(PLACEHOLDER.findall(text)) != sorted(PLACEHOLDER.findall(source)):
                wrong.append((source, text))
                continue
            try:
                text.format_map(_Values())
            except (KeyError, IndexError, ValueError) as exc:
                wrong.append((source, f"{text} ({exc})"))
    assert not wrong, f"{len(wrong)} translations break their placeholders: {wrong[:5]}"


def test_translations_keep_the_edges_of_the_sentence(catalogue: object) -> None:
    """Leading spaces indent, newlines lay out: the layout must survive translation.

    A single space around a fragment (" (known: …)") separates English words; Chinese needs
    none before full-width punctuation, so only indentation (two or more spaces) and newlines
    are held to the source.
    """
    wrong = []
    for message in catalogue:  # type: ignore[attr-defined]
        if not message.id:
            continue
        source = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for text in strings:
            lead = source[: len(source) - len(source.lstrip())]
            trail = source[len(source.rstrip()) :]
            lead = lead if len(lead) > 1 or "\n" in lead else ""
            trail = trail if len(trail) > 1 or "\n" in trail else ""
            if not text.startswith(lead) or not text.endswith(trail):
                wrong.append((source, text))
    assert not wrong, f"{len(wrong)} translations change their leading/trailing space: {wrong[:5]}"


def test_a_sentence_inside_an_f_string_is_extracted_too() -> None:
    """Python before 3.12 hands Babel an f-string as one token; posdiag's extractor looks in."""
    import io

    from posdiag.drivers.i18n_extract import extract_python

    source = b"label = f\"<th>{escape(_('Firmware'))}</th> {ngettext('a', 'as', n)}\"\n"
    found = {
        message for _line, _f, message, _c in extract_python(io.BytesIO(source), KEYWORDS, [], {})
    }
    assert "Firmware" in found
    assert ("a", "as", None) in found
