"""``posdiag station --show-config``: every setting in force, its value, and where it came from.

A station's options come from four places: the command line, the environment, the station
settings file (through click's ``default_map``) and the built-in defaults. When a station does
something unexpected in the morning, the first question is "which of them said so": click
records the source of every parameter (``ctx.get_parameter_source``), and this prints it.
The language and the logo are not station options (the group and the certificate writer read
them) and are explained here too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.text import Text

from posdiag.drivers.i18n import N_, _, language, normalise_language

from .render import safe
from .settings import OPTION_OF_SETTING, Settings, default_settings_path, shown_ledger

__all__ = ["config_rows", "show_station_config"]

SOURCE_WORDS = {
    "command_line": N_("command line"),
    "environment": N_("environment"),
    "settings_file": N_("settings file"),
    "default_map": N_("defaults given by the program calling posdiag"),
    "default": N_("built-in default"),
}
SKIPPED = frozenset({"show_config", "as_json", "nexo_events"})
"""Station options that choose this output, not how the station works (and ``--nexo-events``,
shown as the ``nexo.event_listen`` row it overrides)."""


def _source_id(source: ParameterSource | None, settings: Settings, key: str | None) -> str:
    if source is ParameterSource.COMMANDLINE:
        return "command_line"
    if source is ParameterSource.ENVIRONMENT:
        return "environment"
    if source is ParameterSource.DEFAULT_MAP:
        given = settings.given()
        return "settings_file" if key in given and settings.source else "default_map"
    return "default"


def _default_value(name: str) -> Any:
    """What a station option left unset means, as a value a person can check."""
    if name == "ledger_url":
        from .ledger import default_url

        return default_url()
    if name == "out_dir":
        from .wipe import default_certificate_dir

        return str(default_certificate_dir())
    if name == "backends_file":
        from posdiag.drivers.backend.config import default_backends_path

        path = default_backends_path()
        return str(path) if path.exists() else _("none ({path} does not exist)").format(path=path)
    if name == "policy_file":
        return _("the shipped policy")
    if name == "poll":
        return _("1 s, or 5 s when hotplug events are heard")
    return None


def _plain(value: Any) -> Any:
    """A JSON-able form of an option value (paths as text, tuples as lists)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _language_row(click_ctx: click.Context, settings: Settings) -> dict[str, Any]:
    root = click_ctx.find_root()
    source = root.get_parameter_source("lang") if "lang" in root.params else None
    env = os.environ
    if source is ParameterSource.COMMANDLINE:
        origin = "command_line"
    elif settings.language:
        origin = "settings_file"
    elif any(
        normalise_language(env.get(name)) for name in ("LC_ALL", "LC_MESSAGES", "LANG")
    ) or any(normalise_language(part) for part in env.get("LANGUAGE", "").split(":")):
        origin = "environment"
    else:
        origin = "default"
    return {"name": "language", "option": "--lang", "value": language(), "source": origin}


def config_rows(click_ctx: click.Context, settings: Settings) -> list[dict[str, Any]]:
    """One row per setting: name, option, value (None: unset), source id, and the file."""
    setting_of = {option: key for key, option in OPTION_OF_SETTING.items()}
    rows: list[dict[str, Any]] = []
    options = [
        p for p in click_ctx.command.params if isinstance(p, click.Option) and p.name
    ]
    # the settings file's keys first (what a depot sets), then the rest of the options
    first = list(setting_of)
    options.sort(key=lambda p: first.index(p.name) if p.name in first else len(first))
    for param in options:
        name = param.name or ""
        if name in SKIPPED:
            continue
        key = setting_of.get(name)
        source = _source_id(click_ctx.get_parameter_source(name), settings, key)
        value = _plain(click_ctx.params.get(name))
        if value is None:
            value = _default_value(name)
        if name == "ledger_url" and isinstance(value, str):
            value = shown_ledger(value)
        rows.append(
            {
                "name": key or max(param.opts, key=len).lstrip("-"),
                "option": max(param.opts, key=len),
                "value": value,
                "source": source,
            }
        )
    rows.append(_language_row(click_ctx, settings))
    rows.append(
        {
            "name": "logo",
            "option": None,
            "value": str(settings.logo) if settings.logo else None,
            "source": "settings_file" if settings.logo else "default",
        }
    )
    rows.extend(_nexo_rows(click_ctx, settings))
    file = str(settings.source) if settings.source else None
    for row in rows:
        row["file"] = file if row["source"] == "settings_file" else None
    return rows


