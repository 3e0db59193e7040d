"""The generated demo region: determinism, geography, planted structure, and loading it."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from shapely.geometry import Point, shape
from sqlalchemy import select

from crossbeat.cli import cli
from crossbeat.demo import region
from crossbeat.demo.build import (
    DEMO_DB,
    MANIFEST,
    build_demo,
    demo_db_url,
    demo_profile,
    write_region_files,
)
from crossbeat.demo.exports import FILES
from crossbeat.demo.generate import period_ending, report_deadline, simulate
from crossbeat.ingest.readers import open_source
from crossbeat.model import incident_id
from crossbeat.store import open_store
from crossbeat.store.schema import incident_jurisdictions, incidents, quarantine
from crossbeat.taxonomy.crosswalk import load_crosswalk, validate_crosswalk_file

SMALL = 0.05
CROSSWALKS = Path(__file__).resolve().parents[1] / "crossbeat" / "demo" / "crosswalks"


@pytest.fixture(scope="module")
def small_region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo region written once for the read-only tests of this module."""
    out = tmp_path_factory.mktemp("demo")
    write_region_files(out, seed=7, size=SMALL)
    return out


def _read(path: Path, agency: str) -> list:
    profile = demo_profile(agency)
    with open_source(path, profile.source, required_columns=profile.referenced_columns()) as r:
        return list(r)


# -- determinism -------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_files(small_region: Path, tmp_path: Path) -> None:
    write_region_files(tmp_path, seed=7, size=SMALL)
    names = sorted(p.relative_to(small_region) for p in small_region.rglob("*") if p.is_file())
    # three exports, three boundaries, the city's districts, the manifest, and the address
    # points of the city and the county
    assert len(names) == 10
    for name in names:
        assert (tmp_path / name).read_bytes() == (small_region / name).read_bytes(), name


def test_another_seed_gives_other_incidents(small_region: Path, tmp_path: Path) -> None:
    write_region_files(tmp_path, seed=8, size=SMALL)
    for name in FILES.values():
        assert (tmp_path / name).read_bytes() != (small_region / name).read_bytes()
    # The geography does not depend on the seed.
    for agency in FILES:
        rel = Path("boundaries") / f"{agency}.geojson"
        assert (tmp_path / rel).read_bytes() == (small_region / rel).read_bytes()


def test_size_scales_the_counts() -> None:
    small, full = simulate(7, 0.1), simulate(7, 1.0)
    assert 8_000 <= len(full.events) <= 15_000
    assert 0.07 < len(small.events) / len(full.events) < 0.15
    with pytest.raises(ValueError, match="size must be positive"):
        simulate(7, 0)


# -- geography -----------------------------------------------------------------------------
def _jurisdiction(out: Path, agency: str):
    doc = json.loads((out / "boundaries" / f"{agency}.geojson").read_text())
    assert doc["type"] == "FeatureCollection"
    return shape(doc["features"][0]["geometry"])


def test_city_and_county_adjoin_and_transit_overlaps_both(small_region: Path) -> None:
    city = _jurisdiction(small_region, "rivertonpd")
    county = _jurisdiction(small_region, "clackmerco")
    transit = _jurisdiction(small_region, "metrotransit")
    for geom in (city, county, transit):
        assert geom.is_valid
        minx, miny, maxx, maxy = geom.bounds  # near Portland, Oregon
        assert -123.0 < minx < maxx < -122.0 and 45.0 < miny < maxy < 46.0
    assert county.touches(city)
    assert county.intersection(city).area == 0
    shared = county.boundary.intersection(city.boundary)
    # The whole city border is shared (about 24 km; a degree of latitude is 111 km).
    assert shared.length > 0.9 * city.boundary.length
    assert transit.overlaps(city) and transit.overlaps(county)
    assert transit.intersection(city).area > 0.2 * transit.area
    assert transit.intersection(county).area > 0.2 * transit.area


def test_stations_lie_in_the_transit_corridor() -> None:
    corridor = region.transit_polygon()
    owners = Counter(region.owner_at(s.x, s.y) for s in region.stations())
    assert all(corridor.contains(Point(s.x, s.y)) for s in region.stations())
    assert owners["rivertonpd"] >= 3 and owners["clackmerco"] >= 3


def test_county_feed_is_in_oregon_state_plane_feet() -> None:
    x, y = region.to_county_feet(0, 0)
    x2, _ = region.to_county_feet(1000, 0)
    assert 7_000_000 < x < 8_500_000 and 300_000 < y < 1_200_000
    assert (x2 - x) == pytest.approx(1000 / 0.3048006, rel=0.01)


# -- planted structure -------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim():
    return simulate(7, 1.0)


