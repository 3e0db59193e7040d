"""Property tests: every read path against a small, independent reference of the policy.

Hypothesis generates populations over three agencies (incidents with random offences,
flags, miscoded descriptions, times, places and withdrawals; random agreements in every
state; a group; public-policy tightenings). For every viewer (each agency × each role,
an API token per agency, the public) and a few requests, the records of
``read_incidents``, the first poll of a ``LiveStream``, ``read_detail`` and the counts
of ``aggregate`` must equal what the reference below computes: no leaked record or
field, and no false denial.

The reference is written from docs/sharing.md, in plain Python over the generated
data; it imports nothing from ``crossbeat.sharing`` except the functions under test.
Two agencies have an area layer ``beats`` (:data:`LAYERS`); agreements and public
tightenings may generalise to it (``area:beats``, ``area:citya/beats``), and requests
filter and group by it.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import h3
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon, box, mapping

from crossbeat.areas import add_layer
from crossbeat.auth.roles import Role
from crossbeat.clock import FrozenClock
from crossbeat.sharing._manage import AgreementError
from crossbeat.sharing.agreements import create_agreement, revoke_agreement
from crossbeat.sharing.groups import create_group
from crossbeat.sharing.overrides import tighten_public_policy
from crossbeat.sharing.policy import ReadRequest, Viewer
from crossbeat.sharing.preview import preview
from crossbeat.sharing.reads import aggregate, read_detail, read_incidents
from crossbeat.sharing.streams import LiveStream
from crossbeat.taxonomy.nibrs import nibrs_offences
from crossbeat.taxonomy.sensitivity import keyword_sensitivity
from tests.sharing_support import (
    ADMINS,
    AGENCIES,
    AREA,
    NOW,
    Inc,
    add_admins,
    clear,
    insert_incidents,
    setup_agencies,
)

# -- the reference policy (independent of crossbeat.sharing) --------------------------------
ALL_FLAGS = {"sexual_offence", "domestic_violence", "juvenile", "victim_identifying", "informant"}
RECORD = [
    "id", "agency_id", "nibrs_code", "offence_name", "crime_against", "ucr_part1",
    "offence_local_code", "offences", "occurred_from", "occurred_to", "time_precision",
    "reported_at", "status", "disposition", "lat", "lon", "location_precision",
    "block_address", "location_type", "h3_7", "h3_9", "h3_11", "jurisdictions", "areas",
    "sensitivity", "attributes",
]  # fmt: skip
PERSONAL = ["full_address", "narrative", "persons"]
GROUPS = {
    "offence": ["nibrs_code", "offence_name", "crime_against", "ucr_part1"],
    "occurred": ["occurred_from", "occurred_to", "time_precision"],
    "location": ["lat", "lon", "location_precision"],
    "h3": ["h3_7", "h3_9", "h3_11"],
    "personal": PERSONAL,
    "all": RECORD,
}
PUBLIC_FIELDS = {
    "id", "agency_id", "nibrs_code", "offence_name", "crime_against", "ucr_part1",
    "occurred_from", "occurred_to", "time_precision", "lat", "lon", "location_precision",
    "offences", "h3_7", "h3_9", "jurisdictions", "areas",
}  # fmt: skip
PREC_RANK = {"exact": 0, "block": 1, "h3:9": 2, "h3:8": 3, "h3:7": 4, "h3:6": 5,
             "area:beats": 6, "area:citya/beats": 6, "jurisdiction": 7}  # fmt: skip
PREC_RES = {"block": 10, "h3:9": 9, "h3:8": 8, "h3:7": 7, "h3:6": 6}
TIME_RANK = {"exact": 0, "hour": 1, "day": 2, "month": 3}
TP_ORDER = ["minute", "hour", "day", "month", "year", "unknown"]
VIA_RANK = {"own": 0, "agency": 1, "group": 2, "public": 3}
DATA = {"officer", "analyst", "supervisor"}
PERSONAL_ROLES = {"officer", "supervisor"}


#: Area layers (``AGENCY/LAYER`` -> area name -> polygon); transitc has none.
LAYERS: dict[str, dict[str, Any]] = {
    "citya/beats": {
        "West": box(-122.70, 45.50, -122.66, 45.56),
        "East": box(-122.66, 45.50, -122.62, 45.56),
    },
    "countyb/beats": {
        "North": box(-122.62, 45.53, -122.54, 45.56),
        "South": box(-122.62, 45.50, -122.54, 45.53),
    },
}


def layer_of(ref: str, owner: str) -> str:
    """Return the ``AGENCY/LAYER`` a layer reference means for an owner's records."""
    return ref if "/" in ref else f"{owner}/{ref}"


