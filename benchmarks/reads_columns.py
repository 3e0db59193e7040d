"""The read benchmark's population generated column by column, for 10 M rows on PostgreSQL.

``benchmarks/reads.py`` writes its SQLite populations row by row in Python
(:func:`reads.rows`) and then lets :func:`crossbeat.sharing.flags.refresh_flags`
derive the sensitivity flags with an ``UPDATE`` of every row: on PostgreSQL that took
899 s + 2,542 s for 1 M rows under load, about 9 hours for 10 M. Here the same kind of
population (the same agencies, offence mix, clustering, times, withdrawn share; other
random draws) is generated a chunk at a time with numpy, with what the store derives
at write time computed at generation:

* the served flags (``sens_served``) and their rules key (``sens_rules``) from
  :meth:`crossbeat.sharing.flags.SensitivityRules.flags` of the current rules, once per
  distinct input (offence × stored juvenile flag × attributes: a few hundred), and
  ``occurred_local`` in the owner's zone, vectorised;
* H3 cells in vectorised h3ronpy calls; the row copies of the child rows
  (``offences_json``, ``jurisdiction_ids``);

and loaded by ``COPY ... (FORMAT csv)`` (written by pyarrow) in large blocks, with the
tables' secondary indexes and foreign keys dropped during the load and built (and
validated) once after it, then ``VACUUM (ANALYZE)``.
:func:`check_sample` then re-derives a random sample of rows the normal way (their
rules key cleared, :func:`~crossbeat.sharing.flags.refresh_flags`, and
:func:`crossbeat.store.tags.refresh_children`) and requires the same values.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from h3ronpy import cells_to_string
from reads import AGENCIES, CITY, NOW, OFFENCES, PREMISES, STREETS
from sqlalchemy import text

from crossbeat.geo.cells import h3_cell_ints
from crossbeat.model import Sensitivity
from crossbeat.sharing.flags import current_rules, mask_of
from crossbeat.sharing.public import FLAG_COLUMNS
from crossbeat.store import Store
from crossbeat.taxonomy.nibrs import nibrs_offences

#: Rows generated and copied per block.
CHUNK = 250_000
_TABLES = ("incidents", "incident_offences", "incident_jurisdictions")


def _uuids(rng: np.random.Generator, n: int, version4: bool) -> list[str]:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    if version4:
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [
        f"{h[k : k + 8]}-{h[k + 8 : k + 12]}-{h[k + 12 : k + 16]}-{h[k + 16 : k + 20]}-"
        f"{h[k + 20 : k + 32]}"
        for k in range(0, 32 * n, 32)
    ]


def _times(values: np.ndarray) -> np.ndarray:
    """``datetime64[us]`` as PostgreSQL timestamptz text (NaT: None)."""
    out = np.char.add(np.datetime_as_string(values, unit="us"), "+00").astype(object)
    out[np.isnat(values)] = None
    return out


class Deriver:
    """The served flags of each distinct input, derived by the store's own rules once."""

    def __init__(self, store: Store) -> None:
        with store.engine.connect() as conn:
            self.rules = current_rules(conn)
        self.key = self.rules.key
        self._memo: dict[tuple[int, bool, str | None], int] = {}

    def mask(self, offence: int, juvenile: bool, attributes: str | None) -> int:
        """Return ``sens_served`` of a generated incident."""
        k = (offence, juvenile, attributes)
        found = self._memo.get(k)
        if found is None:
            local, desc, code, _w = OFFENCES[offence]
            stored = {Sensitivity.SEXUAL_OFFENCE: code == "11A",
                      Sensitivity.DOMESTIC_VIOLENCE: local == "DOM ASSAULT",
                      Sensitivity.JUVENILE: juvenile}  # fmt: skip
            row: dict[str, Any] = {
                "nibrs_code": code,
                "offence_local_code": local,
                "attributes": json.loads(attributes) if attributes else None,
                **{col: stored.get(flag, False) for flag, col in FLAG_COLUMNS.items()},
            }
            offs = [{"nibrs_code": code, "local_code": local, "local_description": desc,
                     "scheme": "bench"}]  # fmt: skip
            found = self._memo[k] = mask_of(self.rules.flags(row, offs))
        return found


