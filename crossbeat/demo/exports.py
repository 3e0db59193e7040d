"""Write each demo agency's share of the simulated events in that agency's own format.

* City of Riverton Police: CSV, separate ``MM/DD/YYYY`` date and ``HHMM`` time
  columns in local time, alphanumeric local codes (``BURG-RES``), street addresses with
  house numbers, victim and suspect names, narrative and Y/N flag columns.
* Clackmer County Sheriff: GeoJSON with points in Oregon North US feet (EPSG:2913),
  Oregon statute numbers as offence codes, ISO 8601 times with offsets and an
  occurred from/to window for burglaries.
* Metro Transit Police: JSON lines, epoch-millisecond UTC timestamps, station names as
  locations and its own four-letter codes.

Each file also carries a few malformed rows (bad date, swapped coordinates, unknown
code, missing id, duplicate id, a truncated line) that ingestion must quarantine or
flag. :func:`write_exports` returns where every planted record went, so the manifest
can name them by source id and row number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crossbeat.demo import region
from crossbeat.demo.generate import TIMEZONE, Event, Simulation

#: Export file name of each demo agency.
FILES = {
    "rivertonpd": "riverton_pd_incidents.csv",
    "clackmerco": "clackmer_sheriff_cad.geojson",
    "metrotransit": "metro_transit_events.jsonl",
}

# Local offence codes by simulated kind: (code, description as the agency writes it).
RIVERTON_CODES: dict[str, tuple[str, str]] = {
    "burglary_residential": ("BURG-RES", "BURGLARY - RESIDENTIAL"),
    "burglary_commercial": ("BURG-COM", "BURGLARY - COMMERCIAL"),
    "theft_from_vehicle": ("THEFT-FRVEH", "THEFT FROM VEHICLE"),
    "vehicle_theft": ("THEFT-VEH", "STOLEN VEHICLE"),
    "shoplifting": ("THEFT-SHOP", "SHOPLIFT"),
    "theft_other": ("THEFT-OTH", "THEFT - ALL OTHER"),
    "pickpocket": ("THEFT-PICK", "PICKPOCKET"),
    "robbery_street": ("ROB-STR", "ROBBERY - STREET"),
    "robbery_commercial": ("ROB-COM", "ROBBERY - COMMERCIAL"),
    "assault_simple": ("ASLT-SMP", "ASSAULT - SIMPLE"),
    "assault_aggravated": ("ASLT-AGG", "ASSAULT - AGGRAVATED"),
    "assault_dv": ("ASLT-DV", "ASSAULT - DOMESTIC"),
    "sexual_assault": ("SEX-RAPE", "RAPE"),
    "sexual_fondling": ("SEX-FOND", "SEX ABUSE - FONDLING"),
    "vandalism": ("VAND", "VANDALISM/CRIMINAL MISCHIEF"),
    "drugs": ("DRUG-POSS", "DRUG POSSESSION"),
    "trespass": ("TRESP", "TRESPASS"),
    "disorderly": ("DISORD", "DISORDERLY CONDUCT"),
    "weapons": ("WEAP", "WEAPONS VIOLATION"),
    "disturbance": ("DISTURB", "DISTURBANCE - CALL FOR SERVICE"),
    "civil": ("CIVIL", "CIVIL MATTER / STANDBY"),
}
CLACKMER_CODES: dict[str, tuple[str, str]] = {
    "burglary_residential": ("164.225", "BURGLARY I"),
    "burglary_commercial": ("164.215", "BURGLARY II"),
    "vehicle_theft": ("164.135", "UNAUTHORIZED USE OF A VEHICLE"),
    "robbery_street": ("164.395", "ROBBERY III"),
    "robbery_commercial": ("164.415", "ROBBERY I"),
    "assault_simple": ("163.160", "ASSAULT IV"),
    "assault_dv": ("163.160", "ASSAULT IV"),
    "assault_aggravated": ("163.175", "ASSAULT II"),
    "sexual_assault": ("163.375", "RAPE I"),
    "sexual_fondling": ("163.427", "SEXUAL ABUSE I"),
    "vandalism": ("164.354", "CRIMINAL MISCHIEF II"),
    "drugs": ("475.894", "POSSESSION OF METHAMPHETAMINE"),
    "trespass": ("164.245", "CRIMINAL TRESPASS II"),
    "disorderly": ("166.025", "DISORDERLY CONDUCT II"),
    "weapons": ("166.250", "UNLAWFUL POSSESSION OF A FIREARM"),
    "disturbance": ("NC", "NON-CRIMINAL INCIDENT"),
    "civil": ("NC", "NON-CRIMINAL INCIDENT"),
}
# Oregon grades theft by value, not by kind: the statute loses the detail.
_CLACKMER_THEFT = (
    ("164.043", "THEFT III"),
    ("164.045", "THEFT II"),
    ("164.055", "THEFT I"),
)
METRO_CODES: dict[str, tuple[str, str]] = {
    "fare_evasion": ("FARE", "Fare evasion"),
    "theft_other": ("THFT", "Theft"),
    "pickpocket": ("PKPK", "Pickpocket"),
    "assault_simple": ("ASLT", "Assault"),
    "assault_aggravated": ("AGAS", "Aggravated assault"),
    "robbery_street": ("ROBB", "Robbery"),
    "vandalism": ("VAND", "Vandalism / graffiti"),
    "drugs": ("DRUG", "Drug activity"),
    "trespass": ("EXCL", "Exclusion violation"),
    "disorderly": ("DSRD", "Disorderly conduct"),
    "weapons": ("WEAP", "Weapon"),
    "sexual_fondling": ("SXMC", "Sexual misconduct"),
    "theft_from_vehicle": ("PRTV", "Park and ride vehicle prowl"),
    "vehicle_theft": ("PRVT", "Park and ride vehicle theft"),
    "assault_dv": ("ASLT", "Assault"),
    "robbery_commercial": ("ROBB", "Robbery"),
    "shoplifting": ("THFT", "Theft"),
}

_CITY_PREMISES = {
    "residence": "RESIDENCE", "street": "STREET", "parking": "PARKING LOT",
    "commercial": "BUSINESS", "department_store": "DEPT STORE", "grocery": "GROCERY",
    "convenience": "CONV STORE", "gas_station": "GAS STATION", "bank": "BANK",
    "restaurant": "RESTAURANT", "bar": "BAR/NIGHTCLUB", "school": "SCHOOL",
    "transit": "TRANSIT STATION",
}  # fmt: skip
_COUNTY_PREMISES = {
    "residence": "Residence/Home", "street": "Highway/Road/Alley", "parking": "Parking Lot",
    "commercial": "Commercial/Office", "department_store": "Department Store",
    "grocery": "Grocery/Supermarket", "convenience": "Convenience Store",
    "gas_station": "Service/Gas Station", "bank": "Bank", "restaurant": "Restaurant",
    "bar": "Bar/Nightclub", "school": "School", "transit": "Bus/Train Terminal",
}  # fmt: skip
_CITY_STATUS = {"open": "OPEN", "closed": "CLOSED", "arrest": "CLR-ARREST"}
_COUNTY_STATUS = {"open": "Active", "closed": "Inactive", "arrest": "Cleared by Arrest"}

CITY_COLUMNS = (
    "CASE_NO", "RPT_DATE", "RPT_TIME", "OCC_DATE", "OCC_TIME", "OFFENSE_CODE", "OFFENSE_DESC",
    "PREMISE", "ADDRESS", "BEAT", "LAT", "LON", "VICTIM_NAME", "VICTIM_AGE", "SUSPECT_NAME",
    "DV_FLAG", "JUV_FLAG", "CI_FLAG", "CASE_STATUS", "NARRATIVE",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Planted:
    """A malformed record planted in an export, and where it went."""

    agency: str
    kind: str
    row: int
    source_id: str | None


@dataclass
class ExportFile:
    """One written export file."""

    agency: str
    path: Path
    rows: int
    #: Simulation event key -> source record id, for every well-formed record.
    ids: dict[str, str] = field(default_factory=dict)
    planted: list[Planted] = field(default_factory=list)


def write_exports(sim: Simulation, out_dir: Path) -> dict[str, ExportFile]:
    """Write every agency's export file into ``out_dir``.

    Parameters
    ----------
    sim
        The simulated events (:func:`crossbeat.demo.generate.simulate`).
    out_dir
        Directory to write into (created if missing).

    Returns
    -------
    dict
        One :class:`ExportFile` per agency id.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[list[Event], Path], ExportFile]] = {
        "rivertonpd": _write_city,
        "clackmerco": _write_county,
        "metrotransit": _write_transit,
    }
    return {
        agency: write(sim.for_agency(agency), out_dir / FILES[agency])
        for agency, write in writers.items()
    }