def _nexo_rows(click_ctx: click.Context, settings: Settings) -> list[dict[str, Any]]:
    """The ``[nexo]`` table's keys (nexo terminals whose address names no key or CA).

    The passphrase is never shown: only where it would come from (its file, or the
    environment variable and whether it is set), so the table can be pasted into a ticket.
    ``nexo.event_listen`` is one row with the ``--nexo-events`` option that overrides it.
    """
    nexo = settings.nexo
    env = os.environ
    passphrase: Any
    if nexo is not None and nexo.passphrase_file is not None:
        passphrase, passphrase_source = str(nexo.passphrase_file), "settings_file"
    elif env.get("POSDIAG_NEXO_PASSPHRASE"):
        passphrase, passphrase_source = _("set (POSDIAG_NEXO_PASSPHRASE)"), "environment"
    else:
        passphrase, passphrase_source = None, "default"
    values = {
        "nexo.key_identifier": nexo.key_identifier if nexo else None,
        "nexo.key_version": nexo.key_version if nexo else None,
        "nexo.ca_file": str(nexo.ca_file) if nexo and nexo.ca_file else None,
    }
    rows = [
        {
            "name": name,
            "option": None,
            "value": value,
            "source": "settings_file" if value is not None else "default",
        }
        for name, value in values.items()
    ]
    rows.append(
        {
            "name": "nexo.passphrase_file",
            "option": None,
            "value": passphrase,
            "source": passphrase_source,
        }
    )
    typed = click_ctx.params.get("nexo_events")
    if typed and click_ctx.get_parameter_source("nexo_events") is ParameterSource.COMMANDLINE:
        listen, listen_source = typed, "command_line"
    elif nexo is not None and nexo.event_listen:
        listen, listen_source = nexo.event_listen, "settings_file"
    else:
        listen, listen_source = None, "default"
    rows.append(
        {
            "name": "nexo.event_listen",
            "option": "--nexo-events",
            "value": listen,
            "source": listen_source,
        }
    )
    return rows


def _value_text(value: Any) -> str:
    if value is None:
        return _("not set")
    if value is True:
        return _("yes")
    if value is False:
        return _("no")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or _("none")
    return str(value)


def show_station_config(
    out: Console, click_ctx: click.Context, settings: Settings, as_json: bool
) -> None:
    """Print the settings in force (a table, or one JSON object with ``--json``)."""
    rows = config_rows(click_ctx, settings)
    root = click_ctx.find_root()
    given = "config_file" in root.params and root.params["config_file"] is not None
    where = str(settings.source) if settings.source else None
    if as_json:
        payload = {
            "schema": "posdiag.station-config/1",
            "settings_file": where,
            "settings_file_given": given,
            "settings": {row.pop("name"): row for row in rows},
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    if where and given:
        header = _("Settings file (--config): {file}").format(file=where)
    elif where:
        header = _("Settings file: {file}").format(file=where)
    else:
        header = _("No settings file ({file} does not exist).").format(
            file=default_settings_path()
        )
    out.print(Text(header, style="bold"))
    from rich.table import Table

    table = Table(_("Setting"), _("Option"), _("From"))
    table.add_column(_("Value"), overflow="fold")
    for row in rows:
        source = _(SOURCE_WORDS[row["source"]])
        style = {"command_line": "cyan", "settings_file": "green", "environment": "yellow"}
        table.add_row(
            Text(row["name"]),
            Text(row["option"] or ""),
            Text(source, style=style.get(row["source"], "dim")),
            Text(safe(_value_text(row["value"]))),
        )
    out.print(table)
