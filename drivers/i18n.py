"""The language a person reads: gettext catalogues, the chosen locale, and locale formatting.

Every sentence a person reads (CLI output, verdict reasons, errors, tables, certificates,
manifest headers) is written in English in the source and goes through :func:`_` (or
:func:`ngettext` for counts), so Babel's extractor finds it and the ``zh_CN`` catalogue
(``locale/zh_CN/LC_MESSAGES/posdiag.po``) translates it. Identifiers meant for machines (JSON
field names and values, ledger columns, exit codes) never go through here.

Placeholders are named (``_("serial {serial}").format(serial=...)``) so a translation may put
them in another order. The module lives at the bottom layer because drivers, too, write the
evidence sentences a person reads; it imports nothing heavy: the compiled ``.mo`` is read by the
standard library's :mod:`gettext`, and Babel is imported only to format money and dates, or to
compile a ``.po`` in memory when a source checkout was never built.

The language is chosen once per process (``--lang``, else ``LC_ALL``, ``LC_MESSAGES``, ``LANG``,
``LANGUAGE``); any Chinese locale reads the Simplified Chinese catalogue, anything else English.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gettext as _gettext
import io
import os
import threading
from decimal import Decimal
from pathlib import Path

__all__ = [
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "_",
    "compile_catalogue",
    "format_datetime",
    "format_decimal",
    "format_money",
    "language",
    "language_from_environment",
    "ngettext",
    "normalise_language",
    "set_language",
]

DOMAIN = "posdiag"
LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("en", "zh_CN")
"""The languages posdiag speaks; ``en`` is the source language (no catalogue)."""

_lock = threading.Lock()
_language = "en"
_translations: _gettext.NullTranslations = _gettext.NullTranslations()
_chosen = False


def normalise_language(text: str | None) -> str | None:
    """The catalogue a language or locale name reads (``zh-CN``, ``zh_CN.UTF-8``, ``zh``…).

    Returns:
        ``"en"`` or ``"zh_CN"``; None for an empty value or one naming no language (``C``,
        ``POSIX``), so the caller looks further.
    """
    if not text:
        return None
    name = text.strip().split(".", 1)[0].split("@", 1)[0].replace("-", "_").lower()
    if not name or name in ("c", "posix"):
        return None
    if name == "zh" or name.startswith("zh_"):
        return "zh_CN"  # Simplified Chinese is what posdiag has; a zh_TW reader gets it too
    return "en"


def language_from_environment(environ: dict[str, str] | None = None) -> str:
    """The language the environment asks for, by gettext's order of precedence."""
    env = os.environ if environ is None else environ
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        found = normalise_language(env.get(variable))
        if found is not None:
            return found
    for part in env.get("LANGUAGE", "").split(":"):
        found = normalise_language(part)
        if found is not None:
            return found
    return "en"


def _load(lang: str) -> _gettext.NullTranslations:
    if lang == "en":
        return _gettext.NullTranslations()
    mo = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"
    po = mo.with_suffix(".po")
    if mo.is_file() and not (po.is_file() and po.stat().st_mtime > mo.stat().st_mtime):
        with mo.open("rb") as handle:
            return _gettext.GNUTranslations(handle)
    if po.is_file():  # a checkout never built, or a .po edited since: compile, keep it
        edited_ns = po.stat().st_mtime_ns
        compiled = compile_catalogue(po)
        _keep_compiled(mo, compiled, edited_ns)
        return _gettext.GNUTranslations(io.BytesIO(compiled))
    return _gettext.NullTranslations()


def _keep_compiled(mo: Path, compiled: bytes, edited_ns: int) -> None:
    """Write a catalogue compiled at run time beside its ``.po``, where the folder allows.

    Otherwise a checkout whose ``.po`` was edited since the last build compiles it with Babel
    (about 0.1 s) in every process that speaks Chinese. The file is dated like the ``.po`` it
    was compiled from, so a ``.po`` edited meanwhile is still newer and compiled again, and
    replaced atomically, so a concurrent reader sees the old file or the new one; an installed,
    read-only package compiles in memory as before.
    """
    partial = mo.with_name(f".{mo.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as handle:
            handle.write(compiled)
        os.utime(partial, ns=(edited_ns, edited_ns))
        os.replace(partial, mo)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()


def compile_catalogue(po: Path) -> bytes:
    """The ``.mo`` bytes of a ``.po`` file (the package build writes them; see ``setup.py``)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as handle:
        catalog = read_po(handle, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def set_language(choice: str | None = None) -> str:
    """Choose the language for the rest of the process (None: from the environment).

    Returns:
        The language now in force (``"en"`` or ``"zh_CN"``).
    """
    global _language, _translations, _chosen
    lang = normalise_language(choice) or language_from_environment()
    with _lock:
        _translations = _load(lang)
        _language = lang
        _chosen = True
    return lang


def language() -> str:
    """The language in force (chosen from the environment on first use)."""
    if not _chosen:
        set_language(None)
    return _language


def _(message: str) -> str:
    """The message in the language in force."""
    if not _chosen:
        set_language(None)
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The singular or plural message for ``count``, in the language in force."""
    if not _chosen:
        set_language(None)
    return _translations.ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined; translate it with ``_()`` when shown."""
    return message


def _babel_locale() -> str:
    return "zh_CN" if language() == "zh_CN" else "en"


def format_money(amount: Decimal | float | int, currency: str | None) -> str:
    """An amount in its currency, the way the reader's locale writes it (¥47.57, €47.57)."""
    if not currency or len(currency) != 3 or not currency.isalpha():
        return format_decimal(amount, places=2)
    from babel.numbers import format_currency

    try:
        value = Decimal(str(amount))
        if not value.is_finite():
            return f"{currency.upper()} {value}"
        return str(format_currency(value, currency.upper(), locale=_babel_locale()))
    except Exception:  # an unknown code from a hostile terminal: the code itself, plainly
        return f"{currency.upper()} {format_decimal(amount, places=2)}"


def format_decimal(amount: Decimal | float | int, places: int | None = None) -> str:
    """A number with the locale's grouping and decimal sign."""
    from babel.numbers import format_decimal as babel_format

    try:
        value = Decimal(str(amount))
        if not value.is_finite():
            return str(value)
        pattern = None if places is None else "#,##0." + "0" * places if places else "#,##0"
        return str(babel_format(value, format=pattern, locale=_babel_locale()))
    except Exception:  # a number no locale writes (a hostile device's 10**40): as it came
        return str(amount)[:40]


def format_datetime(value: _dt.datetime | str | None, *, seconds: bool = True) -> str:
    """A moment in the reader's locale, in its own time zone as recorded (UTC stays UTC).

    Accepts the ISO text records carry; text that is not a date is returned unchanged, so a
    hostile or old record still shows what it holds.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    else:
        moment = value
    from babel.dates import format_datetime as babel_format

    if _babel_locale() == "zh_CN":
        pattern = "yyyy年M月d日 HH:mm:ss" if seconds else "yyyy年M月d日 HH:mm"
    else:
        pattern = "d MMM yyyy, HH:mm:ss" if seconds else "d MMM yyyy, HH:mm"
    text = str(babel_format(moment, pattern, locale=_babel_locale()))
    if moment.tzinfo is not None and moment.utcoffset() == _dt.timedelta(0):
        text += " UTC"
    return text