def areas_of(inc: Inc) -> dict[str, list[str]]:
    """Return every area (of every layer) whose polygon contains the point."""
    if inc.lat is None or inc.lon is None:
        return {}
    p = Point(inc.lon, inc.lat)
    out = {
        key: sorted(n for n, g in named.items() if g.intersects(p)) for key, named in LAYERS.items()
    }
    return {k: v for k, v in out.items() if v}


def shows_layer(g: dict[str, Any], key: str, owner: str) -> bool:
    """Whether a grant shows an area layer: every layer when exact, else its own layer."""
    prec = g["precision"]
    if "areas" not in g["fields"]:
        return False
    return prec == "exact" or (prec.startswith("area:") and layer_of(prec[5:], owner) == key)


def stricter(a: str, b: str) -> str:
    """The precision revealing no more than either; two different layers: jurisdiction."""
    if a.startswith("area:") and b.startswith("area:") and a != b:
        return "jurisdiction"
    return max(a, b, key=PREC_RANK.get)


def fields_of(tokens: list[str]) -> set[str]:
    out = {"id", "agency_id"}
    for t in tokens:
        out |= set(GROUPS.get(t, [t]))
    return out


def covers(tokens: set[str] | None, o: dict[str, Any]) -> bool:
    if tokens is None or "all" in tokens:
        return True
    if o["nibrs_code"] is None:
        return False
    return (
        o["nibrs_code"] in tokens
        or o["crime_against"] in tokens
        or ("part1" in tokens and o["ucr_part1"] is not None)
    )


def flags_of(inc: Inc) -> set[str]:
    flags = set(inc.flags)
    table = nibrs_offences()
    texts: list[str | None] = []
    for i in range(len(inc.codes)):
        o = inc.offence(i)
        if o["nibrs_code"]:
            flags |= {f.value for f in table[o["nibrs_code"]].sensitivity}
        texts += [o["local_code"], o["local_description"]]
    texts += list((inc.attributes or {}).values())
    return flags | {f.value for f in keyword_sensitivity(*texts)}


def release(inc: Inc) -> datetime:
    times = [t for t in (inc.occurred_from, inc.occurred_to, inc.reported_at) if t is not None]
    return max(times) if times else inc.created_at


def floor_time(t: datetime | None, res: str, tz: str) -> datetime | None:
    if t is None or res == "exact":
        return t
    z = ZoneInfo(tz)
    loc = t.astimezone(z)
    if res == "hour":
        loc = loc.replace(minute=0, second=0, microsecond=0)
    else:
        loc = datetime(loc.year, loc.month, 1 if res == "month" else loc.day, tzinfo=z)
    return loc.astimezone(UTC)


def anchor(inc: Inc, res: int) -> tuple[float, float]:
    cell = h3.latlng_to_cell(inc.lat, inc.lon, res)
    hexagon = Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(cell)])
    p = Point(inc.lon, inc.lat)
    region = hexagon
    for _tz, poly in AGENCIES.values():
        if not poly.intersects(hexagon.envelope):
            continue
        region = region.intersection(poly) if poly.covers(p) else region.difference(poly)
    q = region.point_on_surface()
    return (round(q.y, 6), round(q.x, 6))


def show(g: dict[str, Any], inc: Inc) -> dict[str, Any]:
    """Return the record as grant ``g`` shows it (all fields the grant allows)."""
    prec, res, tz = g["precision"], g["time"], AGENCIES[inc.owner][0]
    first = inc.offence(0)
    entry = nibrs_offences().get(first["nibrs_code"] or "")
    v: dict[str, Any] = {
        "id": inc.shown_id(g["via"] == "own"), "agency_id": inc.owner,
        "nibrs_code": first["nibrs_code"],
        "offence_name": entry.name if entry else None, "crime_against": first["crime_against"],
        "ucr_part1": first["ucr_part1"], "offence_local_code": first["local_code"],
        "status": inc.status, "disposition": None, "location_type": inc.location_type,
        "jurisdictions": inc.jurisdictions(),
        "areas": {k: v for k, v in areas_of(inc).items() if shows_layer(g, k, inc.owner)},
        "sensitivity": sorted(f for f in inc.flags), "attributes": inc.attributes,
        "occurred_from": floor_time(inc.occurred_from, res, tz),
        "occurred_to": floor_time(inc.occurred_to, res, tz),
        "reported_at": floor_time(inc.reported_at, res, tz),
    }  # fmt: skip
    offs = []
    for i in range(len(inc.codes)):
        o = inc.offence(i)
        if covers(g["offences"], o):
            e = nibrs_offences().get(o["nibrs_code"] or "")
            item = {
                "nibrs_code": o["nibrs_code"],
                "offence_name": e.name if e else None,
                "crime_against": o["crime_against"],
                "ucr_part1": o["ucr_part1"],
            }
            if "offence_local_code" in g["fields"]:
                item["local_code"] = o["local_code"]
            offs.append(item)
    v["offences"] = offs
    tp = inc.time_precision
    v["time_precision"] = (
        tp if res == "exact" else TP_ORDER[max(TP_ORDER.index(tp), TP_ORDER.index(res))]
    )
    has_point = inc.lat is not None
    if prec == "exact":
        v.update(lat=inc.lat, lon=inc.lon, location_precision="exact" if has_point else "none")
    elif prec in PREC_RES and has_point:
        lat, lon = anchor(inc, PREC_RES[prec])
        v.update(lat=lat, lon=lon, location_precision=prec)
    else:
        v["location_precision"] = prec if has_point else "none"
    if prec in ("exact", "block"):
        v["block_address"] = inc.block_address
    # The cell containing the point at each resolution (not the parent of a finer one).
    cell = {r: h3.latlng_to_cell(inc.lat, inc.lon, r) for r in (7, 9, 11)} if has_point else {}
    for r in (7, 9, 11):
        if prec == "exact" or (prec in PREC_RES and r <= PREC_RES[prec] and r < 10):
            v[f"h3_{r}"] = cell.get(r)
    return {k: v[k] for k in RECORD if k in g["fields"] and k in v}


