"""Scenario and profile files (TOML) for every simulator family: loading, merging, validation.

Simulated terminals are described as data so that new cases need no code; these helpers keep
that data honest: a typo in a key is an error naming the file and section, never silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from importlib import resources
from typing import Any

from posdiag.drivers.errors import PosdiagError


class ScenarioError(PosdiagError):
    """A scenario or profile name or file that cannot be used."""


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; tables merge, everything else (lists too) is replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def toml_names(package: str, exclude: tuple[str, ...] = ()) -> list[str]:
    """The ``*.toml`` names shipped in a package, without the suffix."""
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in resources.files(package).iterdir()
        if entry.name.endswith(".toml") and entry.name.removesuffix(".toml") not in exclude
    )


def load_toml(
    package: str,
    name: str,
    kind: str,
    *,
    error: type[ScenarioError] = ScenarioError,
    exclude: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One shipped TOML file by name, with the available names in the error when it is missing.

    ``exclude`` names files that are not offered to users (a base layer) and are not listed.
    """
    resource = resources.files(package) / f"{name}.toml"
    if not resource.is_file():
        available = ", ".join(toml_names(package, exclude))
        raise error(f"unknown {kind} {name!r} (available: {available})")
    return tomllib.loads(resource.read_text(encoding="utf-8"))


def build(
    cls: type, data: dict[str, Any], where: str, error: type[ScenarioError] = ScenarioError
) -> Any:
    """A dataclass from a TOML table, naming unknown keys instead of ignoring them."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise error(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return cls(**data)
