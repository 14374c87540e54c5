"""Where the nexo key and CA come from: private files, the settings, the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posdiag.drivers.errors import AddressError
from posdiag.drivers.nexo.failures import NexoConfigError
from posdiag.drivers.nexo.keys import (
    ENV_IDENTIFIER,
    ENV_PASSPHRASE,
    ENV_VERSION,
    NexoSettings,
    adyen_roots_in,
    load_key_file,
    resolve_ca,
    resolve_key,
)

PASSPHRASE = "p@ssw0rd123456"
GOOD = f'identifier = "CryptoKeyIdentifier12345"\nversion = 1\npassphrase = "{PASSPHRASE}"\n'


def private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_IDENTIFIER, ENV_VERSION, ENV_PASSPHRASE):
        monkeypatch.delenv(name, raising=False)


def test_a_private_key_file_gives_the_key(tmp_path: Path) -> None:
    key = load_key_file(private(tmp_path / "key.toml", GOOD))
    assert (key.identifier, key.version, key.passphrase) == (
        "CryptoKeyIdentifier12345",
        1,
        PASSPHRASE,
    )
    assert PASSPHRASE not in repr(key)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_key_file_others_can_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    path = private(tmp_path / "key.toml", GOOD, mode)
    with pytest.raises(NexoConfigError) as caught:
        load_key_file(path)
    assert "can be read by others" in str(caught.value)
    assert f"chmod 600 {path}" in str(caught.value)
    assert isinstance(caught.value, AddressError)  # the usage exit code, before anything is sent


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('identifier = "k"\nversion = 1\n', "must hold exactly identifier, version and passphrase"),
        (GOOD + 'extra = "x"\n', "must hold exactly"),
        (f'identifier = "k"\nversion = "one"\npassphrase = "{PASSPHRASE}"\n', "whole number"),
        (f'identifier = "k y"\nversion = 1\npassphrase = "{PASSPHRASE}"\n', "key identifier"),
        ('identifier = "k"\nversion = 1\npassphrase = ""\n', "printable ASCII"),
        ('identifier = "k"\nversion = 1\npassphrase = "pässwörd12345"\n', "printable ASCII"),
        (f'identifier = "k"\nversion = -1\npassphrase = "{PASSPHRASE}"\n', "whole number"),
    ],
)
def test_a_malformed_key_file_says_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(NexoConfigError, match=message):
        load_key_file(private(tmp_path / "key.toml", text))


def test_a_broken_toml_line_is_never_quoted(tmp_path: Path) -> None:
    path = private(tmp_path / "key.toml", f'passphrase = "{PASSPHRASE}\nidentifier = \n')
    with pytest.raises(NexoConfigError, match="is not valid TOML") as caught:
        load_key_file(path)
    assert PASSPHRASE not in str(caught.value)


def test_a_missing_or_huge_key_file(tmp_path: Path) -> None:
    with pytest.raises(NexoConfigError, match="does not exist"):
        load_key_file(tmp_path / "nope.toml")
    with pytest.raises(NexoConfigError, match="larger than"):
        load_key_file(private(tmp_path / "big.toml", GOOD + "#" * 10_000 + "\n"))
    with pytest.raises(NexoConfigError, match="is not a file"):
        load_key_file(tmp_path)


def test_the_address_key_file_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = private(tmp_path / "key.toml", GOOD)
    monkeypatch.setenv(ENV_IDENTIFIER, "other")
    monkeypatch.setenv(ENV_VERSION, "7")
    monkeypatch.setenv(ENV_PASSPHRASE, "another-passphrase")
    settings = NexoSettings(
        key_identifier="settings",
        key_version=2,
        passphrase_file=private(tmp_path / "pass", "x" * 12),
    )
    key, source = resolve_key(str(path), settings)
    assert key is not None and (key.identifier, source) == ("CryptoKeyIdentifier12345", "key file")


def test_the_settings_come_next_with_a_passphrase_file(tmp_path: Path) -> None:
    settings = NexoSettings(
        key_identifier="StationKey",
        key_version=3,
        passphrase_file=private(tmp_path / "pass", PASSPHRASE + "\n"),
        source=tmp_path / "station.toml",
    )
    key, source = resolve_key(None, settings)
    assert key is not None and source == "settings"
    assert (key.identifier, key.version, key.passphrase) == ("StationKey", 3, PASSPHRASE)


def test_the_settings_passphrase_may_come_from_the_environment(tmp_path: Path) -> None:
    settings = NexoSettings(key_identifier="StationKey", key_version=3)
    key, _ = resolve_key(None, settings, {ENV_PASSPHRASE: PASSPHRASE})
    assert key is not None and key.passphrase == PASSPHRASE
    with pytest.raises(NexoConfigError, match="set passphrase_file, or the passphrase in"):
        resolve_key(None, settings, {})


def test_a_public_passphrase_file_is_refused(tmp_path: Path) -> None:
    settings = NexoSettings(
        key_identifier="K",
        key_version=1,
        passphrase_file=private(tmp_path / "pass", PASSPHRASE, 0o644),
    )
    with pytest.raises(NexoConfigError, match="chmod 600"):
        resolve_key(None, settings)


def test_the_environment_comes_last_and_must_be_complete() -> None:
    env = {ENV_IDENTIFIER: "EnvKey", ENV_VERSION: "4", ENV_PASSPHRASE: PASSPHRASE}
    key, source = resolve_key(None, None, env)
    assert key is not None and (key.identifier, key.version, source) == ("EnvKey", 4, "environment")
    with pytest.raises(NexoConfigError, match="set all of"):
        resolve_key(None, None, {ENV_IDENTIFIER: "EnvKey"})
    with pytest.raises(NexoConfigError, match="whole number"):
        resolve_key(None, None, {**env, ENV_VERSION: "v4"})


def test_no_key_anywhere_is_clear_text() -> None:
    assert resolve_key(None, None, {}) == (None, "none")
    assert resolve_key(None, NexoSettings(ca_file=Path("/x")), {}) == (None, "none")


def test_a_ca_must_be_named(tmp_path: Path) -> None:
    with pytest.raises(NexoConfigError, match="no CA to check the terminal's certificate against"):
        resolve_ca(None, None)
    pem = tmp_path / "ca.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    assert resolve_ca(str(pem), NexoSettings(ca_file=tmp_path / "other.pem")) == (pem, False)
    assert resolve_ca(None, NexoSettings(ca_file=pem)) == (pem, True)
    with pytest.raises(NexoConfigError, match="does not exist"):
        resolve_ca(str(tmp_path / "missing.pem"), None)


def test_adyen_roots_are_known_by_fingerprint(tmp_path: Path) -> None:
    from posdiag.simulators.nexo.tls import material_for

    pem = tmp_path / "ca.pem"
    pem.write_bytes(material_for("V400m-324688179").ca_pem)
    assert adyen_roots_in(pem) == []  # a private CA is not Adyen's
    assert adyen_roots_in(tmp_path / "missing.pem") == []
