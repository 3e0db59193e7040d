"""Migration 0027a: stored H3 cells become the cells containing each point (issue #8)."""

from __future__ import annotations

from datetime import timedelta

import h3
from alembic import command
from sqlalchemy import select

from crossbeat.store import Store, generation
from crossbeat.store.schema import incidents
from tests.sharing_support import NOW, Inc, insert_incidents, setup_agencies
from tests.test_geo_cells import STRADDLING


def test_upgrade_recomputes_the_parent_cells_and_bumps_the_generation(store: Store) -> None:
    setup_agencies(store)
    lat, lon = STRADDLING
    population = [
        Inc("citya", "S0", lat, lon, ["220"], NOW - timedelta(days=1)),
        Inc("citya", "S1", 45.52, -122.65, ["220"], NOW - timedelta(days=2)),
        Inc("citya", "S2", None, None, ["220"], NOW - timedelta(days=3)),
    ]
    insert_incidents(store, population)
    with store.engine.begin() as conn:
        command.downgrade(store._alembic_config(conn), "0026b")
    c = incidents.c
    query = select(c.source_id, c.h3_7, c.h3_9, c.h3_11).order_by(c.source_id)
    with store.connect() as conn:
        before = conn.execute(query).all()
        generation_before = generation.current(conn)
    # As stored before 0027a: the parents of the res-11 cell.
    parent = h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 11), 9)
    assert before[0].h3_9 == parent != h3.latlng_to_cell(lat, lon, 9)
    store.upgrade()
    with store.connect() as conn:
        after = conn.execute(query).all()
        assert generation.current(conn) == generation_before + 1
    for row, inc in zip(after, population, strict=True):
        if inc.lat is None:
            assert (row.h3_7, row.h3_9, row.h3_11) == (None, None, None)
            continue
        want = tuple(h3.latlng_to_cell(inc.lat, inc.lon, r) for r in (7, 9, 11))
        assert (row.h3_7, row.h3_9, row.h3_11) == want
    # Down again gives the parents back; up again the cells containing the points.
    with store.engine.begin() as conn:
        command.downgrade(store._alembic_config(conn), "0026b")
    with store.connect() as conn:
        assert conn.execute(query).all() == before
    store.upgrade()
    with store.connect() as conn:
        assert conn.execute(query).all() == after
