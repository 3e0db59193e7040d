"""Materialised sensitivity flags are never served stale (issue #8).

Each test ingests a real file through a profile with its own crosswalk folder, as an
agency would, publishes it, then changes one rule that decides sensitivity — the
agency's crosswalk file, the keyword list, the public policy — and requires the very
first read after the change (the SQL aggregate path, which reads only the materialised
flags, and the record path) to serve what the new rule says, equal to the per-record
reference path, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from sqlalchemy import func, select

from crossbeat.clock import FrozenClock
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.flags import current_rules, flags_of, mask_of, refresh, stale_owners
from crossbeat.sharing.overrides import tighten_public_policy
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.reads import aggregate, read_incidents
from crossbeat.sharing.tiles import POINT_ZOOM, clear_cache, tile, tile_bounds
from crossbeat.store.schema import incidents
from crossbeat.taxonomy import sensitivity
from tests.sharing_support import ADMINS, NOW, add_admins, setup_agencies

PUBLIC = Viewer.public()
OWNER = Viewer.user("u-a", "citya", ["analyst"])
PARTNER = Viewer.user("u-b", "countyb", ["analyst"])

PROFILE = """
name = "local-feed"
crosswalks = "cw"

[source]
format = "csv"
timezone = "America/Los_Angeles"

[id]
columns = ["id"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"

[[offences]]
scheme = "localx"
code = "code"
description = "desc"
"""


def _crosswalk(version: str, qq7_flags: str) -> str:
    return f"""
[crosswalk]
scheme = "localx"
version = "{version}"

[[map]]
local = "BURG"
nibrs = "220"
match = "exact"

[[map]]
local = "QQ7"
nibrs = "13B"
match = "exact"
sensitivity = [{qq7_flags}]
"""


def _write_crosswalk(folder: Path, version: str, qq7_flags: str) -> None:
    path = folder / "localx.toml"
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(_crosswalk(version, qq7_flags))
    # A coarse file-system clock must still see a change.
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


@pytest.fixture
def world(store, tmp_path):
    """citya's feed: 10 burglaries, one QQ7 scuffle, one burglary whose text says ZORBLAX."""
    setup_agencies(store)
    store.clock = FrozenClock(NOW)
    (tmp_path / "cw").mkdir()
    _write_crosswalk(tmp_path / "cw", "1", "")
    rows = [
        {"id": f"R{i}", "when": "2026-05-01 10:00", "lon": f"{-122.69 + i * 0.001:.4f}",
         "lat": "45.53", "code": "BURG", "desc": "BURGLARY"}
        for i in range(10)
    ] + [
        {"id": "QQ", "when": "2026-05-01 10:00", "lon": "-122.66", "lat": "45.53",
         "code": "QQ7", "desc": "SCUFFLE"},
        {"id": "ZB", "when": "2026-05-01 10:00", "lon": "-122.65", "lat": "45.53",
         "code": "BURG", "desc": "ZORBLAX KIT"},
    ]  # fmt: skip
    path = tmp_path / "feed.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    profile = parse_profile(PROFILE, base_dir=str(tmp_path))
    ingest_files(store, "citya", profile, [path])
    add_admins(store, "citya")
    create_agreement(store, "citya", "public", approved_by=ADMINS["citya"][0])
    create_agreement(
        store, "citya", "countyb", offences=["all"], fields=["all"], purposes=["analysis"],
        precision="exact", approved_by=ADMINS["citya"],
    )  # fmt: skip
    store.cw = tmp_path / "cw"
    return store


def _source_ids(store, viewer: Viewer) -> set[str]:
    """Source ids of what the viewer is served (looked up from the ids it sees)."""
    shown = {r["id"] for r in read_incidents(store, viewer).records}
    with store.begin() as conn:
        q = select(incidents.c.source_id, incidents.c.id, incidents.c.public_id)
        return {s for s, i, p in conn.execute(q) if i in shown or p in shown}


def _count(store, viewer: Viewer, path: str) -> int | None:
    return aggregate(store, viewer, ReadRequest(purpose=None), by=("agency",), path=path).total


def _stale(store) -> list[str]:
    with store.begin() as conn:
        return stale_owners(conn, ["citya"], current_rules(conn).key)


def _served_first(store, viewer: Viewer) -> int | None:
    """The first read after a change: the SQL aggregate (materialised flags only)."""
    assert _stale(store) == ["citya"]  # the change made the stored flags stale...
    total = _count(store, viewer, "sql")
    assert _stale(store) == []  # ...and that read re-derived them before counting
    assert total == _count(store, viewer, "reference")
    return total


def test_flags_are_derived_before_the_first_read(world):
    assert _stale(world) == ["citya"]  # the ingest leaves them for the reads
    assert _count(world, PUBLIC, "sql") == 12
    assert _stale(world) == []
    with world.begin() as conn:
        q = select(incidents.c.source_id, incidents.c.sens_served)
        masks = {row.source_id: row.sens_served for row in conn.execute(q)}
        assert refresh(conn) == 0  # nothing left to re-derive
    assert set(masks.values()) == {0}


def test_a_crosswalk_change_is_served_by_the_first_read(world):
    assert _count(world, PUBLIC, "sql") == 12
    assert "QQ" in _source_ids(world, PARTNER)
    _write_crosswalk(world.cw, "2", '"domestic_violence"')
    assert _served_first(world, PUBLIC) == 11
    assert "QQ" not in _source_ids(world, PUBLIC) | _source_ids(world, PARTNER)
    assert "QQ" in _source_ids(world, OWNER)  # the owner still sees its record
    with world.begin() as conn:
        mask = conn.execute(
            select(incidents.c.sens_served).where(incidents.c.source_id == "QQ")
        ).scalar_one()
    assert [f.value for f in flags_of(mask)] == ["domestic_violence"]
    # Mapped to a sexual offence instead: the NIBRS code's flags follow the file.
    path = world.cw / "localx.toml"
    text = path.read_text().replace('nibrs = "13B"', 'nibrs = "11A"').replace('"2"', '"3"')
    text = text.replace('"domestic_violence"', "")
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))
    assert _served_first(world, PUBLIC) == 11
    with world.begin() as conn:
        mask = conn.execute(
            select(incidents.c.sens_served).where(incidents.c.source_id == "QQ")
        ).scalar_one()
    assert mask == mask_of(flags_of(mask)) and "sexual_offence" in {f.value for f in flags_of(mask)}
    # And the fix that removes the flag is served too (re-derived, not only added).
    _write_crosswalk(world.cw, "4", "")
    assert _served_first(world, PUBLIC) == 12
    assert "QQ" in _source_ids(world, PARTNER)