def grants(world: dict[str, Any], owner: str, viewer: dict[str, Any], req: dict[str, Any]):
    """Return the grants through which the viewer may read this owner's records."""
    out = []
    purpose = req.get("purpose") or viewer.get("purpose") or "analysis"
    roles = set(viewer["roles"]) if viewer["kind"] == "user" else {"analyst"}
    data = bool(roles & DATA) if viewer["kind"] != "public" else False
    may_personal = req.get("personal") and viewer["kind"] == "user" and bool(roles & PERSONAL_ROLES)
    own = viewer["kind"] != "public" and viewer["agency"] == owner
    if own and data:
        out.append(
            {"via": "own", "id": "", "offences": None, "excluded": set(), "sup": set(),
             "fields": set(RECORD) | set(PERSONAL), "precision": "exact", "time": "exact",
             "delay": timedelta(0), "personal": bool(may_personal), "records": True}
        )  # fmt: skip
    for a in world["agreements"]:
        if a["owner"] != owner or a["status"] != "active":
            continue
        gk, gid = a["grantee_kind"], a["grantee"]
        if gk == "public":
            via = "public"
        elif viewer["kind"] == "public" or own:
            continue
        elif gk == "agency" and gid == viewer["agency"]:
            via = "agency"
        elif gk == "group" and viewer["agency"] in world["members"]:
            via = "group"
        else:
            continue
        if via == "public":
            pol = world["public"].get(owner, {})
            prec = stricter(a["precision"], pol.get("precision", "h3:9"))
            tm = max(a["time"], pol.get("time", "day"), key=TIME_RANK.get)
            delay = max(a["delay"], pol.get("delay", timedelta(days=7)))
            fields = a["fields"] & PUBLIC_FIELDS & pol.get("fields", PUBLIC_FIELDS)
            out.append(
                {"via": via, "id": a["id"], "offences": a["offences"], "excluded": ALL_FLAGS,
                 "sup": pol.get("suppress", set()), "fields": fields, "precision": prec,
                 "time": tm, "delay": delay, "personal": False,
                 "records": pol.get("records", True)}
            )  # fmt: skip
            continue
        if not data or purpose not in a["purposes"]:
            continue
        personal = bool(may_personal) and bool(a["fields"] & set(PERSONAL))
        out.append(
            {"via": via, "id": a["id"], "offences": a["offences"],
             "excluded": ALL_FLAGS - a["include_sensitive"], "sup": set(),
             "fields": a["fields"], "precision": a["precision"], "time": a["time"],
             "delay": a["delay"], "personal": personal, "records": True}
        )  # fmt: skip
    kept = []
    for g in out:
        f = g["fields"]
        if not req.get("aggregate") and not g["records"]:
            continue
        if req.get("offences") and not {"nibrs_code", "crime_against", "ucr_part1"} <= f:
            continue
        if (req.get("since") or req.get("until")) and "occurred_from" not in f:
            continue
        has_point = g["precision"] != "jurisdiction" and not g["precision"].startswith("area:")
        if req.get("bbox") and not ({"lat", "lon"} <= f and has_point):
            continue
        if any(not shows_layer(g, layer_of(ref, owner), owner) for ref, _ in req.get("areas", ())):
            continue
        if req.get("areas") and req.get("aggregate") and g["via"] == "public" and not g["records"]:
            continue  # counts-only: its base table has no areas
        for dim in req.get("group_by", ()):
            if dim == "nibrs" and "nibrs_code" not in f:
                break
            if dim.startswith("area:") and not shows_layer(g, layer_of(dim[5:], owner), owner):
                break
            # A counts-only public release answers only from its base table (by category,
            # month, H3 res-7 cell and jurisdictions): not by offence code or area.
            counts_only = g["via"] == "public" and not g["records"]
            if counts_only and (dim == "nibrs" or dim.startswith("area:")):
                break
        else:
            kept.append(g)
    return kept


