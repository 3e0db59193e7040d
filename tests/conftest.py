"""Shared fixtures: a real store on SQLite and on PostgreSQL + PostGIS.

PostgreSQL tests use ``CROSSBEAT_TEST_POSTGRES_URL`` (an account that may create
databases, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``). Each test gets
its own database, cloned from a migrated template made once per test session, so
tests are isolated and can run in parallel. Without the variable, or when the server
cannot be reached or lacks PostGIS, they skip with one line saying what is missing and
how to add it; in CI (``CI=true``) that is a failure instead, because a skipped
PostgreSQL test means the backend went untested.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crossbeat.auth import passwords
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
    """Creates per-test databases from a migrated template.

    A database a test is done with is dropped by background threads (:meth:`drop_later`):
    ``DROP DATABASE`` makes the server checkpoint (a second or more under load), which the
    next test need not wait for, and drops waiting together share one checkpoint.
    """

    DROPPERS = 4

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.template = f"cb_tpl_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []
        self._doomed: queue.Queue[str | None] = queue.Queue()
        self._droppers = [
            threading.Thread(target=self._drop_queued, daemon=True) for _ in range(self.DROPPERS)
        ]
        for dropper in self._droppers:
            dropper.start()
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.template}"'))
        store = open_store(self.url_for(self.template))
        store.dispose()
        close_all()

    def url_for(self, name: str) -> str:
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def new(self, template: str | None = None) -> str:
        """Return the URL of a new database, a copy of ``template`` (the migrated one)."""
        name = f"cb_t_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template or self.template}"'))
        self.created.append(name)
        return self.url_for(name)

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_later(self, name: str) -> None:
        """Drop a database no one uses any more in the background (it stays in ``created``
        until dropped, so :meth:`close` drops it if the drop fails)."""
        self._doomed.put(name)

    def _drop_queued(self) -> None:
        while (name := self._doomed.get()) is not None:
            try:
                self.drop(name)
            except Exception:  # noqa: BLE001 - close() drops what is left (and raises)
                continue
            self.created.remove(name)

    def close(self) -> None:
        for _ in self._droppers:
            self._doomed.put(None)
        for dropper in self._droppers:
            dropper.join()
        for name in [*self.created, self.template]:
            self.drop(name)
        self.admin.dispose()


def pg_unusable(url: str) -> str | None:
    """Return why the PostgreSQL server at ``url`` cannot run the tests, or None if it can.

    The answer is one line naming what is missing and how to add it: a server that
    cannot be reached, or one without the PostGIS or pgRouting extension available.
    """
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            postgis = conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
            ).scalar()
            # Patrol routes on stored road networks use pgRouting (migration 0024e
            # creates the extension when the server has it).
            pgrouting = conn.execute(
                text("SELECT 1 FROM pg_available_extensions WHERE name = 'pgrouting'")
            ).scalar()
            major = int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    except Exception as exc:  # noqa: BLE001 - any failure to connect is reported the same way
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return (
            f"cannot connect to {shown} ({cause}); start PostgreSQL "
            f"there or set {PG_ENV} to a server you can reach"
        )
    finally:
        engine.dispose()
    if not postgis:
        return (
            f"the server at {shown} lacks the PostGIS extension; "
            f"install it (Debian/Ubuntu: apt-get install postgresql-{major}-postgis-3)"
        )
    if not pgrouting:
        return (
            f"the server at {shown} lacks the pgRouting extension; "
            f"install it (Debian/Ubuntu: apt-get install postgresql-{major}-pgrouting)"
        )
    return None


#: Why the PostgreSQL tests skip in this session (set when the server is unusable).
_PG_SKIP: list[str] = []


def _uses_postgres(item: pytest.Item) -> bool:
    names = getattr(item, "fixturenames", ())
    return item.get_closest_marker("postgres") is not None or "pg_url" in names


#: The files whose tests take longest (minutes in all), started first: under pytest-xdist
#: (``--dist loadfile --no-loadscope-reorder``, as the Makefile runs it) files go to the
#: workers in collection order, so a long file collected last would run alone at the end
#: while the other workers wait. (Without ``--no-loadscope-reorder`` xdist sorts the files
#: by their number of tests, which sends the long files of one or two tests last.)
SLOW_FILES = (
    "test_audit_tamper.py", "test_api_schemathesis.py", "test_api_fuzz.py",
    "test_docs_commands.py", "test_shared_data.py", "test_audit_verify.py",
    "test_sharing_properties.py", "test_ingest_crash.py", "test_sharing_compiled.py",
    "test_live_stream.py", "test_ingest_unchanged.py", "test_sharing_agreements.py",
    "test_audit_walk.py", "test_web.py",
)  # fmt: skip


def _slow_files_first(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the slowest files first; leave out the PostgreSQL tests where none can run.

    Outside CI a machine without a reachable PostgreSQL with PostGIS runs the rest of the
    suite; the terminal summary gives the one reason (not one line per test). In CI the
    tests stay selected and fail in the ``pg_databases`` fixture.
    """
    _slow_files_first(items)
    if os.environ.get("CI") == "true":
        return
    wanted = [item for item in items if _uses_postgres(item)]
    if not wanted:
        return
    url = os.environ.get(PG_ENV)
    problem = (
        pg_unusable(normalise_url(url))
        if url
        else f"set {PG_ENV} to a server with PostGIS "
        "(e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
    )
    if problem is None:
        return
    _PG_SKIP.append(problem)
    config.hook.pytest_deselected(items=wanted)
    left = set(map(id, wanted))
    items[:] = [item for item in items if id(item) not in left]
    config.stash[_PG_SKIPPED] = len(wanted)