@pytest.fixture
def keywords(tmp_path, monkeypatch):
    """Point the keyword list at a copy that the test may edit; restore it afterwards."""
    copy = tmp_path / "sensitive_keywords.toml"
    copy.write_bytes(sensitivity._KEYWORDS.read_bytes())
    monkeypatch.setattr(sensitivity, "_KEYWORDS", copy)
    sensitivity.reload_rules()
    yield copy
    monkeypatch.undo()
    sensitivity.reload_rules()


def test_a_keyword_list_change_is_served_by_the_first_read(world, keywords):
    assert _count(world, PUBLIC, "sql") == 12
    assert "ZB" in _source_ids(world, PUBLIC)
    text = keywords.read_text()
    head = "[flags.sexual_offence]\npatterns = [\n"
    assert head in text
    keywords.write_text(text.replace(head, head + "    '\\bZORBLAX\\b',\n"))
    sensitivity.reload_rules()
    assert _served_first(world, PUBLIC) == 11
    assert "ZB" not in _source_ids(world, PUBLIC) | _source_ids(world, PARTNER)
    assert "ZB" in _source_ids(world, OWNER)


def test_a_public_policy_change_is_served_by_the_first_read(world):
    assert _count(world, PUBLIC, "sql") == 12
    tighten_public_policy(world, "citya", {"suppress_offences": ["13B"]})
    # Nothing is materialised from the public policy: nothing is stale, and the first
    # read compiles the new policy into its SQL.
    assert _stale(world) == []
    assert _count(world, PUBLIC, "sql") == _count(world, PUBLIC, "reference") == 11
    assert "QQ" not in _source_ids(world, PUBLIC)
    assert "QQ" in _source_ids(world, PARTNER)  # an agreement is not the public policy


