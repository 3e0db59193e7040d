"""What the ingest benchmark measures beside CrossBeat's end to end (issue #9).

* :func:`write_floor`: CrossBeat's own schema write floor. The rows an end-to-end
  ingest stored (incidents, offences, jurisdiction and area tags, sealed personal data,
  live events) are read back chunk by chunk and written into a fresh store of the same
  schema through the same bulk path the ingest uses (``Store.bulk_insert``: prepared
  executemany on SQLite, ``COPY`` on PostgreSQL), one transaction per 20,000 incidents,
  in file order. Only the writes and commits are timed: no reading, normalising,
  deriving, hashing or sealing, so this is as fast as any ingest into this schema can be.
* :func:`ogr2ogr` and :func:`geopandas_load`: the tools a user would reach for instead,
  loading the same CSV (points in EPSG:2913, transformed to WGS84) into PostGIS and a
  GeoPackage.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: Incidents per timed transaction (the ingest's chunk size).
CHUNK = 20_000
#: Rows per bulk insert within a transaction (the ingest's part size).
PART = 2_000


def _chunks(source: Any) -> Iterator[list[dict[str, Any]]]:
    """Yield the source store's incident rows in file order, :data:`CHUNK` at a time."""
    from sqlalchemy import select

    from crossbeat.store.schema import incidents

    with source.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(
            select(incidents).order_by(incidents.c.batch_id, incidents.c.row_number)
        )
        for part in result.mappings().partitions(CHUNK):
            yield [dict(r) for r in part]


def _dependants(source: Any, ids: list[str]) -> dict[Any, list[dict[str, Any]]]:
    """Return the rows of the tables hanging off ``ids``, per table, in insert order."""
    from sqlalchemy import select

    from crossbeat.store.schema import (
        incident_areas,
        incident_jurisdictions,
        incident_offences,
        incident_personal,
        live_events,
    )

    out: dict[Any, list[dict[str, Any]]] = {}
    with source.connect() as conn:
        for table in (incident_offences, incident_jurisdictions, incident_areas, incident_personal):
            rows = conn.execute(select(table).where(source.one_of(table.c.incident_id, ids)))
            out[table] = [dict(r) for r in rows.mappings()]
        events = conn.execute(
            select(live_events)
            .where(source.one_of(live_events.c.subject_id, ids))
            .order_by(live_events.c.id)
        )
        out[live_events] = [{k: v for k, v in r.items() if k != "id"} for r in events.mappings()]
    return out


def write_floor(source: Any, target: Any, *, before: bool = False) -> tuple[float, int]:
    """Write the stored rows of ``source`` into the fresh store ``target``; time the writes.

    Parameters
    ----------
    source
        A store an ingest has written (its agencies and jurisdictions are also in
        ``target``).
    target
        A fresh store of the same schema.
    before
        Write as the store did before issue #9's session 5: the R*Tree kept by its
        per-row trigger (SQLite), the secondary indexes in place during the load, text
        ``COPY`` (PostgreSQL). Otherwise as the ingest writes a first load now: points
        indexed together (:func:`crossbeat.store.spatial.indexed_together`), secondary
        indexes built after the load (timed), binary ``COPY``.

    Returns
    -------
    tuple[float, int]
        Seconds spent writing and committing, and the incidents written.
    """
    from contextlib import nullcontext

    from crossbeat.store.schema import incidents
    from crossbeat.store.spatial import drop_secondary, ensure_secondary, indexed_together

    if before and target.dialect == "postgresql":
        target.binary_copy = False
    if not before:
        with target.begin() as conn:
            drop_secondary(conn)
    seconds, count = 0.0, 0
    for chunk in _chunks(source):
        tables = {incidents: chunk, **_dependants(source, [r["id"] for r in chunk])}
        t0 = time.perf_counter()
        with target.begin() as conn, target.bulk_writes(conn):
            for table, rows in tables.items():
                for i in range(0, len(rows), PART):
                    part = rows[i : i + PART]
                    ids = [r["id"] for r in part] if table is incidents and not before else []
                    with indexed_together(conn, ids) if ids else nullcontext():
                        target.bulk_insert(conn, table, part)
        seconds += time.perf_counter() - t0
        count += len(chunk)
    if not before:
        t0 = time.perf_counter()
        with target.begin() as conn:
            ensure_secondary(conn)
        seconds += time.perf_counter() - t0
    return seconds, count


def ogr2ogr_available() -> bool:
    """Return whether GDAL's ``ogr2ogr`` is on the path (``apt-get install gdal-bin``)."""
    return shutil.which("ogr2ogr") is not None


def _ogr_csv_options(csv_path: Path) -> list[str]:
    return [
        str(csv_path),
        "-oo",
        "X_POSSIBLE_NAMES=x",
        "-oo",
        "Y_POSSIBLE_NAMES=y",
        "-oo",
        "KEEP_GEOM_COLUMNS=NO",
        "-s_srs",
        "EPSG:2913",
        "-t_srs",
        "EPSG:4326",
        "-nln",
        "incidents_ogr",
        "-gt",
        "65536",
    ]


def ogr2ogr(csv_path: Path, target: str) -> float:
    """Load the CSV with ``ogr2ogr`` into PostGIS (``postgresql://`` URL) or a GeoPackage path.

    Returns
    -------
    float
        Seconds.
    """
    if target.startswith("postgresql"):
        url = target.replace("postgresql+psycopg://", "postgresql://")
        cmd = ["ogr2ogr", "-f", "PostgreSQL", f"PG:{url}", "--config", "PG_USE_COPY", "YES"]
    else:
        cmd = ["ogr2ogr", "-f", "GPKG", target]
    t0 = time.perf_counter()
    subprocess.run([*cmd, *_ogr_csv_options(csv_path)], check=True, capture_output=True)
    return time.perf_counter() - t0


def geopandas_load(csv_path: Path, target: str) -> float:
    """Load the CSV with GeoPandas into PostGIS (``to_postgis``) or a GeoPackage (pyogrio).

    Read with pandas, points from x/y in EPSG:2913, transformed to WGS84.

    Returns
    -------
    float
        Seconds.
    """
    import geopandas as gpd
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_csv(csv_path, dtype=str)
    geom = gpd.points_from_xy(df.pop("x").astype(float), df.pop("y").astype(float))
    gdf = gpd.GeoDataFrame(df, geometry=geom, crs="EPSG:2913").to_crs("EPSG:4326")
    if target.startswith("postgresql"):
        from sqlalchemy import create_engine

        engine = create_engine(target.replace("postgresql://", "postgresql+psycopg://"))
        try:
            gdf.to_postgis("incidents_gpd", engine, chunksize=65536)
        finally:
            engine.dispose()
    else:
        gdf.to_file(target, layer="incidents_gpd", driver="GPKG", engine="pyogrio")
    return time.perf_counter() - t0