def test_hotspots_are_denser_than_the_city(sim) -> None:
    city_area = region.city_polygon().area
    city_events = [e for e in sim.events if e.agency == "rivertonpd"]
    for spot in region.HOTSPOTS[:3]:
        r = 2 * spot.sigma
        near = sum(1 for e in city_events if math.hypot(e.x - spot.x, e.y - spot.y) < r)
        expected = len(city_events) * math.pi * r * r / city_area
        assert near > 3 * expected, spot.name


def test_near_repeat_burglaries_follow_within_200m_and_14_days(sim) -> None:
    clusters: dict[str, list] = {}
    for e in sim.tagged("near_repeat:"):
        clusters.setdefault(next(t for t in e.tags if t.startswith("near_repeat:")), []).append(e)
    assert len(clusters) >= 50
    for members in clusters.values():
        members.sort(key=lambda e: e.occurred_from)
        root = members[0]
        assert all(e.kind == "burglary_residential" for e in members)
        for prev, e in zip(members, members[1:], strict=False):
            assert math.hypot(e.x - root.x, e.y - root.y) <= 200.5
            assert timedelta(0) < e.occurred_from - prev.occurred_from <= timedelta(days=15)


def test_robbery_series_crosses_the_border(sim) -> None:
    series = sorted(sim.tagged("series:R1"), key=lambda e: e.occurred_from)
    assert {e.agency for e in series} == {"rivertonpd", "clackmerco"}
    assert series[-1].occurred_from - series[0].occurred_from <= timedelta(days=30)
    assert len({e.narrative for e in series}) == 1  # one modus operandi
    border = region.city_polygon().exterior
    assert all(border.distance(Point(e.x, e.y)) < 600 for e in series)


def test_double_reported_incidents_match_in_time_and_place(sim) -> None:
    pairs: dict[str, dict[str, object]] = {}
    for e in sim.tagged("duplicate:"):
        pairs.setdefault(e.tags[0], {})[e.agency] = e
    assert len(pairs) >= 30
    for pair in pairs.values():
        transit, city = pair["metrotransit"], pair["rivertonpd"]
        assert abs(transit.occurred_from - city.occurred_from) <= timedelta(minutes=12)
        assert math.hypot(transit.x - city.x, transit.y - city.y) <= 36
        assert region.owner_at(transit.x, transit.y) == "rivertonpd"


def test_sensitive_and_miscoded_records_exist(sim) -> None:
    flags = Counter(flag for e in sim.events for flag in e.sensitive)
    assert min(flags.values()) >= 20 and set(flags) == {
        "domestic_violence",
        "sexual_offence",
        "juvenile",
        "informant",
    }
    miscoded = sim.tagged("miscoded")
    assert len(miscoded) >= 20
    assert {e.recorded_kind for e in miscoded} == {"disturbance", "civil"}


def test_time_of_day_and_week_follow_the_offence(sim) -> None:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Los_Angeles")
    night = [e.occurred_from.astimezone(zone) for e in sim.events if e.kind == "disorderly"]
    late = sum(1 for t in night if t.hour >= 21 or t.hour < 3)
    morning = sum(1 for t in night if 7 <= t.hour < 13)
    assert late > 3 * morning
    weekend = sum(1 for t in night if t.weekday() >= 4)  # Friday to Sunday
    assert weekend / len(night) > 3 / 7 + 0.05


# -- exports and their profiles ------------------------------------------------------------
def test_crosswalks_are_valid() -> None:
    for path in sorted(CROSSWALKS.glob("*.toml")):
        assert validate_crosswalk_file(path) == [], path.name


@pytest.mark.parametrize(
    ("agency", "code_field", "scheme", "unknown"),
    [
        ("rivertonpd", "OFFENSE_CODE", "riverton-local", "PRWL-X"),
        ("clackmerco", "statute", "clackmer-ors", "999.999"),
        ("metrotransit", "code", "metro-transit", "ZZZZ"),
    ],
)
def test_each_export_parses_with_its_profile(
    small_region: Path, agency: str, code_field: str, scheme: str, unknown: str
) -> None:
    manifest = json.loads((small_region / MANIFEST).read_text())
    records = _read(small_region / FILES[agency], agency)
    assert len(records) == manifest["files"][agency]["rows"]
    problems = [r.row_number for r in records if r.problems]
    planted = {m["kind"]: m["row"] for m in manifest["malformed_rows"] if m["agency"] == agency}
    assert problems == ([planted["truncated_line"]] if agency == "metrotransit" else [])
    crosswalk = load_crosswalk(scheme, [CROSSWALKS])
    codes = {r.fields[code_field] for r in records if not r.problems}
    assert {c for c in codes if crosswalk.lookup(c) is None} == {unknown}