def chunk(
    rng: np.random.Generator, start: int, n: int, centres: np.ndarray, derive: Deriver
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the incident, offence and jurisdiction rows of incidents ``start..start+n``."""
    table = nibrs_offences()
    weights = np.array([w for *_x, w in OFFENCES], dtype=float)
    pick = centres[(len(centres) * rng.random(n) ** 3).astype(int)]
    lon = np.clip(rng.normal(pick[:, 0], 0.004), CITY[0], CITY[2])
    lat = np.clip(rng.normal(pick[:, 1], 0.003), CITY[1], CITY[3])
    inside = {a: (lon >= b[0]) & (lon <= b[2]) & (lat >= b[1]) & (lat <= b[3])
              for a, (_tz, b) in AGENCIES.items()}  # fmt: skip
    owner = np.where(lon < AGENCIES["metro"][1][2], "metro", "east").astype(object)
    owner[inside["transit"] & (rng.random(n) < 0.3)] = "transit"
    owner[inside["campus"] & (rng.random(n) < 0.7)] = "campus"
    offence = rng.choice(len(OFFENCES), size=n, p=weights / weights.sum())
    local = np.array([o[0] for o in OFFENCES], dtype=object)[offence]
    desc = np.array([o[1] for o in OFFENCES], dtype=object)[offence]
    code = np.array([o[2] for o in OFFENCES], dtype=object)[offence]
    entries = [table[o[2]] for o in OFFENCES]
    against = np.array([e.crime_against.value if e.crime_against else None for e in entries],
                       dtype=object)[offence]  # fmt: skip
    part1 = np.array([e.ucr_part1 for e in entries], dtype=object)[offence]
    start_t = np.datetime64((NOW.replace(tzinfo=None)), "us") - np.timedelta64(730, "D")
    occurred = start_t + rng.integers(0, 730 * 86400, n).astype("timedelta64[s]")
    ended = occurred + rng.integers(0, 720, n).astype("timedelta64[m]")
    ended[rng.random(n) >= 0.5] = np.datetime64("NaT")
    reported = occurred + rng.integers(0, 2880, n).astype("timedelta64[m]")
    premises = np.array(PREMISES, dtype=object)[rng.integers(0, len(PREMISES), n)]
    attributes = np.array([json.dumps({"premises": p}) for p in premises], dtype=object)
    attributes[rng.random(n) >= 0.2] = None
    juvenile = rng.random(n) < 0.01
    withdrawn = np.full(n, None, dtype=object)
    withdrawn[rng.random(n) < 0.02] = _times(
        np.array([np.datetime64(NOW.replace(tzinfo=None), "us") - np.timedelta64(3, "D")])
    )[0]
    # The cells containing the point at each resolution, as the store derives them
    # (crossbeat.geo.cells): not the parents of the finest cell, which H3 does not nest.
    h3_11, h3_9, h3_7 = (
        pa.array(cells_to_string(h3_cell_ints(lat, lon, r))).to_numpy(zero_copy_only=False)
        for r in (11, 9, 7)
    )
    ids = _uuids(rng, n, version4=False)
    local_hour = np.empty(n, dtype=object)
    for agency, (tz, _box) in AGENCIES.items():
        mine = owner == agency
        when = pd.DatetimeIndex(occurred[mine]).tz_localize("UTC").tz_convert(tz)
        local_hour[mine] = np.datetime_as_string(
            when.tz_localize(None).to_numpy().astype("datetime64[h]"), unit="h"
        )
    masks = np.array([derive.mask(int(o), bool(j), a)
                      for o, j, a in zip(offence, juvenile, attributes, strict=True)])  # fmt: skip
    places = [sorted({a for a in AGENCIES if inside[a][k]} | {owner[k]}) for k in range(n)]
    kept = [
        json.dumps([[lo, c, ag, p1, None]], separators=(",", ":"))
        for lo, c, ag, p1 in zip(local, code, against, part1, strict=True)
    ]
    created = _times(np.array([np.datetime64(NOW.replace(tzinfo=None), "us")]))[0]
    incidents = pd.DataFrame(
        {
            "id": ids, "agency_id": owner, "source_id": [f"S{start + k}" for k in range(n)],
            "version": 1, "record_hash": "0" * 64, "offence_local_code": local,
            "nibrs_code": code, "crime_against": against, "ucr_part1": part1,
            "unmapped": False, "occurred_from": _times(occurred), "occurred_to": _times(ended),
            "time_precision": "minute", "reported_at": _times(reported),
            "status": np.where(rng.random(n) < 0.6, "closed", "open"), "lat": lat, "lon": lon,
            "location_precision": "exact",
            "block_address": [f"{b}00 BLOCK {s}" for b, s in zip(
                rng.integers(1, 99, n), np.array(STREETS)[rng.integers(0, len(STREETS), n)],
                strict=True)],
            "location_type": "20", "h3_7": h3_7, "h3_9": h3_9, "h3_11": h3_11,
            "sens_sexual": code == "11A", "sens_domestic": local == "DOM ASSAULT",
            "sens_juvenile": juvenile, "sens_victim_identifying": False,
            "sens_informant": False, "attributes": attributes, "withdrawn_at": withdrawn,
            "batch_id": "bench", "source_file": "bench.csv",
            "row_number": np.arange(start, start + n), "raw_hash": "0" * 64,
            "created_at": created, "updated_at": created,
            "public_id": _uuids(rng, n, version4=True),
            "offences_json": kept, "jurisdiction_ids": [",".join(p) for p in places],
            "sens_served": masks, "sens_rules": derive.key, "occurred_local": local_hour,
        }
    )  # fmt: skip
    offences = pd.DataFrame(
        {
            "incident_id": ids,
            "seq": 0,
            "local_code": local,
            "local_description": desc,
            "scheme": "bench",
            "nibrs_code": code,
            "crime_against": against,
            "ucr_part1": part1,
            "match": "exact",
        }  # fmt: skip
    )
    tags = pd.DataFrame(
        [(ids[k], a, "reporter" if a == owner[k] and not inside[a][k] else "polygon")
         for k in range(n) for a in places[k]],
        columns=["incident_id", "agency_id", "basis"],
    )  # fmt: skip
    return incidents, offences, tags


def _copy(cur: Any, name: str, frame: pd.DataFrame) -> None:
    # pyarrow's CSV writer: strings quoted (an empty string stays one), nulls as empty
    # unquoted fields (NULL for COPY), several times faster than pandas' to_csv.
    buf = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    with cur.copy(f"COPY {name} ({', '.join(frame.columns)}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(buf.getvalue())


def populate_pg(store: Store, n: int, seed: int) -> dict[str, float]:
    """Write ``n`` incidents into a PostgreSQL store; return the seconds of each step."""
    rng = np.random.default_rng(seed)
    centres = np.column_stack(
        [rng.uniform(CITY[0], CITY[2], 2000), rng.uniform(CITY[1], CITY[3], 2000)]
    )
    derive = Deriver(store)
    steps: dict[str, float] = {}
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        # Every index that backs no constraint (cells, times, GiST, the arrays' index...)
        # is dropped for the load and built once after it.
        cur.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = "
            "current_schema() AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM "
            "pg_constraint c WHERE c.conname = i.indexname)",
            (list(_TABLES),),
        )
        indexes = cur.fetchall()
        for name, _sql in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        # Foreign keys too: checked row by row during a COPY, validated in one pass when
        # they are added again.
        cur.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM "
            "pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s)",
            (list(_TABLES),),
        )
        keys = cur.fetchall()
        for table, name, _sql in keys:
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        raw.commit()
        gen = load = 0.0
        for start in range(0, n, CHUNK):
            t0 = time.perf_counter()
            frames = chunk(rng, start, min(CHUNK, n - start), centres, derive)
            t1 = time.perf_counter()
            for name, frame in zip(_TABLES, frames, strict=True):
                _copy(cur, name, frame)
            raw.commit()
            gen += t1 - t0
            load += time.perf_counter() - t1
            print(f"  {start + len(frames[0]):,} rows (generate {gen:.0f} s, copy {load:.0f} s)",
                  flush=True)  # fmt: skip
        steps["generate"], steps["copy"] = gen, load
        t0 = time.perf_counter()
        cur.execute("SET maintenance_work_mem = '512MB'")
        for _name, sql in indexes:
            cur.execute(sql)
        for table, name, sql in keys:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {sql}')
        raw.commit()
        steps["indexes"] = time.perf_counter() - t0
    finally:
        raw.close()
    t0 = time.perf_counter()
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in _TABLES:
            conn.execute(text(f"VACUUM (ANALYZE) {name}"))
    steps["vacuum"] = time.perf_counter() - t0
    return steps


def check_sample(store: Store, size: int = 2000, seed: int = 7) -> int:
    """Re-derive a random sample of rows the store's way; return how many were compared.

    Raises ``SystemExit`` naming the first row whose flags, local time or row copies
    of the child rows differ from what the generation wrote.
    """
    from crossbeat.sharing.flags import refresh_flags
    from crossbeat.store.tags import refresh_children

    cols = "id, sens_served, sens_rules, occurred_local, offences_json, jurisdiction_ids"
    with store.engine.begin() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                text(
                    f"SELECT id FROM incidents TABLESAMPLE BERNOULLI (1) REPEATABLE ({seed}) "
                    "LIMIT :n"
                ),
                {"n": size},  # fmt: skip
            )
        ]
        marks = {"ids": ids}
        before = {r[0]: r[1:] for r in conn.execute(
            text(f"SELECT {cols} FROM incidents WHERE id = ANY(:ids)"), marks)}  # fmt: skip
        conn.execute(text("UPDATE incidents SET sens_rules = NULL WHERE id = ANY(:ids)"), marks)
        refresh_children(conn, ids)
    refresh_flags(store)
    with store.engine.connect() as conn:
        after = {r[0]: r[1:] for r in conn.execute(
            text(f"SELECT {cols} FROM incidents WHERE id = ANY(:ids)"), marks)}  # fmt: skip
    for iid in ids:
        b, a = before[iid], after[iid]
        same = b[:3] == a[:3] and json.loads(b[3]) == json.loads(a[3]) and b[4] == a[4]
        if not same:
            raise SystemExit(f"population check: row {iid} generated {b}, derived {a}")
    return len(ids)
