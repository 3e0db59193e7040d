"""Sensitivity flags materialised with the version of the rules that derived them (issue #8).

Every read protects a record by the flags :func:`crossbeat.sharing.public.incident_flags`
re-derives (stored flags, the flags of every NIBRS code, keywords and the narrative
lexicon on local codes, descriptions and kept attributes) plus the flags the *current*
crosswalk of each offence's scheme gives its local code (:meth:`SensitivityRules.flags`).
Computing them per record at read time is what made a city-wide count take minutes, so
they are stored on each incident:

* ``incidents.sens_served``: the flags as a bit mask (:data:`FLAG_BITS`);
* ``incidents.sens_rules``: the key of the rules that derived them
  (:attr:`SensitivityRules.key`: the keyword and lexicon version and content, and the
  version and content of every crosswalk in use).

**A stale row is never served.** Every read plans through
:func:`crossbeat.sharing.reads.prepare`, which calls :func:`refresh` for the owners it
may read, in the read's own transaction and before any incident is read: the rows of
those owners whose key is not the current one (new or changed records, whose key the
write path leaves empty, and every row after a crosswalk, the keyword list or the
lexicon changed) are re-derived first. Finding that nothing is stale costs three index
seeks per owner (``ix_incidents_agency_sens_rules``). ``crossbeat ingest`` refreshes its
agency's rows when it ends, so readers rarely pay for it.

The **public policy** is not materialised into rows: its knobs (which flags and offences
are never published, precision, delay...) are read from the store by every read plan
and compiled into that read's SQL against these flags, so a change applies to the first
read that commits after it, with nothing to re-derive.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)

from crossbeat.model import Sensitivity
from crossbeat.sharing.public import FLAG_COLUMNS, Row, incident_flags
from crossbeat.store import Store
from crossbeat.store.schema import agencies, crosswalk_sources, incident_offences, incidents
from crossbeat.store.spatial import refresh_statistics
from crossbeat.taxonomy.crosswalk import Crosswalk, available_crosswalks, load_crosswalk
from crossbeat.taxonomy.nibrs import TaxonomyError, nibrs_offences
from crossbeat.taxonomy.sensitivity import rules_fingerprint

#: The bit of each flag in ``incidents.sens_served``.
FLAG_BITS: Mapping[Sensitivity, int] = {flag: 1 << i for i, flag in enumerate(FLAG_COLUMNS)}

#: Rows re-derived per statement.
BATCH = 2000


def mask_of(flags: Iterable[Sensitivity]) -> int:
    """Return the bit mask of a set of flags.

    Examples
    --------
    >>> mask_of([Sensitivity.SEXUAL_OFFENCE, Sensitivity.INFORMANT])
    17
    """
    out = 0
    for flag in flags:
        out |= FLAG_BITS[flag]
    return out


@lru_cache(maxsize=256)
def flags_of(mask: int) -> frozenset[Sensitivity]:
    """Return the flags of a bit mask (the inverse of :func:`mask_of`).

    Examples
    --------
    >>> sorted(f.value for f in flags_of(17))
    ['informant', 'sexual_offence']
    """
    return frozenset(flag for flag, bit in FLAG_BITS.items() if mask & bit)


def hides_sql(flags: Iterable[Sensitivity]) -> ColumnElement[bool]:
    """Return SQL for "the record carries none of these flags", on the materialised mask.

    A row not yet derived (``sens_served`` NULL) counts as carrying every flag: it is
    hidden, never shown (:func:`refresh` runs first, so this is only a safety net).
    """
    mask = mask_of(flags)
    served = func.coalesce(incidents.c.sens_served, literal(-1))
    return served.op("&")(literal(mask)) == 0


@dataclass(frozen=True)
class SensitivityRules:
    """The rules that derive the served flags, and their key."""

    key: str
    crosswalks: Mapping[str, Crosswalk]

    def offence_flags(self, scheme: str | None, local: str | None) -> frozenset[Sensitivity]:
        """Return the flags the current crosswalk of ``scheme`` gives a local code."""
        cw = self.crosswalks.get(scheme or "")
        if cw is None or not local:
            return frozenset()
        return _rule_flags(cw, local)

    def flags(self, row: Row, offences: Sequence[Row]) -> frozenset[Sensitivity]:
        """Return every flag a record is protected by (what ``sens_served`` stores).

        :func:`~crossbeat.sharing.public.incident_flags`, plus the flags the current
        crosswalk gives each offence's local code.
        """
        found = set(incident_flags(row, offences))
        for o in offences:
            found |= self.offence_flags(o.get("scheme"), o.get("local_code"))
        return frozenset(found)


@lru_cache(maxsize=65536)
def _rule_flags(cw: Crosswalk, local: str) -> frozenset[Sensitivity]:
    rule = cw.lookup(local)
    if rule is None:
        return frozenset()
    if rule.not_a_crime:
        return rule.sensitivity
    entry = nibrs_offences().get(rule.nibrs)
    return rule.sensitivity | (entry.sensitivity if entry else frozenset())


#: Built once: every read (and every public cache look-up) asks.
_SOURCES = select(crosswalk_sources.c.scheme, crosswalk_sources.c.folder)


def current_rules(
    conn: Connection, sources: Iterable[tuple[str, str]] | None = None
) -> SensitivityRules:
    """Return the sensitivity rules in force now and their key.

    The crosswalks are the shipped ones and those of the folders the ingest registered
    (``crosswalk_sources``, or ``sources``: its ``(scheme, folder)`` rows as the caller
    read them in this transaction, :func:`crossbeat.sharing.stamp.read_stamp`); each
    file is re-read when it changes on disk (its key holds the file's content hash),
    the keyword list and lexicon when :func:`crossbeat.taxonomy.sensitivity.reload_rules`
    is called.
    """
    rows = conn.execute(_SOURCES).all() if sources is None else sources
    folders: dict[str, str] = dict(rows)
    files: dict[str, tuple[Path, tuple[Path, ...]]] = {
        scheme: (path, ()) for scheme, path in available_crosswalks().items()
    }
    for scheme, folder in folders.items():
        dirs = (Path(folder),)
        found = available_crosswalks(dirs).get(scheme)
        if found is not None:
            files[scheme] = (found, dirs)
        else:
            files[scheme] = (Path(folder) / f"{scheme}.toml", dirs)
    stamp = tuple(sorted((scheme, *_stat(path), dirs) for scheme, (path, dirs) in files.items()))
    return _rules_for(rules_fingerprint(), stamp)


def _stat(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _rules_for(
    words: str, stamp: tuple[tuple[str, str, int, int, tuple[Path, ...]], ...]
) -> SensitivityRules:
    digest = hashlib.sha256(words.encode())
    crosswalks: dict[str, Crosswalk] = {}
    for scheme, path, _mtime, size, dirs in stamp:
        try:
            cw = load_crosswalk(scheme, dirs)
            content = Path(path).read_bytes()
        except (OSError, TaxonomyError):
            # A missing or broken file adds no flags (the flags stored at ingest stay);
            # its fixing changes the key, so its flags are derived then.
            digest.update(f"{scheme}:unavailable:{size}".encode())
            continue
        crosswalks[scheme] = cw
        digest.update(f"{scheme}:{cw.version}:".encode() + hashlib.sha256(content).digest())
    return SensitivityRules(digest.hexdigest()[:40], crosswalks)


def _stale(key: str) -> ColumnElement[bool]:
    c = incidents.c.sens_rules
    return or_(c.is_(None), c < key, c > key)


def stale_owners(conn: Connection, owners: Iterable[str], key: str) -> list[str]:
    """Return the owners with at least one row not derived under ``key``.

    Three index seeks per owner (``ix_incidents_agency_sens_rules``): a NULL key, a key
    sorting before and one sorting after the current one; all owners in one statement
    (one round trip per read, however many owners it may see).
    """
    wanted = tuple(sorted(set(owners)))
    if not wanted:
        return []
    found = conn.execute(_stale_probe(wanted), {"key": key}).one()
    return [owner for owner, stale in zip(wanted, found, strict=True) if stale]


@lru_cache(maxsize=256)
def _stale_probe(owners: tuple[str, ...]) -> Select[Any]:
    """Return :func:`stale_owners`' statement for these owners, the key a parameter.

    Built once per set of owners (a read runs it before every plan; building its three
    subqueries per owner took longer than running them).
    """
    c = incidents.c
    key = bindparam("key", type_=c.sens_rules.type)
    columns: list[Any] = []
    for i, owner in enumerate(owners):
        mine = c.agency_id == owner
        probes = [
            exists(select(c.id).where(mine, c.sens_rules.is_(None))),
            exists(select(c.id).where(mine, c.sens_rules < key)),
            exists(select(c.id).where(mine, c.sens_rules > key)),
        ]
        columns.append(or_(*probes).label(f"o{i}"))
    return select(*columns)


def refresh(
    conn: Connection,
    owners: Iterable[str] | None = None,
    *,
    sources: Iterable[tuple[str, str]] | None = None,
    rules: SensitivityRules | None = None,
) -> int:
    """Re-derive the served flags of every row not derived under the current rules.

    Parameters
    ----------
    conn
        A connection in the caller's transaction (a read's, before it reads incidents).
    owners
        The owner agencies whose rows to check (default: every agency with incidents).
    sources
        The registered crosswalk folders as read in this transaction (default: read
        here), as for :func:`current_rules`.
    rules
        The current rules, when the caller has them from :func:`current_rules` in this
        transaction (then ``sources`` is not read).

    Returns
    -------
    int
        How many rows were re-derived (0 when nothing was stale).
    """
    rules = rules or current_rules(conn, sources)
    if owners is None:
        owners = conn.execute(select(incidents.c.agency_id).distinct()).scalars().all()
    done = 0
    for owner in stale_owners(conn, owners, rules.key):
        done += _rederive(conn, owner, rules)
    return done


def refresh_flags(store: Store, owners: Iterable[str] | None = None) -> int:
    """Re-derive the stale served flags of these owners (default: all) in one transaction.

    ``crossbeat ingest`` calls it when it ends, so that readers rarely find stale rows;
    it then refreshes the planner statistics
    (:func:`~crossbeat.store.spatial.refresh_statistics`: on SQLite after any change, on
    PostgreSQL after a large one).

    Returns
    -------
    int
        How many rows were re-derived.
    """
    with store.begin() as conn:
        done = refresh(conn, owners)
        if done:
            refresh_statistics(conn, done)  # the planner's view of the grown table
        return done


def local_hour(when: datetime | None, zone: ZoneInfo) -> str | None:
    """Return ``occurred_local``: a stored UTC time in a zone, as ``YYYY-MM-DDTHH``.

    Examples
    --------
    >>> local_hour(datetime(2024, 7, 1, 3, 30, tzinfo=UTC), ZoneInfo("America/Toronto"))
    '2024-06-30T23'
    """
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(zone).strftime("%Y-%m-%dT%H")


def _rederive(conn: Connection, owner: str, rules: SensitivityRules) -> int:
    c = incidents.c
    tz = conn.execute(select(agencies.c.timezone).where(agencies.c.id == owner)).scalar()
    zone = ZoneInfo(tz or "UTC")
    cols = [
        c.id,
        c.occurred_from,
        c.nibrs_code,
        c.offence_local_code,
        c.attributes,
        *(c[n] for n in FLAG_COLUMNS.values()),
    ]
    stmt = (
        update(incidents)
        .where(incidents.c.id == bindparam("b_id"))
        .values(
            sens_served=bindparam("b_mask"),
            sens_rules=rules.key,
            occurred_local=bindparam("b_local"),
        )
    )
    done = 0
    # Each of the three stale ranges of the (agency_id, sens_rules) index is read from
    # its start: the rows just re-derived leave it, so no row is visited twice and no
    # batch sorts the rest. Rows are updated in id order (two readers re-deriving the
    # same rows on PostgreSQL wait for each other instead of deadlocking).
    key = rules.key
    for stale in (c.sens_rules.is_(None), c.sens_rules < key, c.sens_rules > key):
        while True:
            q = select(*cols).where(c.agency_id == owner, stale).limit(BATCH)
            rows = sorted(conn.execute(q).mappings().all(), key=lambda r: r["id"])
            if not rows:
                break
            offences = _offences(conn, [r["id"] for r in rows])
            values = [
                {
                    "b_id": r["id"],
                    "b_mask": mask_of(rules.flags(r, offences.get(r["id"], []))),
                    "b_local": local_hour(r["occurred_from"], zone),
                }
                for r in rows
            ]
            conn.execute(stmt, values)
            done += len(values)
    return done


def _offences(conn: Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    o = incident_offences.c
    q = (
        select(o.incident_id, o.nibrs_code, o.local_code, o.local_description, o.scheme)
        .where(o.incident_id.in_(ids))
        .order_by(o.incident_id, o.seq)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(q).mappings():
        out.setdefault(row["incident_id"], []).append(dict(row))
    return out


__all__ = [
    "FLAG_BITS",
    "SensitivityRules",
    "current_rules",
    "flags_of",
    "hides_sql",
    "local_hour",
    "mask_of",
    "refresh",
    "refresh_flags",
    "stale_owners",
]
