"""Analyses over a selection with little history, and parameters typed on the command line.

Found by running the analyses as a new user would on one month of data (Sacramento PD,
January 2006): CompStat compared the month with a year that held no data and called
every category a significant rise; emerging hot spots padded the month with eleven
empty months before it and called the busy cells "new"; weeks started on Thursdays;
``-p resolution=20`` or ``-p as_of=2006-01-15`` crashed with a traceback (issue #11).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from crossbeat.analysis import localtime
from crossbeat.analysis.errors import AnalysisError
from crossbeat.analysis.trends import compstat as compstat_table
from crossbeat.analytics import run
from crossbeat.analytics.named import render_named, run_named
from crossbeat.analytics.selection import select
from crossbeat.cli import cli
from crossbeat.demo.build import build_demo
from crossbeat.sharing.own import operator_viewer
from crossbeat.sharing.policy import ReadRequest
from crossbeat.store import Store, open_store

CITY = operator_viewer("rivertonpd")


@pytest.fixture
def demo_db(db_url: str, tmp_path: Path) -> tuple[Store, str]:
    """A small demo region on SQLite and on PostgreSQL."""
    build_demo(db_url, tmp_path, size=0.05)
    return open_store(db_url), db_url


def _last_days(store: Store, days: float = 35) -> ReadRequest:
    t = select(store, CITY).arrays.occurred_from
    last = t[~np.isnat(t)].max().astype(datetime).replace(tzinfo=UTC)
    return ReadRequest(since=last - timedelta(days=days))


def test_compstat_without_last_years_data_makes_no_comparison(demo_db) -> None:
    store, _ = demo_db
    request = _last_days(store)
    body = render_named("compstat", run_named("compstat", store, CITY, request, {}), "json")
    assert body["rows"] and all(r["current"] is not None for r in body["rows"])
    # Last year is outside the selection: no data, not zero incidents, so no "rise".
    assert all(r["previous"] is None and r["p"] is None for r in body["rows"])
    assert all(r["change_pct"] is None for r in body["rows"])
    assert "no comparison with last year for week, 28d, ytd" in body["note"]
    assert body["rising_across_borders"] == []
    # The demo holds one year: its whole history has no year-earlier period either.
    full = render_named("compstat", run_named("compstat", store, CITY, None, {}), "json")
    assert all(r["p"] is None for r in full["rows"]) and "no comparison" in full["note"]


def test_compstat_table_marks_periods_before_the_data() -> None:
    t = np.array(["2006-01-02T10:00", "2006-01-20T12:00", "2006-01-30T08:00"], "datetime64[us]")
    table = compstat_table(t, None, np.datetime64("2006-01-31"))
    assert table.no_history == ("week", "28d", "ytd")
    assert np.isnan(table.previous).all() and np.isnan(table.p).all()
    assert table.current[0].tolist() == [1.0, 2.0, 3.0]
    older = np.concatenate([np.array(["2004-12-20T00:00"], "datetime64[us]"), t])
    assert compstat_table(older, None, np.datetime64("2006-01-31")).no_history == ()


def test_emerging_bins_never_start_before_the_data(demo_db) -> None:
    store, _ = demo_db
    with pytest.raises(AnalysisError, match="need at least three month bins and the selection"):
        run.emerging(store, CITY, _last_days(store, 20))  # two months at most
    with pytest.raises(AnalysisError, match="covers 1: choose period=day or select more history"):
        run.emerging(store, CITY, _last_days(store, 0.1), period="week")
    request = _last_days(store)
    with pytest.raises(AnalysisError, match="bins=12 reaches back before the earliest incident"):
        run.emerging(store, CITY, request, period="week", bins=12)
    out = run.emerging(store, CITY, request, period="week")
    edges = np.array(out.result.params.bin_edges, dtype="datetime64[us]")
    first = select(store, CITY, request).arrays.occurred_from.min()
    assert edges[0] <= first < edges[1]  # the first bin holds the earliest incident
    assert 5 <= len(edges) - 1 <= 7
    assert all(e.astype(datetime).weekday() == 0 for e in edges)  # type: ignore[union-attr]  # Mondays


def test_week_periods_start_on_monday() -> None:
    t = np.array(["2006-01-01T12:00", "2006-01-12T00:00"], "datetime64[us]")  # Sun, Thu
    edges = localtime.edges(t, "week", None)
    assert [str(e)[:10] for e in edges] == ["2005-12-26", "2006-01-02", "2006-01-09", "2006-01-16"]
    assert [str(e)[:10] for e in localtime.edges(t, "week", 4)][0] == "2005-12-19"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hotspots", "-p", "resolution=20"], "resolution must be from 0 to 15, got 20"),
        (["hotspots", "-p", "cells=hexagons"], "cells must be one of h3, grid, area"),
        (["compstat", "-p", "as_of=last week"], "as_of must be a date (YYYY-MM-DD)"),
        (["trends", "-p", "period=year"], "period must be one of day, week, month"),
        (["kde", "-p", "bandwidth=-3"], "bandwidth must be positive"),
        (["nearrepeat", "-p", "distance_edges_m=0;100"], "distance_edges_m must be band edges"),
        (["series", "-p", "min_samples=1.5"], "min_samples must be a whole number"),
    ],
)
def test_cli_parameters_are_checked(demo_db, args: list[str], message: str) -> None:
    _, url = demo_db
    res = CliRunner().invoke(cli, ["analyse", *args, "--agency", "rivertonpd", "--db", url])
    assert res.exit_code == 1, res.output
    assert message in res.output and "Traceback" not in res.output


def test_cli_typed_parameters_are_used(demo_db) -> None:
    _, url = demo_db
    base = ["--agency", "rivertonpd", "--db", url]
    res = CliRunner().invoke(cli, ["analyse", "compstat", *base, "-p", "as_of=2026-03-01"])
    assert res.exit_code == 0, res.output
    assert '"as_of": "2026-03-01"' in res.output
    near = ["analyse", "nearrepeat", *base, "-p", "distance_edges_m=0,50,150", "-p",
            "permutations=9"]  # fmt: skip
    # metrotransit shares its points at block (res-10 cells, 76 m edges) with riverton:
    # 50 m bands over them would look finer than the grant, so the whole region is refused
    res = CliRunner().invoke(cli, near)
    assert res.exit_code == 1, res.output
    assert "distance_edges_m=76 or more" in res.output
    assert "leave metrotransit's incidents out" in res.output
    # riverton's own incidents, exact to its analysts, take 50 m bands
    res = CliRunner().invoke(cli, [*near, "--owner", "rivertonpd"])
    assert res.exit_code == 0, res.output
    assert '"metrotransit"' not in res.output
    assert '"distance_m": [\n        50.0,\n        150.0' in res.output
