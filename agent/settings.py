"""Station settings: one TOML file, so a depot does not retype the same options every morning.

``station.toml`` in the user's config folder (``$XDG_CONFIG_HOME/posdiag/``, else
``~/.config/posdiag/``, the folder ``backends.toml`` lives in) or the file ``--config FILE``
names holds the station's usual answers::

    operator = "Li Wei"
    organisation = "深圳退机中心"
    location = "Bench 3"
    language = "zh-CN"
    ledger = "postgresql://posdiag@ledger.depot/posdiag"   # or a SQLite file path
    certificates = "certificates"                           # relative to this file's folder
    policy = "policy.toml"
    max_parallel = 8
    backends = "backends.toml"
    logo = "logo.png"

    [nexo]                                  # nexo (Adyen Terminal API) terminals
    key_identifier = "CryptoKeyIdentifier12345"
    key_version = 1
    passphrase_file = "nexo-passphrase"     # mode 600; or the passphrase in POSDIAG_NEXO_PASSPHRASE
    ca_file = "adyen-roots.pem"             # Adyen's terminal roots, downloaded from Adyen
    event_listen = "0.0.0.0:8090"           # receive the terminals' events (posdiag station)

They become the *defaults* of every command's options through click's ``default_map``, so the
command line still overrides each of them, click reports where a value came from
(``ctx.get_parameter_source``: ``posdiag station --show-config`` prints it), and a command only
receives the settings it has options for. A mistake in the file is one line naming the file,
the key and what is expected, before anything runs: a station must not start with half its
settings silently ignored.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from posdiag.drivers.backend.config import default_backends_path
from posdiag.drivers.i18n import N_, _, normalise_language

if TYPE_CHECKING:  # the nexo driver is loaded only when a [nexo] table is read
    from posdiag.drivers.nexo.keys import NexoSettings

__all__ = [
    "MAX_PARALLEL",
    "OPTION_OF_SETTING",
    "SETTINGS_FILE_NAME",
    "Settings",
    "apply_settings",
    "default_settings_path",
    "from_settings",
    "load_settings",
    "parse_settings",
    "settings_default_map",
    "shown_ledger",
]

SETTINGS_FILE_NAME = "station.toml"
MAX_FILE = 64 * 1024
"""A settings file is a dozen lines; anything this big is the wrong file."""
MAX_PARALLEL = 256
"""The station's own bound for ``--max-parallel``."""


@dataclass
class Settings:
    """What a station's settings file says; None: not set (the option's own default applies)."""

    operator: str | None = None
    organisation: str | None = None
    """The depot's name: on certificates (HTML and PDF) and manifests."""
    location: str | None = None
    language: str | None = None
    ledger: str | None = None
    certificates: Path | None = None
    policy: Path | None = None
    max_parallel: int | None = None
    backends: Path | None = None
    logo: Path | None = None
    """PNG or JPEG printed at the top of PDF certificates."""
    nexo: NexoSettings | None = None
    """The ``[nexo]`` table: the shared key and CA file for nexo terminals whose address names
    none (read by :func:`posdiag.agent.connect.open_terminal`, not through an option)."""
    source: Path | None = None
    """The file these came from (None: no settings file)."""

    def given(self) -> dict[str, Any]:
        """The settings the file set (name → value), in the file format's order."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "source" and getattr(self, f.name) is not None
        }


KEYS = tuple(f.name for f in fields(Settings) if f.name != "source")
"""The keys a settings file may hold."""

OPTION_OF_SETTING = {
    "operator": "operator",
    "organisation": "organisation",
    "location": "location",
    "ledger": "ledger_url",
    "certificates": "out_dir",
    "policy": "policy_file",
    "max_parallel": "max_parallel",
    "backends": "backends_file",
}
"""Setting → the parameter name commands use for it (``language`` and ``logo`` are read by the
group and the certificate writer, not through an option)."""

NOT_DEFAULTED = frozenset({("verify", "ledger_url")})
"""Options a setting must not default: ``verify --ledger`` is a switch whose presence means
"also check the ledger"; defaulting it would make every ``verify CERT`` demand that the
certificate be in this station's ledger, which a certificate from elsewhere never is."""

_EXPECTED = {
    "text": N_("text in quotes"),
    "path": N_("a file or folder path in quotes"),
    "count": N_("a whole number from 1 to {maximum}"),
    "language": N_('"en" or "zh-CN"'),
    "ledger": N_("a ledger database URL or a SQLite file path, in quotes"),
    "table": N_(
        "a table ([nexo] with key_identifier, key_version, passphrase_file, ca_file, "
        "event_listen)"
    ),
    "listen": N_('HOST:PORT in quotes (e.g. "0.0.0.0:8090")'),
    "version": N_("a whole number from 0"),
}
_KIND = {
    "operator": "text",
    "organisation": "text",
    "location": "text",
    "language": "language",
    "ledger": "ledger",
    "certificates": "path",
    "policy": "path",
    "max_parallel": "count",
    "backends": "path",
    "logo": "path",
    "nexo": "table",
}
NEXO_KEYS = {
    "key_identifier": "text",
    "key_version": "count",
    "passphrase_file": "path",
    "ca_file": "path",
    "event_listen": "listen",
}
"""The ``[nexo]`` table's keys and their kinds (the passphrase itself never goes in the file:
it names a private passphrase file, or the passphrase comes from the environment)."""
_TOML_TYPES = (
    (bool, N_("true/false")),
    (int, N_("a number")),
    (float, N_("a number")),
    (str, N_("text")),
    (list, N_("a list")),
    (dict, N_("a table")),
)


