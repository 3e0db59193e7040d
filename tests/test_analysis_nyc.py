"""Real time ranges: NYC vehicle thefts (CODE) are known between date_start and date_end."""

from __future__ import annotations

import pandas as pd
import pytest

from crossbeat.analysis.nearrepeat import knox_test
from tests.conftest import shared_data

pytestmark = pytest.mark.shared_data


def test_knox_places_short_ranges_at_their_midpoint_and_skips_wide_ones():
    df = pd.read_csv(shared_data("us-code-crimedata", "nycvehiclethefts.csv"))
    start = pd.to_datetime(df.date_start)
    end = pd.to_datetime(df.date_end)  # missing for some rows: then the time is exact
    sel = (start >= "2016-01-01") & (start < "2017-01-01")
    res = knox_test(
        df.longitude.values[sel],
        df.latitude.values[sel],
        start.values[sel].astype("datetime64[s]"),
        end.values[sel].astype("datetime64[s]"),
        permutations=99,
        seed=1,
        max_time_range_days=2,
    )
    wide = int(((end - start)[sel] > pd.Timedelta(days=2)).sum())
    assert wide > 1000  # a car is often found missing days after it was last seen
    assert res.skipped.reasons == {"time range too wide": wide}
    assert res.n_used == int(sel.sum()) - wide
    assert res.params.crs == "EPSG:32618"
    # Thefts of cars repeat near in space and time, more than chance.
    assert res.ratio[0, 0] > 1.3 and res.p[0, 0] == pytest.approx(0.01)
