"""Load the shared real data sets straight from their CSVs into forecasting histories.

Used by ``benchmarks/forecast_backtest.py`` and ``benchmarks/forecast.py`` (and the
shared-data tests). Toronto MCI: local date + ``occurrencehour`` (exact to the hour).
London (City of London Police, police.uk): month-only dates, so each incident is a range
over its whole month, spread uniformly by the models.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from crossbeat.forecast.history import History, history_from_lonlat

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TORONTO = SHARED / "toronto-mci"
LONDON = SHARED / "uk-london"

#: Categories compared in docs/forecasting.md, per data set.
TORONTO_CATEGORIES = {
    "burglary": "Break and Enter",
    "auto theft": "Auto Theft",
    "robbery": "Robbery",
}
LONDON_CATEGORIES = {
    "burglary": "Burglary",
    "vehicle crime": "Vehicle crime",
    "robbery": "Robbery",
    "theft from the person": "Theft from the person",
    "other theft": "Other theft",
}


#: Toronto's categories a service forecast may borrow from: all five MCI categories
#: (assault, break and enter, auto theft, robbery, theft over) are forecastable.
TORONTO_FORECASTABLE = ("Assault", "Auto Theft", "Break and Enter", "Robbery", "Theft Over")


def london_forecastable() -> list[str]:
    """Return the police.uk categories a service forecast may borrow from.

    Those the police-uk crosswalk maps to a NIBRS code of
    :data:`crossbeat.forecast.service.DEFAULT_FORECASTABLE`: drugs, public order,
    weapons, "other crime", anti-social behaviour, violence and theft from the person
    are not (the service reads only forecastable categories to borrow from).
    """
    from crossbeat.forecast.service import DEFAULT_FORECASTABLE
    from crossbeat.taxonomy.crosswalk import load_crosswalk

    crosswalk = load_crosswalk("police-uk")
    return sorted(r.local for r in crosswalk.rules if r.nibrs in DEFAULT_FORECASTABLE)


def toronto(root: Path = TORONTO) -> History:
    """Return Toronto's 2014–2021 MCI incidents (train.csv and test.csv together)."""
    cols = ["occurrencedate", "occurrencehour", "MCI", "Lat", "Long"]
    df = pd.concat([pd.read_csv(root / n, usecols=cols) for n in ("train.csv", "test.csv")])
    day = pd.to_datetime(df.occurrencedate.str.slice(0, 10)).to_numpy().astype("datetime64[us]")
    t = day + (df.occurrencehour.to_numpy().astype("int64") * 3600 * 10**6).astype(
        "timedelta64[us]"
    )
    keep = (
        (day >= np.datetime64("2014-01-01")) & (df.Lat.to_numpy() > 43) & (df.Long.to_numpy() < -79)
    )
    return history_from_lonlat(
        df.Long.to_numpy()[keep],
        df.Lat.to_numpy()[keep],
        t[keep],
        None,
        df.MCI.to_numpy()[keep],
        np.full(int(keep.sum()), "tps"),
    )


#: The months missing between the two London series: 2017-07-01 to 2020-01-01, in days.
LONDON_GAP_DAYS = float(
    (np.datetime64("2020-01-01") - np.datetime64("2017-07-01")) / np.timedelta64(1, "D")
)


def london(root: Path = LONDON, *, close_gap: bool = False) -> tuple[History, shapely.Geometry]:
    """Return City of London Police street crimes (2016-01…2017-06, 2020) and its boundary.

    ``close_gap`` moves the 2020 incidents back by :data:`LONDON_GAP_DAYS`, so 2020-01
    follows 2017-06: look-backs then count the last observed months instead of the 30
    months the shared data lack (a 2020 window ``[a, b)`` becomes ``[a - gap, b - gap)``).
    """
    files = sorted((root / "col_2016_2017").glob("*/*-street.csv"))
    files += sorted((root / "btp_col_2020").glob("2020-*-city-of-london-street.csv"))
    df = pd.concat(
        [
            pd.read_csv(f, usecols=["Month", "Longitude", "Latitude", "Crime type", "Reported by"])
            for f in files
        ]
    )
    df = df.dropna(subset=["Longitude", "Latitude"])
    start = pd.to_datetime(df.Month + "-01")
    end = start + pd.offsets.MonthBegin(1)
    if close_gap:
        gap = pd.Timedelta(days=LONDON_GAP_DAYS)
        later = (start >= pd.Timestamp("2020-01-01")).to_numpy()
        start = start.where(~later, start - gap)
        end = end.where(~later, end - gap)
    import json

    boroughs = json.loads((root / "boundaries" / "london_boroughs_wgs84.geojson").read_text())
    city = next(
        shape(f["geometry"]) for f in boroughs["features"] if "City" in str(f["properties"])
    )
    h = history_from_lonlat(
        df.Longitude.to_numpy(),
        df.Latitude.to_numpy(),
        start.to_numpy().astype("datetime64[us]"),
        end.to_numpy().astype("datetime64[us]"),
        df["Crime type"].to_numpy(),
        df["Reported by"].to_numpy(),
    )
    return h, city
