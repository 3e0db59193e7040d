"""Canaries in quarantined rows and TOTP seeds; keyed record hashes; platform keys.

Seeded canary names and full addresses are ingested through a multi-agency feed in
which three rows of four are quarantined: a bad date (sealed under the agency's key),
an agency value not in the map (sealed under the platform key), and a record whose
fields do not line up with the header (its reason would quote the narrative). TOTP
seeds of new accounts are canaries too. None may appear in the raw SQLite file (+WAL)
or in ``pg_dump``; as controls, each scan finds the hundred-block addresses of the
stored rows and the readable reasons of the quarantined ones, and the operator still
sees every raw value through ``crossbeat quarantine list``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from crossbeat.agencies import register_agency
from crossbeat.auth import accounts, login, totp
from crossbeat.auth.tables import mfa_challenges, users
from crossbeat.cli import cli
from crossbeat.clock import FrozenClock
from crossbeat.ingest.normalise import Normaliser
from crossbeat.ingest.pipeline import IngestSummary, ingest_files
from crossbeat.ingest.profile import parse_profile
from crossbeat.ingest.quarantine import list_quarantine, retry_quarantine
from crossbeat.ingest.readers import RawRecord
from crossbeat.ingest.withhold import WITHHELD, withheld_values, withhold_personal
from crossbeat.model import Agency
from crossbeat.store import Store, open_store
from crossbeat.store.records import record_hash
from crossbeat.store.schema import incidents, quarantine
from crossbeat.vault.cipher import CODEC
from crossbeat.vault.errors import DecryptionError, KeyConfigError, VaultError
from crossbeat.vault.fingerprint import Fingerprinter
from crossbeat.vault.kek import generate_kek, parse_kek, read_kek_file
from crossbeat.vault.keys import DataKey, Vault
from crossbeat.vault.rotate import key_owners, key_status, rewrap_keys, rotate_agency_key
from crossbeat.vault.tables import FINGERPRINT, PLATFORM, agency_keys, platform_keys
from tests.agency_support import register_agencies
from tests.auth_support import PASSWORD, START, snapshot
from tests.test_vault_canary import pg_dump, sqlite_raw
from tests.test_vault_personal import HEADER, PROFILE, canary_rows, secrets_of

ROUTED = (
    PROFILE.replace('narrative = "narrative"', 'narrative = "narrative"\nagency_column = "force"')
    + '\n[agency_map]\nX = "cityx"\n'
)
COLUMNS = [*HEADER, "force"]
BAD_DATE = "2025-02-30 10:15"


def feed(path: Path, n: int) -> tuple[Path, dict[str, list[dict[str, str]]]]:
    """Write a routed feed of ``n`` canary rows; return it and its rows by fate.

    Row ``i``: ``i % 4 == 0`` is stored, ``1`` has an impossible date, ``2`` names an
    agency not in the map, ``3`` has an unquoted value before the date, so its fields
    no longer line up with the header (its agency column then holds the narrative).
    """
    fates: dict[str, list[dict[str, str]]] = {"stored": [], "date": [], "agency": [], "shift": []}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for i, r in enumerate(canary_rows(n, seed=7, prefix="Q")):
            kind = ("stored", "date", "agency", "shift")[i % 4]
            r = {**r, "force": "NOPE" if kind == "agency" else "X"}
            if kind == "date":
                r["when"] = BAD_DATE
            values = [r[c] for c in COLUMNS]
            if kind == "shift":
                values.insert(1, r["victim"])
            w.writerow(values)
            fates[kind].append(r)
    return path, fates


def ingest_feed(store: Store, tmp_path: Path, n: int = 40) -> dict[str, list[dict[str, str]]]:
    path, fates = feed(tmp_path / "routed.csv", n)
    register_agencies(store, {"cityx": "UTC"})  # the ingest never registers an agency
    summary: IngestSummary = ingest_files(store, None, parse_profile(ROUTED), [path])
    assert summary.new == len(fates["stored"])
    assert summary.quarantined == n - len(fates["stored"])
    return fates


def leaks(raw: bytes, secrets: list[str]) -> list[str]:
    """Return the secrets found in raw bytes, as UTF-8 or as hex."""
    low = raw.lower()
    return [s for s in secrets if s.encode() in raw or s.encode().hex().encode() in low]


def canaries(fates: dict[str, list[dict[str, str]]]) -> list[str]:
    return [s for rows in fates.values() for r in rows for s in secrets_of(r)]


def check_controls(raw: bytes, fates: dict[str, list[dict[str, str]]]) -> None:
    from crossbeat.geo.address import hundred_block

    blocks = {hundred_block(r["address"]) for r in fates["stored"]}
    assert all(b and b.encode() in raw for b in blocks), "the scan misses stored rows"
    for readable in (BAD_DATE, "NOPE", "is not a valid date", WITHHELD):
        assert readable.encode() in raw, f"the scan misses the quarantine reasons: {readable}"


# -- the raw database -------------------------------------------------------------------------


def test_sqlite_file_holds_no_quarantined_canary_or_totp_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CROSSBEAT_KEK")  # the CLI's development key file
    url = f"sqlite:///{tmp_path / 'canary.db'}"
    profile = tmp_path / "routed.toml"
    profile.write_text(ROUTED, encoding="utf-8")
    data, fates = feed(tmp_path / "routed.csv", 40)
    runner = CliRunner()
    added = runner.invoke(cli, ["agency", "add", "cityx", "--name", "City X", "--db", url])
    assert added.exit_code == 0, added.output
    done = runner.invoke(
        cli, ["ingest", "--db", url, "--profile", str(profile), "--json", str(data)]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["quarantined"] == 30
    seeds = []
    for name in ("ann.lee", "bo.kim", "cy.orr"):
        added = runner.invoke(
            cli,
            ["user", "add", "cityx", name, "--role", "analyst", "--password-stdin", "--json"]
            + ["--db", url],
            input=PASSWORD + "\n",
        )
        assert added.exit_code == 0, added.output
        seeds.append(json.loads(added.stdout)["totp_secret"])

    raw = sqlite_raw(url)
    check_controls(raw, fates)
    assert leaks(raw, canaries(fates)) == []
    assert leaks(raw, seeds) == []

    # The operator still sees every raw value, and the reasons quote no personal one.
    listed = runner.invoke(cli, ["quarantine", "list", "--db", url, "--json", "--limit", "100"])
    assert listed.exit_code == 0, listed.output
    entries = json.loads(listed.stdout)["entries"]
    assert len(entries) == 30
    shown = {e["raw"]["id"]: e for e in entries}
    for kind in ("date", "agency"):
        for r in fates[kind]:
            assert shown[r["id"]]["raw"]["victim"] == r["victim"]
            assert shown[r["id"]]["raw"]["address"] == r["address"]
    for r in fates["shift"]:  # as read: every value one column to the right
        assert shown[r["id"]]["raw"]["when"] == r["victim"]
        assert shown[r["id"]]["raw"]["force"] == r["narrative"]
        assert shown[r["id"]]["raw"]["_extra_1"] == "X"
    assert leaks(json.dumps([e["reasons"] for e in entries]).encode(), canaries(fates)) == []
    text = runner.invoke(cli, ["quarantine", "list", "--db", url])
    assert (
        "is not a valid date" in text.output and leaks(text.output.encode(), canaries(fates)) == []
    )

    # The seeds still sign in.
    store = open_store(url, kek=read_kek_file(tmp_path / "canary.db.kek"))
    code = totp.code_at(seeds[1], store.now())
    assert login.login(store, "bo.kim", PASSWORD, code).user.username == "bo.kim"


def test_pg_dump_holds_no_quarantined_canary_or_totp_seed(pg_url: str, kek, tmp_path: Path) -> None:
    store = open_store(pg_url, kek=kek)
    fates = ingest_feed(store, tmp_path)
    clock = FrozenClock(START)
    seeds = [
        accounts.create_user(store, "cityx", f"user{i}", PASSWORD, ["officer"], clock=clock)
        for i in range(3)
    ]
    dump = pg_dump(pg_url)
    check_controls(dump, fates)
    assert leaks(dump, canaries(fates)) == []
    assert leaks(dump, [e.totp_secret for e in seeds]) == []
    assert len(list_quarantine(store, limit=None)) == 30


# -- where each quarantined row is sealed, and its reasons ------------------------------------


def test_quarantined_rows_are_sealed_under_their_owners_keys(store: Store, tmp_path: Path) -> None:
    fates = ingest_feed(store, tmp_path)
    with store.connect() as conn:
        rows = conn.execute(select(quarantine)).all()
        agency_key = conn.execute(
            select(agency_keys.c.key_id).where(agency_keys.c.agency_id == "cityx")
        ).scalar_one()
        platform_key = conn.execute(
            select(platform_keys.c.key_id).where(platform_keys.c.scope == PLATFORM)
        ).scalar_one()
    assert {r.codec for r in rows} == {CODEC}
    by_owner = {(r.agency_id, r.key_id) for r in rows}
    assert by_owner == {("cityx", agency_key), (None, platform_key)}
    assert sum(r.agency_id is None for r in rows) == len(fates["agency"]) + len(fates["shift"])
    entries = {e.raw["id"]: e for e in list_quarantine(store, limit=None)}
    for r in fates["date"]:
        (reason,) = entries[r["id"]].reasons
        assert reason.startswith("occurred_from: column 'when'") and repr(BAD_DATE) in reason
    for r in fates["agency"]:
        assert (
            "agency value 'NOPE' is not in the profile's agency_map" in entries[r["id"]].reasons[0]
        )
    for r in fates["shift"]:
        read, agency = entries[r["id"]].reasons
        assert "11 fields but the header has 10" in read
        assert agency == (
            f"column 'force': agency value {WITHHELD} is not in the profile's agency_map; "
            "add it there and retry"
        )


def test_reasons_quote_bad_values_but_never_personal_ones() -> None:
    profile = parse_profile(PROFILE)
    row = canary_rows(1)[0]
    # A profile that (wrongly) reads the victim column as the date quotes its value.
    dated = parse_profile(PROFILE.replace('column = "when"', 'column = "victim"'))
    rejected = Normaliser(dated, "cityx", source_file="f.csv").normalise(RawRecord(1, row))
    assert any(repr(row["victim"]) in r for r in rejected.reasons)
    safe = withhold_personal(rejected.reasons, withheld_values(dated, RawRecord(1, row)))
    assert not any(row["victim"] in r for r in safe) and any(WITHHELD in r for r in safe)
    # Values of other columns stay quoted; a misaligned record withholds every value.
    bad = {**row, "when": "yesterday"}
    reasons = Normaliser(profile, "cityx", source_file="f.csv").normalise(RawRecord(1, bad)).reasons
    assert withhold_personal(reasons, withheld_values(profile, RawRecord(1, bad))) == reasons
    shifted = RawRecord(1, bad, problems=("the record has 10 fields but the header has 9",))
    assert withhold_personal(reasons, withheld_values(profile, shifted)) != reasons


def test_retry_reads_the_sealed_rows_and_stores_them(store: Store, tmp_path: Path) -> None:
    fates = ingest_feed(store, tmp_path)
    register_agency(store, Agency(id="cityy", name="City Y"))
    fixed = parse_profile(ROUTED + 'NOPE = "cityy"\n')
    res = retry_quarantine(store, fixed)
    assert res.retried == 30
    assert res.stored.new == len(fates["agency"])
    assert res.still_quarantined == len(fates["date"]) + len(fates["shift"])
    with store.connect() as conn:
        stored = dict(conn.execute(select(incidents.c.source_id, incidents.c.agency_id)).all())
    assert all(stored[r["id"]] == "cityy" for r in fates["agency"])
    left = list_quarantine(store, limit=None)
    assert {e.raw["id"] for e in left} == {r["id"] for r in fates["date"] + fates["shift"]}
    # A misaligned record is retried as it was read (with its read problems), so it
    # stays quarantined and its new reasons quote no personal value either.
    shifted = [e for e in left if "_problems" in e.raw]
    assert len(shifted) == len(fates["shift"])
    assert all("11 fields but the header has 10" in e.reasons[0] for e in shifted)
    assert leaks(json.dumps([e.reasons for e in left]).encode(), canaries(fates)) == []


def test_altered_or_moved_quarantine_ciphertext_fails_clearly(store: Store, tmp_path: Path) -> None:
    ingest_feed(store, tmp_path)
    with store.connect() as conn:
        rows = conn.execute(select(quarantine).order_by(quarantine.c.id)).all()
    cityx = [r for r in rows if r.agency_id == "cityx"]
    a, b = cityx[0], cityx[1]
    with store.begin() as conn:  # b's sealed record copied over a's
        conn.execute(update(quarantine).where(quarantine.c.id == a.id).values(raw=b.raw))
    with pytest.raises(DecryptionError, match=f"quarantine entry #{a.id}"):
        list_quarantine(store, limit=None)
    with store.begin() as conn:  # restored, then moved to no agency (the platform's)
        conn.execute(
            update(quarantine).where(quarantine.c.id == a.id).values(raw=a.raw, agency_id=None)
        )
    with pytest.raises(DecryptionError, match="failed authentication"):
        list_quarantine(store, limit=None)
    with store.begin() as conn:
        conn.execute(update(quarantine).where(quarantine.c.id == a.id).values(agency_id="cityx"))
    assert len(list_quarantine(store, limit=None)) == 30


def test_listing_quarantine_needs_the_kek(store: Store, tmp_path: Path) -> None:
    ingest_feed(store, tmp_path)
    with pytest.raises(KeyConfigError, match="quarantined rows can be neither written nor read"):
        list_quarantine(open_store(store.url))


# -- TOTP seeds ---------------------------------------------------------------------------------


def test_totp_seed_is_sealed_and_bound_to_its_user(store: Store) -> None:
    clock = FrozenClock(START)
    register_agency(store, Agency(id="cityx", name="City X"))
    ann = accounts.create_user(store, "cityx", "ann", PASSWORD, ["officer"], clock=clock)
    bob = accounts.create_user(store, "cityx", "bob", PASSWORD, ["officer"], clock=clock)
    with store.connect() as conn:
        rows = {r.username: r for r in conn.execute(select(users))}
    assert (
        rows["ann"].totp_codec == CODEC and ann.totp_secret.encode() not in rows["ann"].totp_secret
    )
    clock.advance(seconds=30)
    code = totp.code_at(bob.totp_secret, clock.now())
    assert login.login(store, "bob", PASSWORD, code, clock=clock).user.username == "bob"
    with store.begin() as conn:  # ann's sealed seed copied into bob's row
        conn.execute(
            update(users)
            .where(users.c.username == "bob")
            .values(totp_secret=rows["ann"].totp_secret)
        )
    clock.advance(seconds=30)
    with pytest.raises(DecryptionError, match=f"TOTP seed of user {rows['bob'].id}"):
        login.login(store, "bob", PASSWORD, totp.code_at(ann.totp_secret, clock.now()), clock=clock)


def test_accounts_without_kek_are_refused_and_nothing_is_written(store: Store) -> None:
    clock = FrozenClock(START)
    register_agency(store, Agency(id="cityx", name="City X"))
    enrolment = accounts.create_user(store, "cityx", "ann", PASSWORD, ["officer"], clock=clock)
    keyless = open_store(store.url)
    before = snapshot(store)
    for attempt in (
        lambda: accounts.create_user(keyless, "cityx", "bob", PASSWORD, ["officer"], clock=clock),
        lambda: accounts.reset_totp(keyless, "ann", clock=clock),
        lambda: login.login(
            keyless, "ann", PASSWORD, totp.code_at(enrolment.totp_secret, clock.now()), clock=clock
        ),
    ):
        with pytest.raises(KeyConfigError, match="TOTP seeds can be neither written nor read"):
            attempt()
    assert snapshot(store) == before
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(mfa_challenges)).scalar() == 0


# -- keyed record hashes ------------------------------------------------------------------------


def test_record_hash_is_keyed_by_the_deployment_fingerprint_key(tmp_path: Path, kek) -> None:
    inc = Normaliser(parse_profile(PROFILE), "cityx", source_file="f.csv").normalise(
        RawRecord(1, canary_rows(1)[0])
    )
    one = Fingerprinter(DataKey("a", FINGERPRINT, 1, bytes(range(32))))
    same = Fingerprinter(DataKey("b", FINGERPRINT, 1, bytes(range(32))))
    other = Fingerprinter(DataKey("c", FINGERPRINT, 1, bytes(range(1, 33))))
    assert record_hash(inc.incident, one) == record_hash(inc.incident, same)
    assert record_hash(inc.incident, one) != record_hash(inc.incident, other)

    # Two deployments store the same rows with different hashes; each re-ingest is a no-op.
    got = []
    for name in ("a", "b"):
        work = tmp_path / name
        work.mkdir()
        store = open_store(f"sqlite:///{work / 'db.sqlite'}", kek=kek)
        ingest_feed(store, work)
        again = ingest_files(store, None, parse_profile(ROUTED), [work / "routed.csv"])
        assert (again.new, again.updated, again.unchanged) == (0, 0, 10)
        cols = (incidents.c.source_id, incidents.c.record_hash, incidents.c.raw_hash)
        with store.connect() as conn:
            got.append({s: (h, r) for s, h, r in conn.execute(select(*cols))})
    assert got[0].keys() == got[1].keys() and len(got[0]) == 10
    for source_id, (digest, raw) in got[0].items():
        assert len(digest) == len(raw) == 64
        assert got[1][source_id][0] != digest and got[1][source_id][1] != raw


def test_fingerprint_key_is_never_rotated_but_is_rewrapped(
    store: Store, tmp_path: Path, kek
) -> None:
    ingest_feed(store, tmp_path)
    with pytest.raises(VaultError, match="never rotated"):
        rotate_agency_key(store, FINGERPRINT)
    assert FINGERPRINT not in key_owners(store)
    assert key_owners(store) == ["cityx", PLATFORM]
    status = CliRunner().invoke(cli, ["keys", "status", "--db", store.url])
    assert "@fingerprint (keys the record hashes; never rotated)" in status.output

    new_kek = parse_kek(generate_kek())
    assert rewrap_keys(store, Vault(new_kek, old_keks=[kek])) == 3  # cityx, platform, fingerprint
    moved = open_store(store.url, kek=new_kek)
    again = ingest_files(moved, None, parse_profile(ROUTED), [tmp_path / "routed.csv"])
    assert (again.new, again.updated, again.unchanged) == (0, 0, 10)  # same fingerprint key
    assert len(list_quarantine(moved, limit=None)) == 30


# -- rotation re-seals quarantined rows and seeds -------------------------------------------------


def _rows_by_key(store: Store) -> dict[str, int]:
    return {k.key_id: k.rows for s in key_status(store) for k in s.keys}


def test_rotation_reseals_quarantined_rows_and_totp_seeds(store: Store, tmp_path: Path) -> None:
    fates = ingest_feed(store, tmp_path)
    clock = FrozenClock(START)
    ann = accounts.create_user(store, "cityx", "ann", PASSWORD, ["officer"], clock=clock)
    status = {s.owner: s for s in key_status(store)}
    assert list(status) == ["cityx", FINGERPRINT, PLATFORM]
    # cityx: stored personal rows + bad-date rows; platform: unrouted rows + one seed.
    assert status["cityx"].keys[0].rows == len(fates["stored"]) + len(fates["date"])
    assert status[PLATFORM].keys[0].rows == len(fates["agency"]) + len(fates["shift"]) + 1

    agency = rotate_agency_key(store, "cityx", batch_size=4)
    assert agency.reencrypted == len(fates["stored"]) + len(fates["date"])
    platform = rotate_agency_key(store, PLATFORM, batch_size=4)
    assert platform.reencrypted == len(fates["agency"]) + len(fates["shift"]) + 1
    assert platform.retired == [status[PLATFORM].active_key_id]
    used = {k: n for k, n in _rows_by_key(store).items() if n}
    assert used == {agency.new_key_id: 20, platform.new_key_id: 21}

    fresh = store.with_vault(Vault(store.vault.kek))  # nothing cached: new keys alone
    entries = list_quarantine(fresh, limit=None)
    assert {e.raw["victim"] for e in entries if e.raw.get("force") == "NOPE"} == {
        r["victim"] for r in fates["agency"]
    }
    clock.advance(seconds=30)
    code = totp.code_at(ann.totp_secret, clock.now())
    assert login.login(fresh, "ann", PASSWORD, code, clock=clock).user.username == "ann"

    # The command rotates every agency and the platform, never the fingerprint key.
    runner = CliRunner()
    out = runner.invoke(cli, ["keys", "rotate", "--db", store.url, "--all"])
    assert out.exit_code == 0, out.output
    assert "cityx: rotation done; 20 rows re-encrypted under key v3" in out.output
    assert "@platform: rotation done; 21 rows re-encrypted under key v3" in out.output
    assert FINGERPRINT not in out.output
    alone = runner.invoke(cli, ["keys", "rotate", "--db", store.url, "--platform"])
    assert "@platform: rotation done; 21 rows re-encrypted under key v4" in alone.output
    assert len(list_quarantine(store.with_vault(Vault(store.vault.kek)), limit=None)) == 30
