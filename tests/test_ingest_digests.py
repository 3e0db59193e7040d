"""The source digests table: in step with the incidents, read by range (issue #9).

``source_digests`` must hold exactly the incidents stored with a source digest, with
the values their rows have, after every kind of write (first load, changed rows, a
withdrawal by the feed or by hand, expunging, agency removal). A re-ingest of an export
whose ids ascend reads each part's digests as one range of the table's key
(:func:`crossbeat.ingest.digests._in_sequence`): the store it gives must be the one
normalising every row gives, and that path must really be taken.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crossbeat.agencies import register_agency
from crossbeat.agency_removal import remove_agency
from crossbeat.ingest import digests
from crossbeat.ingest.pipeline import ingest_files
from crossbeat.ingest.profile import load_profile
from crossbeat.ingest.writes import withdraw_records
from crossbeat.model import Agency
from crossbeat.store import Store, open_store
from crossbeat.store.schema import incidents, source_digests
from crossbeat.vault.kek import Kek
from tests.test_ingest_pipeline import PROFILE
from tests.test_ingest_unchanged import _row, _state, _write


def _mirror(store: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Return the digests table and what it must be: the incidents stored with a digest."""
    t, i = source_digests.c, incidents.c
    with store.connect() as conn:
        got = conn.execute(
            select(
                t.agency_id, t.source_id, t.incident_id, t.digest, t.row_number, t.unmapped,
                t.batch_id,
            )
        ).all()  # fmt: skip
        want = conn.execute(
            select(
                i.agency_id, i.source_id, i.id, i.source_digest, i.row_number, i.unmapped,
                i.batch_id,
            ).where(i.source_digest.is_not(None))
        ).all()  # fmt: skip

    def norm(rows: list[Any]) -> list[tuple[Any, ...]]:
        return sorted((*r[:3], bytes(r[3]), r[4], bool(r[5]), r[6]) for r in rows)

    return norm(list(got)), norm(list(want))


def _padded(rng: random.Random, i: int) -> dict[str, str]:
    """A row whose id sorts as its number does (a feed numbering its cases)."""
    return dict(_row(rng, i), id=f"C{i:06d}")


def _next(rng: random.Random, rows: list[dict[str, str]], start: int) -> list[dict[str, str]]:
    """Return the next export: changed rows, new ones at the end, a repeat and a bad row."""
    out = [dict(r) for r in rows]
    for r in rng.sample(out, k=len(out) // 6):
        field = rng.choice(["code", "address", "victim", "when"])
        r[field] = _row(rng, 0)[field]
    out += [_padded(rng, start + k) for k in range(rng.randint(1, 8))]
    if rng.random() < 0.5:
        out.append(dict(rng.choice(out), beat="99"))  # the same id again: a duplicate
    if rng.random() < 0.5:
        out.insert(rng.randrange(len(out)), dict(out[0], id=f"C{start + 50:06d}", when="bad"))
    return out


@pytest.mark.parametrize(
    ("seed", "backend"),
    [(11, "sqlite"), (12, "sqlite"), pytest.param(13, "postgres", marks=pytest.mark.postgres)],
)
def test_ascending_ids_read_by_range_store_what_normalising_them_does(
    seed: int,
    backend: str,
    tmp_path: Path,
    kek: Kek,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    profile = load_profile(profile_path)
    ranged: list[int] = []
    in_sequence = digests._in_sequence

    def counted(*args: Any) -> Any:
        found = in_sequence(*args)
        if found is not None:
            ranged.append(len(found))
        return found

    monkeypatch.setattr(digests, "_in_sequence", counted)
    rng = random.Random(seed)
    rows = [_padded(rng, i) for i in range(80)]
    files = [_write(tmp_path / "e0.csv", rows)]
    for k in range(1, 4):
        rows = [r for r in _next(rng, rows, 100 * k) if r["when"] != "bad"]
        rows = list({r["id"]: r for r in rows}.values())  # the next export has each id once
        files.append(_write(tmp_path / f"e{k}.csv", _next(rng, rows, 1000 * k)))
    plan = [files[0], files[0], files[1], files[1], files[2], files[0], files[3], files[3]]
    urls = [f"sqlite:///{tmp_path / 'full.db'}"]
    urls.append(
        str(request.getfixturevalue("pg_url"))
        if backend == "postgres"
        else f"sqlite:///{tmp_path / 'skip.db'}"
    )
    full, skip = (open_store(u, kek=kek) for u in urls)
    for s in (full, skip):
        register_agency(s, Agency("cityz", "City Z", timezone="America/Los_Angeles"))
    skipped = 0
    for f in plan:
        a = ingest_files(full, "cityz", profile, [f], skip_unchanged=False)
        b = ingest_files(skip, "cityz", profile, [f], skip_unchanged=True)
        assert b.totals.as_dict() == a.totals.as_dict(), f.name
        skipped += b.unchanged
        got, want = _mirror(skip)
        assert got == want, f.name
    assert skipped > 200
    assert _state(skip) == _state(full)
    if backend == "sqlite":
        assert sum(ranged) > 100  # the range path really ran


def test_digests_follow_withdrawal_expunging_and_agency_removal(
    store: Store, tmp_path: Path
) -> None:
    register_agency(store, Agency("cityz", "City Z", timezone="America/Los_Angeles"))
    profile_path = tmp_path / "feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    profile = load_profile(profile_path)
    rng = random.Random(3)
    rows = [_padded(rng, i) for i in range(40)]
    f = _write(tmp_path / "a.csv", rows)
    ingest_files(store, "cityz", profile, [f])
    got, want = _mirror(store)
    assert len(got) == 40 and got == want

    withdraw_records(store, "cityz", ["C000003", "C000004"], reason="entered in error")
    withdraw_records(
        store, "cityz", ["C000005"], expunge_records=True, reason="sealed by court order"
    )
    got, want = _mirror(store)
    assert len(got) == 39 and got == want
    again = ingest_files(store, "cityz", profile, [f])
    assert (again.unchanged, again.expunged) == (39, 1)
    assert _mirror(store)[0] == got

    changed = [dict(r, code="120") if i % 4 == 0 else r for i, r in enumerate(rows)]
    ingest_files(store, "cityz", profile, [_write(tmp_path / "b.csv", changed)])
    got, want = _mirror(store)
    assert len(got) == 39 and got == want

    remove_agency(store, "cityz", confirm="cityz")
    assert _mirror(store) == ([], [])
