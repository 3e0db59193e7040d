"""Analyses never resolve finer than the location precision a partner granted (issue #11).

Found by an acceptance review: a partner granted ``h3:9`` has every point snapped to the
anchor of its res-9 cell, yet hot spots at resolution 10 or 11, or a kernel density with
a 30 m bandwidth, drew those points as if they were finer than the grant.
"""

from __future__ import annotations

from pathlib import Path

import h3
import numpy as np
import pytest
from click.testing import CliRunner

from crossbeat.analysis.errors import AnalysisError
from crossbeat.analytics import run
from crossbeat.analytics.selection import select
from crossbeat.cli import cli
from crossbeat.demo.accounts import demo_admins
from crossbeat.demo.build import build_demo
from crossbeat.sharing.agreements import create_agreement
from crossbeat.sharing.own import operator_viewer
from crossbeat.sharing.policy import ReadRequest
from crossbeat.store import Store, open_store

TRANSIT = operator_viewer("metrotransit")
CITY = operator_viewer("rivertonpd")
COUNTY_ONLY = ReadRequest(agencies=frozenset({"clackmerco"}))
#: The edge of a res-9 cell, rounded up: the smallest length allowed on h3:9 points.
EDGE_9 = int(np.ceil(h3.average_hexagon_edge_length(9, unit="m")))


@pytest.fixture
def demo_db(db_url: str, tmp_path: Path) -> tuple[Store, str]:
    """The small demo region, where the county also shares with transit at ``h3:9``."""
    build_demo(db_url, tmp_path, size=0.05)
    store = open_store(db_url)
    create_agreement(
        store, "clackmerco", "metrotransit", offences=["all"], fields=["all"],
        precision="h3:9", purposes=["analysis"], approved_by=demo_admins("clackmerco"),
        purpose_note="Test: county incidents at H3 resolution 9.",
    )  # fmt: skip
    return store, db_url


def test_the_arrays_say_each_owners_granted_precision(demo_db) -> None:
    store, _ = demo_db
    arrays = select(store, TRANSIT).arrays
    assert arrays.precisions == {
        "clackmerco": "h3:9",
        "metrotransit": "exact",
        "rivertonpd": "h3:9",
    }
    assert select(store, CITY).arrays.precisions == {
        "clackmerco": "exact", "metrotransit": "block", "rivertonpd": "exact"}  # fmt: skip
    # The points really are the anchors of res-9 cells: one point per cell.
    county = (arrays.owner == "clackmerco") & np.isfinite(arrays.lon)
    lat, lon = arrays.lat[county], arrays.lon[county]
    cells = {h3.latlng_to_cell(a, o, 9) for a, o in zip(lat.tolist(), lon.tolist(), strict=True)}
    assert len(cells) == len(set(zip(lat.tolist(), lon.tolist(), strict=True)))


def test_hotspots_finer_than_the_granted_cells_are_refused(demo_db) -> None:
    store, _ = demo_db
    for resolution in (10, 11):
        with pytest.raises(AnalysisError) as err:
            run.hotspots(store, TRANSIT, resolution=resolution)
        assert str(err.value) == (
            f"hotspots at H3 resolution {resolution} is finer than clackmerco's incidents "
            "were shared with you (h3:9: points snapped to H3 resolution 9 cells): ask for "
            "resolution=9 or coarser (the finest allowed), or leave clackmerco's incidents out "
            "(the agency filter)"
        )
    for resolution in (9, 8):
        out = run.hotspots(store, TRANSIT, resolution=resolution)
        assert out.result.params.resolution == resolution and out.selection.owners["clackmerco"]
    with pytest.raises(AnalysisError, match="cell_m=100 m is finer than clackmerco's.*h3:9"):
        run.hotspots(store, TRANSIT, cells="grid", cell_m=100)
    assert (
        run.hotspots(store, TRANSIT, cells="grid", cell_m=EDGE_9).result.params.resolution == EDGE_9
    )


