"""The fast encodings of sealed fields are byte-for-byte the JSON they stand for.

Rows sealed before the fast paths existed must still open: the AAD and the padded
plaintext are rebuilt from these functions, so they may never change.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from crossbeat.vault.cipher import field_aad
from crossbeat.vault.personal import _json_bytes

ids = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@given(row_id=ids, agency_id=ids, field=ids, key_id=ids)
def test_field_aad_is_compact_ascii_json(row_id, agency_id, field, key_id):
    parts = ["crossbeat", "aesgcm-v1", "incident_personal", row_id, agency_id, field, key_id]
    expected = json.dumps(parts, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    got = field_aad(
        table="incident_personal", row_id=row_id, agency_id=agency_id, field=field, key_id=key_id
    )
    assert got == expected


@given(
    st.one_of(
        st.none(),
        ids,
        st.just([]),
        st.lists(st.dictionaries(ids, st.one_of(st.none(), ids, st.integers())), max_size=3),
    )
)
def test_personal_field_json(value):
    expected = json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")
    assert _json_bytes(value) == expected