def shown_count(g: dict[str, Any]) -> int:
    return len(g["fields"] if g["personal"] else g["fields"] - set(PERSONAL))


def priority(g: dict[str, Any]) -> tuple[Any, ...]:
    return (
        PREC_RANK[g["precision"]],
        -shown_count(g),
        TIME_RANK[g["time"]],
        g["delay"],
        VIA_RANK[g["via"]],
        g["id"],
    )


def reference(world, viewer, req) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Return ``{id: (record, grant)}`` of what the viewer sees for a request."""
    out = {}
    now = world["now"]
    for inc in world["incidents"]:
        if inc.withdrawn or (req.get("agencies") and inc.owner not in req["agencies"]):
            continue
        flags = flags_of(inc)
        fit = []
        for g in grants(world, inc.owner, viewer, req):
            if not covers(g["offences"], inc.offence(0)):
                continue
            if g["sup"] and any(covers(g["sup"], inc.offence(i)) for i in range(len(inc.codes))):
                continue
            if flags & g["excluded"]:
                continue
            if g["delay"] and release(inc) + g["delay"] > now:
                continue
            fit.append(g)
        if not fit:
            continue
        g = min(fit, key=priority)
        rec = show(g, inc)
        if req.get("offences") and not covers(set(req["offences"]), rec):
            continue
        t = rec.get("occurred_from")
        if req.get("since") and (t is None or t < req["since"]):
            continue
        if req.get("until") and (t is None or t >= req["until"]):
            continue
        if req.get("bbox"):
            x0, y0, x1, y1 = req["bbox"]
            if rec.get("lat") is None or not (x0 <= rec["lon"] <= x1 and y0 <= rec["lat"] <= y1):
                continue
        if req.get("areas") and not any(
            name in rec["areas"].get(layer_of(ref, inc.owner), []) for ref, name in req["areas"]
        ):
            continue
        wanted = fields_of(req["fields"]) if req.get("fields") else None
        shown = g["fields"] if g["personal"] else g["fields"] - set(PERSONAL)
        keep = (shown & wanted if wanted else shown) | {"id", "agency_id"}
        if g["via"] == "own" and not wanted:  # the owner also sees its own source ids
            rec, keep = {**rec, "source_id": inc.source_id}, keep | {"source_id"}
        out[rec["id"]] = ({k: v for k, v in rec.items() if k in keep}, g)
    return out


def in_order(ref_world: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Return the shown ids of ``expected`` in the order reads return them (public-id order)."""
    public = {}
    for inc in ref_world["incidents"]:
        public[inc.id] = public[inc.public_id] = inc.public_id
    return sorted(expected, key=lambda shown: public[shown])


# -- generated worlds ------------------------------------------------------------------------
CODES = ["220", "13A", "13B", "240", "23H", "11A", "11D", "09A", "90Z", "35A", "36B", None]
DESCRIPTIONS = [None, None, None, "DOMESTIC DISTURBANCE", "SEXUAL ASSAULT", "THEFT OF BICYCLE"]


@st.composite
def incidents(draw: st.DrawFn, n: int) -> Inc:
    owner = draw(st.sampled_from(sorted(AGENCIES)))
    located = draw(st.integers(0, 9)) > 0
    lon = draw(st.floats(AREA[0], AREA[2])) if located else None
    lat = draw(st.floats(AREA[1], AREA[3])) if located else None
    codes = draw(st.lists(st.sampled_from(CODES), min_size=1, max_size=2))
    start = NOW - timedelta(minutes=draw(st.integers(0, 40 * 24 * 60)))
    timed = draw(st.integers(0, 9)) > 0
    return Inc(
        owner=owner,
        source_id=f"S{n}",
        lat=lat,
        lon=lon,
        codes=codes,
        occurred_from=start if timed else None,
        occurred_to=start + timedelta(hours=draw(st.integers(1, 30)))
        if draw(st.booleans())
        else None,
        reported_at=start + timedelta(days=draw(st.integers(0, 9)))
        if draw(st.booleans())
        else None,
        flags=frozenset(
            draw(st.sets(st.sampled_from(sorted(ALL_FLAGS)), max_size=1))
            if draw(st.integers(0, 5)) == 0
            else set()
        ),
        descriptions=draw(st.lists(st.sampled_from(DESCRIPTIONS), min_size=2, max_size=2)),
        attributes={"note": "juvenile runaway"} if draw(st.integers(0, 12)) == 0 else None,
        withdrawn=draw(st.integers(0, 9)) == 0,
        time_precision=draw(st.sampled_from(["minute", "minute", "day", "unknown"])),
        personal={"full_address": f"{n} Main St", "narrative": "n", "persons": []},
    )


