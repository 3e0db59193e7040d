"""Build the demo database: generate the region, register agencies, ingest every export.

The demo goes through exactly the steps a real deployment takes, one function per
stage, so later stages (demo accounts, sharing agreements) slot in beside them:

1. :func:`write_region_files` - simulate the region and write each agency's export,
   its jurisdiction boundary and a ground-truth manifest into a folder;
2. :func:`register_demo_agencies` - register the agencies and load their boundaries
   (and the city's and county's address points, for the public map's address lookup);
3. :func:`ingest_demo_exports` - ingest each export through its source profile;
4. :func:`crossbeat.demo.accounts.demo_accounts` - a user for every agency role in
   every agency and one platform admin (demo only: one published password, secrets
   saved in the demo folder);
5. :func:`crossbeat.sharing.demo.demo_agreements` - the region's task force and
   sharing agreements, each approved by the owner's agency admins (city and county
   share everything with each other, transit shares with both at block precision
   after 24 hours, all share with the public).

:func:`build_demo` runs them in order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crossbeat.agencies import load_boundaries, register_agency
from crossbeat.areas import add_layer
from crossbeat.demo import region
from crossbeat.demo.accounts import PREFIXES, demo_accounts, demo_admins
from crossbeat.demo.exports import FILES, ExportFile, write_exports
from crossbeat.demo.generate import (
    TIMEZONE,
    Simulation,
    period_ending,
    report_deadline,
    simulate,
)
from crossbeat.gazetteer import store_addresses
from crossbeat.ingest.pipeline import IngestSummary, ingest_files
from crossbeat.ingest.profile import Profile, load_profile
from crossbeat.model import Agency
from crossbeat.sharing.agreements import list_agreements
from crossbeat.sharing.demo import demo_agreements
from crossbeat.store import Store, open_store
from crossbeat.store.base import close_all
from crossbeat.vault.kek import Kek, read_kek_file, resolve_kek, write_kek_file

#: File name of the demo database inside the demo folder.
DEMO_DB = "crossbeat-demo.db"
#: Development key file of a demo built into a database other than SQLite.
DEMO_KEK = "crossbeat-demo.kek"
#: Audit signing key (Ed25519, PEM) of the demo server: it signs the demo's audit
#: checkpoints. Demo only: a deployment keeps its key apart from the data.
DEMO_AUDIT_KEY = "crossbeat-demo-audit.pem"
#: File name of the ground-truth manifest inside the demo folder.
MANIFEST = "demo-manifest.json"
#: Source profile (in ``crossbeat/demo/profiles``) of each demo agency's export.
PROFILES = {
    "rivertonpd": "riverton-pd.toml",
    "clackmerco": "clackmer-sheriff.toml",
    "metrotransit": "metro-transit.toml",
}


@dataclass
class DemoFiles:
    """The files of a generated demo region."""

    out_dir: Path
    exports: dict[str, ExportFile]
    boundaries: dict[str, Path]
    manifest: Path
    #: Area layer files by ``AGENCY/LAYER`` (the city's police districts).
    areas: dict[str, Path] = field(default_factory=dict)
    #: Address files (OpenAddresses' CSV columns) by territorial agency.
    addresses: dict[str, Path] = field(default_factory=dict)


@dataclass
class DemoSummary:
    """What :func:`build_demo` built."""

    db_url: str
    out_dir: Path
    seed: int
    size: float
    files: DemoFiles
    ingests: dict[str, IngestSummary] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: settings, files and per-agency ingest totals."""
        return {
            "db_url": self.db_url,
            "out_dir": str(self.out_dir),
            "seed": self.seed,
            "size": self.size,
            "manifest": str(self.files.manifest),
            "agencies": {
                agency: {"file": str(self.files.exports[agency].path), **s.totals.as_dict()}
                for agency, s in self.ingests.items()
            },
        }


def demo_db_url(out_dir: Path) -> str:
    """Return the SQLite URL of the demo database inside a demo folder."""
    return f"sqlite:///{(out_dir / DEMO_DB).resolve()}"


def demo_audit_key(out_dir: Path) -> Path:
    """Return the demo's audit signing key file, creating it on first use.

    The demo server signs audit checkpoints with it (``audit_key_file``), so that
    ``crossbeat audit verify`` has signed heads to check against. Its public key is
    written beside it (``.pub``).
    """
    from crossbeat.audit import generate_signing_key, write_signing_key

    path = out_dir / DEMO_AUDIT_KEY
    if not path.is_file():
        out_dir.mkdir(parents=True, exist_ok=True)
        write_signing_key(generate_signing_key(), path)
    return path


