"""Kernel density: the binned-FFT raster matches a direct Gaussian kernel sum."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from crossbeat.analysis import AnalysisError
from crossbeat.analysis.kde import kernel_density, rule_of_thumb
from tests.analysis_support import lonlat_from_metres, utm


def _cloud(n: int = 300, seed: int = 3):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(0, 800, n), rng.normal(2500, 300, n // 2)])
    y = np.concatenate([rng.normal(0, 800, n), rng.normal(1500, 300, n // 2)])
    return lonlat_from_metres(x, y)


def test_matches_direct_kernel_sum_on_small_grid():
    lon, lat = _cloud()
    res = kernel_density(lon, lat, bandwidth=400.0, cell_m=100.0, crs="EPSG:32617")
    px, py = utm(lon, lat)
    gx, gy = np.meshgrid(res.x, res.y, indexing="ij")
    bw = res.params.bandwidth_m
    # Direct sum of Gaussian kernels, in incidents per km², at every node of the grid.
    d2 = (gx[..., None] - px) ** 2 + (gy[..., None] - py) ** 2
    direct = np.exp(-d2 / (2 * bw * bw)).sum(axis=-1) / (2 * np.pi * bw * bw) * 1e6
    assert res.density.shape == direct.shape
    assert np.max(np.abs(res.density - direct)) / direct.max() < 0.01
    # The raster integrates to the number of incidents.
    mass = res.density.sum() * (res.params.cell_m**2) / 1e6
    assert mass == pytest.approx(len(lon), rel=0.01)


def test_local_utm_rule_of_thumb_and_contours():
    lon, lat = _cloud()
    res = kernel_density(lon, lat, bandwidth="silverman")
    assert res.params.crs == "EPSG:32617"  # Toronto is in UTM zone 17N
    px, py = utm(lon, lat)
    assert res.params.bandwidth_m == pytest.approx(rule_of_thumb(px, py, "silverman"), rel=1e-6)
    assert res.params.bandwidth_rule == "silverman"
    # Highest-density regions are nested and the densest node lies in the smallest one.
    c50, c90 = res.contours[0.5], res.contours[0.9]
    assert c50.area < c90.area
    assert c90.buffer(1e-9).contains(c50)
    i, j = np.unravel_index(np.argmax(res.density), res.density.shape)
    assert c50.contains(shapely.Point(res.lon[i, j], res.lat[i, j]))
    # The 50% threshold cuts half of the raster's mass, and the region holds roughly
    # half of the incidents (smoothing spreads mass outward, so somewhat more).
    dens = res.density
    assert dens[dens >= res.thresholds[0.5]].sum() / dens.sum() == pytest.approx(0.5, abs=0.01)
    inside = shapely.contains_xy(c50, lon, lat).mean()
    assert 0.4 < inside < 0.75


def test_weights_and_skipped_coordinates():
    lon, lat = _cloud()
    lon = np.append(lon, [np.nan, 200.0])
    lat = np.append(lat, [43.7, 43.7])
    res = kernel_density(lon, lat, bandwidth=300.0, weights=np.full(len(lon), 0.5))
    assert res.skipped.reasons == {"missing coordinates": 1, "coordinates out of range": 1}
    assert res.n_used == len(lon) - 2
    mass = res.density.sum() * (res.params.cell_m**2) / 1e6
    assert mass == pytest.approx(0.5 * res.n_used, rel=0.01)


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        ([], [], "empty selection"),
        ([-79.4], [43.7], "at least two"),
        ([-79.4, -79.4, -79.4], [43.7, 43.7, 43.7], "one point"),
        ([np.nan, np.nan], [43.7, 43.7], "empty selection"),
    ],
)
def test_bad_input_is_a_clear_error(lon, lat, message):
    with pytest.raises(AnalysisError, match=message):
        kernel_density(np.array(lon, dtype=float), np.array(lat, dtype=float))


def test_geographic_crs_and_bad_bandwidth_refused():
    lon, lat = _cloud(50)
    with pytest.raises(AnalysisError, match="geographic"):
        kernel_density(lon, lat, crs="EPSG:4326")
    with pytest.raises(AnalysisError, match="unknown bandwidth rule"):
        kernel_density(lon, lat, bandwidth="guess")
    with pytest.raises(AnalysisError, match="positive"):
        kernel_density(lon, lat, bandwidth=-5.0)


def test_utm_zone_agrees_with_the_proj_database():
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    from crossbeat.analysis.points import utm_zone

    rng = np.random.default_rng(0)
    points = list(zip(rng.uniform(-179.9, 179.9, 60), rng.uniform(-79.9, 83.9, 60), strict=True))
    for lon, lat in points + [(5.0, 60.0), (10.0, 78.0), (-79.4, 43.7), (151.2, -33.9)]:
        infos = query_utm_crs_info(
            datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
        )
        assert utm_zone(lon, lat) in {f"{i.auth_name}:{i.code}" for i in infos}