SPEC_OFFENCES = [["all"], ["property"], ["person"], ["220", "13A"], ["part1"], ["society"]]
SPEC_FIELDS = [["all"], ["offence", "occurred", "location"], ["offence", "location", "h3"],
               ["occurred", "jurisdictions"], ["all", "personal"]]  # fmt: skip
PUBLIC_SPEC_FIELDS = [None, ["offence", "location"], ["offence", "occurred", "location", "h3_9"]]


@st.composite
def agreement_specs(draw: st.DrawFn) -> dict[str, Any]:
    owner = draw(st.sampled_from(sorted(AGENCIES)))
    others = [a for a in sorted(AGENCIES) if a != owner]
    grantee = draw(st.sampled_from([*others, "group:g1", "public", "public"]))
    spec: dict[str, Any] = {"owner": owner, "grantee": grantee}
    spec["status"] = draw(
        st.sampled_from(["active", "active", "active", "expired", "pending", "revoked"])
    )
    spec["offences"] = draw(st.sampled_from(SPEC_OFFENCES))
    if grantee == "public":
        spec["fields"] = draw(st.sampled_from(PUBLIC_SPEC_FIELDS))
        spec["precision"] = draw(
            st.sampled_from(
                [None, "h3:9", "h3:7", "area:beats", "area:citya/beats", "jurisdiction"]
            )
        )
        spec["time"] = draw(st.sampled_from([None, "day", "month"]))
        spec["delay"] = draw(st.sampled_from([None, "7d", "14d"]))
        spec["purposes"], spec["include"] = None, []
    else:
        spec["fields"] = draw(st.sampled_from(SPEC_FIELDS))
        spec["precision"] = draw(st.sampled_from(list(PREC_RANK)))
        spec["time"] = draw(st.sampled_from(list(TIME_RANK)))
        spec["delay"] = draw(st.sampled_from(["0s", "24h", "7d"]))
        spec["purposes"] = sorted(
            draw(st.sets(st.sampled_from(["analysis", "operations", "investigation"]), min_size=1))
        )
        spec["include"] = draw(
            st.sampled_from([[], ["juvenile"], ["sexual_offence", "victim_identifying"], ["all"]])
        )
    return spec


TIGHTEN = [{"precision": "h3:7"}, {"delay": "14d"}, {"suppress_offences": ["13A"]},
           {"records": False}, {"fields": ["offence", "location"]}, {"time_resolution": "month"},
           {"threshold": 7}, {"precision": "area:beats"}]  # fmt: skip


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 18))
    return {
        "incidents": [draw(incidents(i)) for i in range(n)],
        "specs": draw(st.lists(agreement_specs(), min_size=2, max_size=8)),
        "members": sorted(draw(st.sets(st.sampled_from(sorted(AGENCIES))))),
        "tighten": draw(
            st.dictionaries(st.sampled_from(sorted(AGENCIES)), st.sampled_from(TIGHTEN), max_size=2)
        ),
        "purpose": draw(st.sampled_from([None, "analysis", "operations", "investigation"])),
        "requests": draw(st.lists(requests(), min_size=1, max_size=2)),
    }


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    req: dict[str, Any] = {}
    kind = draw(
        st.sampled_from(["plain", "fields", "offences", "time", "bbox", "agencies", "areas"])
    )
    if kind == "fields":
        req["fields"] = draw(
            st.sampled_from([["offence"], ["location", "occurred"], ["h3", "block_address"]])
        )
    elif kind == "offences":
        req["offences"] = draw(st.sampled_from([["property"], ["13A", "220"], ["part1"]]))
    elif kind == "time":
        req["since"] = NOW - timedelta(
            days=draw(st.integers(5, 40)), hours=draw(st.integers(0, 23))
        )
        req["until"] = req["since"] + timedelta(days=draw(st.integers(1, 20)))
    elif kind == "bbox":
        x0 = draw(st.floats(AREA[0], -122.60))
        y0 = draw(st.floats(AREA[1], 45.53))
        req["bbox"] = (x0, y0, x0 + draw(st.floats(0.01, 0.1)), y0 + draw(st.floats(0.01, 0.04)))
    elif kind == "agencies":
        req["agencies"] = sorted(draw(st.sets(st.sampled_from(sorted(AGENCIES)), min_size=1)))
    elif kind == "areas":
        req["areas"] = draw(
            st.sampled_from(
                [[("beats", "West")], [("beats", "North"), ("beats", "East")],
                 [("citya/beats", "East")]]
            )
        )  # fmt: skip
    return req