_PG_SKIPPED = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Print the one line that says why the PostgreSQL tests did not run."""
    n = config.stash.get(_PG_SKIPPED, 0)
    if n:
        terminalreporter.write_line(f"{n} PostgreSQL tests skipped: {_PG_SKIP[0]}", yellow=True)


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[_PgDatabases | None]:
    url = _pg_admin_url()
    if url is None:
        yield None
        return
    problem = pg_unusable(url)
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{problem} (CI must run the PostgreSQL tests)")
        _PG_SKIP.append(problem)
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
        pytest.skip(
            f"PostgreSQL tests skipped: {_PG_SKIP[0]}"
            if _PG_SKIP
            else f"no PostgreSQL: set {PG_ENV}"
        )
    url = pg_databases.new()
    yield url
    close_all()
    pg_databases.drop_later(make_url(url).database or "")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    """URL of a fresh SQLite file for this test."""
    yield f"sqlite:///{tmp_path / 'crossbeat.db'}"
    close_all()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session (per worker), the twin of the PG template.

    Migrating a new file runs the whole Alembic chain (about 0.1 s of CPU, many commits);
    copying this file gives the same database, as ``CREATE DATABASE ... TEMPLATE`` does on
    PostgreSQL. ``sqlite_url`` still names a file that does not exist yet, for the tests of
    creating and migrating a database.
    """
    path = tmp_path_factory.mktemp("sqlite-template") / "migrated.db"
    store = open_store(f"sqlite:///{path}")
    store.dispose()
    close_all()  # the last connection closed checkpoints the WAL: the file is complete
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("pg_url"))
    url = str(request.getfixturevalue("sqlite_url"))
    shutil.copyfile(request.getfixturevalue("sqlite_template"), url.removeprefix("sqlite:///"))
    return url


#: The production argon2id hasher (64 MiB, 3 passes, 4 lanes: 0.17 s of CPU per hash or
#: sign-in) and the cheapest one argon2-cffi accepts, which the other tests use.
_PRODUCTION_ARGON2 = (passwords._HASHER, passwords._DUMMY_HASH)
_TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
_TEST_ARGON2 = (_TEST_HASHER, _TEST_HASHER.hash("crossbeat-no-such-user-3b1f0c"))


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of the tests that hash passwords with the production parameters."""
    config.addinivalue_line(
        "markers", "argon2_production: hash passwords with the production argon2id parameters"
    )


def _use_argon2(mp: pytest.MonkeyPatch, hasher: tuple[PasswordHasher, str]) -> None:
    mp.setattr(passwords, "_HASHER", hasher[0])
    mp.setattr(passwords, "_DUMMY_HASH", hasher[1])


@pytest.fixture(scope="session", autouse=True)
def _cheap_argon2() -> Iterator[None]:
    """Hash passwords with argon2id at its lowest cost, except in ``argon2_production`` tests.

    Still argon2id, the same code path and the same PHC strings; the production parameters
    (and the rehash of a weaker hash at sign-in) are checked by the tests marked
    ``argon2_production`` (tests/test_auth_passwords.py), and the equal work for unknown
    and real accounts by tests/test_api_signin_abuse.py.
    """
    with pytest.MonkeyPatch.context() as mp:
        _use_argon2(mp, _TEST_ARGON2)
        yield


@pytest.fixture(autouse=True)
def _argon2_production(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("argon2_production") is None:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        _use_argon2(mp, _PRODUCTION_ARGON2)
        yield


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


_ROOT = Path(__file__).resolve().parent.parent
_STRAY = ("crossbeat.db*", "*.kek", "*.audit-key*", "*.audit-heads.jsonl")


def _stray_files() -> set[Path]:
    return {p for pattern in _STRAY for p in _ROOT.glob(pattern)}


_STRAY_BEFORE = _stray_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test left a database or key file in the checkout's root.

    Such files (a KEK, an audit signing key) must never be committed; a test that writes them
    there is using the default ``./crossbeat.db`` instead of its own temporary directory.
    """
    stray = _stray_files() - _STRAY_BEFORE
    if stray:
        names = ", ".join(sorted(p.name for p in stray))
        session.config.get_terminal_writer().line(
            f"tests left files in {_ROOT}: {names} (use tmp_path, not ./crossbeat.db)", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
