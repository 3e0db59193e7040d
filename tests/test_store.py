"""The store opens, migrates and reports its schema on both dialects."""

from __future__ import annotations

import pytest

from crossbeat.store import StoreError, open_store
from crossbeat.store.base import close_all


def test_migrated_to_head(store):
    assert store.current_revision() == store.head_revision()
    assert {"incidents", "incident_offences", "quarantine", "ingest_batches"} <= set(
        store.table_names()
    )


def test_unmigrated_store_names_upgrade_command(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with pytest.raises(StoreError, match="crossbeat db upgrade"):
        open_store(url, upgrade=False)
    close_all()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'nope' / 'x.db'}")


def test_unsupported_backend():
    with pytest.raises(StoreError, match="unsupported database"):
        open_store("mysql://root@localhost/x")


def test_migrations_are_one_chain_and_reversible(db_url):
    from alembic import command
    from alembic.script import ScriptDirectory

    store = open_store(db_url)
    script = ScriptDirectory.from_config(store._alembic_config(None))
    assert len(script.get_heads()) == 1, "migrations must form one linear chain"
    with store.engine.begin() as conn:
        command.downgrade(store._alembic_config(conn), "base")
    assert "incidents" not in store.table_names()
    store.upgrade()
    assert store.current_revision() == store.head_revision()