def demo_is_built(out_dir: Path) -> bool:
    """Return whether the demo folder holds a demo database with an ingested export.

    A database without a completed ingest (left by an interrupted build) does not
    count, so the next ``crossbeat demo`` builds it again. Only the ingest's own
    bookkeeping is read, never the incidents (which are read through the policy).
    """
    from sqlalchemy import func, select

    from crossbeat.store.schema import ingest_batches

    if not (out_dir / DEMO_DB).is_file():
        return False
    store = open_store(demo_db_url(out_dir))
    done = select(func.count()).where(ingest_batches.c.status == "complete")
    with store.connect() as conn:
        return int(conn.execute(done).scalar_one()) > 0


def demo_default_end(now: datetime | None = None) -> date:
    """Return the last day of a demo built now: yesterday in the demo's time zone.

    The maps' "last 30 days" then hold a month of incidents on the day the demo is built.

    Examples
    --------
    >>> from datetime import UTC
    >>> demo_default_end(datetime(2026, 12, 7, 9, 30, tzinfo=UTC))
    datetime.date(2026, 12, 6)
    """
    when = now or datetime.now(UTC)
    return when.astimezone(ZoneInfo(TIMEZONE)).date() - timedelta(days=1)


def demo_last_day(out_dir: Path) -> str | None:
    """Return the last day of a built demo's incidents (from its manifest), or None."""
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        return str(data["period"]["last_day"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_demo(out_dir: Path) -> None:
    """Delete the demo database and generated files from a demo folder.

    Only files this module writes are removed; anything else in the folder is left.
    """
    close_all()
    names = [DEMO_DB, f"{DEMO_DB}-wal", f"{DEMO_DB}-shm", MANIFEST, *FILES.values()]
    # The audit heads file and server key beside the database belong to its log.
    names += [f"{DEMO_DB}.audit-heads.jsonl", f"{DEMO_DB}.audit-key", f"{DEMO_DB}.audit-key.pub"]
    for name in names:
        (out_dir / name).unlink(missing_ok=True)
    for agency in region.agencies():
        (out_dir / "boundaries" / f"{agency.id}.geojson").unlink(missing_ok=True)
        (out_dir / "addresses" / f"{agency.id}.csv").unlink(missing_ok=True)
    for folder in DEMO_SOURCE_FOLDERS:
        for name in _shipped(folder):
            (out_dir / folder / name).unlink(missing_ok=True)


#: Folders of ``crossbeat/demo`` copied into the demo folder: the demo agencies' source
#: profiles and offence crosswalks, as an agency would keep its own.
DEMO_SOURCE_FOLDERS = ("profiles", "crosswalks")


def _shipped(folder: str) -> list[str]:
    root = resources.files("crossbeat.demo") / folder
    return sorted(p.name for p in root.iterdir() if p.name.endswith(".toml"))


def copy_demo_sources(out_dir: Path) -> Path:
    """Copy the demo's source profiles and crosswalks into ``out_dir/profiles`` and
    ``out_dir/crosswalks`` (the profiles find the crosswalks there, as in the package).

    Returns
    -------
    Path
        The crosswalk folder, for ``crossbeat taxonomy crosswalks --dir``.
    """
    for folder in DEMO_SOURCE_FOLDERS:
        target = out_dir / folder
        target.mkdir(parents=True, exist_ok=True)
        for name in _shipped(folder):
            data = (resources.files("crossbeat.demo") / folder / name).read_bytes()
            (target / name).write_bytes(data)
    return out_dir / "crosswalks"


def demo_profile(agency_id: str) -> Profile:
    """Load the shipped source profile of a demo agency's export.

    Parameters
    ----------
    agency_id
        ``rivertonpd``, ``clackmerco`` or ``metrotransit``.
    """
    try:
        name = PROFILES[agency_id]
    except KeyError:
        known = ", ".join(PROFILES)
        raise KeyError(f"no demo profile for {agency_id!r} (known: {known})") from None
    with resources.as_file(resources.files("crossbeat.demo") / "profiles" / name) as path:
        return load_profile(path)


def write_region_files(
    out_dir: Path, *, seed: int = 7, size: float = 1.0, end: date | None = None
) -> DemoFiles:
    """Simulate the demo region and write its exports, boundaries and manifest.

    Parameters
    ----------
    out_dir
        Folder to write into (created if missing); existing demo files are replaced.
    seed
        Random seed: the same seed and size give byte-identical files.
    size
        Scale of the incident counts (1.0 ≈ 10,000 incidents).
    end
        Last local day of the year of incidents, nothing reported after it (default:
        the fixed year from 2025-11-01, :data:`crossbeat.demo.generate.DEFAULT_START`).
        The same seed, size and end give the same files.

    Returns
    -------
    DemoFiles
        Paths of everything written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if end is None:
        sim = simulate(seed, size)
    else:
        sim = simulate(seed, size, start=period_ending(end), reported_by=report_deadline(end))
    exports = write_exports(sim, out_dir)
    boundaries = {}
    (out_dir / "boundaries").mkdir(exist_ok=True)
    for agency in region.agencies():
        path = out_dir / "boundaries" / f"{agency.id}.geojson"
        text = json.dumps(region.jurisdiction_geojson(agency.id), ensure_ascii=False)
        path.write_bytes((text + "\n").encode("utf-8"))
        boundaries[agency.id] = path
    agency_id, layer = region.DISTRICTS
    districts = out_dir / "boundaries" / f"{agency_id}-{layer}.geojson"
    text = json.dumps(region.district_geojson(), ensure_ascii=False)
    districts.write_bytes((text + "\n").encode("utf-8"))
    manifest = out_dir / MANIFEST
    text = json.dumps(manifest_data(sim, exports), indent=1, ensure_ascii=False)
    manifest.write_bytes((text + "\n").encode("utf-8"))
    areas = {f"{agency_id}/{layer}": districts}
    return DemoFiles(out_dir, exports, boundaries, manifest, areas, write_address_files(out_dir))


def write_address_files(out_dir: Path) -> dict[str, Path]:
    """Write the city's and the county's address points as OpenAddresses CSV files."""
    (out_dir / "addresses").mkdir(exist_ok=True)
    columns = ["LON", "LAT", "NUMBER", "STREET", "UNIT", "CITY", "DISTRICT", "REGION", "POSTCODE"]
    by_agency: dict[str, list[str]] = {}
    for p in region.address_points():
        line = f"{p['lon']},{p['lat']},{p['number']},{p['street']},,{p['city']},,OR,"
        by_agency.setdefault(p["agency"], []).append(line)
    paths = {}
    for agency_id, lines in sorted(by_agency.items()):
        path = out_dir / "addresses" / f"{agency_id}.csv"
        path.write_bytes(("\n".join([",".join(columns), *lines]) + "\n").encode("utf-8"))
        paths[agency_id] = path
    return paths


def register_demo_agencies(store: Store, boundaries: Mapping[str, Path]) -> None:
    """Register the demo agencies and load their jurisdiction boundaries.

    Parameters
    ----------
    store
        The open store.
    boundaries
        Agency id to GeoJSON boundary file (WGS84), as written by
        :func:`write_region_files`.
    """
    for agency in region.agencies():
        register_agency(
            store, Agency(id=agency.id, name=agency.name, ori=agency.ori, timezone=TIMEZONE)
        )
        load_boundaries(store, agency.id, boundaries[agency.id])


def ingest_demo_exports(
    store: Store, exports: Mapping[str, ExportFile], *, progress: bool = False
) -> dict[str, IngestSummary]:
    """Ingest each demo agency's export through its shipped source profile.

    Returns
    -------
    dict
        The ingest summary of each agency.
    """
    return {
        agency: ingest_files(store, agency, demo_profile(agency), [export.path], progress=progress)
        for agency, export in exports.items()
    }


def build_demo(
    db_url: str,
    out_dir: Path,
    *,
    seed: int = 7,
    size: float = 1.0,
    progress: bool = False,
    kek: Kek | None = None,
    end: date | None = None,
) -> DemoSummary:
    """Generate the demo region and load it into a database.

    Parameters
    ----------
    db_url
        Database to build into (created and migrated if needed), e.g.
        ``sqlite:///demo-data/crossbeat-demo.db``.
    out_dir
        Folder for the generated export files, boundaries and manifest.
    seed
        Random seed of the region.
    size
        Scale of the incident counts (1.0 ≈ 10,000 incidents; tests use 0.05).
    progress
        Show ingest progress bars on a terminal.
    kek
        Key-encryption key of the personal data (the configured one); by default
        :func:`demo_kek`.
    end
        Last local day of the year of incidents (``crossbeat demo``: yesterday, so that
        "the last 30 days" of the maps hold data); default the fixed year of
        :func:`write_region_files`.

    Returns
    -------
    DemoSummary
        The files written and each agency's ingest summary.
    """
    files = write_region_files(out_dir, seed=seed, size=size, end=end)
    copy_demo_sources(out_dir)
    store = open_store(db_url, kek=kek or demo_kek(db_url, out_dir))
    register_demo_agencies(store, files.boundaries)
    for agency_id, path in files.addresses.items():
        store_addresses(store, agency_id, path, by="demo")
    for key, path in files.areas.items():
        agency_id, layer = key.split("/")
        add_layer(
            store, agency_id, layer, path, name_field="DISTRICT", kind="district", replace=True
        )
    ingests = ingest_demo_exports(store, files.exports, progress=progress)
    demo_accounts(store, out_dir)
    if not list_agreements(store):
        demo_agreements(store, {agency: demo_admins(agency) for agency in PREFIXES})
    return DemoSummary(db_url, out_dir, seed, size, files, ingests)


def demo_kek(db_url: str, out_dir: Path) -> Kek:
    """Return the demo's development KEK, creating its key file on first use.

    A SQLite database uses ``<db>.kek`` next to it, the file the CLI uses for that
    database when no KEK is configured; any other database uses
    ``crossbeat-demo.kek`` in the demo folder (set ``CROSSBEAT_KEK_FILE`` to it to
    read the demo's personal data from the CLI).
    """
    found = resolve_kek(db_url, required=False)
    if found.kek is not None:
        return found.kek
    path = out_dir / DEMO_KEK
    try:
        return write_kek_file(path)
    except FileExistsError:
        return read_kek_file(path)


def manifest_data(sim: Simulation, exports: Mapping[str, ExportFile]) -> dict[str, Any]:
    """Return the ground truth planted in the demo region, naming records by source id.

    Later analyses and tests check themselves against it: the hotspots, the near-repeat
    clusters, the cross-border robbery series, the double-reported incidents, the
    miscoded sensitive records and the malformed rows.
    """
    ids = {key: [agency, sid] for agency, ex in exports.items() for key, sid in ex.ids.items()}

    def groups(prefix: str) -> dict[str, list[list[str]]]:
        out: dict[str, list[list[str]]] = {}
        for e in sim.tagged(prefix):
            for tag in e.tags:
                if tag.startswith(prefix):
                    out.setdefault(tag.split(":", 1)[1], []).append(ids[e.key])
        return {k: sorted(v) for k, v in sorted(out.items())}

    end = sim.start + timedelta(days=sim.days - 1)
    return {
        "seed": sim.seed,
        "size": sim.size,
        "period": {"first_day": sim.start.isoformat(), "last_day": end.isoformat()},
        "timezone": TIMEZONE,
        "files": {
            agency: {"file": FILES[agency], "profile": PROFILES[agency], "rows": ex.rows}
            for agency, ex in exports.items()
        },
        "hotspots": [
            {
                "name": h.name,
                "lon_lat": [round(c, 6) for c in region.to_lonlat(h.x, h.y)],
                "sigma_m": h.sigma,
                "kinds": list(h.kinds),
            }
            for h in region.HOTSPOTS
        ],
        "near_repeat_clusters": groups("near_repeat:"),
        "robbery_series": groups("series:"),
        "double_reported": groups("duplicate:"),
        "miscoded_sensitive": [
            {"record": ids[e.key], "true_kind": e.kind, "recorded_as": e.recorded_kind}
            for e in sim.tagged("miscoded")
        ],
        # Names that occur only in personal fields (victim, suspect, narrative): they
        # must never be readable in the database file once personal data is encrypted.
        "personal_data_canaries": sorted(
            {e.victim for e in sim.events if e.victim and e.agency == "rivertonpd"}
        )[:20],
        "malformed_rows": [
            {"agency": p.agency, "kind": p.kind, "row": p.row, "source_id": p.source_id}
            for ex in exports.values()
            for p in ex.planted
        ],
    }
