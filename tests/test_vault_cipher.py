"""The KEK and the per-field codec, without a database."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import pytest

from crossbeat.vault.cipher import (
    CODEC,
    NONCE_BYTES,
    PAD_TO,
    TAG_BYTES,
    field_aad,
    pad,
    seal,
    unseal,
)
from crossbeat.vault.errors import DecryptionError, KeyConfigError
from crossbeat.vault.kek import (
    Kek,
    development_key_path,
    generate_kek,
    parse_kek,
    read_kek_file,
    resolve_kek,
)

KEY = bytes(range(32))
PLACE = {
    "table": "incident_personal",
    "row_id": "3f2a",
    "agency_id": "cityx",
    "field": "narrative",
    "key_id": "k1",
}


# -- the KEK ---------------------------------------------------------------------------------


def test_generated_keks_parse_and_differ() -> None:
    a, b = generate_kek(), generate_kek()
    assert a != b and len(base64.b64decode(a)) == 32
    ka, kb = parse_kek(a), parse_kek(b)
    assert ka.id != kb.id and len(ka.id) == 16
    assert parse_kek(f"  {a}\n").id == ka.id  # surrounding whitespace (key files) is fine
    assert a not in repr(ka) and ka.secret.hex() not in repr(ka)


def test_url_safe_base64_is_accepted() -> None:
    raw = os.urandom(32)
    assert parse_kek(base64.urlsafe_b64encode(raw).decode()).secret == raw


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("not base64 at all!", "not valid base64"),
        (base64.b64encode(os.urandom(16)).decode(), "decodes to 16 bytes"),
        (base64.b64encode(b"\0" * 32).decode(), "placeholder"),
        (base64.b64encode(b"changeme" * 4).decode(), "placeholder"),
    ],
    ids=["empty", "not-base64", "16-bytes", "zeros", "changeme"],  # stable for pytest-xdist
)
def test_bad_keks_are_refused_with_the_next_step(text: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message) as err:
        parse_kek(text)
    assert "crossbeat keys new-kek" in str(err.value)


def test_kek_must_have_32_bytes() -> None:
    with pytest.raises(KeyConfigError, match="32 bytes"):
        Kek(b"short")


def test_development_key_file_is_created_once_owner_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    first = resolve_kek(url)
    path = tmp_path / "dev.db.kek"
    assert first.created == path and first.kek is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = resolve_kek(url)
    assert again.created is None and again.kek is not None and again.kek.id == first.kek.id
    assert development_key_path(str(tmp_path / "dev.db")) == path  # a bare path is SQLite too


def test_configured_kek_wins_over_the_development_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    text = generate_kek()
    found = resolve_kek(url, kek=text)
    assert found.kek is not None and found.kek.id == parse_kek(text).id
    assert found.source == "CROSSBEAT_KEK" and not (tmp_path / "dev.db.kek").exists()
    key_file = tmp_path / "prod.kek"
    key_file.write_text(text + "\n")
    found = resolve_kek(url, kek_file=str(key_file))
    assert found.kek is not None and found.kek.id == parse_kek(text).id
    with pytest.raises(KeyConfigError, match="keep only one"):
        resolve_kek(url, kek=text, kek_file=str(key_file))


def test_server_database_without_kek_is_an_error_naming_the_settings() -> None:
    url = "postgresql://cb@db.example/crossbeat"
    with pytest.raises(KeyConfigError, match="CROSSBEAT_KEK") as err:
        resolve_kek(url)
    assert "CROSSBEAT_KEK_FILE" in str(err.value)
    assert resolve_kek(url, required=False).kek is None


def test_missing_or_bad_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="does not exist"):
        read_kek_file(tmp_path / "nope.kek")
    bad = tmp_path / "bad.kek"
    bad.write_text("hello")
    with pytest.raises(KeyConfigError, match=re.escape(f"key file {bad}")):
        read_kek_file(bad)


def test_in_memory_database_gets_a_process_lifetime_key() -> None:
    found = resolve_kek("sqlite:///:memory:")
    assert found.kek is not None and found.created is None


# -- the codec ---------------------------------------------------------------------------------


def test_seal_round_trip_with_fresh_nonces() -> None:
    aad = field_aad(**PLACE)
    a, b = seal(KEY, b'"Vera Quill"', aad), seal(KEY, b'"Vera Quill"', aad)
    assert a != b and a[:NONCE_BYTES] != b[:NONCE_BYTES]
    assert len(a) == NONCE_BYTES + len(b'"Vera Quill"') + TAG_BYTES
    assert unseal(KEY, a, aad, what="x") == b'"Vera Quill"'


@pytest.mark.parametrize("part", [*PLACE, "codec"])
def test_ciphertext_is_bound_to_every_part_of_its_place(part: str) -> None:
    sealed = seal(KEY, b"secret", field_aad(**PLACE))
    moved = {**PLACE, part: "elsewhere"}
    with pytest.raises(DecryptionError, match="failed authentication"):
        unseal(KEY, sealed, field_aad(**moved), what="narrative of incident 3f2a")


def test_aad_cannot_be_confused_by_separators() -> None:
    a = field_aad(**{**PLACE, "row_id": "a,b", "agency_id": "c"})
    b = field_aad(**{**PLACE, "row_id": "a", "agency_id": "b,c"})
    assert a != b and CODEC.encode() in a


def test_wrong_key_fails() -> None:
    aad = field_aad(**PLACE)
    with pytest.raises(DecryptionError, match="another key"):
        unseal(bytes(32), seal(KEY, b"secret", aad), aad, what="narrative")


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 100])
def test_padding_hides_exact_lengths(n: int) -> None:
    text = b"x" * n
    padded = pad(text)
    assert len(padded) % PAD_TO == 0 and padded.rstrip(b" ") == text
    assert len(padded) - n < PAD_TO