def build(store, world: dict[str, Any]) -> dict[str, Any]:
    """Store a generated world; return what the reference needs (only what was stored)."""
    clock = FrozenClock(NOW)
    store.clock = clock
    clear(store)
    insert_incidents(store, world["incidents"])
    for key, path in store.layer_files.items():  # re-tags the incidents just inserted
        agency, layer = key.split("/")
        add_layer(store, agency, layer, path, name_field="name", replace=True)
    create_group(store, "g1", "Group one", members=world["members"])
    tightened = {}
    for agency, knobs in world["tighten"].items():
        try:
            tighten_public_policy(store, agency, knobs)
        except AgreementError:  # an area layer the agency does not have
            assert f"{agency}/beats" not in LAYERS
            continue
        tightened[agency] = knobs
    made = []
    for spec in world["specs"]:
        status = spec["status"]
        clock.set(NOW - timedelta(days=2) if status == "expired" else NOW)
        try:
            a = create_agreement(
                store,
                spec["owner"],
                spec["grantee"],
                offences=spec["offences"],
                fields=spec["fields"],
                precision=spec["precision"],
                time_resolution=spec["time"],
                delay=spec["delay"],
                purposes=spec["purposes"],
                include_sensitive=spec["include"],
                approved_by=ADMINS.get(spec["owner"], ()),
                valid_from=NOW + timedelta(days=1) if status == "pending" else None,
                valid_to=NOW - timedelta(days=1) if status == "expired" else None,
            )
        except AgreementError:
            continue
        if status == "revoked":
            revoke_agreement(store, a.id, reason="test")
        made.append((spec, a))
    clock.set(NOW)
    return {"now": NOW, "incidents": world["incidents"], "members": world["members"],
            "public": _reference_public(tightened),
            "agreements": [_reference_agreement(spec, a.id) for spec, a in made]}  # fmt: skip


def _reference_public(tighten: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for agency, knobs in tighten.items():
        pol: dict[str, Any] = {}
        if "precision" in knobs:
            pol["precision"] = knobs["precision"]
        if "delay" in knobs:
            pol["delay"] = timedelta(days=14)
        if "suppress_offences" in knobs:
            pol["suppress"] = set(knobs["suppress_offences"])
        if "records" in knobs:
            pol["records"] = False
        if "fields" in knobs:
            pol["fields"] = PUBLIC_FIELDS & fields_of(knobs["fields"])
        if "time_resolution" in knobs:
            pol["time"] = knobs["time_resolution"]
        out[agency] = pol
    return out


def _reference_agreement(spec: dict[str, Any], agreement_id: str) -> dict[str, Any]:
    grantee = spec["grantee"]
    kind = (
        "public" if grantee == "public" else "group" if grantee.startswith("group:") else "agency"
    )
    delay = {"0s": 0, "24h": 1, "7d": 7, "14d": 14, None: 0}[spec["delay"]]
    include = set(spec["include"])
    return {
        "id": agreement_id,
        "owner": spec["owner"],
        "grantee_kind": kind,
        "grantee": grantee.removeprefix("group:"),
        "status": spec["status"],
        "offences": None if spec["offences"] == ["all"] else set(spec["offences"]),
        "fields": fields_of(spec["fields"]) if spec["fields"] else set(PUBLIC_FIELDS),
        # The owner's own layer is stored as area:LAYER, however it was written.
        "precision": (spec["precision"] or "h3:9").replace(f"area:{spec['owner']}/", "area:"),
        "time": spec["time"] or ("day" if kind == "public" else "exact"),
        "delay": timedelta(days=delay),
        "purposes": set(spec["purposes"] or ["public_information"]),
        "include_sensitive": ALL_FLAGS if "all" in include else include,
    }


def viewers(purpose: str | None) -> list[tuple[Viewer, dict[str, Any]]]:
    out = [(Viewer.public(), {"kind": "public", "agency": None, "roles": []})]
    for agency in sorted(AGENCIES):
        for role in Role:
            v = Viewer.user(f"u-{agency}-{role}", agency, [role], purpose=purpose)
            out.append(
                (v, {"kind": "user", "agency": agency, "roles": [role.value], "purpose": purpose})
            )
        out.append(
            (Viewer.token(f"t-{agency}", agency), {"kind": "token", "agency": agency, "roles": []})
        )
    return out


def to_request(req: dict[str, Any]) -> ReadRequest:
    return ReadRequest(
        bbox=req.get("bbox"),
        since=req.get("since"),
        until=req.get("until"),
        agencies=frozenset(req["agencies"]) if req.get("agencies") else None,
        offences=frozenset(req["offences"]) if req.get("offences") else None,
        fields=frozenset(req["fields"]) if req.get("fields") else None,
        areas=frozenset(req["areas"]) if req.get("areas") else None,
        jurisdictions=frozenset(req["jurisdictions"]) if req.get("jurisdictions") else None,
    )


def same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want), (set(got) ^ set(want), got["id"])
    for key, value in want.items():
        assert got[key] == value, (key, got[key], value, got["id"])


