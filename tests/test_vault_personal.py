"""Personal data sealed at rest, on real databases: round trip, purpose, tampering, keys.

The helpers here (a profile with two person slots and seeded canary rows) are shared
by the other ``test_vault_*`` modules.
"""

from __future__ import annotations

import csv
import random
import string
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from crossbeat.agencies import register_agency
from crossbeat.ingest.pipeline import IngestSummary, ingest_files
from crossbeat.ingest.profile import load_profile
from crossbeat.model import Agency, PersonalData, PersonRole, incident_id
from crossbeat.sharing.policy import Viewer
from crossbeat.sharing.reads import read_detail
from crossbeat.store import Store, open_store
from crossbeat.store.schema import incident_personal
from crossbeat.store.writes import withdraw_records
from crossbeat.vault.cipher import CODEC, NONCE_BYTES
from crossbeat.vault.errors import (
    DecryptionError,
    KeyConfigError,
    PersonalDataNotFoundError,
)
from crossbeat.vault.kek import generate_kek, parse_kek
from crossbeat.vault.keys import Vault
from crossbeat.vault.tables import agency_keys
from tests.agency_support import register_agencies
from tests.read_support import read_personal, read_personal_many

PROFILE = """
name = "vault-test-feed"
narrative = "narrative"

[source]
format = "csv"
timezone = "UTC"

[id]
columns = ["id"]

[occurred_from]
column = "when"
formats = ["%Y-%m-%d %H:%M"]

[location]
x = "lon"
y = "lat"
address = "address"

[[offences]]
scheme = "code-nibrs"
code = "code"

[[persons]]
role = "victim"
name = "victim"

[[persons]]
role = "suspect"
name = "suspect"
"""

HEADER = ["id", "when", "lon", "lat", "address", "code", "victim", "suspect", "narrative"]
PURPOSE = "test: check the stored personal data"


def _token(rng: random.Random, n: int = 9) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(n))


def canary_rows(n: int, *, seed: int = 20261126, prefix: str = "C") -> list[dict[str, str]]:
    """Return ``n`` source rows whose names and full addresses are unique random canaries.

    A canary address has a house number that is not a multiple of 100 and a unit, so
    its hundred-block form (stored in clear on purpose) differs from it.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        victim = f"Vera {_token(rng).capitalize()}"
        suspect = f"Silas {_token(rng).capitalize()}"
        street = f"{_token(rng, 8).upper()} AVE"
        house = rng.randrange(1, 99) + 100 * rng.randrange(1, 98)
        rows.append(
            {
                "id": f"{prefix}{i}",
                "when": f"2025-0{1 + i % 9}-{1 + i % 28:02d} {i % 24:02d}:15",
                "lon": f"{-122.60 + (i % 40) * 0.001:.6f}",
                "lat": f"{45.50 + (i % 30) * 0.001:.6f}",
                "address": f"{house} {street} APT {1 + i % 30}",
                "code": ["13A", "220", "23H", "290"][i % 4],
                "victim": victim,
                "suspect": suspect,
                "narrative": f"{victim} reported that {suspect} came to {house} {street}.",
            }
        )
    return rows


def secrets_of(row: dict[str, str]) -> list[str]:
    """Return the strings of a canary row that must never be stored in clear."""
    house_street = row["address"].split(" APT ")[0]
    surnames = [row["victim"].split()[1], row["suspect"].split()[1]]
    return [row["victim"], row["suspect"], *surnames, row["address"], house_street]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    """Write rows as CSV with the test header."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HEADER)
        w.writeheader()
        w.writerows(rows)
    return path


def ingest(
    store: Store, tmp_path: Path, rows: list[dict[str, str]], agency: str = "cityx"
) -> IngestSummary:
    """Ingest rows for an agency through the test profile."""
    profile_path = tmp_path / "vault-feed.toml"
    profile_path.write_text(PROFILE, encoding="utf-8")
    data = write_csv(tmp_path / f"{agency}-{rows[0]['id']}-{len(rows)}.csv", rows)
    register_agencies(store, {agency: "UTC"})  # the ingest never registers an agency
    summary = ingest_files(store, agency, load_profile(profile_path), [data])
    assert summary.quarantined == 0
    return summary


def expected(row: dict[str, str]) -> tuple[str, str, list[tuple[PersonRole, str]]]:
    """Return (address, narrative, persons) a canary row must decrypt to."""
    persons = [(PersonRole.VICTIM, row["victim"]), (PersonRole.SUSPECT, row["suspect"])]
    return row["address"], row["narrative"], persons


def as_tuple(p: PersonalData) -> tuple[str | None, str | None, list[tuple[PersonRole, str]]]:
    """Return the comparable parts of decrypted personal data."""
    return p.full_address, p.narrative, [(x.role, x.name or "") for x in p.persons]


