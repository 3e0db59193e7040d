"""Audit events validate their fields and encode canonically (the hashed form)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crossbeat.audit import Action, AuditEvent, Outcome
from crossbeat.audit.events import GENESIS_HASH


def _placed(**fields) -> AuditEvent:
    base = {
        "action": "export",
        "actor": "u-7",
        "actor_agency": "north",
        "source_ip": "2001:db8:0:0::1",
        "purpose": "case 2026/114",
        "resource_type": "incident",
        "owner_agencies": ("south", "north", "south"),
        "record_ids": ("i-2", "i-1"),
        "details": {"format": "csv", "filters": {"nibrs": ["13A"], "limit": 500}},
        "seq": 7,
        "occurred_at": datetime(2026, 3, 1, 9, 30, 0, 5, tzinfo=timezone(timedelta(hours=1))),
        "prev_hash": GENESIS_HASH,
    }
    base.update(fields)
    return AuditEvent(**base)


def test_fields_are_normalised():
    event = _placed()
    assert event.action is Action.EXPORT
    assert event.outcome is Outcome.ALLOWED
    assert event.owner_agencies == ("north", "south")
    assert event.record_ids == ("i-2", "i-1")  # order kept: it may carry meaning
    assert event.record_count == 2
    assert event.source_ip == "2001:db8::1"
    assert event.occurred_at == datetime(2026, 3, 1, 8, 30, 0, 5, tzinfo=UTC)


def test_canonical_encoding_is_the_documented_json():
    expected = (
        '{"action":"export","actor":"u-7","actor_agency":"north",'
        '"details":{"filters":{"limit":500,"nibrs":["13A"]},"format":"csv"},'
        '"occurred_at":"2026-03-01T08:30:00.000005Z","outcome":"allowed",'
        '"owner_agencies":["north","south"],"prev_hash":"' + GENESIS_HASH + '",'
        '"purpose":"case 2026/114","record_count":2,"record_ids":["i-2","i-1"],'
        '"resource_type":"incident","seq":7,"source_ip":"2001:db8::1","v":1}'
    )
    event = _placed()
    assert event.canonical() == expected.encode("ascii")
    assert event.compute_hash() == hashlib.sha256(b"\x00" + expected.encode()).hexdigest()


def test_non_ascii_is_escaped_so_bytes_are_identical_everywhere():
    event = _placed(purpose="Ermittlung Straße ✓")
    assert b"\\u00df" in event.canonical()
    assert event.canonical().isascii()


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 8},
        {"prev_hash": "1" * 64},
        {"occurred_at": datetime(2026, 3, 1, 8, 30, 0, 6, tzinfo=UTC)},
        {"actor": "u-8"},
        {"actor_agency": None},
        {"source_ip": "10.0.0.1"},
        {"outcome": "denied"},
        {"purpose": None},
        {"resource_type": "personal_data"},
        {"owner_agencies": ("north",)},
        {"record_ids": ("i-1", "i-2")},
        {"record_ids": (), "record_count": 2},
        {"details": {"format": "csv"}},
        {"details": {"format": "csv", "filters": {"nibrs": ["13A"], "limit": "500"}}},
        {"action": "read"},
    ],
)
def test_every_field_is_covered_by_the_hash(change):
    assert _placed(**change).compute_hash() != _placed().compute_hash()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"action": "peek"}, "unknown audit action 'peek'"),
        ({"outcome": "maybe"}, "unknown audit outcome"),
        ({"actor": " "}, "needs an actor"),
        ({"source_ip": "example.org"}, "not an IP address"),
        ({"details": {"ratio": 0.5}}, "holds a float"),
        ({"details": {"x": [1, {"y": 1e3}]}}, r"details\.x\[1\]\.y holds a float"),
        ({"details": {"x": b"bytes"}}, "not JSON"),
        ({"details": {1: "a"}}, "non-string key"),
        ({"purpose": "a\x00b"}, "NUL"),
        ({"owner_agencies": "north"}, "not one string"),
        ({"record_ids": ("a", "")}, "non-empty strings"),
        ({"record_ids": ("a",), "record_count": 3}, "differs"),
        ({"record_count": -1}, "non-negative"),
        ({"occurred_at": datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_bad_fields_are_refused_with_a_clear_error(fields, message):
    with pytest.raises(ValueError, match=message):
        _placed(**fields)


def test_count_only_events():
    event = AuditEvent(action=Action.READ, actor="public", record_count=1234)
    assert event.record_ids == () and event.record_count == 1234


def test_unplaced_event_has_no_encoding():
    with pytest.raises(ValueError, match="only an appended event"):
        AuditEvent(action="login", actor="u").canonical()


def test_to_dict_round_trips_through_the_constructor():
    event = _placed()
    data = event.to_dict()
    data["occurred_at"] = datetime.fromisoformat(data["occurred_at"])
    again = AuditEvent(**{k: v for k, v in data.items() if k != "entry_hash"})
    assert again == dataclasses.replace(event)
