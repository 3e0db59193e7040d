"""Two forces on one map (police.uk, January 2020): hot spots across both, month-only dates."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest

from crossbeat.analysis.hotspots import h3_hotspots
from crossbeat.analysis.trends import counts_by_period
from tests.conftest import shared_data

pytestmark = pytest.mark.shared_data

# Greater London's bounding box: BTP also polices railways across Great Britain.
LONDON = (-0.52, 51.28, 0.34, 51.70)


def _january_2020() -> pd.DataFrame:
    folder = shared_data("uk-london", "btp_col_2020")
    df = pd.concat(
        pd.read_csv(folder / name)
        for name in ("2020-01-btp-street.csv", "2020-01-city-of-london-street.csv")
    )
    inside = df.Longitude.between(LONDON[0], LONDON[2]) & df.Latitude.between(LONDON[1], LONDON[3])
    return df[inside | df.Longitude.isna()]


def test_hot_spots_span_both_forces_and_count_missing_points():
    df = _january_2020()
    res = h3_hotspots(df.Longitude.values, df.Latitude.values, resolution=9)
    assert res.skipped.reasons == {"missing coordinates": int(df.Longitude.isna().sum())}
    assert res.n_used == int(df.Longitude.notna().sum())
    hot = set(res.cell[res.hot])
    located = df[df.Longitude.notna()]
    pairs = zip(located.Longitude, located.Latitude, strict=True)
    cells = [h3.latlng_to_cell(lat, lon, 9) for lon, lat in pairs]
    forces = set(located[np.isin(cells, list(hot))]["Reported by"])
    assert forces == {"British Transport Police", "City of London Police"}


def test_month_only_dates_are_spread_over_the_month_not_pinned_to_the_first():
    df = _january_2020()
    start = pd.to_datetime(df.Month).values.astype("datetime64[s]")
    end = (pd.to_datetime(df.Month) + pd.offsets.MonthBegin(1)).values.astype("datetime64[s]")
    edges = np.arange(
        np.datetime64("2020-01-01"), np.datetime64("2020-02-02"), np.timedelta64(7, "D")
    ).astype("datetime64[s]")  # four full weeks, 1-28 January
    res = counts_by_period(start, end, edges, groups=df["Reported by"].values)
    totals = df["Reported by"].value_counts()
    for g, row in zip(res.groups, res.counts, strict=True):
        np.testing.assert_allclose(row, totals[g] * 7 / 31)
    # The last three days of January fall after the bins and are reported as outside.
    assert res.outside == pytest.approx(len(df) * 3 / 31)