def _personal_row(store: Store, iid: str) -> dict:
    with store.connect() as conn:
        return dict(
            conn.execute(select(incident_personal).where(incident_personal.c.incident_id == iid))
            .mappings()
            .one()
        )


def _set(store: Store, iid: str, **values: object) -> None:
    with store.begin() as conn:
        conn.execute(
            update(incident_personal).where(incident_personal.c.incident_id == iid).values(values)
        )


# -- round trip ------------------------------------------------------------------------------


def test_round_trip_writes_only_sealed_fields(store: Store, tmp_path: Path) -> None:
    rows = canary_rows(20)
    ingest(store, tmp_path, rows)
    for row in rows:
        iid = incident_id("cityx", row["id"])
        assert as_tuple(read_personal(store, iid, purpose=PURPOSE)) == expected(row)
        stored = _personal_row(store, iid)
        assert stored["codec"] == CODEC and stored["key_id"]
        for name in ("full_address", "narrative", "persons"):
            blob = bytes(stored[name])
            assert len(blob) >= NONCE_BYTES + 16 + 32
            for secret in secrets_of(row):
                assert secret.encode() not in blob
    many = read_personal_many(
        store, [incident_id("cityx", r["id"]) for r in rows] + ["nope"], purpose=PURPOSE
    )
    assert len(many) == 20 and "nope" not in many
    with store.connect() as conn:
        keys = conn.execute(select(agency_keys)).all()
    assert [(k.agency_id, k.version, k.status) for k in keys] == [("cityx", 1, "active")]
    assert len(keys[0].wrapped_key) == NONCE_BYTES + 32 + 16


def test_reingest_changed_record_reseals_it(store: Store, tmp_path: Path) -> None:
    rows = canary_rows(3)
    ingest(store, tmp_path, rows)
    changed = [dict(rows[0], narrative="A changed narrative."), *rows[1:]]
    s = ingest(store, tmp_path, changed)
    assert (s.updated, s.unchanged) == (1, 2)
    got = read_personal(store, incident_id("cityx", "C0"), purpose=PURPOSE)
    assert got.narrative == "A changed narrative."


def test_incident_without_personal_data_reads_empty(store: Store, tmp_path: Path) -> None:
    row = dict(canary_rows(1)[0], victim="", suspect="", narrative="", address="")
    ingest(store, tmp_path, [row])
    assert read_personal(store, incident_id("cityx", "C0"), purpose=PURPOSE) == PersonalData()
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incident_personal)).scalar() == 0


# -- purpose and visibility ----------------------------------------------------------------


@pytest.mark.parametrize("purpose", ["", "   ", "\n\t"])
def test_reading_needs_a_stated_purpose(store: Store, tmp_path: Path, purpose: str) -> None:
    # The library reads personal data only through the policy, which needs a purpose.
    ingest(store, tmp_path, canary_rows(1))
    officer = Viewer.user("o-1", "cityx", ["officer"])
    target = incident_id("cityx", "C0")
    assert read_detail(store, officer, target, purpose="case 26-1").personal is not None
    blank = read_detail(store, officer, target, purpose=purpose)
    assert blank.record is not None and blank.personal is None


def test_unknown_withdrawn_and_expunged_records_are_not_read(store: Store, tmp_path: Path) -> None:
    ingest(store, tmp_path, canary_rows(3))
    withdraw_records(store, "cityx", ["C1"], reason="unfounded")
    withdraw_records(store, "cityx", ["C2"], expunge_records=True, reason="court order")
    assert read_personal(store, incident_id("cityx", "C0"), purpose=PURPOSE).narrative
    for sid in ("C1", "C2", "nope"):
        with pytest.raises(PersonalDataNotFoundError, match="unknown, withdrawn or expunged"):
            read_personal(store, incident_id("cityx", sid), purpose=PURPOSE)


# -- tampering -----------------------------------------------------------------------------


def _flip(blob: bytes, index: int) -> bytes:
    data = bytearray(blob)
    data[index] ^= 0x01
    return bytes(data)


def _two_agencies(store: Store, tmp_path: Path) -> None:
    ingest(store, tmp_path, canary_rows(3))
    ingest(store, tmp_path, canary_rows(2, seed=99, prefix="Y"), agency="cityy")


TAMPERING = {
    "ciphertext byte": lambda s, a, b, y: _set(s, a, narrative=_flip(_get(s, a, "narrative"), 20)),
    "nonce byte": lambda s, a, b, y: _set(s, a, narrative=_flip(_get(s, a, "narrative"), 0)),
    "tag byte": lambda s, a, b, y: _set(s, a, narrative=_flip(_get(s, a, "narrative"), -1)),
    "truncated": lambda s, a, b, y: _set(s, a, narrative=_get(s, a, "narrative")[:20]),
    "field removed": lambda s, a, b, y: _set(s, a, narrative=None),
    "copied from another incident": lambda s, a, b, y: _set(
        s, a, narrative=_get(s, b, "narrative")
    ),
    "swapped with another field": lambda s, a, b, y: _set(
        s, a, narrative=_get(s, a, "full_address"), full_address=_get(s, a, "narrative")
    ),
    "row moved to another agency": lambda s, a, b, y: _set(s, a, agency_id="cityy"),
    "relabelled with another agency's key": lambda s, a, b, y: _set(
        s, a, key_id=_get(s, y, "key_id")
    ),
    "whole sealed row copied from another agency": lambda s, a, b, y: _set(
        s, a, **{f: _get(s, y, f) for f in ("key_id", "full_address", "narrative", "persons")}
    ),
}


