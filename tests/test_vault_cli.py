"""Where the CLI, the settings and the application factory find the KEK."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from crossbeat.api.app import create_app
from crossbeat.cli import cli
from crossbeat.demo.build import DEMO_KEK, demo_kek
from crossbeat.settings import SettingsError, load_settings
from crossbeat.vault.kek import generate_kek, parse_kek


def test_sqlite_development_key_file_is_created_and_announced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CROSSBEAT_KEK")
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    runner = CliRunner()
    first = runner.invoke(cli, ["db", "upgrade", "--db", url])
    assert first.exit_code == 0, first.output
    key_file = tmp_path / "dev.db.kek"
    assert f"Created the development key file {key_file}" in first.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    text = key_file.read_text()
    again = runner.invoke(cli, ["keys", "status", "--db", url])
    assert again.exit_code == 0 and "Created" not in again.stderr
    assert key_file.read_text() == text


def test_server_database_without_kek_is_refused_naming_the_setting(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CROSSBEAT_KEK")
    result = CliRunner().invoke(cli, ["keys", "status", "--db", pg_url])
    assert result.exit_code == 1
    assert "CROSSBEAT_KEK" in result.output and "crossbeat keys new-kek" in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CROSSBEAT_KEK": "short"}, "not valid base64"),
        ({"CROSSBEAT_KEK": "", "CROSSBEAT_KEK_FILE": "/nonexistent/cb.kek"}, "does not exist"),
    ],
)
def test_bad_configured_kek_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["keys", "status", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "x.db.kek").exists()


def test_settings_carry_the_kek_without_showing_it() -> None:
    text = generate_kek()
    settings = load_settings({"CROSSBEAT_KEK": text})
    assert settings.kek == text and text not in repr(settings)
    with pytest.raises(SettingsError, match="placeholder"):
        load_settings({"CROSSBEAT_KEK": "A" * 43 + "="})
    with pytest.raises(SettingsError, match="both kek and kek_file"):
        load_settings({"CROSSBEAT_KEK": text, "CROSSBEAT_KEK_FILE": "/k"})


def test_app_factory_passes_the_configured_kek(tmp_path: Path) -> None:
    text = generate_kek()
    url = f"sqlite:///{tmp_path / 'app.db'}"
    app = create_app(load_settings({}, database_url=url, kek=text))
    assert app.state.store.vault.kek.id == parse_kek(text).id
    dev = create_app(load_settings({}, database_url=f"sqlite:///{tmp_path / 'dev.db'}"))
    assert dev.state.store.vault is not None and (tmp_path / "dev.db.kek").exists()


def test_demo_key_for_a_server_database_lives_in_the_demo_folder(tmp_path: Path) -> None:
    key = demo_kek("postgresql://cb@db.example/demo", tmp_path)
    assert (tmp_path / DEMO_KEK).exists()
    assert demo_kek("postgresql://cb@db.example/demo", tmp_path).id == key.id
    sqlite_key = demo_kek(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path)
    assert (tmp_path / "demo.db.kek").exists() and sqlite_key.id != key.id
