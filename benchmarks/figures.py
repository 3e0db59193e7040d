"""Draw the pictures of docs/analysis.md from real data and the demo region.

Usage::

    python benchmarks/figures.py            # writes docs/images/*.png and prints the figures

Toronto (../shared/data/toronto-mci, 240,992 incidents 2014-2021): kernel density,
Gi* hot spots, emerging hot spots over yearly bins, the Knox table of 2019's break and
enters and the CompStat table as of 30 June 2021. London (../shared/data/uk-london,
January 2020): Gi* hot spots over British Transport Police and City of London Police
on one map. The demo region (built in a temporary folder): the planted cross-border
robbery series and the double-reported station incidents, found through the same
service the API and the CLI call. The same code renders the API's ``f=png`` answers.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from crossbeat.analysis.emerging import emerging_hotspots
from crossbeat.analysis.hotspots import h3_hotspots
from crossbeat.analysis.kde import kernel_density
from crossbeat.analysis.nearrepeat import knox_test
from crossbeat.analysis.trends import compstat
from crossbeat.analytics import render

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "docs" / "images"


def _toronto() -> pd.DataFrame:
    folder = DATA / "toronto-mci"
    df = pd.concat([pd.read_csv(folder / name) for name in ("train.csv", "test.csv")])
    day = pd.to_datetime(df.occurrencedate.str.slice(0, 10), format="%Y/%m/%d")
    df["t"] = day + pd.to_timedelta(df.occurrencehour, unit="h")
    return df


def toronto() -> None:
    df = _toronto()
    lon, lat = df.Long.values, df.Lat.values
    t = df.t.values.astype("datetime64[s]")
    kde = kernel_density(lon, lat, bandwidth=300.0)
    (OUT / "toronto-kde.png").write_bytes(render.kde_png(kde, "Toronto, all MCI 2014-2021"))
    gi = h3_hotspots(lon, lat, resolution=9)
    (OUT / "toronto-hotspots.png").write_bytes(render.hotspots_png(gi, "Toronto Gi*, H3 res 9"))
    print(f"Toronto Gi*: {len(gi.cell):,} cells, {gi.hot.sum():,} hot, {gi.cold.sum():,} cold")
    edges = np.array([np.datetime64(f"{y}-01-01", "s") for y in range(2014, 2023)])
    em = emerging_hotspots(lon, lat, t, None, edges)
    (OUT / "toronto-emerging.png").write_bytes(
        render.emerging_png(em, "Toronto emerging hot spots, yearly bins 2014-2021, H3 res 8")
    )
    pats, counts = np.unique(em.pattern, return_counts=True)
    print("Toronto emerging:", dict(zip(pats.tolist(), counts.tolist(), strict=True)))
    be = df[(df.MCI == "Break and Enter") & (df.t >= "2019-01-01") & (df.t < "2020-01-01")]
    knox = knox_test(be.Long.values, be.Lat.values, be.t.values.astype("datetime64[s]"),
                     permutations=99, seed=1)  # fmt: skip
    (OUT / "toronto-knox.png").write_bytes(
        render.knox_png(knox, f"Toronto break and enter 2019 ({len(be):,} incidents)")
    )
    print("Toronto Knox ratio (0-100 m x 0-7 d):", round(float(knox.ratio[0, 0]), 2))
    table = compstat(t, None, np.datetime64("2021-06-30"), categories=df.MCI.values)
    print("Toronto CompStat as of 2021-06-30 (ytd vs 2020):")
    for row in table.rows():
        print(f"  {row['category']:<16} {row['ytd']:>7.0f} vs {row['ytd_last_year']:>7.0f} "
              f"{row['ytd_change_pct']:+6.1f} %  p={row['ytd_p']:.2g}")  # fmt: skip


def london() -> None:
    folder = DATA / "uk-london" / "btp_col_2020"
    df = pd.concat(
        pd.read_csv(folder / name)
        for name in ("2020-01-btp-street.csv", "2020-01-city-of-london-street.csv")
    )
    box = (-0.52, 51.28, 0.34, 51.70)
    df = df[df.Longitude.between(box[0], box[2]) & df.Latitude.between(box[1], box[3])]
    gi = h3_hotspots(df.Longitude.values, df.Latitude.values, resolution=9)
    (OUT / "london-hotspots.png").write_bytes(
        render.hotspots_png(gi, "London Jan 2020, BTP + City of London Police, Gi* res 9")
    )
    print(f"London Gi*: {len(df):,} incidents, {gi.hot.sum():,} hot cells")


def demo() -> None:
    from crossbeat.analytics import links, run
    from crossbeat.demo.build import build_demo
    from crossbeat.sharing.own import operator_viewer
    from crossbeat.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/demo.db"
        build_demo(url, Path(tmp), size=0.3)
        store = open_store(url)
        city = operator_viewer("rivertonpd")
        summary = links.link(store, city)
        print(f"Demo duplicates: {summary.found} pairs found and linked")
        out = run.series(store, city)
        (OUT / "demo-series.png").write_bytes(
            render.series_png(out, "Demo region: series found by ST-DBSCAN (city analyst's view)")
        )
        print(f"Demo series: {len(out.result.series)} series, largest {len(out.result.series[0])}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    if not (DATA / "toronto-mci").exists():
        sys.exit(f"no shared data at {DATA}: the real-data pictures need it")
    toronto()
    london()
    demo()
    print(f"wrote {sorted(p.name for p in OUT.glob('*.png'))}")


if __name__ == "__main__":
    main()