def test_each_feed_keeps_its_own_conventions(small_region: Path) -> None:
    city = _read(small_region / FILES["rivertonpd"], "rivertonpd")
    assert all(len(r.fields["OCC_TIME"]) == 4 and r.fields["OCC_TIME"].isdigit() for r in city)
    county = _read(small_region / FILES["clackmerco"], "clackmerco")
    offsets = {r.fields["reported"][-6:] for r in county}
    assert offsets == {"-07:00", "-08:00"}  # local time with daylight saving
    burglaries = [r for r in county if r.fields["statute"] in ("164.225", "164.215")]
    assert burglaries and all(
        r.fields["occurred_to"] and r.fields["occurred_to"] > r.fields["occurred_from"]
        for r in burglaries
    )
    # Eastings in US feet, except the one record planted with swapped coordinates.
    eastings = [r.geometry["coordinates"][0] for r in county]
    assert sum(1 for x in eastings if 7_000_000 < x < 8_500_000) == len(county) - 1
    transit = _read(small_region / FILES["metrotransit"], "metrotransit")
    stamps = [r.fields["ts_ms"] for r in transit if not r.problems]
    assert sum(1 for t in stamps if t.isdigit() and len(t) == 13) == len(stamps) - 1
    assert all(r.fields["station"].endswith(" Station") for r in transit if not r.problems)


def test_city_export_has_canary_personal_data(small_region: Path) -> None:
    records = _read(small_region / FILES["rivertonpd"], "rivertonpd")
    canaries = json.loads((small_region / MANIFEST).read_text())["personal_data_canaries"]
    assert len(canaries) == 20
    victims = {r.fields["VICTIM_NAME"] for r in records}
    assert all(name.upper() in victims for name in canaries)
    named = [r for r in records if r.fields["VICTIM_NAME"]]
    assert len(named) > 0.7 * len(records)
    assert any(r.fields["VICTIM_NAME"].title() in r.fields["NARRATIVE"] for r in named)
    assert all(r.fields["ADDRESS"].split(" ", 1)[0].isdigit() for r in records)


# -- building the demo database -------------------------------------------------------------
def test_build_demo_accounts_for_every_row(db_url: str, tmp_path: Path) -> None:
    summary = build_demo(db_url, tmp_path, seed=7, size=SMALL)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert set(summary.ingests) == {"rivertonpd", "clackmerco", "metrotransit"}
    for agency, s in summary.ingests.items():
        assert s.rows == manifest["files"][agency]["rows"]
        accounted = s.new + s.updated + s.unchanged + s.withdrawn + s.expunged + s.quarantined
        assert accounted == s.rows, agency
        assert s.unmapped >= 1  # the planted unknown code is stored, flagged as unmapped
    store = open_store(db_url)
    with store.connect() as conn:
        held = {(r.agency_id, r.row_number) for r in conn.execute(select(quarantine))}
        stored = {
            r.id: r
            for r in conn.execute(
                select(incidents.c.id, incidents.c.unmapped, incidents.c.sens_domestic,
                       incidents.c.sens_sexual)
            )
        }  # fmt: skip
    planted = manifest["malformed_rows"]
    # Every malformed row but the unknown code is held in quarantine, and nothing else is.
    assert held == {(m["agency"], m["row"]) for m in planted if m["kind"] != "unknown_code"}
    for m in planted:
        if m["kind"] == "unknown_code":  # stored, and flagged as unmapped
            assert stored[incident_id(m["agency"], m["source_id"])].unmapped is True
    # Sensitive incidents hidden under harmless codes are flagged from a column or the text.
    assert manifest["miscoded_sensitive"]
    for m in manifest["miscoded_sensitive"]:
        row = stored[incident_id(*m["record"])]
        assert row.sens_domestic if m["true_kind"] == "assault_dv" else row.sens_sexual, m


def test_transit_incidents_in_the_city_belong_to_both(db_url: str, tmp_path: Path) -> None:
    build_demo(db_url, tmp_path, seed=7, size=SMALL)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    store = open_store(db_url)
    with store.connect() as conn:
        rows = conn.execute(
            select(incident_jurisdictions.c.incident_id, incident_jurisdictions.c.agency_id)
        ).all()
    tags: dict[str, set[str]] = {}
    for iid, agency in rows:
        tags.setdefault(iid, set()).add(agency)
    pairs = manifest["double_reported"]
    assert pairs
    for members in pairs.values():
        for agency, source_id in members:
            # Both the transit and the city record lie in both jurisdictions.
            assert tags[incident_id(agency, source_id)] == {"metrotransit", "rivertonpd"}
    # County incidents far from the rail lines are the sheriff's alone.
    with store.connect() as conn:
        county_ids = conn.execute(
            select(incidents.c.id).where(incidents.c.agency_id == "clackmerco")
        ).scalars()
        alone = sum(1 for i in county_ids if tags.get(i) == {"clackmerco"})
    assert alone > 50


