"""Analytics wired end to end on the demo region: duplicates, series, the service, API, CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from crossbeat.agencies import get_agency
from crossbeat.analysis.duplicates import find_duplicates, linked_groups
from crossbeat.analysis.errors import AnalysisError
from crossbeat.analysis.series import detect_series
from crossbeat.analytics import links, run
from crossbeat.analytics.named import render_named, run_named
from crossbeat.analytics.selection import _refusal
from crossbeat.analytics.selection import select as select_incidents
from crossbeat.audit import iter_events
from crossbeat.cli import cli
from crossbeat.demo.build import MANIFEST, build_demo
from crossbeat.model import incident_id
from crossbeat.sharing.arrays import analysis_arrays
from crossbeat.sharing.own import operator_viewer
from crossbeat.sharing.policy import Decision, ReadRequest
from crossbeat.store import Store, open_store
from crossbeat.store.base import close_all
from crossbeat.store.schema import duplicate_links, incidents

CITY = operator_viewer("rivertonpd")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    """A demo region of about 3,000 incidents (12 double-reported, one planted series)."""
    out = tmp_path_factory.mktemp("demo")
    url = f"sqlite:///{out / 'demo.db'}"
    build_demo(url, out, size=0.3)
    close_all()  # checkpoint the WAL so that a copy of the file holds everything
    return url, json.loads((out / MANIFEST).read_text())


@pytest.fixture
def demo_store(demo: tuple[str, dict], tmp_path: Path) -> Store:
    """A private copy of the demo database (tests that link change it)."""
    src = Path(demo[0].removeprefix("sqlite:///"))
    dst = tmp_path / "demo.db"
    dst.write_bytes(src.read_bytes())
    for suffix in ("-wal", "-shm"):
        side = src.with_name(src.name + suffix)
        if side.exists():
            dst.with_name(dst.name + suffix).write_bytes(side.read_bytes())
    kek = src.with_name(src.name + ".kek")
    if kek.exists():
        dst.with_name(dst.name + ".kek").write_bytes(kek.read_bytes())
    return open_store(f"sqlite:///{dst}")


def _shown_ids(store: Store, truth: list[list[str]]) -> set[str]:
    """The internal and the public id of each (agency, source id): a viewer sees one of them."""
    ids = {incident_id(agency, sid) for agency, sid in truth}
    with store.begin() as conn:
        q = select(incidents.c.public_id).where(incidents.c.id.in_(ids))
        return ids | {r[0] for r in conn.execute(q)}


def _visible_planted(store: Store, truth: dict[str, list[list[str]]]) -> list[frozenset[str]]:
    """The planted duplicate pairs of which the city's analysts may see both reports.

    A report withheld from the city as sensitive (a transit assault whose narrative
    names a partner, say) cannot be linked by the city: that is the policy working.
    """
    visible = {str(i) for i in analysis_arrays(store, CITY).id}
    pairs = [frozenset(_shown_ids(store, pair)) for pair in truth.values()]
    return [p for p in pairs if len(p & visible) == 2]


# -- duplicates --------------------------------------------------------------------------
def test_duplicates_precision_and_recall_on_the_demo(demo_store: Store, demo) -> None:
    truth = demo[1]["double_reported"]
    found = links.find(demo_store, CITY)
    a = found.arrays
    got = {
        frozenset((str(a.id[i]), str(a.id[j])))
        for i, j in zip(found.pairs.left, found.pairs.right, strict=True)
    }
    planted = _visible_planted(demo_store, truth)
    hits = sum(any(p <= t for t in planted) for p in got)
    precision, recall = hits / len(got), hits / len(planted)
    assert len(truth) == 12 and len(planted) >= 6
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    assert all(0.9 <= p <= 1 for p in found.pairs.probability)
    assert "min and" in found.pairs.reasons[0] and "apart" in found.pairs.reasons[0]


def test_duplicates_precision_and_recall_over_every_planted_pair(demo_store: Store, demo) -> None:
    """The linker on the whole region (each agency's own incidents, exact), all 12 pairs.

    The test above measures what the city's analysts can link: pairs whose transit report
    the policy withholds from the city (sensitive narratives) cannot be linked by it, so
    its recall is over the pairs it can see. Here the linker itself is measured on every
    planted pair, none hidden, so a miss cannot hide behind the policy.
    """
    agencies = ("rivertonpd", "clackmerco", "metrotransit")
    parts = [
        analysis_arrays(demo_store, operator_viewer(a), ReadRequest(agencies=frozenset({a})))
        for a in agencies
    ]
    names = ("owner", "lon", "lat", "occurred_from", "occurred_to", "nibrs_code", "crime_against")
    cols = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ("id", *names)}
    pairs = find_duplicates(*(cols[k] for k in names))
    ids = cols["id"]
    got = {
        frozenset((str(ids[i]), str(ids[j]))) for i, j in zip(pairs.left, pairs.right, strict=True)
    }
    planted = {
        frozenset(incident_id(a, sid) for a, sid in pair)
        for pair in demo[1]["double_reported"].values()
    }
    hits = len(got & planted)
    precision, recall = hits / len(got), hits / len(planted)
    assert len(planted) == 12 and precision >= 0.95 and recall >= 0.95, (precision, recall)
    # What the city can see: every pair it cannot link has a report withheld from it.
    visible = {str(i) for i in analysis_arrays(demo_store, CITY).id}
    hidden = [
        pair
        for pair in demo[1]["double_reported"].values()
        if len(_shown_ids(demo_store, pair) & visible) < 2
    ]
    assert len(hidden) + len(_visible_planted(demo_store, demo[1]["double_reported"])) == 12


def test_linked_duplicates_are_kept_audited_and_counted_once(demo_store: Store, demo) -> None:
    before = select_incidents(demo_store, CITY)
    summary = links.link(demo_store, CITY)
    assert (
        summary.linked
        == summary.found
        >= len(_visible_planted(demo_store, demo[1]["double_reported"]))
    )
    with demo_store.begin() as conn:
        assert (
            conn.execute(select(func.count()).select_from(duplicate_links)).scalar()
            == summary.linked
        )
    events = [e for e in iter_events(demo_store) if e.resource_type == "duplicate_link"]
    assert events[-1].action == "change" and events[-1].record_count == summary.linked
    after = select_incidents(demo_store, CITY)
    assert len(after.arrays) == len(before.arrays) - summary.linked
    assert after.skipped.reasons == {"linked duplicate (counted once)": summary.linked}
    # Nothing was deleted: the plain read still holds every incident.
    assert len(analysis_arrays(demo_store, CITY)) == len(before.arrays)
    again = links.link(demo_store, CITY)
    assert again.linked == 0 and again.already == summary.found


def test_linked_groups() -> None:
    g = linked_groups(5, np.array([0, 3]), np.array([2, 2]))
    assert g.tolist() == [0, 1, 0, 0, 4]


def test_duplicates_need_two_agencies() -> None:
    t = np.array(["2026-01-01T10:00"] * 2, dtype="datetime64[us]")
    with pytest.raises(AnalysisError, match="one agency only"):
        find_duplicates(
            np.array(["a", "a"]),
            np.array([1.0, 1.0]),
            np.array([50.0, 50.0]),
            t,
            None,
            np.array(["13A"] * 2),
            np.array(["person"] * 2),
        )


# -- series ------------------------------------------------------------------------------
def test_planted_cross_border_series_is_recovered(demo_store: Store, demo) -> None:
    truth = _shown_ids(demo_store, demo[1]["robbery_series"]["R1"])
    out = run.series(demo_store, CITY)
    a, r = out.selection.arrays, out.result
    members = [k for k in range(len(a)) if a.id[k] in truth]
    assert len(members) == 7
    labels = {int(r.label[k]) for k in members}
    assert len(labels) == 1 and -1 not in labels
    series = r.series[labels.pop()]
    assert set(members) <= set(series)
    assert len(series) <= 9, "the series is not swamped by unrelated robberies"
    assert {str(a.owner[k]) for k in series} == {"rivertonpd", "clackmerco"}
    # "Find similar incidents" from one member ranks the others first.
    in_time = [k for k in series if k in members]
    sim = run.similar(demo_store, CITY, str(a.id[in_time[3]]), limit=6, eps_m=5000)
    top = {int(i) for i in sim.result.index}
    assert len(top & set(members)) >= 3
    assert "same offence 120" in sim.result.reasons[0]


def test_series_finds_nothing_in_scattered_points() -> None:
    rng = np.random.default_rng(1)
    n = 200
    t = np.datetime64("2026-01-01T00:00") + rng.integers(0, 365 * 24, n).astype("timedelta64[h]")
    r = detect_series(
        -79.4 + rng.uniform(0, 0.5, n),
        43.6 + rng.uniform(0, 0.3, n),
        t.astype("datetime64[us]"),
        None,
        np.array(["120"] * n),
        np.array([""] * n),
    )
    assert sum(len(s) for s in r.series) <= 6


# -- the service, bad input --------------------------------------------------------------
def test_empty_selection_says_so(demo_store: Store) -> None:
    future = ReadRequest(since=datetime(2031, 1, 1, tzinfo=UTC))
    for name in ("kde", "hotspots", "emerging", "trends", "compstat", "nearrepeat", "series"):
        with pytest.raises(AnalysisError, match="empty selection"):
            run_named(name, demo_store, CITY, future, {})


def test_no_grants_says_who_refused() -> None:
    d = (Decision(False, "clackmerco", None, ("no agreement shares clackmerco's data with you",)),)
    arrays = type("A", (), {"decisions": d})()
    assert "no agency shares incidents with you" in _refusal(arrays)  # type: ignore[arg-type]
    assert "clackmerco" in _refusal(arrays)  # type: ignore[arg-type]


def test_an_area_no_partner_grants_says_why(demo_store: Store) -> None:
    """A new agency's analyst, with only the partners' public grants (H3 cells), asks for
    one of the city's districts: no grant shows areas, and the message says so."""
    from crossbeat.agencies import Agency, register_agency
    from crossbeat.sharing.policy import Viewer

    register_agency(demo_store, Agency(id="lonelypd", name="Lonely PD", ori=None))
    viewer = Viewer.user("lonely-analyst", "lonelypd", ["analyst"])
    district = ReadRequest(areas=frozenset({"rivertonpd/districts:North-East"}))
    for name in ("kde", "trends", "compstat"):
        with pytest.raises(AnalysisError) as err:
            run_named(name, demo_store, viewer, district, {})
        message = str(err.value)
        assert message.startswith("no agency shares incidents with you for this selection")
        assert "rivertonpd: filtering by area layer rivertonpd/districts needs" in message
        assert "agreement" not in message  # the reason, not the agreement's description


def test_one_incident_or_one_point_through_the_service(demo_store: Store) -> None:
    """Every analysis on one incident, and on incidents at one point: a clear refusal or
    an honest table (counts of one), never a crash or a map of a lone kernel."""
    a = analysis_arrays(demo_store, CITY, ReadRequest(agencies=frozenset({"rivertonpd"})))
    key = np.char.add(a.lon.round(6).astype(str), a.lat.round(6).astype(str))
    _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    same = a.id[inverse == int(np.argmax(counts))]
    assert len(same) >= 2
    refusals = {
        "kde": "at least two|one point",
        "hotspots": "single incident|one cell",
        # One incident covers one month: too few bins is refused first (no padding
        # with months before the data).
        "emerging": "single incident|one cell|at least three month bins",
        "nearrepeat": "at least two|one point",
        "duplicates": "at least two|one agency",
    }
    for ids in ({str(a.id[0])}, {str(i) for i in same}):
        request = ReadRequest(ids=frozenset(ids))
        for name, why in refusals.items():
            with pytest.raises(AnalysisError, match=why):
                run_named(name, demo_store, CITY, request, {})
        for name in ("trends", "compstat", "series"):
            body = render_named(name, run_named(name, demo_store, CITY, request, {}), "json")
            assert body["owners"] == {"rivertonpd": len(ids)}


def test_degenerate_inputs_give_clear_messages() -> None:
    from crossbeat.analysis.hotspots import h3_hotspots
    from crossbeat.analysis.kde import kernel_density
    from crossbeat.analysis.trends import compstat

    one = np.array([-79.4]), np.array([43.65])
    with pytest.raises(AnalysisError, match="single incident|one incident|at least"):
        h3_hotspots(*one)
    same = np.full(50, -79.4), np.full(50, 43.65)
    with pytest.raises(AnalysisError):
        kernel_density(*same)
    with pytest.raises(AnalysisError, match="one cell|no spatial pattern"):
        h3_hotspots(*same)
    nat = np.full(5, np.datetime64("NaT"), dtype="datetime64[us]")
    with pytest.raises(AnalysisError, match="time"):
        compstat(nat, None, np.datetime64("2026-01-01"))


def test_results_carry_parameters_and_owner_counts(demo_store: Store) -> None:
    out = run_named(
        "hotspots", demo_store, CITY, None, {"resolution": 8, "permutations": 99, "seed": 3}
    )
    body = render_named("hotspots", out, "json")
    assert body["params"]["permutations"] == 99 and body["params"]["seed"] == 3
    assert set(body["owners"]) == {"rivertonpd", "clackmerco", "metrotransit"}
    assert body["hot"] > 0 and all(r["class"] in ("hot", "cold") for r in body["results"])
    with pytest.raises(AnalysisError, match="takes no bandwidth"):
        run_named("series", demo_store, CITY, None, {"bandwidth": 100})


# -- API and CLI -------------------------------------------------------------------------
@pytest.fixture
def client(demo_store: Store):  # type: ignore[no-untyped-def]
    from crossbeat.auth.tokens import create_token
    from tests.api_support import make_client

    token = create_token(demo_store, "rivertonpd", "read")
    c = make_client(demo_store, demo_store.clock)  # type: ignore[arg-type]
    c.headers["Authorization"] = f"Bearer {token.secret}"
    return c


def test_api_hotspots_geojson_png_and_errors(client) -> None:  # type: ignore[no-untyped-def]
    r = client.get("/api/v1/analysis/hotspots", params={"f": "geojson", "resolution": 8})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    body = r.json()
    assert body["type"] == "FeatureCollection" and body["features"]
    assert body["features"][0]["geometry"]["type"] == "Polygon"
    png = client.get("/api/v1/analysis/hotspots", params={"f": "png"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    kde = client.get("/api/v1/analysis/kde", params={"f": "geojson"}).json()
    assert {f["properties"]["mass"] for f in kde["features"]} == {0.5, 0.75, 0.9}
    bad = client.get("/api/v1/analysis/series", params={"bandwidth": 100})
    assert bad.status_code == 400 and "takes no bandwidth" in bad.json()["error"]
    empty = client.get("/api/v1/analysis/kde", params={"since": "2031-01-01T00:00Z"})
    assert empty.status_code == 400 and "empty selection" in empty.json()["error"]
    grid = client.get("/api/v1/analysis/hotspots", params={"cells": "grid", "f": "geojson"}).json()
    ring = grid["features"][0]["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1] and -123 < ring[0][0] < -122
    em = client.get("/api/v1/analysis/emerging", params={"f": "geojson", "period": "month"})
    assert em.status_code == 200 and em.json()["type"] == "FeatureCollection"
    for feat in em.json()["features"]:
        assert feat["geometry"]["coordinates"][0][0] == feat["geometry"]["coordinates"][0][-1]
        assert feat["properties"]["pattern"] != "none"
    nogeo = client.get("/api/v1/analysis/compstat", params={"f": "geojson"})
    assert nogeo.status_code == 400


def test_api_tables_and_similar(client, demo_store: Store, demo) -> None:  # type: ignore[no-untyped-def]
    cs = client.get("/api/v1/analysis/compstat").json()
    assert {"week", "28d", "ytd"} <= {row["period"] for row in cs["rows"]}
    assert ["clackmerco", "rivertonpd"] in cs["borders"]  # city and county share a border
    assert isinstance(cs["rising_across_borders"], list)
    knox = client.get("/api/v1/analysis/nearrepeat", params={"permutations": 19}).json()
    assert len(knox["table"]) == 16 and knox["params"]["permutations"] == 19
    dup = client.get("/api/v1/analysis/duplicates").json()
    planted = _visible_planted(demo_store, demo[1]["double_reported"])
    assert len(dup["pairs"]) >= len(planted) and dup["pairs"][0]["reason"]
    series = client.get("/api/v1/analysis/series").json()
    first = series["series"][0]["members"]
    some_id = next(iter(first.values()))[0]["id"]
    clock = next(iter(first.values()))[0]["local_time"]
    assert clock is None or (len(clock) in (5, 11) and clock[2] == ":")
    sim = client.get(f"/api/v1/incidents/{some_id}/similar")
    assert sim.status_code == 200 and sim.json()["results"] and sim.json()["comparable"]
    assert client.get("/api/v1/incidents/nope/similar").status_code == 404


def test_cli_analyse(demo_store: Store, demo, tmp_path: Path) -> None:
    runner = CliRunner()
    png = tmp_path / "kde.png"
    out = runner.invoke(
        cli,
        [
            "analyse",
            "kde",
            "--db",
            demo_store.url,
            "--agency",
            "rivertonpd",
            "--png",
            str(png),
            "-p",
            "cell_m=200",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["params"]["cell_m"] == 200
    assert png.read_bytes()[:4] == b"\x89PNG"
    out = runner.invoke(
        cli, ["analyse", "link-duplicates", "--db", demo_store.url, "--agency", "rivertonpd"]
    )
    planted = len(_visible_planted(demo_store, demo[1]["double_reported"]))
    assert out.exit_code == 0 and f"{planted} linked" in out.output, out.output
    bad = runner.invoke(
        cli,
        [
            "analyse",
            "kde",
            "--db",
            demo_store.url,
            "--agency",
            "rivertonpd",
            "--since",
            "2031-01-01",
        ],
    )
    assert bad.exit_code == 1 and "empty selection" in bad.output


def test_links_on_both_backends(db_url: str, tmp_path: Path) -> None:
    """The links table, its audit event and counting once, on SQLite and PostgreSQL."""
    build_demo(db_url, tmp_path, size=0.05)
    store = open_store(db_url)
    summary = links.link(store, CITY)
    assert summary.linked >= 1
    sel = select_incidents(store, CITY)
    assert sel.skipped.reasons == {"linked duplicate (counted once)": summary.linked}
    body = render_named("trends", run_named("trends", store, CITY, None, {}), "json")
    assert body["skipped"]["linked duplicate (counted once)"] == summary.linked


def test_hotspots_on_an_area_layer_agree_with_esda(demo_store: Store, tmp_path: Path) -> None:
    """Gi* on an area layer: queen contiguity; z equal to esda on the same weights."""
    import esda
    import libpysal
    import shapely

    from crossbeat.analysis.hotspots import area_weights
    from crossbeat.areas import add_layer, layer_polygons

    # The demo city's four districts all meet at its centre: a clear refusal, not z = 0.
    with pytest.raises(AnalysisError, match="every area touches every other"):
        run.hotspots(demo_store, CITY, cells="area", layer="districts")
    a = analysis_arrays(demo_store, CITY)
    x0, y0 = np.nanmin(a.lon), np.nanmin(a.lat)
    dx, dy = (np.nanmax(a.lon) - x0) / 6, (np.nanmax(a.lat) - y0) / 6
    boxes = [
        {"type": "Feature", "properties": {"name": f"B{i}{j}"},
         "geometry": shapely.geometry.mapping(
             shapely.box(x0 + i * dx, y0 + j * dy, x0 + (i + 1) * dx, y0 + (j + 1) * dy))}
        for i in range(6) for j in range(6)
    ]  # fmt: skip
    path = tmp_path / "blocks.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": boxes}))
    add_layer(demo_store, "rivertonpd", "blocks", path, name_field="name", kind="beat")
    out = run.hotspots(demo_store, CITY, cells="area", layer="rivertonpd/blocks")
    r = out.result
    shapes = layer_polygons(demo_store, "rivertonpd", "blocks")
    assert list(r.cell) == [n for n, _ in shapes] and r.params.cells == "area"
    assert r.hot.sum() > 0
    w = libpysal.weights.WSP(area_weights([g for _, g in shapes])).to_W(silence_warnings=True)
    g = esda.G_Local(r.count, w, transform="B", star=True, permutations=0)
    np.testing.assert_allclose(g.Zs, r.z, rtol=1e-9)
    body = render_named("hotspots", out, "geojson")
    assert body["features"] and all(f["geometry"]["type"] == "Polygon" for f in body["features"])
    assert render_named("hotspots", out, "png")[:4] == b"\x89PNG"
    with pytest.raises(AnalysisError, match="no area layer"):
        run.hotspots(demo_store, CITY, cells="area", layer="nope")


# -- trends and CompStat per area, jurisdiction and region ------------------------------
def _independent_area_counts(
    store: Store, ids: list[str], layer: str, edges: list[np.datetime64]
) -> dict[str, np.ndarray]:
    """Counts per area and bin from the stored rows and the ingest's area tags.

    Independent of the analytics: times straight from the incidents table, each range
    spread by its overlap with each bin (plain Python datetimes), the area from the
    ``incident_areas`` tags the ingest wrote (on a border: the first area by name).
    """
    from crossbeat.store.schema import area_layers, areas, incident_areas

    q = (
        select(incident_areas.c.incident_id, areas.c.name)
        .join(areas, areas.c.id == incident_areas.c.area_id)
        .join(area_layers, area_layers.c.id == areas.c.layer_id)
        .where(area_layers.c.name == layer)
    )
    times = select(incidents.c.id, incidents.c.occurred_from, incidents.c.occurred_to)
    with store.begin() as conn:
        tags: dict[str, str] = {}
        for iid, name in conn.execute(q):
            tags[iid] = min(tags.get(iid, name), name)
        rows = {r[0]: (r[1], r[2]) for r in conn.execute(times)}
    bounds = [e.astype("datetime64[us]").astype(object).replace(tzinfo=UTC) for e in edges]
    out: dict[str, np.ndarray] = {}
    for iid in ids:
        if iid not in tags or rows[iid][0] is None:
            continue
        start, end = rows[iid]
        counts = out.setdefault(tags[iid], np.zeros(len(bounds) - 1))
        for k in range(len(bounds) - 1):
            lo, hi = bounds[k], bounds[k + 1]
            if end is None or end <= start:
                counts[k] += float(lo <= start < hi)
            else:
                overlap = (min(end, hi) - max(start, lo)).total_seconds()
                counts[k] += max(overlap, 0.0) / (end - start).total_seconds()
    return out


def test_trends_per_area_match_an_independent_count(demo_store: Store) -> None:
    own = ReadRequest(agencies=frozenset({"rivertonpd"}))  # the city's own: exact points
    out = run.trends(demo_store, CITY, own, by="area", layer="districts", period="month")
    pc = out.result.counts
    ids = [str(i) for i in out.selection.arrays.id]
    expected = _independent_area_counts(demo_store, ids, "districts", list(pc.edges))
    assert set(expected) <= {str(g) for g in pc.groups} and len(expected) == 4
    for k, g in enumerate(pc.groups):
        np.testing.assert_allclose(pc.counts[k], expected.get(str(g), 0.0), atol=1e-6)
    outside = out.skipped.reasons.get("no point in an area of layer districts", 0)
    assert outside + pc.counts.sum() + pc.outside == pytest.approx(
        len(ids) - out.result.skipped.reasons.get("missing time", 0)
    )
    # Per jurisdiction and for the region (every partner's incidents the city may see).
    agency = run.trends(demo_store, CITY, period="month").result.counts
    region = run.trends(demo_store, CITY, by="region", period="month").result.counts
    assert set(agency.groups) == {"rivertonpd", "clackmerco", "metrotransit"}
    assert list(region.groups) == ["all"]
    np.testing.assert_allclose(agency.counts.sum(axis=0), region.counts[0])


def test_compstat_per_area_matches_an_independent_count(demo_store: Store) -> None:
    own = ReadRequest(agencies=frozenset({"rivertonpd"}))
    out = run.compstat(demo_store, CITY, own, by="area", layer="districts")
    t = out.result.table
    assert out.result.by == "area" and out.result.layer == "districts"
    assert {"North-East", "South-West"} <= set(t.group)
    assert ("North-East", "South-West") in out.result.borders  # they meet at the centre
    ids = [str(i) for i in out.selection.arrays.id]
    zone = ZoneInfo(t.params.timezone)  # periods are local days of the city's zone

    def instant(day: str) -> np.datetime64:  # the local midnight beginning ``day``, in UTC
        start = datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC)
        return np.datetime64(start.replace(tzinfo=None), "us")

    assert t.params.timezone == get_agency(demo_store, "rivertonpd").timezone  # type: ignore[union-attr]
    for k, (_, start, end, prev_start, prev_end) in enumerate(t.params.periods):
        edges = [instant(start), instant(end)]
        now = _independent_area_counts(demo_store, ids, "districts", edges)
        edges = [instant(prev_start), instant(prev_end)]
        then = _independent_area_counts(demo_store, ids, "districts", edges)
        for area in set(t.group):
            rows = t.group == area
            # Incidents without a category are skipped by the table: allow those.
            missing = t.skipped.reasons.get("missing category", 0)
            assert now.get(area, [0.0])[0] - missing - 1e-6 <= t.current[rows, k].sum()
            assert t.current[rows, k].sum() <= now.get(area, [0.0])[0] + 1e-6
            if t.period[k] in t.no_history:  # the year before starts before the data
                assert np.isnan(t.previous[rows, k]).all() and np.isnan(t.p[rows, k]).all()
            else:
                assert t.previous[rows, k].sum() <= then.get(area, [0.0])[0] + 1e-6
    body = render_named("compstat", out, "json")
    assert body["by"] == "area" and body["layer"] == "districts"


def test_area_grouping_refuses_clearly(demo_store: Store) -> None:
    with pytest.raises(AnalysisError, match="layer=LAYER"):
        run.trends(demo_store, CITY, by="area")
    with pytest.raises(AnalysisError, match="no area layer"):
        run.compstat(demo_store, CITY, by="area", layer="nope")
    with pytest.raises(AnalysisError, match="layer= needs by=area"):
        run.trends(demo_store, CITY, layer="districts")
    # A window where nothing lies in any area of the layer: said so, not an empty table.
    far = ReadRequest(bbox=(-122.99, 44.99, -122.98, 45.0))
    with pytest.raises(AnalysisError, match="empty selection|lies in an area"):
        run.trends(demo_store, CITY, far, by="area", layer="districts")


def test_api_and_cli_trends_per_area(client, demo_store: Store) -> None:  # type: ignore[no-untyped-def]
    r = client.get(
        "/api/v1/analysis/trends",
        params={"by": "area", "layer": "rivertonpd/districts", "period": "month"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["by"] == "area" and body["layer"] == "rivertonpd/districts"
    assert set(body["groups"]) == {"North-East", "North-West", "South-East", "South-West"}
    assert "reach back a year" in body["change"]["note"]  # the demo holds about a year
    assert body["n_used"] + sum(body["skipped"].values()) == sum(body["owners"].values())
    cs = client.get("/api/v1/analysis/compstat", params={"by": "area", "layer": "districts"})
    assert cs.status_code == 200 and {row["group"] for row in cs.json()["rows"]} >= {"North-East"}
    bad = client.get("/api/v1/analysis/trends", params={"by": "area"})
    assert bad.status_code == 400 and "layer=" in bad.json()["error"]
    out = CliRunner().invoke(
        cli,
        ["analyse", "trends", "--db", demo_store.url, "--agency", "rivertonpd",
         "-p", "by=area", "-p", "layer=districts", "-p", "period=week"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["by"] == "area"


# -- limits on heavy requests ------------------------------------------------------------
def test_selection_too_large_is_refused_before_computing(demo_store: Store) -> None:
    from crossbeat.analysis.budget import SelectionTooLarge
    from crossbeat.analytics.named import max_incidents
    from crossbeat.auth.tokens import create_token
    from tests.api_support import make_client

    with pytest.raises(SelectionTooLarge, match="accepts at most 100 incidents"):
        run_named("kde", demo_store, CITY, None, {}, max_incidents=100)
    assert max_incidents("nearrepeat", 2_000_000) == 100_000
    assert max_incidents("kde", 5_000) == 5_000
    c = make_client(demo_store, demo_store.clock, analysis_max_incidents=100)  # type: ignore[arg-type]
    c.headers["Authorization"] = f"Bearer {create_token(demo_store, 'rivertonpd', 'read').secret}"
    r = c.get("/api/v1/analysis/hotspots")
    assert r.status_code == 422 and "narrow it" in r.json()["error"]
    assert c.get("/api/v1/incidents/x/similar").status_code == 422


def test_time_budget_and_busy_server_answer_503_with_retry_after(demo_store: Store) -> None:
    import threading
    import time

    from crossbeat.auth.tokens import create_token
    from tests.api_support import make_client

    c = make_client(demo_store, demo_store.clock, analysis_time_budget=1)  # type: ignore[arg-type]
    c.headers["Authorization"] = f"Bearer {create_token(demo_store, 'rivertonpd', 'read').secret}"
    started = time.monotonic()
    r = c.get("/api/v1/analysis/nearrepeat", params={"permutations": 9999})
    took = time.monotonic() - started
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"] == "60" and "time budget of 1 s" in r.json()["error"]
    assert took < 20, took  # stopped, not run to the end (9,999 permutations)
    # Every analysis slot taken: 503 at once, and the slot frees when the other ends.
    ok = c.get("/api/v1/analysis/trends")
    assert ok.status_code == 200
    slots = c.app.state.analysis_slots  # type: ignore[attr-defined]
    assert isinstance(slots, threading.BoundedSemaphore)
    with slots, slots:
        busy = c.get("/api/v1/analysis/trends")
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "10"
    assert "retry in 10 s" in busy.json()["error"]
    assert c.get("/api/v1/analysis/trends").status_code == 200


def test_trends_compare_the_last_period_with_its_season() -> None:
    """The last period against the same weeks of earlier years, as many as the history
    allows; an independent count of the nine earlier windows gives the expectation."""
    rng = np.random.default_rng(5)
    day0 = np.datetime64("2022-01-03T00:00", "us")
    t = day0 + rng.integers(0, 4 * 364 * 24, 20_000).astype("timedelta64[h]")
    t = np.sort(t)
    groups = np.where(rng.random(t.size) < 0.5, "east", "west").astype(object)
    edges = np.arange(
        np.datetime64("2025-11-03"), np.datetime64("2025-11-24"), np.timedelta64(7, "D")
    ).astype("datetime64[us]")
    res, note = run.latest_change(
        t, np.full(t.size, np.datetime64("NaT", "us")), edges, groups, None
    )
    assert res is not None and note == "" and res.params.years == 3
    start, end = edges[-2], edges[-1]
    for k, g in enumerate(res.groups):
        mine = t[groups == g]
        windows = [
            (
                start - np.timedelta64(364 * y + 7 * d, "D"),
                end - np.timedelta64(364 * y + 7 * d, "D"),
            )
            for y in (1, 2, 3)
            for d in (-1, 0, 1)
        ]
        base = [int(((mine >= s) & (mine < e)).sum()) for s, e in windows]
        assert res.expected[k] == pytest.approx(np.mean(base))
        assert res.observed[k] == ((mine >= start) & (mine < end)).sum()
    short = t[t >= np.datetime64("2025-01-01")]
    none, why = run.latest_change(
        short, np.full(short.size, np.datetime64("NaT", "us")), edges, None, None
    )
    assert none is None and "does not reach back a year" in why


def test_every_named_analysis_has_its_command_built_on_demand():
    """``crossbeat analyse`` lists one command per named analysis, each with its parameters."""
    from crossbeat.analytics.named import ANALYSES, parameters
    from crossbeat.cli import ANALYSIS_NAMES

    assert set(ANALYSIS_NAMES) == set(ANALYSES)
    listed = CliRunner().invoke(cli, ["analyse", "--help"])
    assert listed.exit_code == 0, listed.output
    for name in ANALYSES:
        assert f"  {name} " in listed.output
        shown = CliRunner().invoke(cli, ["analyse", name, "--help"])
        assert shown.exit_code == 0, shown.output
        for param in parameters(name):
            assert param in shown.output, (name, param)


def test_the_cli_starts_without_importing_the_analyses():
    """A command other than ``analyse`` does not pay for numpy, scipy and the analyses."""
    import subprocess
    import sys

    code = (
        "import sys, crossbeat.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('crossbeat.analytics', 'scipy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_an_incident_that_cannot_be_compared_answers_an_empty_list(client, demo_store) -> None:  # type: ignore[no-untyped-def]
    """No offence code: nothing can be ranked against it, which is an answer, not a 400."""
    with demo_store.connect() as conn:
        own_id = conn.execute(  # the city's analyst sees its own records by their id
            select(incidents.c.id).where(
                incidents.c.agency_id == "rivertonpd",
                incidents.c.nibrs_code.is_(None),
                incidents.c.call_category.is_(None),
                incidents.c.withdrawn_at.is_(None),
                incidents.c.lat.is_not(None),
            )
        ).scalar()
    assert own_id is not None, "the demo has no unmapped incident of the city"
    r = client.get(f"/api/v1/incidents/{own_id}/similar")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["comparable"] is False and body["results"] == []
    assert "offence code" in body["reason"]
    # It names what is missing, and only that: the point and the time are there.
    assert "place" not in body["reason"] and "time" not in body["reason"], body["reason"]