def _get(store: Store, iid: str, name: str) -> bytes:
    value = _personal_row(store, iid)[name]
    return bytes(value) if isinstance(value, bytes | memoryview) else value


@pytest.mark.parametrize("how", list(TAMPERING))
def test_tampered_or_moved_ciphertext_fails_clearly(store: Store, tmp_path: Path, how: str) -> None:
    _two_agencies(store, tmp_path)
    a, b = incident_id("cityx", "C0"), incident_id("cityx", "C1")
    y = incident_id("cityy", "Y0")
    TAMPERING[how](store, a, b, y)
    with pytest.raises(DecryptionError, match=f"incident {a}") as err:
        read_personal(store, a, purpose=PURPOSE)
    assert "restore" in str(err.value)
    # The damage stays local: every other record still decrypts.
    assert read_personal(store, b, purpose=PURPOSE).narrative
    assert read_personal(store, y, purpose=PURPOSE).narrative


def test_tampered_wrapped_key_fails_clearly(store: Store, tmp_path: Path, kek) -> None:
    _two_agencies(store, tmp_path)
    with store.begin() as conn:
        wrapped = {
            r.agency_id: bytes(r.wrapped_key)
            for r in conn.execute(select(agency_keys.c.agency_id, agency_keys.c.wrapped_key))
        }
        # Another agency's wrapped key copied over this one's does not unwrap.
        conn.execute(
            update(agency_keys)
            .where(agency_keys.c.agency_id == "cityx")
            .values(wrapped_key=wrapped["cityy"])
        )
    fresh = store.with_vault(Vault(kek))  # no data key unwrapped yet
    with pytest.raises(DecryptionError, match="failed to unwrap"):
        read_personal(fresh, incident_id("cityx", "C0"), purpose=PURPOSE)
    assert read_personal(fresh, incident_id("cityy", "Y0"), purpose=PURPOSE).narrative


# -- keys --------------------------------------------------------------------------------


def test_wrong_kek_fails_clearly_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    rows = canary_rows(4)
    ingest(store, tmp_path, rows[:2])
    other = open_store(store.url, kek=parse_kek(generate_kek()))
    assert other is not store and other.engine is store.engine
    with pytest.raises(KeyConfigError, match="CROSSBEAT_KEK") as err:
        read_personal(other, incident_id("cityx", "C0"), purpose=PURPOSE)
    assert store.vault.kek.id in str(err.value) and other.vault.kek.id in str(err.value)
    with pytest.raises(KeyConfigError):
        ingest(other, tmp_path, rows[2:])
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incident_personal)).scalar() == 2
    assert as_tuple(read_personal(store, incident_id("cityx", "C1"), purpose=PURPOSE)) == (
        expected(rows[1])
    )


def test_store_without_kek_neither_writes_nor_reads(store: Store, tmp_path: Path) -> None:
    ingest(store, tmp_path, canary_rows(1))
    keyless = open_store(store.url)
    assert keyless.vault is None
    with pytest.raises(KeyConfigError, match="CROSSBEAT_KEK"):
        read_personal(keyless, incident_id("cityx", "C0"), purpose=PURPOSE)
    with pytest.raises(KeyConfigError, match="opened without a key-encryption key"):
        ingest(keyless, tmp_path, canary_rows(2, seed=5, prefix="N"))
    with store.connect() as conn:
        assert conn.execute(select(func.count()).select_from(incident_personal)).scalar() == 1


def test_same_url_and_kek_gives_the_same_store(store: Store, kek) -> None:
    assert open_store(store.url, kek=kek) is store
    assert open_store(store.url).vault is None


def test_each_agency_gets_its_own_data_key(store: Store, tmp_path: Path) -> None:
    register_agency(store, Agency(id="quiet", name="Quiet PD"))
    _two_agencies(store, tmp_path)
    with store.connect() as conn:
        keys = {r.agency_id: r.key_id for r in conn.execute(select(agency_keys))}
        used = dict(
            conn.execute(select(incident_personal.c.agency_id, incident_personal.c.key_id)).all()
        )
    assert set(keys) == {"cityx", "cityy"}  # no key for an agency without personal data
    assert keys["cityx"] != keys["cityy"]
    assert used == {"cityx": keys["cityx"], "cityy": keys["cityy"]}
