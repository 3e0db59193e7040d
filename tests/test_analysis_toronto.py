"""The analyses on real data: Toronto Police Service Major Crime Indicators, 2014-2021."""

from __future__ import annotations

from functools import cache

import h3
import numpy as np
import pandas as pd
import pytest

from crossbeat.analysis.emerging import emerging_hotspots
from crossbeat.analysis.hotspots import h3_hotspots
from crossbeat.analysis.kde import kernel_density
from crossbeat.analysis.nearrepeat import knox_test
from crossbeat.analysis.trends import compstat
from tests.conftest import shared_data

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

# Downtown Toronto (Yonge-Dundas to the waterfront): where the densest hot spots are.
DOWNTOWN = (-79.40, 43.64, -79.36, 43.67)


@cache
def _toronto() -> pd.DataFrame:
    folder = shared_data("toronto-mci")
    df = pd.concat([pd.read_csv(folder / name) for name in ("train.csv", "test.csv")])
    day = pd.to_datetime(df.occurrencedate.str.slice(0, 10), format="%Y/%m/%d")
    df["t"] = day + pd.to_timedelta(df.occurrencehour, unit="h")
    return df


def _in_downtown(lon: float, lat: float) -> bool:
    return DOWNTOWN[0] <= lon <= DOWNTOWN[2] and DOWNTOWN[1] <= lat <= DOWNTOWN[3]


def test_hot_spots_and_density_peak_downtown():
    df = _toronto()
    res = h3_hotspots(df.Long.values, df.Lat.values, resolution=9)
    assert res.n_used == len(df) == 240_992
    assert 50 < res.hot.sum() < 0.1 * len(res.cell)
    lat, lon = h3.cell_to_latlng(str(res.cell[np.argmax(res.z)]))
    assert _in_downtown(lon, lat)
    kde = kernel_density(df.Long.values, df.Lat.values)
    i, j = np.unravel_index(np.argmax(kde.density), kde.density.shape)
    assert _in_downtown(kde.lon[i, j], kde.lat[i, j])
    assert kde.params.crs == "EPSG:32617"


def test_break_and_enter_near_repeats():
    df = _toronto()
    be = df[(df.MCI == "Break and Enter") & (df.t >= "2019-01-01") & (df.t < "2020-01-01")]
    res = knox_test(
        be.Long.values,
        be.Lat.values,
        be.t.values.astype("datetime64[s]"),
        permutations=99,
        seed=1,
    )
    assert res.n_used == len(be)
    # The classic near-repeat signature: same block, same week, well above chance and
    # decaying with distance.
    assert res.ratio[0, 0] > 1.5 and res.p[0, 0] == pytest.approx(0.01)
    assert res.ratio[0, 0] > res.ratio[1, 0] > res.ratio[3, 0]


def test_emerging_hot_spots_and_compstat_run():
    df = _toronto()
    edges = np.array([np.datetime64(f"{y}-01-01", "s") for y in range(2014, 2023)])
    em = emerging_hotspots(
        df.Long.values, df.Lat.values, df.t.values.astype("datetime64[s]"), None, edges
    )
    # Incidents before 2014 (1,057 rows) are outside the bins and reported, not dropped.
    assert em.skipped.reasons == {"outside the time bins": int((df.t < "2014-01-01").sum())}
    assert {"persistent hot", "none"} <= set(em.pattern)
    table = compstat(
        df.t.values.astype("datetime64[s]"),
        None,
        np.datetime64("2021-06-30"),
        categories=df.MCI.values,
    )
    rows = {r["category"]: r for r in table.rows()}
    assert set(rows) == set(df.MCI.unique())
    # Break and enter fell in the first half of 2021 against 2020, far beyond chance.
    assert rows["Break and Enter"]["ytd_change_pct"] < -10
    assert rows["Break and Enter"]["ytd_p"] < 1e-6