def default_settings_path() -> Path:
    """``station.toml`` in posdiag's config folder (the one ``backends.toml`` is read from)."""
    return default_backends_path().with_name(SETTINGS_FILE_NAME)


def _type_word(value: Any) -> str:
    for kind, word in _TOML_TYPES:
        if isinstance(value, kind):
            return _(word)
    return _("a date or time")


def _expected(kind: str) -> str:
    return _(_EXPECTED[kind]).format(maximum=MAX_PARALLEL)


def _wrong(source: Path, key: str, kind: str, value: Any) -> ValueError:
    return ValueError(
        _("settings file {file}: {key} must be {expected}, not {got}").format(
            file=source, key=key, expected=_expected(kind), got=_type_word(value)
        )
    )


def _resolve(folder: Path, text: str) -> Path:
    """A path from the file, relative to the file's folder (``~`` is the user's home)."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else folder / path


def _ledger(folder: Path, text: str) -> str:
    """A ledger URL as given, a SQLite URL with a relative file made absolute, or a file path.

    ``sqlite:///ledger.sqlite3`` is relative to the working folder in SQLAlchemy; in a settings
    file it means beside the file, like every other path there.
    """
    if "://" not in text:
        from .ledger import sqlite_url

        return sqlite_url(_resolve(folder, text))
    if not text.startswith("sqlite"):
        return text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(text)
    except ArgumentError:
        return text  # the ledger itself explains a broken URL when it is opened
    database = url.database
    if not database or database == ":memory:" or os.path.isabs(database):
        return text
    return url.set(database=str(_resolve(folder, database))).render_as_string(
        hide_password=False
    )


def parse_settings(data: dict[str, Any], source: Path) -> Settings:
    """Check the file's keys and types and resolve its paths against the file's folder.

    Raises:
        ValueError: one line naming the file, the key and what is expected.
    """
    folder = source.parent
    settings = Settings(source=source)
    for key, value in data.items():
        if key not in _KIND:
            near = difflib.get_close_matches(key, KEYS, n=1)
            hint = (
                _(" (did you mean {near}?)").format(near=near[0])
                if near
                else _(" (known: {known})").format(known=", ".join(KEYS))
            )
            raise ValueError(
                _("settings file {file}: unknown setting {key}{hint}").format(
                    file=source, key=key, hint=hint
                )
            )
        kind = _KIND[key]
        if kind == "table":
            settings.nexo = _nexo_table(source, value)
            continue
        if kind == "count":
            if isinstance(value, bool) or not isinstance(value, int):
                raise _wrong(source, key, kind, value)
            if not 1 <= value <= MAX_PARALLEL:
                raise ValueError(
                    _("settings file {file}: {key} must be {expected}, not {value}").format(
                        file=source, key=key, expected=_expected(kind), value=value
                    )
                )
            setattr(settings, key, value)
            continue
        if not isinstance(value, str):
            raise _wrong(source, key, kind, value)
        text = value.strip()
        if not text or "\x00" in text:
            raise ValueError(
                _("settings file {file}: {key} is empty (remove the line to leave it unset)")
                .format(file=source, key=key)
            )
        if kind == "language":
            base = text.replace("-", "_").split(".", 1)[0].split("_", 1)[0].lower()
            if base not in ("en", "zh") or normalise_language(text) is None:
                raise ValueError(
                    _("settings file {file}: {key} must be {expected}, not {value}").format(
                        file=source, key=key, expected=_expected(kind), value=repr(text)
                    )
                )
            setattr(settings, key, text)
        elif kind == "path":
            setattr(settings, key, _resolve(folder, text))
        elif kind == "ledger":
            setattr(settings, key, _ledger(folder, text))
        else:
            setattr(settings, key, text)
    return settings


def _nexo_table(source: Path, value: Any) -> NexoSettings:
    """The ``[nexo]`` table: known keys, right types, paths relative to the settings file.

    Raises:
        ValueError: one line naming the file, the key and what is expected.
    """
    from posdiag.drivers.nexo.keys import NexoSettings

    if not isinstance(value, dict):
        raise _wrong(source, "nexo", "table", value)
    values: dict[str, Any] = {}
    for key, item in value.items():
        name = f"nexo.{key}"
        kind = NEXO_KEYS.get(key)
        if kind is None:
            raise ValueError(
                _("settings file {file}: unknown setting {key} (known: {known})").format(
                    file=source, key=name, known=", ".join(f"nexo.{k}" for k in NEXO_KEYS)
                )
            )
        if kind == "count":
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < 2**31:
                raise ValueError(
                    _("settings file {file}: {key} must be {expected}").format(
                        file=source, key=name, expected=_(_EXPECTED["version"])
                    )
                )
            values[key] = item
            continue
        if not isinstance(item, str):
            raise _wrong(source, name, kind, item)
        text = item.strip()
        if not text or "\x00" in text:
            raise ValueError(
                _("settings file {file}: {key} is empty (remove the line to leave it unset)")
                .format(file=source, key=name)
            )
        if kind == "listen":
            from .nexo_events import parse_listen

            try:
                parse_listen(text)
            except ValueError:
                raise ValueError(
                    _("settings file {file}: {key} must be {expected}").format(
                        file=source, key=name, expected=_(_EXPECTED["listen"])
                    )
                ) from None
        values[key] = _resolve(source.parent, text) if kind == "path" else text
    named = {"key_identifier", "key_version"} & set(values)
    if named and len(named) != 2:
        raise ValueError(
            _("settings file {file}: set both nexo.key_identifier and nexo.key_version").format(
                file=source
            )
        )
    if "passphrase_file" in values and not named:
        raise ValueError(
            _(
                "settings file {file}: nexo.passphrase_file needs nexo.key_identifier and "
                "nexo.key_version"
            ).format(file=source)
        )
    return NexoSettings(source=source, **values)


def load_settings(path: Path) -> Settings:
    """Read and check one settings file.

    Raises:
        ValueError: the file cannot be read, is not TOML, or holds a wrong key or value.
    """
    source = path.expanduser().absolute()
    try:
        if not source.is_file():
            raise ValueError(
                _("settings file {file} does not exist (or is not a file)").format(file=source)
            )
        if source.stat().st_size > MAX_FILE:
            raise ValueError(
                _("settings file {file} is larger than {size} KB: not a settings file").format(
                    file=source, size=MAX_FILE // 1024
                )
            )
        raw = source.read_bytes()
    except OSError as exc:
        raise ValueError(
            _("cannot read settings file {file}: {error}").format(
                file=source, error=exc.strerror or exc
            )
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(
            _("settings file {file} is not UTF-8 text").format(file=source)
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(
            _("settings file {file} is not valid TOML: {error}").format(file=source, error=exc)
        ) from None
    return parse_settings(data, source)


def settings_default_map(group: click.Command, settings: Settings) -> dict[str, dict[str, Any]]:
    """The ``default_map`` that makes the settings every command's option defaults.

    Only commands with an option of that name get it (``report`` takes the ledger but not the
    operator), so a setting never reaches a command that would refuse it.
    """
    commands: dict[str, click.Command] = getattr(group, "commands", {})
    given = settings.given()
    result: dict[str, dict[str, Any]] = {}
    for name, command in commands.items():
        params = {p.name for p in command.params if isinstance(p, click.Option)}
        values = {
            option: given[key]
            for key, option in OPTION_OF_SETTING.items()
            if key in given and option in params and (name, option) not in NOT_DEFAULTED
        }
        if values:
            result[name] = values
    return result


def apply_settings(click_ctx: click.Context, config_file: Path | None) -> Settings:
    """Read the settings and make them the defaults of every command's options.

    A ``--config`` file must exist; the default file may be absent (no settings). A
    ``default_map`` the caller already gave (an embedding program, a test) keeps its values.

    Raises:
        ValueError: one line naming the file, the key and what is expected.
    """
    from .connect import use_nexo_settings

    if config_file is None:
        path = default_settings_path()
        if not path.exists():
            use_nexo_settings(None)
            return Settings()
    else:
        path = config_file
    settings = load_settings(path)
    use_nexo_settings(settings.nexo)
    merged: dict[str, Any] = dict(click_ctx.default_map or {})
    for command, values in settings_default_map(click_ctx.command, settings).items():
        merged[command] = {**values, **dict(merged.get(command) or {})}
    click_ctx.default_map = merged
    return settings


def from_settings(click_ctx: click.Context, param: str) -> bool:
    """Whether a parameter's value came from the settings (``default_map``), not the user.

    Simulated runs ask this so a depot's ledger and certificate folder from the settings never
    receive simulated terminals; only a ``--ledger``/``--out`` typed for the run does.
    """
    return click_ctx.get_parameter_source(param) is ParameterSource.DEFAULT_MAP


def shown_ledger(url: str) -> str:
    """A ledger URL fit to print: its password replaced by ``***``."""
    if "://" not in url or url.startswith("sqlite"):
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@", 1)[-1] if "@" in url else url
