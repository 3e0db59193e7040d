"""NIJ rule mode: the limits, compliant output, and PAI/PEI recomputed independently (issue #13)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely import wkt

from crossbeat.forecast import nij
from crossbeat.forecast.backtest import consecutive
from crossbeat.forecast.grid import grid_for
from crossbeat.forecast.metrics import score
from crossbeat.forecast.models import KernelDensity, NaiveCounts
from tests.forecast_support import synthetic
from tests.nij_scorer import _utm, score_files

FT = 0.3048
ORIGIN = 18000.0 + 600.0


@pytest.fixture(scope="module")
def history():
    return synthetic(extent=9000.0)


@pytest.mark.parametrize("ft", [250.0, 400.0, 600.0])
def test_cells_at_the_limits_are_accepted(ft: float) -> None:
    nij.check_cell(ft * FT)


@pytest.mark.parametrize("ft", [249.0, 100.0, 601.0, 1000.0])
def test_cells_outside_the_limits_are_refused(ft: float) -> None:
    with pytest.raises(nij.NijRuleError, match="62,500–360,000 sq ft"):
        nij.check_cell(ft * FT)


@pytest.mark.parametrize("sq_mi", [0.2499, 0.1, 0.7501, 2.0])
def test_flagged_areas_outside_the_limits_are_refused(sq_mi: float) -> None:
    with pytest.raises(nij.NijRuleError, match="0.25–0.75 sq mi"):
        nij.check_flagged(sq_mi * nij.SQ_MI)


def test_windows_are_the_challenge_windows() -> None:
    jan1 = float(np.datetime64("2020-01-01", "D").astype("int64"))
    ends = {w: nij.window_end(jan1, w) - jan1 for w in nij.WINDOWS}
    assert ends == {"1w": 7, "2w": 14, "1m": 31, "2m": 60, "3m": 91}
    with pytest.raises(nij.NijRuleError):
        nij.window_end(jan1, "5d")
    with pytest.raises(nij.NijRuleError, match="first day"):
        nij.window_end(jan1 + 3, "1m")


@pytest.mark.parametrize("ft", [250.0, 600.0])
@pytest.mark.parametrize("sq_mi", [0.25, 0.5, 0.75])
def test_flagged_output_is_always_compliant(
    history, ft: float, sq_mi: float, tmp_path: Path
) -> None:
    grid = grid_for(history.before(ORIGIN), ft * FT)
    f = nij.nij_forecast(NaiveCounts(), history, grid, ORIGIN, "2w", sq_mi * nij.SQ_MI)
    assert nij.FLAGGED_MIN_M2 - 1e-6 <= f.flagged_area <= nij.FLAGGED_MAX_M2 + 1e-6
    gj, _ = nij.write_submission(f, tmp_path)
    # Measured independently, on the written polygons, in UTM.
    import json

    polys = [shapely.geometry.shape(x["geometry"]) for x in json.loads(gj.read_text())["features"]]
    c = polys[0].centroid
    t = _utm(c.x, c.y)
    areas = np.array(
        [
            shapely.transform(p, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))).area
            for p in polys
        ]
    )
    sq_ft = areas / 0.09290304
    assert (sq_ft >= 62_500 * 0.999).all() and (sq_ft <= 360_000 * 1.001).all()
    assert 0.25 * 0.999 <= areas.sum() / nij.SQ_MI <= 0.75 * 1.001


def test_asking_for_too_big_an_area_for_the_grid_is_refused(history) -> None:
    small = history.take(np.hypot(history.x, history.y) < 400)
    grid = grid_for(small.before(ORIGIN), 600 * FT, reach=0.0)
    with pytest.raises(nij.NijRuleError, match="too few whole cells"):
        nij.nij_forecast(NaiveCounts(), small, grid, ORIGIN, "1w", 0.75 * nij.SQ_MI)


def test_an_independent_scorer_recomputes_pai_and_pei(history, tmp_path: Path) -> None:
    grid = grid_for(history.before(ORIGIN), 400 * FT)
    f = nij.nij_forecast(KernelDensity(), history, grid, ORIGIN, "1w", 0.5 * nij.SQ_MI)
    gj, grid_csv = nij.write_submission(f, tmp_path)
    # The incidents of the window, as a plain CSV of lon/lat.
    window = history.take((history.t0 >= f.start) & (history.t0 < f.end))
    lon, lat = history.frame.inverse(window.x, window.y)
    pts = tmp_path / "incidents.csv"
    with pts.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lon", "lat"])
        w.writerows(zip(lon, lat, strict=True))
    ours = score(f.expected, grid.counts(window), grid.area, f.flagged_area / grid.total_area)
    observed = grid.counts(window)
    hits = observed[f.flagged].sum()
    theirs = score_files(gj, grid_csv, pts)
    assert theirs.flagged_cells == f.flagged.size
    assert theirs.hits == hits and theirs.incidents == observed.sum()
    pai = (hits / observed.sum()) / (f.flagged_area / grid.total_area)
    assert theirs.pai == pytest.approx(pai, rel=2e-3)
    assert theirs.pei == pytest.approx(hits / np.sort(observed)[::-1][: f.flagged.size].sum())
    assert ours.cells == f.flagged.size and ours.pai == pytest.approx(theirs.pai, rel=2e-3)
    with grid_csv.open() as fh:
        rows = list(csv.DictReader(fh))
    assert sum(int(r["flagged"]) for r in rows) == f.flagged.size
    assert all(wkt.loads(r["wkt"]).is_valid for r in rows[:50])


def test_the_search_stays_inside_the_limits(history) -> None:
    result = nij.search(
        history,
        NaiveCounts,
        consecutive(ORIGIN - 28, 7.0, 4),
        cells_ft=(250.0, 600.0),
        areas_sq_mi=(0.25, 0.75),
    )
    assert 250 <= result.cell_ft <= 600 and 0.25 <= result.area_sq_mi <= 0.75
    assert len(result.table) == 4
    with pytest.raises(nij.NijRuleError):
        nij.search(history, NaiveCounts, consecutive(ORIGIN - 28, 7.0, 1), cells_ft=(200.0,))


def test_a_grid_clipped_to_the_jurisdiction_flags_only_whole_compliant_cells(
    history, tmp_path: Path
) -> None:
    # A jurisdiction that is a 3.5 km disc: its boundary cells are clipped below the
    # NIJ minimum cell area, and a forecast that ranks them highest must still skip them.
    ang = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    lon, lat = history.frame.inverse(3500 * np.cos(ang), 3500 * np.sin(ang))
    disc = shapely.Polygon(np.column_stack([lon, lat]))
    grid = grid_for(history.before(ORIGIN), 600 * FT, area=disc)
    whole = grid.area >= grid.size**2 * (1 - 1e-9)
    clipped = ~whole
    assert clipped.sum() > 20 and (grid.area[clipped] < 62_500 * 0.09290304).any()
    expected = np.where(clipped, 100.0, 1.0) + np.arange(grid.n) * 1e-6
    f = nij.NijForecast(
        grid, ORIGIN, ORIGIN + 7, "1w", "test",
        expected, nij.flag_area(expected, grid, 0.75 * nij.SQ_MI),
    )  # fmt: skip
    assert whole[f.flagged].all()
    assert nij.FLAGGED_MIN_M2 - 1e-6 <= f.flagged_area <= nij.FLAGGED_MAX_M2 + 1e-6
    gj, grid_csv = nij.write_submission(f, tmp_path, area=disc)
    # Measured independently in UTM: every flagged polygon is a whole, compliant cell.
    import json

    polys = [shapely.geometry.shape(x["geometry"]) for x in json.loads(gj.read_text())["features"]]
    t = _utm(polys[0].centroid.x, polys[0].centroid.y)
    sq_ft = (
        np.array(
            [
                shapely.transform(
                    p, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1]))
                ).area
                for p in polys
            ]
        )
        / 0.09290304
    )
    assert len(polys) == f.flagged.size
    assert (sq_ft >= 62_500 * 0.999).all() and (sq_ft <= 360_000 * 1.001).all()
    assert 0.25 <= sq_ft.sum() * 0.09290304 / nij.SQ_MI <= 0.75 * 1.001
    # The grid file carries the clipped cells, so the scorer's study area is the disc's.
    window = history.take((history.t0 >= f.start) & (history.t0 < f.end))
    wlon, wlat = history.frame.inverse(window.x, window.y)
    pts = tmp_path / "incidents.csv"
    with pts.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["lon", "lat"])
        w.writerows(zip(wlon, wlat, strict=True))
    theirs = score_files(gj, grid_csv, pts)
    assert theirs.total_area_m2 == pytest.approx(grid.total_area, rel=2e-3)
    # CrossBeat's scores count only the incidents inside the jurisdiction, as the
    # scorer does: boundary cells also hold incidents outside the disc.
    observed = grid.observed(window)
    assert grid.counts(window).sum() > observed.sum()
    assert theirs.incidents == observed.sum() and theirs.hits == observed[f.flagged].sum()
    hits = observed[f.flagged].sum()
    pai = (hits / observed.sum()) / (f.flagged_area / grid.total_area)
    assert theirs.pai == pytest.approx(pai, rel=3e-3)
    assert theirs.pei == pytest.approx(hits / np.sort(observed)[::-1][: f.flagged.size].sum())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cell-ft", "700"], "62,500–360,000 sq ft"),
        (["--cell-ft", "200"], "62,500–360,000 sq ft"),
        (["--area-sq-mi", "0.8"], "0.25–0.75 sq mi"),
        (["--area-sq-mi", "0.2"], "0.25–0.75 sq mi"),
        (["--window", "5d"], "5d"),
    ],
)
def test_the_nij_command_refuses_values_outside_the_rules(
    tmp_path: Path, args: list[str], message: str
) -> None:
    from click.testing import CliRunner

    from crossbeat.cli import cli

    out = tmp_path / "nij"
    base = ["forecast", "nij", "--db", f"sqlite:///{tmp_path / 'none.db'}", "--agency", "a",
            "--category", "220", "--start", "2024-04-01", "--out", str(out)]  # fmt: skip
    r = CliRunner().invoke(cli, base + args)
    assert r.exit_code != 0 and message in r.output
    assert not out.exists()