def _local(t: datetime) -> datetime:
    return t.astimezone(ZoneInfo(TIMEZONE))


def _ids(events: list[Event], fmt: Callable[[datetime, int], str]) -> dict[str, str]:
    """Number records per local year of report, in report order."""
    seq: dict[int, int] = {}
    ids = {}
    for e in events:
        year = _local(e.reported_at).year
        seq[year] = seq.get(year, 0) + 1
        ids[e.key] = fmt(_local(e.reported_at), seq[year])
    return ids


def _spots(n_rows: int, n_bad: int) -> list[int]:
    """Return the 0-based positions at which to insert bad rows, spread over the file."""
    return [(i + 1) * n_rows // (n_bad + 1) + i for i in range(n_bad)]


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _beat(x: float, y: float) -> str:
    return f"{'NS'[y < 0]}{'EW'[x < 0]}{int(abs(x) // 1500) + 1}{int(abs(y) // 1500) + 1}"


def _city_row(e: Event, case_no: str) -> dict[str, str]:
    occ, rpt = _local(e.occurred_from), _local(e.reported_at)
    code, desc = RIVERTON_CODES[e.recorded_kind or e.kind]
    address, _ = region.street_address(e.x, e.y, parity=e.parity)
    lon, lat = region.to_lonlat(e.x, e.y)
    return {
        "CASE_NO": case_no,
        "RPT_DATE": rpt.strftime("%m/%d/%Y"),
        "RPT_TIME": rpt.strftime("%H%M"),
        "OCC_DATE": occ.strftime("%m/%d/%Y"),
        "OCC_TIME": occ.strftime("%H%M"),
        "OFFENSE_CODE": code,
        "OFFENSE_DESC": desc,
        "PREMISE": _CITY_PREMISES[e.premise],
        "ADDRESS": address,
        "BEAT": _beat(e.x, e.y),
        "LAT": f"{lat:.6f}",
        "LON": f"{lon:.6f}",
        "VICTIM_NAME": (e.victim or "").upper(),
        "VICTIM_AGE": "" if e.victim_age is None else str(e.victim_age),
        "SUSPECT_NAME": (e.suspect or "").upper(),
        # Half the miscoded domestic cases carry the flag; the rest only say it in words.
        "DV_FLAG": _yn(
            "domestic_violence" in e.sensitive
            and (e.recorded_kind is None or int(e.key[1:]) % 2 == 0)
        ),
        "JUV_FLAG": _yn("juvenile" in e.sensitive),
        "CI_FLAG": _yn("informant" in e.sensitive),
        "CASE_STATUS": _CITY_STATUS[e.status],
        "NARRATIVE": e.narrative,
    }


def _write_city(events: list[Event], path: Path) -> ExportFile:
    ids = _ids(events, lambda t, n: f"RPD{t:%y}-{n:06d}")
    rows = [_city_row(e, ids[e.key]) for e in events]
    planted: list[tuple[str, dict[str, str]]] = []
    base = dict(rows[len(rows) // 3])
    planted.append(("bad_date", {**base, "CASE_NO": "RPD26-900001", "OCC_DATE": "02/30/2026"}))
    planted.append(
        ("swapped_coordinates",
         {**base, "CASE_NO": "RPD26-900002", "LAT": base["LON"], "LON": base["LAT"]})
    )  # fmt: skip
    planted.append(("unknown_code", {**base, "CASE_NO": "RPD26-900003", "OFFENSE_CODE": "PRWL-X",
                                     "OFFENSE_DESC": "PROWLER"}))  # fmt: skip
    planted.append(("missing_id", {**base, "CASE_NO": ""}))
    dup = dict(rows[len(rows) // 2])
    planted.append(("duplicate_id", {**dup, "CASE_STATUS": "CLOSED", "NARRATIVE": "Re-export."}))
    out = _insert(rows, planted, "rivertonpd", "CASE_NO")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CITY_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(out.rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return ExportFile("rivertonpd", path, len(out.rows), ids, out.planted)


@dataclass
class _Inserted:
    rows: list[dict[str, Any]]
    planted: list[Planted]


def _insert(
    rows: list[dict[str, Any]],
    bad: list[tuple[str, dict[str, Any]]],
    agency: str,
    id_key: str,
) -> _Inserted:
    """Insert bad rows at spread positions; record their 1-based data row numbers."""
    out = list(rows)
    planted = []
    for pos, (kind, row) in zip(_spots(len(rows), len(bad)), bad, strict=True):
        out.insert(pos, row)
        planted.append(Planted(agency, kind, pos + 1, row.get(id_key) or None))
    return _Inserted(out, planted)


def _iso(t: datetime) -> str:
    return _local(t).isoformat(timespec="seconds")


def _county_feature(e: Event, number: str) -> dict[str, Any]:
    kind = e.recorded_kind or e.kind
    if kind in ("theft_other", "theft_from_vehicle", "shoplifting", "pickpocket"):
        statute, desc = _CLACKMER_THEFT[int(e.key[1:]) % 3]
    else:
        statute, desc = CLACKMER_CODES[kind]
    easting, northing = region.to_county_feet(e.x, e.y)
    _, block = region.street_address(e.x, e.y)
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [round(easting, 2), round(northing, 2)]},
        "properties": {
            "incident_number": number,
            "statute": statute,
            "statute_desc": desc,
            "reported": _iso(e.reported_at),
            "occurred_from": _iso(e.occurred_from),
            "occurred_to": _iso(e.occurred_to) if e.occurred_to else None,
            "block_address": block,
            "location_type": _COUNTY_PREMISES[e.premise],
            "rp_name": e.victim,
            "victim_age": e.victim_age,
            "dv_related": "domestic_violence" in e.sensitive,
            "juvenile_victim": "juvenile" in e.sensitive,
            "disposition": _COUNTY_STATUS[e.status],
            "synopsis": e.narrative,
        },
    }


def _write_county(events: list[Event], path: Path) -> ExportFile:
    ids = _ids(events, lambda t, n: f"CC{t:%y}{n:06d}")
    feats = [_county_feature(e, ids[e.key]) for e in events]
    base = feats[len(feats) // 3]

    def variant(number: str | None, **props: Any) -> dict[str, Any]:
        return {**base, "properties": {**base["properties"], "incident_number": number, **props}}

    swapped = variant("CC26900002")
    swapped["geometry"] = {
        "type": "Point",
        "coordinates": list(reversed(base["geometry"]["coordinates"])),
    }
    dup = feats[len(feats) // 2]
    bad = [
        ("bad_date", variant("CC26900001", reported="2026-02-30T25:61:00-08:00",
                             occurred_from="2026-02-30T25:00:00-08:00")),
        ("swapped_coordinates", swapped),
        ("unknown_code", variant("CC26900003", statute="999.999", statute_desc="UNKNOWN")),
        ("missing_id", variant(None)),
        ("duplicate_id", {**dup, "properties": {**dup["properties"], "disposition": "Inactive",
                                                "synopsis": "Supplemental re-export."}}),
    ]  # fmt: skip
    out = _insert(
        feats, [(k, {**f, "id_": f["properties"]["incident_number"]}) for k, f in bad],
        "clackmerco", "id_",
    )  # fmt: skip
    for row in out.rows:
        row.pop("id_", None)
    doc = {
        "type": "FeatureCollection",
        "name": "clackmer_sheriff_cad",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2913"}},
        "features": out.rows,
    }
    # One feature per line: readable in a text editor, still one JSON document.
    head = json.dumps({k: v for k, v in doc.items() if k != "features"}, ensure_ascii=False)
    body = ",\n".join(json.dumps(f, ensure_ascii=False) for f in out.rows)
    text = head[:-1] + ', "features": [\n' + body + "\n]}\n"
    path.write_bytes(text.encode("utf-8"))
    return ExportFile("clackmerco", path, len(out.rows), ids, out.planted)


def _ms(t: datetime) -> int:
    return round(t.astimezone(UTC).timestamp() * 1000)


def _transit_record(e: Event, evt_id: str) -> dict[str, Any]:
    code, text = METRO_CODES[e.kind]
    station = next(s for s in region.stations() if s.name == e.station)
    lon, lat = region.to_lonlat(station.x, station.y)
    park_ride = e.kind in ("theft_from_vehicle", "vehicle_theft")
    loc = "PARK_AND_RIDE" if park_ride else ("TRAIN" if e.on_train else "PLATFORM")
    disposition = "cited" if e.kind == "fare_evasion" else e.status
    return {
        "evt_id": evt_id,
        "ts_ms": _ms(e.occurred_from),
        "reported_ms": _ms(e.reported_at),
        "code": code,
        "code_text": text,
        "line": e.line,
        "station": f"{e.station} Station",
        "loc_type": loc,
        "stop_lat": round(lat, 6),
        "stop_lon": round(lon, 6),
        "minor_involved": int("juvenile" in e.sensitive),
        "disposition": disposition,
        "notes": e.narrative,
    }


def _write_transit(events: list[Event], path: Path) -> ExportFile:
    ids = _ids(events, lambda t, n: f"MTP-{t:%Y}-{n:05d}")
    recs = [_transit_record(e, ids[e.key]) for e in events]
    base = recs[len(recs) // 3]
    bad: list[tuple[str, dict[str, Any]]] = [
        ("bad_date", {**base, "evt_id": "MTP-2026-90001", "ts_ms": "13/45/2026 25:00"}),
        ("unknown_code", {**base, "evt_id": "MTP-2026-90003", "code": "ZZZZ",
                          "code_text": "Unknown"}),
        ("missing_id", {**base, "evt_id": None}),
        ("duplicate_id", {**recs[len(recs) // 2], "disposition": "closed"}),
        ("truncated_line", {**base, "evt_id": "MTP-2026-90005", "_truncate": True}),
    ]  # fmt: skip
    out = _insert(recs, bad, "metrotransit", "evt_id")
    lines = []
    for rec in out.rows:
        line = json.dumps({k: v for k, v in rec.items() if k != "_truncate"}, ensure_ascii=False)
        lines.append(line[: len(line) // 2] if rec.get("_truncate") else line)
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return ExportFile("metrotransit", path, len(out.rows), ids, out.planted)