def test_rebuilding_into_the_same_database_changes_nothing(sqlite_url: str, tmp_path: Path) -> None:
    build_demo(sqlite_url, tmp_path / "a", seed=7, size=0.02)
    again = build_demo(sqlite_url, tmp_path / "b", seed=7, size=0.02)
    for agency, s in again.ingests.items():
        assert s.new == s.updated == 0, agency
        assert s.unchanged + s.quarantined == s.rows


def test_cli_demo_builds_then_reuses(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["demo", "--no-serve", "--dir", str(tmp_path), "--size", "0.03", "--port", "8123"]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "rivertonpd" in first.output and "metrotransit" in first.output
    # Nothing is served: the output says how to serve, not "API docs: <url>" (issue #7).
    assert "API docs:" not in first.output and "Not serving (--no-serve)" in first.output
    assert f"crossbeat serve --db {demo_db_url(tmp_path)}" in first.output
    assert (tmp_path / DEMO_DB).is_file()
    again = runner.invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "Using the demo database" in again.output
    rebuilt = runner.invoke(cli, [*args, "--rebuild"])
    assert rebuilt.exit_code == 0 and "Generating" in rebuilt.output


def test_a_dated_demo_ends_on_its_day_and_reports_nothing_later(tmp_path: Path) -> None:
    """`crossbeat demo` ends the year yesterday: the maps' "last 30 days" hold data (#12)."""
    end = date(2026, 12, 6)
    files = write_region_files(tmp_path / "a", seed=7, size=SMALL, end=end)
    manifest = json.loads(files.manifest.read_text())
    assert manifest["period"] == {"first_day": "2025-12-07", "last_day": "2026-12-06"}
    sim = simulate(7, SMALL, start=period_ending(end), reported_by=report_deadline(end))
    deadline = datetime(2026, 12, 7, 8, tzinfo=UTC)  # midnight after the last day, Pacific
    assert max(e.reported_at for e in sim.events) <= deadline
    assert all(e.reported_at >= (e.occurred_to or e.occurred_from) for e in sim.events)
    last_30 = [e for e in sim.events if e.occurred_from >= deadline - timedelta(days=30)]
    assert len(last_30) > len(sim.events) / 24  # about a twelfth of the year, with noise
    # Deterministic for a given day: the same files again; another day, other times.
    again = write_region_files(tmp_path / "b", seed=7, size=SMALL, end=end)
    for agency, export in files.exports.items():
        assert export.path.read_bytes() == again.exports[agency].path.read_bytes(), agency
    later = simulate(7, SMALL, start=period_ending(date(2026, 12, 7)))
    assert later.events[0].occurred_from != sim.events[0].occurred_from


def test_a_dated_demo_loads_with_only_the_planted_rows_quarantined(tmp_path: Path) -> None:
    """Nothing of a year ending yesterday is refused as reported in the future."""
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    summary = build_demo(url, tmp_path, seed=7, size=0.02, end=yesterday)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["period"]["last_day"] == yesterday.isoformat()
    with open_store(url).connect() as conn:
        held = {(r.agency_id, r.row_number) for r in conn.execute(select(quarantine))}
    planted = manifest["malformed_rows"]
    assert held == {(m["agency"], m["row"]) for m in planted if m["kind"] != "unknown_code"}
    assert sum(s.new for s in summary.ingests.values()) > 0


def test_cli_demo_ends_on_the_given_day(tmp_path: Path) -> None:
    args = ["demo", "--no-serve", "--dir", str(tmp_path), "--size", "0.02"]
    first = CliRunner().invoke(cli, [*args, "--end-date", "2026-11-30"])
    assert first.exit_code == 0, first.output
    assert "incidents up to 2026-11-30" in first.output
    again = CliRunner().invoke(cli, args)
    assert "its incidents end on 2026-11-30" in again.output


@pytest.mark.slow
def test_demo_server_serves_and_signs_audit_checkpoints(tmp_path: Path) -> None:
    """`crossbeat demo` as a newcomer runs it: a real server process on a free port."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from crossbeat.audit.heads import list_heads
    from crossbeat.demo.build import DEMO_AUDIT_KEY, demo_db_url
    from crossbeat.store.base import close_all

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "CROSSBEAT_AUDIT_KEY_FILE"}
    args = [sys.executable, "-m", "crossbeat", "demo", "--dir", str(tmp_path)]
    proc = subprocess.Popen(
        [*args, "--size", "0.03", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the demo server did not start"
                time.sleep(0.5)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert (tmp_path / DEMO_AUDIT_KEY).is_file()
    assert b"signs no audit tree heads" not in out
    heads = list_heads(open_store(demo_db_url(tmp_path)))
    close_all()
    assert heads, out.decode()