# -- the properties -------------------------------------------------------------------------------
def prepare_sharing_store(store, tmp_path):
    """Register the three agencies and their admins, and write the area layer files."""
    setup_agencies(store)
    store.layer_files = {}
    for key, named in LAYERS.items():
        path = tmp_path / f"{key.replace('/', '-')}.geojson"
        features = [
            {"type": "Feature", "properties": {"name": n}, "geometry": mapping(g)}
            for n, g in named.items()
        ]
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
        store.layer_files[key] = path
    add_admins(store)
    return store


@pytest.fixture
def sharing_store(store, tmp_path):
    return prepare_sharing_store(store, tmp_path)


def test_every_read_path_matches_the_reference(sharing_store, db_url):
    examples = 25 if db_url.startswith("sqlite") else 12

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=worlds())
    def check(world: dict[str, Any]) -> None:
        _check_world(sharing_store, world)

    check()


def _check_world(store, world: dict[str, Any]) -> None:
    ref_world = build(store, world)
    compared: Counter[str] = Counter()
    for viewer, ref_viewer in viewers(world["purpose"]):
        for req in world["requests"]:
            expected = reference(ref_world, ref_viewer, req)
            got = read_incidents(store, viewer, to_request(req)).records
            compared[ref_viewer["kind"]] += len(got)
            compared["with areas"] += sum(1 for r in got if r.get("areas"))
            assert [r["id"] for r in got] == in_order(ref_world, expected), (ref_viewer, req)
            for record in got:
                same(record, expected[record["id"]][0])
        # Whole-population paths for the plain request.
        expected = reference(ref_world, ref_viewer, {})
        first = LiveStream(store, viewer).poll().records
        assert sorted(r["id"] for r in first) == sorted(expected)
        _check_aggregates(store, viewer, ref_world, ref_viewer)
        _check_details(store, viewer, ref_world, ref_viewer, expected)
    _check_previews(store, ref_world)
    event(f"agreements stored: {len(ref_world['agreements'])}")
    for kind, n in compared.items():
        event(f"{kind} records compared: {'0' if not n else '1-9' if n < 10 else '10+'}")


def _check_previews(store, ref_world) -> None:
    """The preview shows what a stand-in officer-analyst-supervisor (or the public) sees."""
    for owner in sorted(AGENCIES):
        for grantee in [*sorted(set(AGENCIES) - {owner}), "public"]:
            if grantee == "public":
                stand_in = {"kind": "public", "agency": None, "roles": []}
            else:
                stand_in = {"kind": "user", "agency": grantee, "roles": sorted(DATA)}
            want = reference(ref_world, stand_in, {"agencies": [owner]})
            shown = preview(store, owner, grantee, sample=3, real_sample=True)
            assert shown.visible == len(want)
            assert shown.total == sum(
                1 for i in ref_world["incidents"] if i.owner == owner and not i.withdrawn
            )
            assert [r["id"] for r in shown.sample] == in_order(ref_world, want)[:3]
            for record in shown.sample:
                same(record, want[record["id"]][0])


def _check_aggregates(store, viewer, ref_world, ref_viewer) -> None:
    got = aggregate(store, viewer, by=("agency",))
    want = Counter(
        ref_world_inc.owner for ref_world_inc in _visible(ref_world, ref_viewer, "agency")
    )
    _compare_counts(got, want, ref_viewer)
    got = aggregate(store, viewer, by=("nibrs",))
    want = Counter(
        (inc.offence(0)["nibrs_code"] or "unmapped")
        for inc in _visible(ref_world, ref_viewer, "nibrs")
    )
    _compare_counts(got, want, ref_viewer)
    got = aggregate(store, viewer, by=("area:beats",))
    want = Counter(
        "+".join(areas_of(inc).get(f"{inc.owner}/beats", [])) or "none"
        for inc in _visible(ref_world, ref_viewer, "area:beats")
    )
    _compare_counts(got, want, ref_viewer)


def _visible(ref_world, ref_viewer, dim: str) -> list[Inc]:
    seen = reference(ref_world, ref_viewer, {"aggregate": True, "group_by": (dim,)})
    return [inc for inc in ref_world["incidents"] if inc.id in seen or inc.public_id in seen]


