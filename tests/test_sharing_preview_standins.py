"""Preview shows admins synthetic stand-ins, never real records (issue #7 finding 6).

The attack: ``GET /api/v1/agreements/preview?grantee=<own agency>`` gave an agency admin (and a
platform admin, for any agency) 100 real records per call at full precision with their
sensitivity flags, although these roles have no access to incident data.
"""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import select

from crossbeat.cli import cli
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.preview import preview
from crossbeat.store import Store
from crossbeat.store.schema import incidents
from tests.api_support import World, build_world


def _stored(store: Store) -> tuple[set[str], set[tuple[float, float]], set[str]]:
    """Return every stored id (internal and public), point and occurred_from."""
    with store.begin() as conn:
        rows = conn.execute(select(incidents)).mappings().all()
    ids = {r["id"] for r in rows} | {r.get("public_id") for r in rows if r.get("public_id")}
    points = {(r["lat"], r["lon"]) for r in rows if r["lat"] is not None}
    times = {r["occurred_from"].isoformat() for r in rows if r["occurred_from"] is not None}
    return ids, points, times


def _assert_stand_ins(store: Store, sample: list[dict], owner: str) -> None:
    ids, points, _times = _stored(store)
    assert sample, "the stand-ins show the shape of what is shared"
    for record in sample:
        assert record["id"].startswith("stand-in-") and record["id"] not in ids
        assert record["agency_id"] == owner
        assert (record.get("lat"), record.get("lon")) not in points
        assert not record.get("sensitivity")
        assert record.get("status") in (None, "stand-in")


def test_agency_admin_previewing_own_agency_gets_stand_ins(store: Store) -> None:
    world: World = build_world(store)
    admin, _ = world.signed_in("a.admin")
    # The attack: the owner's admin previews its own agency (full precision, all fields).
    body = admin.get("/api/v1/agreements/preview?grantee=citya&sample=100").json()
    assert body["sample_kind"] == "stand-ins"
    assert body["visible"] == sum(1 for i in world.population if i.owner == "citya")
    _assert_stand_ins(store, body["sample"], "citya")
    # Full precision is what the grantee (the owner's own data roles) gets, and the
    # public release too: stand-ins show each shape, with made-up points.
    assert body["sample"][0]["location_precision"] == "exact"
    assert {r["location_precision"] for r in body["sample"]} == {"exact", "h3:9"}
    # A partner preview of an agreement (approved by this citya admin's account): the
    # grantee's shape, not its records.
    grant = {"offences": ["all"], "fields": ["all"], "precision": "block",
             "purposes": ["analysis"], "approved_by": "a.admin"}  # fmt: skip
    create_agreement(store, "citya", "countyb", clock=world.clock, **grant)
    partner = admin.get("/api/v1/agreements/preview?grantee=countyb&sample=20").json()
    assert partner["sample_kind"] == "stand-ins" and len(partner["sample"]) == 20
    _assert_stand_ins(store, partner["sample"], "citya")
    assert {r["location_precision"] for r in partner["sample"]} == {"block", "h3:9"}


def test_platform_admin_gets_stand_ins_for_any_agency(store: Store) -> None:
    world = build_world(store)
    root, _ = world.signed_in("root")
    for owner in ("citya", "countyb"):
        body = root.get(
            f"/api/v1/agreements/preview?owner={owner}&grantee={owner}&sample=50"
        ).json()
        assert body["sample_kind"] == "stand-ins"
        _assert_stand_ins(store, body["sample"], owner)
        public = root.get(
            f"/api/v1/agreements/preview?owner={owner}&grantee=public&sample=50"
        ).json()
        _assert_stand_ins(store, public["sample"], owner)
        assert {r["location_precision"] for r in public["sample"]} == {"h3:9"}


def test_only_an_owner_data_role_or_the_operator_asking_gets_real_records(store: Store) -> None:
    world = build_world(store)
    from crossbeat.auth.roles import Actor, Role

    analyst_admin = Actor("u1", "aa", "citya", frozenset({Role.AGENCY_ADMIN, Role.ANALYST}))
    shown = preview(store, "citya", "citya", sample=5, by=analyst_admin)
    ids, _points, _times = _stored(store)
    assert shown.sample_kind == "records" and {r["id"] for r in shown.sample} <= ids
    other = Actor("u2", "bb", "countyb", frozenset({Role.PLATFORM_ADMIN, Role.ANALYST}))
    assert preview(store, "citya", "citya", sample=5, by=other).sample_kind == "stand-ins"
    assert preview(store, "citya", "public", sample=5).sample_kind == "stand-ins"
    real = preview(store, "citya", "public", sample=5, real_sample=True)
    assert real.sample_kind == "records" and {r["id"] for r in real.sample} <= ids
    assert world.population


def test_cli_preview_prints_stand_ins(store: Store) -> None:
    build_world(store)
    runner = CliRunner()
    env = {"CROSSBEAT_DB": store.url}
    out = runner.invoke(cli, ["agreement", "preview", "citya", "citya", "--sample", "30"], env=env)
    assert out.exit_code == 0, out.output
    assert "synthetic stand-ins" in out.output
    sample = [json.loads(line.split("sample", 1)[1]) for line in out.output.splitlines()
              if line.startswith("  sample  ")]  # fmt: skip
    _assert_stand_ins(store, sample, "citya")
    as_json = runner.invoke(
        cli, ["agreement", "preview", "citya", "public", "--json", "--sample", "5"], env=env
    )
    body = json.loads(as_json.output)
    assert body["sample_kind"] == "stand-ins"
    _assert_stand_ins(store, body["sample"], "citya")
