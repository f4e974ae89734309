"""Settings precedence, provenance, validation and masking."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dmitems.config import Settings, load_settings, mask_url, read_config_file
from dmitems.errors import InvalidInput
from tests.cli_runner import invoke

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_the_embedded_sqlite_file_on_loopback() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///dmitems.db"
    assert settings.server_host == "127.0.0.1"
    assert set(settings.sources.values()) == {"default"}


def test_precedence_flag_over_env_over_file(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[database]\npool_size = 3\nmax_overflow = 4\necho = true\n')
    monkeypatch.setenv("DMITEMS_DATABASE_POOL_SIZE", "7")
    monkeypatch.setenv("DMITEMS_DATABASE_MAX_OVERFLOW", "8")
    settings = load_settings(config, {"database_pool_size": 11})
    assert settings.database_pool_size == 11
    assert settings.database_max_overflow == 8
    assert settings.database_echo is True
    assert settings.sources["database_pool_size"] == "flag"
    assert settings.sources["database_max_overflow"] == "env"
    assert settings.sources["database_echo"] == f"file {config}"
    assert settings.sources["server_port"] == "default"


def test_config_file_lookup_order(tmp_path: Path, monkeypatch) -> None:
    local = tmp_path / "dmitems.toml"
    local.write_text("[server]\nport = 1111\n")
    assert load_settings().server_port == 1111
    other = tmp_path / "other.toml"
    other.write_text("[server]\nport = 2222\n")
    monkeypatch.setenv("DMITEMS_CONFIG", str(other))
    assert load_settings().server_port == 2222
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[server]\nport = 3333\n")
    assert load_settings(explicit).server_port == 3333


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("[database]\npool_sise = 3\n", "unknown key [database] pool_sise"),
        ("[database\n", "config file"),
        ("url = 'x'\n", "must be a section"),
        ("[database]\npool_size = 0\n", "database_pool_size"),
    ],
)
def test_bad_config_files_are_invalid_input(tmp_path: Path, content: str, fragment: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        load_settings(config)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_password_env_overrides_and_is_masked(monkeypatch) -> None:
    monkeypatch.setenv("DMITEMS_DATABASE_PASSWORD", "s3cret-pw")
    settings = load_settings(flags={"database_url": "postgresql://app:old-pw@h/db"})
    assert "s3cret-pw" in settings.secrets() and "old-pw" in settings.secrets()
    assert settings.masked_url() == "postgresql://app:***@h/db"
    assert mask_url("dm+dmAsync://SYSDBA:p@ss:w0rd@h:5236") == "dm+dmAsync://SYSDBA:***@h:5236"


def test_every_setting_is_documented_in_the_example_file() -> None:
    text = (ROOT / "config.example.toml").read_text()
    from dmitems.config import field_section, toml_key

    for name in Settings.model_fields:
        section, key = field_section(name), toml_key(name)
        assert f"[{section}]" in text, section
        assert re.search(rf"^#? ?{re.escape(key)} = ", text, re.MULTILINE), name
    # And the uncommented values parse and validate.
    Settings.model_validate(read_config_file(ROOT / "config.example.toml"))


def test_config_show_reports_sources_and_masks_secrets(monkeypatch) -> None:
    monkeypatch.setenv("DMITEMS_API_KEY", "api-key-value-123")
    result = invoke(
        "--url", "postgresql+asyncpg://app:pw-in-url-456@127.0.0.1/app", "config", "show", "--json"
    )
    assert result.exit_code == 0, result.output
    rows = {(r["section"], r["key"]): r for r in result.json()["settings"]}
    assert rows[("database", "url")]["source"] == "flag"
    assert rows[("database", "url")]["value"] == "postgresql+asyncpg://app:***@127.0.0.1/app"
    assert rows[("server", "api_key")] == {**rows[("server", "api_key")], "value": "***", "source": "env"}
    assert "pw-in-url-456" not in result.output and "api-key-value-123" not in result.output
    table = invoke("--url", "sqlite:///x.db", "config", "show")
    assert table.exit_code == 0 and "pool_size" in table.stdout and "flag" in table.stdout
