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


def test_compstat_per_borough_with_month_only_dates():
    """CompStat per area layer on real data: City of London Police, 2016-2017, by the
    London borough containing each point (the force patrols the City and its edges)."""
    import json

    from shapely.geometry import shape

    from crossbeat.analysis.trends import compstat
    from crossbeat.analytics.run import area_of

    folder = shared_data("uk-london", "col_2016_2017")
    df = pd.concat(pd.read_csv(f) for f in sorted(folder.glob("*/*-street.csv")))
    df = df[df.Month.between("2016-01", "2017-06")]
    boroughs = json.loads(
        (shared_data("uk-london", "boundaries") / "london_boroughs_wgs84.geojson").read_text()
    )["features"]
    shapes = sorted((f["properties"]["name"], shape(f["geometry"])) for f in boroughs)
    area = area_of(shapes, df.Longitude.values, df.Latitude.values)
    start = pd.to_datetime(df.Month).values.astype("datetime64[s]")
    end = (pd.to_datetime(df.Month) + pd.offsets.MonthBegin(1)).values.astype("datetime64[s]")
    table = compstat(
        start, end, np.datetime64("2017-06-30"), groups=area, categories=df["Crime type"].values
    )
    assert "City of London" in set(table.group)
    ytd = table.period.index("ytd")
    placed = df[area != ""]
    for g in set(table.group):
        mine = placed[area[area != ""] == g]
        # Year to date (1 January - 30 June) holds whole months: the spread counts are exact.
        assert table.current[table.group == g, ytd].sum() == pytest.approx(
            int(mine.Month.between("2017-01", "2017-06").sum())
        )
        assert table.previous[table.group == g, ytd].sum() == pytest.approx(
            int(mine.Month.between("2016-01", "2016-06").sum())
        )
    assert table.skipped.reasons.get("missing group", 0) == int((area == "").sum())