def test_emerging_finer_than_the_granted_cells_is_refused(demo_db) -> None:
    store, _ = demo_db
    with pytest.raises(AnalysisError, match="emerging hot spots at H3 resolution 10 is finer"):
        run.emerging(store, TRANSIT, resolution=10)
    assert run.emerging(store, TRANSIT, resolution=9).result.params.resolution == 9


def test_exact_grants_allow_any_resolution(demo_db) -> None:
    store, _ = demo_db
    # The city sees the county's incidents exactly: resolution 11 is fine on those ...
    out = run.hotspots(store, CITY, COUNTY_ONLY, resolution=11)
    assert out.result.params.resolution == 11 and set(out.selection.owners) == {"clackmerco"}
    # ... and the transit police's own incidents too.
    mine = ReadRequest(agencies=frozenset({"metrotransit"}))
    assert run.hotspots(store, TRANSIT, mine, resolution=11).result.params.resolution == 11
    assert run.kde(store, TRANSIT, mine, bandwidth=30).result.params.bandwidth_m == 30
    # Transit's own block grant to the city (res-10 anchors) limits the city at 10.
    with pytest.raises(AnalysisError, match="finer than metrotransit's .*\\(block: .*=10 or"):
        run.hotspots(store, CITY, resolution=11)


def test_kde_finer_than_the_granted_cells_is_refused(demo_db) -> None:
    store, url = demo_db
    with pytest.raises(AnalysisError) as err:
        run.kde(store, TRANSIT, COUNTY_ONLY, bandwidth=30)
    assert str(err.value) == (
        "bandwidth=30 m is finer than clackmerco's incidents were shared with you (h3:9: "
        f"points snapped to the anchors of H3 cells with {EDGE_9} m edges): ask for "
        f"bandwidth={EDGE_9} or more (the finest allowed), or leave clackmerco's incidents out "
        "(the agency filter)"
    )
    with pytest.raises(AnalysisError, match=f"cell_m=50 m is finer.*cell_m={EDGE_9} or more"):
        run.kde(store, TRANSIT, COUNTY_ONLY, bandwidth=500, cell_m=50)
    out = run.kde(store, TRANSIT, COUNTY_ONLY, bandwidth=EDGE_9)
    assert out.result.params.bandwidth_m == EDGE_9
    # The CLI says the same, without a traceback.
    args = ["analyse", "kde", "--agency", "metrotransit", "--db", url, "-p", "bandwidth=30"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    assert f"ask for bandwidth={EDGE_9} or more" in res.output and "Traceback" not in res.output


def test_near_repeat_bands_and_series_radius_finer_than_granted_are_refused(demo_db) -> None:
    store, _ = demo_db
    with pytest.raises(AnalysisError, match="distance_edges_m=0,100,200 .*first band 100.*"
                       f"ask for distance_edges_m={EDGE_9} or more"):  # fmt: skip
        run.nearrepeat(store, TRANSIT, COUNTY_ONLY, distance_edges_m=(0, 100, 200))
    out = run.nearrepeat(
        store, TRANSIT, COUNTY_ONLY, distance_edges_m=(0, EDGE_9, 2 * EDGE_9), permutations=9
    )
    assert out.result is not None
    with pytest.raises(AnalysisError, match=f"eps_m=150 m is finer.*eps_m={EDGE_9} or more"):
        run.series(store, TRANSIT, COUNTY_ONLY, eps_m=150)


def test_the_api_refuses_with_400_and_the_reason(demo_db) -> None:
    from crossbeat.auth.tokens import create_token
    from tests.api_support import make_client

    store, _ = demo_db
    client = make_client(store, store.clock)
    client.headers["Authorization"] = f"Bearer {create_token(store, 'metrotransit', 'read').secret}"
    r = client.get("/api/v1/analysis/hotspots", params={"resolution": 10})
    assert r.status_code == 400, r.text
    assert "finer than clackmerco's incidents were shared with you (h3:9" in r.json()["error"]
    assert "resolution=9 or coarser" in r.json()["error"]
    ok = client.get("/api/v1/analysis/hotspots", params={"resolution": 9})
    assert ok.status_code == 200, ok.text
