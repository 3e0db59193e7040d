"""H3 and area-layer forecast cells clipped to the jurisdictions; the size and fraction search."""

from __future__ import annotations

import h3
import numpy as np
import pytest
from shapely.geometry import Polygon, box

from crossbeat.forecast.backtest import consecutive, rolling_backtest
from crossbeat.forecast.cells import OnCells, area_grid, grid_search, h3_grid
from crossbeat.forecast.grid import grid_for
from crossbeat.forecast.models import KernelDensity, NaiveCounts
from tests.forecast_support import FRAME, synthetic

ORIGIN = 18000.0 + 600.0


@pytest.fixture(scope="module")
def history():
    return synthetic()


def _lonlat_box(h, pad: float = -500.0) -> Polygon:
    """A WGS84 rectangle around the incidents, ``pad`` metres beyond them (negative: inside)."""
    x0, x1 = h.x.min() - pad, h.x.max() + pad
    y0, y1 = h.y.min() - pad, h.y.max() + pad
    lon, lat = FRAME.inverse(np.array([x0, x1, x1, x0]), np.array([y0, y0, y1, y1]))
    return Polygon(zip(lon, lat, strict=True))


def test_h3_cells_are_clipped_to_the_jurisdiction(history) -> None:
    area = _lonlat_box(history)
    g = h3_grid(history, 8, area=area)
    metric = Polygon(zip(*FRAME.forward(*np.array(area.exterior.coords).T), strict=True))
    # The clipped cells tile the jurisdiction exactly: no gap, no overlap, nothing outside.
    assert g.total_area == pytest.approx(metric.area, rel=1e-6)
    assert all(metric.buffer(1e-3).contains(p) for p in g.polygons)
    assert g.kind == "h3:8" and all(h3.is_valid_cell(c) for c in g.ids)
    full = h3.cell_area(g.ids[0], "m^2")
    assert max(g.area) <= full * 1.01 and min(g.area) < full * 0.5  # boundary cells clipped
    # Every incident inside the jurisdiction is in exactly the H3 cell that holds it.
    idx = g.cell_index(history.x, history.y)
    inside = np.array(
        [metric.contains(p) for p in __import__("shapely").points(history.x, history.y)]
    )
    assert np.all(idx[inside] >= 0) and np.all(idx[~inside] == -1)
    lon, lat = FRAME.inverse(history.x[inside][:200], history.y[inside][:200])
    want = [h3.latlng_to_cell(b, a, 8) for a, b in zip(lon, lat, strict=True)]
    assert [g.ids[i] for i in idx[inside][:200]] == want


def test_area_layer_cells_count_and_clip(history) -> None:
    lon0, lat0 = FRAME.inverse(np.array([0.0]), np.array([0.0]))
    west = box(lon0[0] - 1, lat0[0] - 1, lon0[0], lat0[0] + 1)
    east = box(lon0[0], lat0[0] - 1, lon0[0] + 1, lat0[0] + 1)
    area = _lonlat_box(history)
    g = area_grid(history, {"west": west, "east": east}, layer="wards", area=area)
    assert g.ids == ("east", "west") and g.kind == "areas:wards"
    c = g.counts(history)
    inside = g.cell_index(history.x, history.y) >= 0
    assert c.sum() == inside.sum()
    assert c[0] == np.sum(inside & (history.x >= 0)) and c[1] == np.sum(inside & (history.x < 0))


def test_models_forecast_on_h3_cells_and_backtest(history) -> None:
    g = h3_grid(history.before(ORIGIN), 9, reach=300.0)
    models = [OnCells(NaiveCounts()), OnCells(KernelDensity(), fine=50.0)]
    bt = rolling_backtest(history, g, models, consecutive(ORIGIN, 7.0, 3))
    for r in bt.results:
        assert r.mean(0.01, "pai") > 5  # stable hot spots are found on hexagons too
        assert all(e.shape == (g.n,) for e in r.expected)
    m = models[0]
    m.fit(history, g, ORIGIN)
    p = m.predict(ORIGIN, ORIGIN + 7)
    # The fine raster's forecast is summed into the cells, none lost or invented.
    assert p.sum() == pytest.approx(m.model.predict(ORIGIN, ORIGIN + 7).sum())
    assert m.params()["fine_raster_m"] == 50.0


def test_the_size_and_fraction_search_stays_inside_its_limits(history) -> None:
    windows = consecutive(ORIGIN - 28.0, 7.0, 4)  # validation: before the origin
    found = grid_search(
        history,
        NaiveCounts,
        lambda size: grid_for(history.before(windows[0][0]), size),
        windows,
        sizes=(100.0, 200.0, 400.0),
        fractions=(0.01, 0.05),
        size_limits=(75.0, 400.0),
        fraction_limits=(0.005, 0.1),
    )
    assert found.size in (100.0, 200.0, 400.0) and found.fraction in (0.01, 0.05)
    assert len(found.table) == 6
    assert found.score == max(t[2] for t in found.table)
    with pytest.raises(ValueError, match="cell sizes must be in"):
        grid_search(history, NaiveCounts, lambda s: grid_for(history, s), windows,
                    sizes=(50.0,), fractions=(0.01,), size_limits=(75.0, 400.0),
                    fraction_limits=(0.005, 0.1))  # fmt: skip
    with pytest.raises(ValueError, match="fractions in"):
        grid_search(history, NaiveCounts, lambda s: grid_for(history, s), windows,
                    sizes=(100.0,), fractions=(0.2,), size_limits=(75.0, 400.0),
                    fraction_limits=(0.005, 0.1))  # fmt: skip
