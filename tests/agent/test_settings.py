"""The station settings file: parsing, errors, precedence, and where each value came from."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from posdiag.agent import cli
from posdiag.agent.ledger import sqlite_url
from posdiag.agent.settings import (
    Settings,
    default_settings_path,
    load_settings,
    settings_default_map,
)


@pytest.fixture(autouse=True)
def _isolate(cli_home: Path) -> Path:
    return cli_home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str, **kwargs: object) -> Result:
    return CliRunner().invoke(cli.main, list(args), **kwargs)  # type: ignore[arg-type]


GOOD = """
operator = "Li Wei"
organisation = "深圳退机中心"
location = "Bench 3"
language = "zh-CN"
ledger = "records/ledger.sqlite3"
certificates = "certs"
policy = "/etc/posdiag/policy.toml"
max_parallel = 8
backends = "~/backends.toml"
logo = "logo.png"
"""


def test_a_good_file_is_read_with_paths_resolved_beside_it(tmp_path: Path) -> None:
    path = write(tmp_path / "depot" / "station.toml", GOOD)
    settings = load_settings(path)
    folder = path.parent.absolute()
    assert settings.operator == "Li Wei"
    assert settings.organisation == "深圳退机中心"
    assert settings.location == "Bench 3"
    assert settings.language == "zh-CN"
    assert settings.max_parallel == 8
    assert settings.certificates == folder / "certs"
    assert settings.logo == folder / "logo.png"
    assert settings.policy == Path("/etc/posdiag/policy.toml")
    assert settings.backends == Path.home() / "backends.toml"
    assert settings.ledger == sqlite_url(folder / "records" / "ledger.sqlite3")
    assert settings.source == path.absolute()


def test_ledger_urls_keep_their_form_and_a_relative_sqlite_file_goes_beside_the_file(
    tmp_path: Path,
) -> None:
    postgres = "postgresql://posdiag:secret@ledger.depot/posdiag"
    path = write(tmp_path / "a.toml", f'ledger = "{postgres}"\n')
    assert load_settings(path).ledger == postgres
    path = write(tmp_path / "b.toml", 'ledger = "sqlite:///l.db"\n')
    assert load_settings(path).ledger == f"sqlite:///{tmp_path.absolute() / 'l.db'}"
    path = write(tmp_path / "c.toml", 'ledger = "sqlite:////abs/l.db"\n')
    assert load_settings(path).ledger == "sqlite:////abs/l.db"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('operater = "x"\n', ("unknown setting operater", "did you mean operator")),
        ('colour = "red"\n', ("unknown setting colour", "known: operator")),
        ("[station]\noperator = 'x'\n", ("unknown setting station",)),
        ('max_parallel = "4"\n', ("max_parallel must be a whole number from 1 to 256", "text")),
        ("max_parallel = true\n", ("max_parallel must be", "true/false")),
        ("max_parallel = 0\n", ("max_parallel must be a whole number from 1 to 256, not 0",)),
        ("operator = 5\n", ("operator must be text in quotes", "not a number")),
        ("certificates = ['a']\n", ("certificates must be a file or folder path", "a list")),
        ('language = "klingon"\n', ('language must be "en" or "zh-CN"',)),
        ('operator = "  "\n', ("operator is empty",)),
        ("operator = \n", ("is not valid TOML",)),
    ],
)
def test_mistakes_are_one_line_naming_the_file_the_key_and_what_is_expected(
    tmp_path: Path, text: str, words: tuple[str, ...]
) -> None:
    path = write(tmp_path / "station.toml", text)
    with pytest.raises(ValueError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path.absolute()) in message
    for word in words:
        assert word in message


def test_cli_reports_a_broken_file_as_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path / "station.toml", 'max_parallel = "many"\n')
    result = invoke("--config", str(path), "station", "--show-config")
    assert result.exit_code == 2
    assert "max_parallel" in result.output and str(path) in result.output
    assert "Traceback" not in result.output


def test_a_missing_config_file_is_an_error_but_a_missing_default_file_is_not(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nowhere.toml"
    result = invoke("--config", str(missing), "station", "--show-config")
    assert result.exit_code == 2
    assert str(missing) in result.output and "does not exist" in result.output
    assert not default_settings_path().exists()
    result = invoke("station", "--show-config", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["settings_file"] is None
    assert shown["settings"]["max_parallel"] == {
        "option": "--max-parallel",
        "value": 4,
        "source": "default",
        "file": None,
    }


def test_the_default_file_lives_in_the_xdg_config_folder(cli_home: Path) -> None:
    assert default_settings_path() == cli_home / "config" / "posdiag" / "station.toml"
    write(default_settings_path(), "max_parallel = 3\n")
    result = invoke("station", "--show-config", "--json")
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)["settings"]["max_parallel"]
    assert entry["value"] == 3 and entry["source"] == "settings_file"
    assert entry["file"] == str(default_settings_path())


def test_the_command_line_overrides_the_file_and_show_config_says_where_from(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "station.toml", GOOD)
    result = invoke(
        "--config", str(path), "station", "--show-config", "--json", "--max-parallel", "2"
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["settings_file"] == str(path.absolute()) and shown["settings_file_given"]
    settings = shown["settings"]
    assert settings["max_parallel"]["value"] == 2
    assert settings["max_parallel"]["source"] == "command_line"
    assert settings["max_parallel"]["file"] is None
    assert settings["operator"] == {
        "option": "--operator",
        "value": "Li Wei",
        "source": "settings_file",
        "file": str(path.absolute()),
    }
    assert settings["certificates"]["value"] == str(path.parent.absolute() / "certs")
    assert settings["deadline"]["source"] == "default"
    assert settings["language"]["source"] == "settings_file"
    assert settings["logo"]["value"] == str(path.parent.absolute() / "logo.png")


def test_show_config_names_the_environment_as_a_source(tmp_path: Path) -> None:
    result = invoke(
        "station",
        "--show-config",
        "--json",
        auto_envvar_prefix="POSDIAG",
        env={"POSDIAG_STATION_DEADLINE": "60", "LANG": "zh_CN.UTF-8"},
    )
    assert result.exit_code == 0, result.output
    settings = json.loads(result.output)["settings"]
    assert settings["deadline"]["value"] == 60.0
    assert settings["deadline"]["source"] == "environment"
    assert settings["language"]["source"] == "environment"


def test_show_config_human_table_and_masked_ledger_password(tmp_path: Path) -> None:
    path = write(
        tmp_path / "station.toml",
        'operator = "Dana"\nledger = "postgresql://posdiag:hunter22@db.depot/posdiag"\n',
    )
    result = invoke("--config", str(path), "station", "--show-config", "--operator", "Eve")
    assert result.exit_code == 0, result.output
    assert "hunter22" not in result.output
    assert "db.depot" in result.output
    lines = {line.split()[1]: line for line in result.output.splitlines() if "│" in line}
    assert "command line" in lines["operator"] and "Eve" in lines["operator"]
    assert "settings file" in lines["ledger"]
    assert "built-in default" in lines["max_parallel"]


def test_settings_reach_only_the_commands_with_that_option(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "station.toml", GOOD))
    # The group imports a command's module when it is run (click resolves it before the
    # settings are read); here no command runs, so load them all as a run of each would.
    context = click.Context(cli.main)
    for name in cli.main.list_commands(context):
        cli.main.get_command(context, name)
    mapping = settings_default_map(cli.main, settings)
    assert mapping["station"]["operator"] == "Li Wei"
    assert mapping["station"]["max_parallel"] == 8
    assert mapping["wipe"]["organisation"] == "深圳退机中心"
    assert mapping["wipe"]["out_dir"] == settings.certificates
    assert mapping["check"] == {"policy_file": settings.policy, "backends_file": settings.backends}
    assert mapping["report"] == {"ledger_url": settings.ledger}
    assert "operator" in mapping["lost"] and "ledger_url" in mapping["lost"]
    assert "verify" not in mapping  # verify --ledger is a switch, not a default
    assert settings_default_map(cli.main, Settings()) == {}


def test_wipe_without_operator_uses_the_settings_operator(tmp_path: Path) -> None:
    path = write(
        tmp_path / "station.toml",
        'operator = "Settings Operator"\norganisation = "Depot Nord"\nlocation = "Bench 3"\n',
    )
    ledger = tmp_path / "l.sqlite3"
    result = invoke(
        "--config",
        str(path),
        "wipe",
        "adb+sim://fresh?model=sunmi-p2",
        "--yes",
        "--json",
        "--ledger",
        sqlite_url(ledger),
        "--out",
        str(tmp_path / "certs"),
    )
    assert result.exit_code == 0, result.output
    wiped = json.loads(result.stdout)
    certificate = json.loads(Path(wiped["certificate"]).read_text(encoding="utf-8"))
    text = json.dumps(certificate, ensure_ascii=False)
    assert "Settings Operator" in text and "Depot Nord" in text and "Bench 3" in text
    # and without settings, --operator is still required
    result = invoke("wipe", "adb+sim://fresh?model=sunmi-p2", "--yes")
    assert result.exit_code == 2 and "--operator" in result.output


def test_a_simulated_station_keeps_out_of_the_settings_ledger(tmp_path: Path) -> None:
    depot = tmp_path / "depot.sqlite3"
    path = write(
        tmp_path / "station.toml",
        f'ledger = "{depot}"\ncertificates = "{tmp_path / "certs"}"\nmax_parallel = 2\n',
    )
    result = invoke("--config", str(path), "station", "--simulate", "2", "--json")
    assert result.exit_code == 0, result.output
    assert not depot.exists()
    assert "simulated-ledger" in result.stderr
    # a ledger typed for the run is used, simulated or not
    typed = tmp_path / "typed.sqlite3"
    result = invoke(
        "--config", str(path), "station", "--simulate", "1", "--json", "--ledger",
        sqlite_url(typed),
    )
    assert result.exit_code == 0, result.output
    with sqlite3.connect(typed) as conn:
        assert conn.execute("SELECT COUNT(*) FROM inspections").fetchone()[0] == 1


def test_the_readme_settings_example_is_a_valid_settings_file(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("- **Settings**") :]
    block = section[section.index("```toml") + len("```toml") : section.index("  ```\n", 10)]
    example = "\n".join(line.removeprefix("  ") for line in block.splitlines())
    settings = load_settings(write(tmp_path / "station.toml", example))
    assert set(settings.given()) == {
        "operator", "organisation", "location", "language", "ledger", "certificates",
        "policy", "max_parallel", "backends", "logo",
    }


def test_show_config_names_the_nexo_key_but_never_its_passphrase(
    cli_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = default_settings_path().parent
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / "nexo-passphrase"
    secret.write_text("Depot-Secret-Pass-1!\n")
    secret.chmod(0o600)
    write(
        default_settings_path(),
        '[nexo]\nkey_identifier = "DepotKey"\nkey_version = 3\n'
        'passphrase_file = "nexo-passphrase"\n',
    )
    result = invoke("station", "--show-config", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["settings"]
    assert shown["nexo.key_identifier"]["value"] == "DepotKey"
    assert shown["nexo.key_version"]["source"] == "settings_file"
    assert shown["nexo.passphrase_file"]["value"] == str(secret)
    assert shown["nexo.ca_file"]["value"] is None
    assert shown["nexo.ca_file"]["source"] == "default"
    assert "Depot-Secret-Pass-1!" not in result.output
    write(default_settings_path(), "max_parallel = 3\n")
    monkeypatch.setenv("POSDIAG_NEXO_PASSPHRASE", "Env-Secret-Pass-2!")
    result = invoke("station", "--show-config")
    assert "POSDIAG_NEXO_PASSPHRASE" in result.output
    assert "Env-Secret-Pass-2!" not in result.output
