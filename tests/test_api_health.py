"""The web application factory, /health, the landing page and the settings registry."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import event

from crossbeat import __version__
from crossbeat.api.app import create_app
from crossbeat.audit.keys import generate_signing_key, write_signing_key
from crossbeat.cli import cli
from crossbeat.settings import SETTINGS, Settings, SettingsError, load_settings, settings_fields
from crossbeat.store import open_store


def _client(db_url: str, keys: Path | None = None) -> TestClient:
    """A client of a server on ``db_url``; ``keys``: a folder for its audit signing key.

    A server signs audit tree heads: beside a SQLite file it makes its own key, any other
    database needs ``audit_key_file`` (here a fresh key in ``keys``).
    """
    settings: dict[str, str] = {}
    if keys is not None:
        write_signing_key(generate_signing_key(), keys / "audit.pem")
        settings = {"audit_key_file": str(keys / "audit.pem"),
                    "audit_heads_file": str(keys / "heads.jsonl")}  # fmt: skip
    return TestClient(create_app(load_settings({}, database_url=db_url, **settings)))


def test_health_reports_version_and_dialect_without_the_database(
    db_url: str, tmp_path: Path
) -> None:
    store = open_store(db_url)
    client = _client(db_url, tmp_path)  # no lifespan: no background task runs statements
    body = client.get("/health").json()
    assert body == {"ok": True, "version": __version__, "database": {"dialect": store.dialect}}
    assert body["database"]["dialect"] in ("sqlite", "postgresql")
    # Liveness asks nothing of the database: not one statement per probe.
    statements: list[str] = []
    engine = client.app.state.store.engine  # type: ignore[attr-defined]
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    ready = client.get("/ready").json()
    assert ready["database"]["schema_revision"] == store.head_revision()
    assert statements  # readiness does ask
    before = len(statements)
    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert len(statements) == before


def test_ready_when_the_schema_is_current_and_not_when_behind(sqlite_url: str) -> None:
    client = _client(sqlite_url)
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["ok"] is True
    store = open_store(sqlite_url)
    with store.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    behind = client.get("/ready")
    assert behind.status_code == 503 and behind.headers["Retry-After"].isdigit()
    assert "crossbeat db upgrade" in behind.json()["error"]
    assert client.get("/health").status_code == 200


def test_openapi_and_docs_pages(sqlite_url: str) -> None:
    client = _client(sqlite_url)
    spec = client.get("/openapi.json").json()
    assert spec["info"] == {
        "title": "CrossBeat",
        "version": __version__,
        "description": spec["info"]["description"],
    }
    assert "/health" in spec["paths"] and "/" not in spec["paths"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # Every asset of the page is served here: it works without internet access.
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/static/docs/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "/docs" not in spec["paths"] and "/static" not in str(spec["paths"])
    home = client.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in home.text and __version__ in home.text
    # The public map page and its scripts ship in the package (crossbeat/web/static).
    script = re.search(r'src="(/static/web/assets/[^"]+\.js)"', home.text)
    assert script and client.get(script.group(1)).status_code == 200


def test_apps_are_independent(tmp_path: Path) -> None:
    a = create_app(load_settings({}, database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    b = create_app(load_settings({}, database_url=f"sqlite:///{tmp_path / 'b.db'}"))
    assert a is not b and a.state.store is not b.state.store
    assert a.state.settings.database_url.endswith("a.db")


# -- settings ----------------------------------------------------------------------------
def test_settings_registry_matches_the_settings_object() -> None:
    assert tuple(s.name for s in SETTINGS) == settings_fields()
    defaults = Settings()
    for s in SETTINGS:
        assert getattr(defaults, s.name) == s.default
        assert s.help.strip()


def test_load_settings_reads_environment_then_overrides() -> None:
    env = {"CROSSBEAT_DB": "sqlite:///x.db", "CROSSBEAT_PORT": "9001", "CROSSBEAT_HOST": "::1"}
    s = load_settings(env)
    assert (s.database_url, s.port, s.host) == ("sqlite:///x.db", 9001, "::1")
    s = load_settings(env, port=9002, host=None)
    assert (s.port, s.host) == (9002, "::1")
    assert load_settings({}) == Settings()


@pytest.mark.parametrize(
    ("env", "overrides", "message"),
    [
        ({"CROSSBEAT_PORT": "eighty"}, {}, "port from CROSSBEAT_PORT must be a whole number"),
        ({}, {"port": 70000}, "between 1 and 65535"),
        ({}, {"colour": "red"}, "unknown setting"),
        ({}, {"database_url": "  "}, "database_url is empty"),
    ],
)
def test_bad_settings_are_refused(env: dict, overrides: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env, **overrides)


def test_serve_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            cli, ["serve", "--db", f"sqlite:///{tmp_path / 'x.db'}", "--port", str(port)]
        )
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output
    assert f"--port {port + 1}" in result.output


def test_serve_refuses_an_address_of_another_machine(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(cli, ["serve", "--db", db, "--host", "192.0.2.1"])
    assert result.exit_code == 1
    assert "cannot listen on 192.0.2.1" in result.output and "--host 127.0.0.1" in result.output
