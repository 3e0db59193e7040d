"""A server process's caches warmed before its first read, and no answer changed (issue #12).

On SQLite and PostgreSQL: :func:`crossbeat.sharing.warm.warm` computes the anchors of
the cells holding live records (whole cells only), reads no record for anyone (no audit
event), and a point tile drawn after it is the tile drawn by a cold process.
"""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import h3
import h3.api.basic_int as h3i
import numpy as np
import pytest

from crossbeat.audit.log import log_size
from crossbeat.sharing import plan_inputs, reads, tiles
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.policy import Viewer
from crossbeat.sharing.public import AnchorIndex
from crossbeat.sharing.warm import anchored_resolutions, warm
from crossbeat.store import Store
from tests.sharing_support import (
    ADMINS,
    AGENCIES,
    NOW,
    Inc,
    add_admins,
    insert_incidents,
    setup_agencies,
)


def _forget() -> None:
    """Start from a cold process: no kept anchors, plan inputs or tiles."""
    reads._ANCHORS.clear()
    plan_inputs.forget()
    tiles.clear_cache()


@pytest.fixture
def warm_store(store: Store, tmp_path: Path) -> Store:
    setup_agencies(store)
    add_admins(store, "countyb")
    create_agreement(  # the county's records shown to the city at H3 resolution 7
        store, "countyb", "citya", offences=["all"], fields=["all"], precision="h3:7",
        purposes=["analysis"],
        approved_by=ADMINS["countyb"][0],
    )  # fmt: skip
    rng = random.Random(5)
    population = [
        Inc(
            owner,
            f"W{k}",
            rng.uniform(45.505, 45.555),
            rng.uniform(-122.69, -122.55),
            ["23H"],
            NOW - timedelta(days=rng.randint(2, 60)),
            withdrawn=k % 10 == 0,
        )
        for k, owner in enumerate(["citya", "countyb"] * 60)
    ]
    insert_incidents(store, population)
    store.population = population  # type: ignore[attr-defined]
    _forget()
    return store


def test_warm_computes_the_anchors_of_the_cells_holding_records(warm_store: Store) -> None:
    events = log_size(warm_store)
    warmed = warm(warm_store)
    # The county's agreement snaps to resolution 7, the public's default policy to 9.
    assert set(warmed.anchors) == {7, 9}
    live = [i for i in warm_store.population if not i.withdrawn]  # type: ignore[attr-defined]
    with warm_store.connect() as conn:
        index = reads.anchor_index(conn, warm_store.url)
    for res in (7, 9):
        # The cells as stored: the cell containing each point.
        held = {h3i.latlng_to_cell(i.lat, i.lon, res) for i in live}
        whole = {c for c in held if index._whole[c] is not None}
        # (At resolution 7, ~1.2 km edges, a boundary crosses every cell of this area.)
        assert warmed.anchors[res] == len(whole) and (whole or res == 7)
        # Each kept anchor is the one a cold index computes for a point of that cell.
        cold = AnchorIndex([g for _tz, g in AGENCIES.values()])
        for cell in sorted(whole)[:20]:
            lat, lon = h3i.cell_to_latlng(cell)
            assert index._anchor_of(cell, index._whole[cell]) == cold.anchor(lat, lon, res)
    assert "anchors" in warmed.summary()
    assert log_size(warm_store) == events  # nothing read for anyone: no audit event
    assert warm(warm_store).anchors == {7: 0, 9: 0}  # a second warm-up finds them all kept


def test_a_tile_after_the_warm_up_is_the_cold_tile(warm_store: Store) -> None:
    viewer = Viewer.user("u-city", "citya", ["analyst"])
    lat, lon = 45.53, -122.62
    z = 13
    x = int((lon + 180) / 360 * (1 << z))
    y = int((1 - np.arcsinh(np.tan(np.radians(lat))) / np.pi) / 2 * (1 << z))
    found: list[Any] = []
    for warmed in (False, True):
        _forget()
        if warmed:
            warm(warm_store)
        result = tiles.tile(warm_store, viewer, z, x, y)
        found.append((result.data, result.owner_counts, result.etag))
    assert found[0][1].get("countyb")  # the county's snapped points are in the tile
    assert found[0] == found[1]


def test_anchored_resolutions_are_those_of_the_agreements_and_policies(
    warm_store: Store,
) -> None:
    with warm_store.connect() as conn:
        inputs = plan_inputs.load_inputs(conn)
    assert anchored_resolutions(inputs) == {7, 9}
    assert h3.get_resolution(h3.latlng_to_cell(45.5, -122.6, 9)) == 9


def test_the_warm_up_stops_when_its_time_is_up(warm_store: Store) -> None:
    warmed = warm(warm_store, anchor_seconds=0.0)
    assert sum(warmed.anchors.values()) == 0 and warmed.anchors_left > 0
    assert "left to first use" in warmed.summary()
