"""Bad input never loses or corrupts stored data, and every row is accounted for.

A store first holds a clean export. Then hypothesis throws generated bad files at the
same agency and profile — impossible dates, out-of-range and swapped coordinates,
unknown codes, wrong encodings, truncated files, duplicate ids, empty and header-only
files, files that do not match the profile — and after each one the previously stored
records must be exactly as they were, and the ingest must either refuse the file with a
clear error or account for every row.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crossbeat.ingest.pipeline import IngestError, ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.store.schema import incident_offences, incidents
from tests.agency_support import register_for_test
from tests.test_ingest_pipeline import HEADER, PROFILE, row


@pytest.fixture(autouse=True)
def _registered_agencies(request: pytest.FixtureRequest) -> None:
    """The ingest never registers an agency: register the ones these tests use."""
    register_for_test(request, {"cityx": "America/Los_Angeles"})


BASE_ROWS = 30


def _snapshot(store) -> dict[str, tuple]:
    """Every stored record of the base export with its offences, as it must stay."""
    with store.connect() as conn:
        recs = conn.execute(
            select(
                incidents.c.id, incidents.c.source_id, incidents.c.record_hash, incidents.c.version
            ).where(incidents.c.source_id.in_([f"R{i}" for i in range(BASE_ROWS)]))
        ).all()
        offs: dict[str, list[tuple]] = {}
        for o in conn.execute(select(incident_offences)):
            offs.setdefault(o.incident_id, []).append(tuple(o))
    return {r.source_id: (r.record_hash, r.version, sorted(offs.get(r.id, []))) for r in recs}


BAD_VALUES = {
    "when": [
        "2024-02-30 10:00",
        "2024-13-01 10:00",
        "2999-01-01 00:00",
        "1850-06-01 12:00",
        "yesterday",
        "",
        "2024-03-01 25:61",
    ],
    "lat": ["95.5", "-91", "nan", "inf", "abc", "", "-122.67", "1e400"],
    "lon": ["181", "-200", "45.52", "", "NaN", "--1"],
    "code": ["ZZZ", "", "   ", "999", "é-code"],
    "id": ["", "R1", "R2"],  # blank and duplicates of the base records
}


@st.composite
def bad_rows(draw: st.DrawFn) -> list[dict[str, str]]:
    n = draw(st.integers(min_value=1, max_value=12))
    rows = []
    for i in range(n):
        r = row(1000 + i)
        for col in draw(st.lists(st.sampled_from(sorted(BAD_VALUES)), max_size=3, unique=True)):
            r[col] = draw(st.sampled_from(BAD_VALUES[col]))
        # Random garbage in free-text columns, including quotes and newlines.
        if draw(st.booleans()):
            r["narrative"] = draw(st.text(max_size=40))
        rows.append(r)
    return rows


def _encode(rows: list[dict[str, str]], *, mangle: str) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER, lineterminator="\n")
    if mangle != "no_header":
        w.writeheader()
    w.writerows(rows)
    text = buf.getvalue()
    data = text.encode("utf-8", errors="surrogatepass")
    if mangle == "latin1":
        data = text.replace("narrative", "narrativé").encode("latin-1", errors="replace")
    elif mangle == "truncate":
        data = data[: max(1, len(data) - random.Random(len(data)).randint(1, 15))]
    elif mangle == "empty":
        data = b""
    elif mangle == "header_only":
        data = (",".join(HEADER) + "\n").encode()
    elif mangle == "wrong_columns":
        data = b"a;b;c\n1;2;3\n"
    elif mangle == "binary":
        data = bytes(random.Random(len(data)).randrange(256) for _ in range(200))
    return data


@pytest.mark.slow
def test_generated_bad_files_never_damage_stored_data(store, tmp_path):
    profile = parse_profile(PROFILE)
    base = tmp_path / "base.csv"
    with base.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(row(i) for i in range(BASE_ROWS))
    ingest_files(store, "cityx", profile, [base])
    counter = iter(range(10**6))
    mangles = [
        "none",
        "latin1",
        "truncate",
        "empty",
        "header_only",
        "wrong_columns",
        "binary",
        "no_header",
    ]

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(rows=bad_rows(), mangle=st.sampled_from(mangles))
    def check(rows: list[dict[str, str]], mangle: str) -> None:
        before = _snapshot(store)
        path = tmp_path / f"bad{next(counter)}.csv"
        path.write_bytes(_encode(rows, mangle=mangle))
        try:
            s = ingest_files(store, "cityx", profile, [path])
        except IngestError as exc:
            assert str(exc).strip(), "an error must say what is wrong"
            refusable = {"empty", "wrong_columns", "binary", "no_header", "truncate", "latin1"}
            # A NUL byte makes the reader treat the file as binary: refused, clearly.
            has_nul = any("\x00" in v for r in rows for v in r.values())
            assert mangle in refusable or has_nul, str(exc)
        else:
            c = s.totals
            assert (
                c.rows == c.new + c.updated + c.unchanged + c.withdrawn + c.expunged + c.quarantined
            )
            if mangle == "header_only":
                assert c.rows == 0
        # A valid row re-using a base id is legitimately an update (the source changed
        # it); every other stored record must be exactly as it was.
        touched = {r["id"] for r in rows}
        after = _snapshot(store)
        assert set(after) == set(before)
        assert {k: v for k, v in after.items() if k not in touched} == {
            k: v for k, v in before.items() if k not in touched
        }

    check()


def test_bad_file_in_a_multi_file_ingest_stops_the_run_before_anything_is_written(store, tmp_path):
    profile = parse_profile(PROFILE)
    good = tmp_path / "good.csv"
    with good.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(row(i) for i in range(5))
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        ingest_files(store, "cityx", profile, [good, empty])
    with store.connect() as conn:  # every file is opened first: nothing was written
        assert conn.execute(select(incidents.c.id)).all() == []
    assert ingest_files(store, "cityx", profile, [good]).new == 5


def test_missing_file_is_a_clear_error(store, tmp_path: Path):
    with pytest.raises(IngestError, match="not found"):
        ingest_files(store, "cityx", parse_profile(PROFILE), [tmp_path / "nope.csv"])