def test_a_changed_record_is_re_derived(world, tmp_path):
    assert _count(world, PUBLIC, "sql") == 12
    rows = [{"id": "R0", "when": "2026-05-01 10:00", "lon": "-122.69", "lat": "45.53",
             "code": "BURG", "desc": "RAPE KIT STOLEN"}]  # fmt: skip
    path = tmp_path / "fix.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ingest_files(world, "citya", parse_profile(PROFILE, base_dir=str(tmp_path)), [path])
    with world.begin() as conn:
        n = conn.execute(select(func.count()).where(incidents.c.sens_rules.is_(None))).scalar()
    assert n == 1  # the new version waits for the reads...
    assert _served_first(world, PUBLIC) == 11  # ...which derive it before serving
    assert "R0" not in _source_ids(world, PUBLIC)


def _point_tile(z: int, lon: float, lat: float) -> tuple[int, int, int]:
    n = 1 << z
    r = math.radians(lat)
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1 - math.log(math.tan(r) + 1 / math.cos(r)) / math.pi) / 2 * n)
    return z, x, y


def _public_tiles(store, tiles: list[tuple[int, int, int]], etags: list[str] | None = None) -> Any:
    """The public tiles (from the in-process cache when cached), and the ids they show."""
    results, ids = [], set()
    for i, (z, x, y) in enumerate(tiles):
        result = tile(store, PUBLIC, z, x, y, if_none_match=etags[i] if etags else None)
        layer = mapbox_vector_tile.decode(result.data).get("incidents", {}) if result.data else {}
        ids |= {f["properties"]["id"] for f in layer.get("features", [])}
        results.append(result)
    return results, ids


def test_a_rules_change_gives_public_tiles_a_new_etag_and_content(world, keywords):
    """Crosswalk and keyword-list changes bump no data generation, yet no cached tile survives.

    The tile cache is *not* cleared between the reads: a tile cached under the old rules
    (the 60 s public cache) must never be served after they change.
    """
    clear_cache()
    z, x, y = _point_tile(POINT_ZOOM, -122.69, 45.53)
    tiles = [(z, x, y), (z, x + 1, y)]
    assert tile_bounds(z, x + 1, y)[2] > -122.64  # the two tiles hold every record

    def etags(results: list[Any]) -> list[str]:
        return [r.etag for r in results]

    first, ids = _public_tiles(world, tiles)
    assert len(ids) == 12
    again, _ = _public_tiles(world, tiles, etags(first))
    assert all(r.not_modified for r in again) and etags(again) == etags(first)
    cached, same = _public_tiles(world, tiles)  # drawn from the cache
    assert etags(cached) == etags(first) and same == ids
    # The crosswalk makes QQ7 domestic violence: new ETags, the record left out.
    _write_crosswalk(world.cw, "2", '"domestic_violence"')
    second, ids2 = _public_tiles(world, tiles, etags(first))
    assert not any(r.not_modified for r in second)
    assert not set(etags(second)) & set(etags(first))
    assert len(ids2) == 11 and ids2 < ids
    # The keyword list makes ZORBLAX a sexual offence: again.
    text = keywords.read_text()
    head = "[flags.sexual_offence]\npatterns = [\n"
    keywords.write_text(text.replace(head, head + "    '\\bZORBLAX\\b',\n"))
    sensitivity.reload_rules()
    third, ids3 = _public_tiles(world, tiles, etags(second))
    assert not any(r.not_modified for r in third)
    assert not set(etags(third)) & (set(etags(first)) | set(etags(second)))
    assert len(ids3) == 10 and ids3 < ids2
    # Hexagon tiles (the counts) move with the rules too.
    hz, hx, hy = _point_tile(10, -122.67, 45.53)
    hexes = tile(world, PUBLIC, hz, hx, hy)
    _write_crosswalk(world.cw, "3", "")
    assert tile(world, PUBLIC, hz, hx, hy, if_none_match=hexes.etag).etag != hexes.etag
