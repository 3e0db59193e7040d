"""Shared fixtures: a real store on SQLite and on PostgreSQL + PostGIS.

PostgreSQL tests use ``CROSSBEAT_TEST_POSTGRES_URL`` (an account that may create
databases, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``). Each test gets
its own database, cloned from a migrated template made once per test session, so
tests are isolated and can run in parallel. Without the variable they skip; in CI
(``CI=true``) a skip is turned into a failure, because a skipped PostgreSQL test
means the backend went untested.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crossbeat.store import Store, open_store
from crossbeat.store.base import close_all, normalise_url
from crossbeat.vault.kek import KEK_FILE_SETTING, KEK_SETTING, Kek, generate_kek, parse_kek

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PG_ENV = "CROSSBEAT_TEST_POSTGRES_URL"


def shared_data(*parts: str) -> Path:
    """Return a path under ../shared/data, skipping the test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have the shared data, missing: {path}")
        pytest.skip(f"shared data not available: {path}")
    return path


def _pg_admin_url() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PG_ENV} is not set in CI: PostgreSQL tests must run")
        return None
    return normalise_url(url)


class _PgDatabases:
    """Creates per-test databases from a migrated template."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.template = f"cb_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        store = open_store(self.url_for(self.template))
        store.dispose()
        close_all()

    def url_for(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def new(self) -> str:
        name = f"cb_t_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        self.created.append(name)
        return self.url_for(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        for name in [*self.created, self.template]:
            self.drop(name)
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[_PgDatabases | None]:
    url = _pg_admin_url()
    if url is None:
        yield None
        return
    dbs = _PgDatabases(url)
    try:
        yield dbs
    finally:
        close_all()
        dbs.close()


@pytest.fixture
def pg_url(pg_databases: _PgDatabases | None) -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this test."""
    if pg_databases is None:
        pytest.skip(f"no PostgreSQL: set {PG_ENV}")
    url = pg_databases.new()
    yield url
    close_all()
    pg_databases.drop(make_url(url).database or "")
    pg_databases.created.remove(make_url(url).database or "")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """URL of a fresh SQLite file for this test."""
    yield f"sqlite:///{tmp_path / 'crossbeat.db'}"
    close_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database URL, once for SQLite and once for PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture(scope="session")
def kek_text() -> str:
    """A random key-encryption key (base64) for this test session; never a fixed key."""
    return generate_kek()


@pytest.fixture
def kek(kek_text: str) -> Kek:
    """The session's key-encryption key, as passed to ``open_store(url, kek=...)``."""
    return parse_kek(kek_text)


@pytest.fixture(autouse=True)
def _kek_setting(monkeypatch: pytest.MonkeyPatch, kek_text: str) -> None:
    """Configure the session KEK for CLI runs, in-process and in subprocesses."""
    monkeypatch.setenv(KEK_SETTING, kek_text)
    monkeypatch.delenv(KEK_FILE_SETTING, raising=False)


@pytest.fixture
def store(db_url: str, kek: Kek) -> Store:
    """A fresh, migrated store with the session KEK, once on SQLite and once on PostgreSQL."""
    return open_store(db_url, kek=kek)