def _compare_counts(got, want: Counter, ref_viewer) -> None:
    cells = {k[0]: v for k, v in got.cells.items()}
    # The total is the sum of the published cells: it never holds a hidden count.
    assert got.total == sum(v for v in cells.values() if v is not None)
    if got.threshold is None:
        assert cells == dict(want) and got.complete, "only public releases are suppressed"
        return
    # A public release hides small counts, and a counts-only one drops small cells of
    # its base table: what is published is never more than the truth, and at least k.
    assert set(cells) <= set(want)
    for key, n in cells.items():
        assert n is None or got.threshold <= n <= want[key] or n == want[key]


def _check_details(store, viewer, ref_world, ref_viewer, expected) -> None:
    hidden = [
        i.public_id
        for i in ref_world["incidents"]
        if i.id not in expected and i.public_id not in expected
    ]
    ids = sorted(expected)[:1] + hidden[:1]
    with_personal = reference(ref_world, ref_viewer, {"personal": True, "purpose": "investigation"})
    for incident_id in ids:
        plain = read_detail(store, viewer, incident_id)
        if incident_id in expected:
            same(plain.record, expected[incident_id][0])
        else:
            assert plain.record is None and plain.personal is None
        detail = read_detail(store, viewer, incident_id, purpose="case 26-1")
        if incident_id not in with_personal:
            assert detail.record is None and detail.personal is None
            continue
        record, grant = with_personal[incident_id]
        same(detail.record, {k: v for k, v in record.items() if k not in PERSONAL})
        if grant["personal"]:
            assert detail.personal is not None and detail.personal.full_address
        else:
            assert detail.personal is None


# -- area layers, focused ---------------------------------------------------------------------
@st.composite
def area_specs(draw: st.DrawFn) -> dict[str, Any]:
    """An active agreement sharing everything, at any precision (area layers often)."""
    owner = draw(st.sampled_from(sorted(AGENCIES)))
    grantee = draw(st.sampled_from([*(a for a in sorted(AGENCIES) if a != owner), "public"]))
    public = grantee == "public"
    precisions = ["h3:9", "area:beats", "area:citya/beats", "jurisdiction"]
    if not public:
        precisions += ["exact", "block", "h3:7", "area:beats", "area:citya/beats"]
    return {
        "owner": owner, "grantee": grantee, "status": "active", "offences": ["all"],
        "fields": None if public else ["all"], "precision": draw(st.sampled_from(precisions)),
        "time": None if public else "exact", "delay": None if public else "0s",
        "purposes": None if public else ["analysis"], "include": [] if public else ["all"],
    }  # fmt: skip


@st.composite
def area_worlds(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(3, 14))
    return {
        "incidents": [
            dataclasses.replace(draw(incidents(i)), occurred_from=NOW - timedelta(days=20))
            for i in range(n)
        ],
        "specs": draw(st.lists(area_specs(), min_size=1, max_size=4)),
        "members": [],
        "tighten": draw(
            st.dictionaries(
                st.sampled_from(sorted(AGENCIES)),
                st.sampled_from([{"precision": "area:beats"}, {"precision": "h3:7"}]),
                max_size=1,
            )
        ),
        "purpose": None,
        "requests": [draw(st.sampled_from([{}, *({"areas": a} for a in AREA_FILTERS)]))],
    }


AREA_FILTERS = [[("beats", "West")], [("beats", "North"), ("beats", "East")],
                [("citya/beats", "East")]]  # fmt: skip


def test_area_layers_match_the_reference(sharing_store, db_url):
    """Agreements and public releases generalised to area layers, area filters and counts."""
    examples = 25 if db_url.startswith("sqlite") else 10

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(world=area_worlds())
    def check(world: dict[str, Any]) -> None:
        ref_world = build(sharing_store, world)
        analysts = [
            (Viewer.user(f"u-{a}", a, ["analyst"]), {"kind": "user", "agency": a,
             "roles": ["analyst"], "purpose": None})
            for a in sorted(AGENCIES)
        ]  # fmt: skip
        public = (Viewer.public(), {"kind": "public", "agency": None, "roles": []})
        for viewer, ref_viewer in [public, *analysts]:
            for req in [world["requests"][0], *({"areas": a} for a in AREA_FILTERS)]:
                expected = reference(ref_world, ref_viewer, req)
                got = read_incidents(sharing_store, viewer, to_request(req)).records
                assert [r["id"] for r in got] == in_order(ref_world, expected), (ref_viewer, req)
                for record in got:
                    same(record, expected[record["id"]][0])
                    event(f"{ref_viewer['kind']} sees areas: {bool(record.get('areas'))}")
            got_counts = aggregate(sharing_store, viewer, by=("area:beats",))
            want = Counter(
                "+".join(areas_of(inc).get(f"{inc.owner}/beats", [])) or "none"
                for inc in _visible(ref_world, ref_viewer, "area:beats")
            )
            _compare_counts(got_counts, want, ref_viewer)

    check()
