"""Settings: flags over environment over the TOML file over defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.config import ConfigError, Settings, load_settings


def test_defaults() -> None:
    settings = load_settings({}, environ={})
    assert settings == Settings()
    assert settings.effective_database_url == "sqlite:///.tessera/tessera.db"
    assert settings.admin_pat_path == Path(".tessera/admin.pat")
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_precedence_flags_then_environment_then_file(tmp_path: Path) -> None:
    toml = tmp_path / "tessera.toml"
    toml.write_text('port = 9000\norg_name = "From file"\norg_domain = "file.test"\npassword_require_symbol = true\n')
    environ = {"TESSERA_CONFIG": str(toml), "TESSERA_PORT": "9100", "TESSERA_ORG_NAME": "From env"}
    settings = load_settings({"port": 9200, "data_dir": None}, environ=environ)
    assert settings.port == 9200  # flag
    assert settings.org_name == "From env"  # environment over file
    assert settings.org_domain == "file.test"  # file over default
    assert settings.password_require_symbol is True
    assert load_settings({}, environ=environ).port == 9100


def test_data_dir_and_database_url(tmp_path: Path) -> None:
    settings = load_settings({}, environ={"TESSERA_DATA_DIR": str(tmp_path)})
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'tessera.db'}"
    assert settings.admin_pat_path == tmp_path / "admin.pat"
    pg = load_settings({"database_url": "postgresql+psycopg://db/x", "admin_pat_file": "/run/admin.pat"}, environ={})
    assert not pg.uses_sqlite and pg.admin_pat_path == Path("/run/admin.pat")


@pytest.mark.parametrize("environ, message", [
    ({"TESSERA_PORT": "eighty"}, "port: expected an integer"),
    ({"TESSERA_PORT": "70000"}, "not a TCP port"),
    ({"TESSERA_PASSWORD_REQUIRE_UPPER": "maybe"}, "expected true or false"),
    ({"TESSERA_DATABASE_URL": "mysql://x"}, "database_url"),
    ({"TESSERA_PASSWORD_HASHING_THREADS": "-1"}, "password_hashing_threads"),
])
def test_bad_values_are_reported(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({}, environ=environ)


def test_unknown_file_settings_are_reported(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown settings .*prot"):
        load_settings({}, config_file=toml, environ={})
