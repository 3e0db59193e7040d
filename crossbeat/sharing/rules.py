"""One grant, applied: which records it covers (SQL and Python) and how it shows them.

A :class:`Rule` is what one source of access (the viewer's own agency, one agreement,
or the public release) turns into for one owner. The same conditions are written twice
on purpose: as a SQL filter so the database does the bulk of the work, and as a Python
check that every fetched record must pass again (defence in depth, and the only place
the keyword re-check for miscoded records can run). Both are pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    bindparam,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression

from crossbeat.model import Sensitivity, TimePrecision
from crossbeat.sharing.flags import hides_sql
from crossbeat.sharing.public import FLAG_COLUMNS, AnchorIndex, Row
from crossbeat.sharing.scope import (
    ALWAYS_FIELDS,
    CALL_FIELD,
    PERSONAL_FIELDS,
    RECORD_FIELDS,
    Precision,
    TimeResolution,
    format_delay,
    is_call_token,
    offence_matches,
    offence_name,
    sensitive_codes,
)
from crossbeat.store.schema import area_layers, areas, incident_areas, incident_offences, incidents

#: Fields only the owner agency sees of its records (never shareable by an agreement):
#: ``source_id`` is the agency's own record id, the one ``withdraw`` takes.
OWN_FIELDS: tuple[str, ...] = ("source_id",)

_TIME_ORDER = [p.value for p in TimePrecision]
_TIME_COLUMNS = ("occurred_from", "occurred_to", "reported_at")


@dataclass(frozen=True)
class Rule:
    """How one grant exposes one owner's records to the viewer.

    Parameters
    ----------
    owner
        The agency whose records these are.
    via
        ``own``, ``agency``, ``group:<id>`` or ``public``.
    agreement_id
        The agreement (None for the owner's own data).
    offences
        Offence tokens covered (None: every offence), matched on the primary offence.
    excluded_flags
        Sensitivity flags whose incidents are left out.
    excluded_offences
        Offence tokens whose incidents are left out (any offence of the incident).
    fields
        Fields the rule shows (always including ``id`` and ``agency_id``).
    precision, time_resolution, delay
        Spatial precision, time resolution and publication delay.
    personal
        Whether personal data may be shown (already checked against role and purpose).
    timezone
        The owner's IANA time zone (for coarsening times to hours, days, months).
    threshold
        Smallest publishable aggregate count (public rules only).
    calls
        Call-for-service categories covered: None for every one, empty for none (the
        default: calls are shared only when granted by name, never by ``offences``).
    publishes_records
        Whether the owner's public release publishes records (public rules only;
        False: counts only, see :mod:`crossbeat.sharing.release`).
    noise_epsilon, noise_budget
        Differentially private public counts: ε per release and per month (public rules
        of owners that chose noise, see :mod:`crossbeat.sharing.noise`).
    """

    owner: str
    via: str
    agreement_id: str | None
    offences: frozenset[str] | None
    excluded_flags: frozenset[Sensitivity]
    excluded_offences: frozenset[str]
    fields: frozenset[str]
    precision: Precision
    time_resolution: TimeResolution
    delay: timedelta
    personal: bool
    timezone: str
    threshold: int | None = None
    calls: frozenset[str] | None = frozenset()

    def covers_call(self, category: str) -> bool:
        """Return whether this rule shares calls for service of a category."""
        return self.calls is None or category in self.calls

    publishes_records: bool = True
    noise_epsilon: float | None = None
    noise_budget: float | None = None

    # -- which records ---------------------------------------------------------------
    def sql(
        self, now: datetime, changed_since: datetime | None = None, *, materialised: bool = False
    ) -> ColumnElement[bool]:
        """Return the SQL condition on ``incidents`` for the records this rule covers.

        With ``materialised``, the sensitivity exclusions are one test of the flags
        every read keeps derived under the current rules (``incidents.sens_served``,
        :mod:`crossbeat.sharing.flags`): stored flags, NIBRS codes, the current
        crosswalks and the keyword re-check. Without it, the stored flags and the
        NIBRS codes only (the per-record path re-checks keywords in Python).
        """
        conds: list[ColumnElement[bool]] = [
            _covered_sql(
                self.owner,
                self.offences,
                self.calls,
                self.excluded_offences,
                self.excluded_flags,
                materialised,
            )
        ]
        if self.delay:
            conds.append(_released_by_sql(now - self.delay))
        if changed_since is not None:
            conds.append(
                or_(
                    incidents.c.updated_at > changed_since,
                    not_(_released_by_sql(changed_since - self.delay)),
                )
            )
        return conds[0] if len(conds) == 1 else and_(*conds)

    def check(
        self,
        row: Row,
        offences: Sequence[Row],
        flags: frozenset[Sensitivity],
        now: datetime,
    ) -> str | None:
        """Return why this rule does not cover a record, or None when it does."""
        if row["agency_id"] != self.owner:
            return f"owned by {row['agency_id']}, not {self.owner}"
        code = row.get("nibrs_code")
        call = row.get("call_category")
        if call is not None:
            if not self.covers_call(call):
                return f"call for service {call} is outside what is shared (calls need a grant)"
        elif not offence_matches(
            self.offences, code, row.get("crime_against"), row.get("ucr_part1")
        ):
            return f"offence {code or 'unmapped'} is outside the offences shared"
        if self.excluded_offences and any(
            _excluded(self.excluded_offences, o) for o in [row, *offences]
        ):
            return "offence suppressed by the public policy"
        hidden = flags & self.excluded_flags
        if hidden:
            return "sensitive: " + ", ".join(sorted(f.value for f in hidden))
        if self.delay:
            at = release_time(row) + self.delay
            if at > now:
                return f"delayed until {at.isoformat()} ({format_delay(self.delay)} delay)"
        return None

    def changed(self, row: Row, since: datetime) -> bool:
        """Return whether a record changed, or became visible, after ``since``."""
        return row["updated_at"] > since or release_time(row) + self.delay > since

    # -- how they look -----------------------------------------------------------------
    def shown_id(self, row: Row) -> str:
        """Return the id this rule shows: the owner's own id, or the public id.

        The stored ``id`` is derived from agency and source id (often a sequential case
        number), so only the owner's own readers see it; partners, groups and the
        public see the random ``public_id`` (issue #7).
        """
        return str(row["id"] if self.via == "own" else row["public_id"])

    def shown_fields(self, wanted: frozenset[str] | None) -> frozenset[str]:
        """Return the fields this rule shows for a request that wants ``wanted``."""
        fields = self.fields if self.personal else self.fields - set(PERSONAL_FIELDS)
        if wanted is not None:
            fields = fields & wanted
        elif self.via == "own":
            fields = fields | set(OWN_FIELDS)
        return fields | set(ALWAYS_FIELDS) | {CALL_FIELD}

    def transform(
        self,
        row: Row,
        offences: Sequence[Row],
        jurisdictions: Sequence[str],
        anchors: AnchorIndex,
        wanted: frozenset[str] | None = None,
        areas: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, Any]:
        """Return the record as this rule shows it (only permitted, generalised fields).

        ``areas`` maps each area layer (``AGENCY/LAYER``) to the names of the
        record's areas in it; only the layers the precision shows are kept
        (:meth:`~crossbeat.sharing.scope.Precision.shows_layer`).
        """
        fields = self.shown_fields(wanted)
        p = self.precision
        values: dict[str, Any] = {
            "id": self.shown_id(row),
            "agency_id": row["agency_id"],
            "nibrs_code": row.get("nibrs_code"),
            "offence_name": offence_name(row.get("nibrs_code")),
            "crime_against": row.get("crime_against"),
            "ucr_part1": row.get("ucr_part1"),
            "offence_local_code": row.get("offence_local_code"),
            "status": row.get("status"),
            "disposition": row.get("disposition"),
            "location_type": row.get("location_type"),
            "jurisdictions": sorted(jurisdictions),
            "areas": {
                key: sorted(names)
                for key, names in sorted((areas or {}).items())
                if self.shows_layer(key)
            },
            "sensitivity": sorted(f.value for f, c in FLAG_COLUMNS.items() if row.get(c)),
            "attributes": row.get("attributes"),
        }
        values["offences"] = [
            self._offence(o, "offence_local_code" in fields)
            for o in offences
            if (
                self.covers_call(o["call_category"])
                if o.get("call_category")
                else offence_matches(
                    self.offences, o.get("nibrs_code"), o.get("crime_against"), o.get("ucr_part1")
                )
            )
        ]
        for name in _TIME_COLUMNS:
            values[name] = coarsen(row.get(name), self.time_resolution, self.timezone)
        values["time_precision"] = coarser_time_precision(
            row.get("time_precision") or TimePrecision.UNKNOWN.value, self.time_resolution
        )
        if p.name == "exact":
            values.update(
                lat=row.get("lat"), lon=row.get("lon"), location_precision=row["location_precision"]
            )
        elif p.has_point and p.resolution is not None and row.get("lat") is not None:
            lat, lon = anchors.anchor(row["lat"], row["lon"], p.resolution)
            values.update(lat=lat, lon=lon, location_precision=p.name)
        else:
            values.update(location_precision=p.name if row.get("lat") is not None else "none")
        if p.name in ("exact", "block"):
            values["block_address"] = row.get("block_address")
        for column in ("h3_7", "h3_9", "h3_11"):
            if p.shows_cell(column):
                values[column] = row.get(column)
        values["source_id"] = row.get("source_id")
        out = {f: values[f] for f in (*RECORD_FIELDS, *OWN_FIELDS) if f in fields and f in values}
        if row.get(CALL_FIELD):
            out[CALL_FIELD] = row[CALL_FIELD]
        return out

    def shows_layer(self, key: str) -> bool:
        """Return whether this rule shows the areas of layer ``key`` (``AGENCY/LAYER``)."""
        return "areas" in self.fields and self.precision.shows_layer(key, self.owner)

    def _offence(self, o: Row, local: bool) -> dict[str, Any]:
        out = {
            "nibrs_code": o.get("nibrs_code"),
            "offence_name": offence_name(o.get("nibrs_code")),
            "crime_against": o.get("crime_against"),
            "ucr_part1": o.get("ucr_part1"),
        }
        if o.get("call_category"):
            out["call_category"] = o["call_category"]
        if local:
            out["local_code"] = o.get("local_code")
        return out

    def describe(self) -> str:
        """Return a one-line summary of the scope (used in decision reasons)."""
        crimes = sorted(t for t in self.offences or () if not is_call_token(t))
        offences = "all offences" if self.offences is None or "all" in crimes else ", ".join(crimes)
        if self.calls is None:
            offences += "; all calls for service"
        elif self.calls:
            offences += "; calls for service " + ", ".join(sorted(self.calls))
        parts = [offences, f"precision {self.precision}", f"time {self.time_resolution}"]
        if self.delay:
            parts.append(f"delay {format_delay(self.delay)}")
        if self.excluded_flags:
            parts.append("without " + ", ".join(sorted(f.value for f in self.excluded_flags)))
        parts.append("with personal data" if self.personal else "no personal data")
        return "; ".join(parts)


@lru_cache(maxsize=1024)
def _covered_sql(
    owner: str,
    offences: frozenset[str] | None,
    calls: frozenset[str] | None,
    excluded_offences: frozenset[str],
    excluded_flags: frozenset[Sensitivity],
    materialised: bool,
) -> ColumnElement[bool]:
    """Return the time-independent part of :meth:`Rule.sql`, built once per grant.

    Building it took milliseconds for a public rule (the offence exclusions and their
    ``EXISTS`` on the offences), and a read builds each rule's condition once for
    itself and once for every later rule of its owner (issue #8). Only the
    publication delay depends on the read's ``now``: :meth:`Rule.sql` adds it as a
    comparison with a bound cutoff. SQL expressions are immutable, so one may serve
    every statement.
    """
    conds: list[ColumnElement[bool]] = [incidents.c.agency_id == owner]
    if offences is not None or calls is not None:
        crimes = true() if offences is None else _matches_sql(offences, incidents.c)
        call = incidents.c.call_category
        if calls is None:
            wanted: ColumnElement[bool] = call.is_not(None)
        elif calls:
            wanted = call.in_(sorted(calls))
        else:
            wanted = false()
        conds.append(or_(and_(call.is_(None), crimes), wanted))
    if excluded_offences:
        conds.append(not_matching_sql(excluded_offences, incidents.c))
        conds.append(
            ~exists(
                select(incident_offences.c.incident_id).where(
                    (incident_offences.c.incident_id == incidents.c.id)
                    & ~not_matching_sql(excluded_offences, incident_offences.c)
                )
            )
        )
    if excluded_flags and materialised:
        conds.append(hides_sql(excluded_flags))
    elif excluded_flags:
        for flag in sorted(excluded_flags):
            conds.append(incidents.c[FLAG_COLUMNS[flag]].is_(false()))
        codes = sorted(sensitive_codes(excluded_flags))
        conds.append(or_(incidents.c.nibrs_code.is_(None), incidents.c.nibrs_code.not_in(codes)))
        conds.append(
            ~exists(
                select(incident_offences.c.incident_id).where(
                    (incident_offences.c.incident_id == incidents.c.id)
                    & incident_offences.c.nibrs_code.in_(codes)
                )
            )
        )
    return and_(*conds)


# -- helpers shared with the policy and the reads ---------------------------------------------
def _matches_sql(tokens: frozenset[str], cols: Any) -> ColumnElement[bool]:
    if "all" in tokens:
        return true()
    codes, cats = _split_tokens(tokens)
    conds = []
    if codes:
        conds.append(cols.nibrs_code.in_(codes))
    if cats:
        conds.append(cols.crime_against.in_(cats))
    if "part1" in tokens:
        conds.append(cols.ucr_part1.is_not(None))
    if not conds:
        return false()
    return and_(cols.nibrs_code.is_not(None), or_(*conds))


def in_areas_sql(pairs: frozenset[tuple[str, str]]) -> ColumnElement[bool]:
    """Return SQL for "the incident lies in one of these areas".

    ``pairs`` are ``(layer, name)``; a ``layer`` without an agency is the layer of that
    name of the incident's owner (:func:`crossbeat.sharing.scope.layer_key`).
    """
    conds = []
    for layer, name in sorted(pairs):
        agency, _, short = layer.rpartition("/")
        owner = area_layers.c.agency_id == (agency if agency else incidents.c.agency_id)
        conds.append(owner & (area_layers.c.name == short) & (areas.c.name == name))
    return exists(
        select(incident_areas.c.incident_id)
        .select_from(
            incident_areas.join(areas, areas.c.id == incident_areas.c.area_id).join(
                area_layers, area_layers.c.id == areas.c.layer_id
            )
        )
        .where((incident_areas.c.incident_id == incidents.c.id) & or_(*conds))
    )


def not_matching_sql(tokens: frozenset[str], cols: Any) -> ColumnElement[bool]:
    """Return the SQL condition "the offence in ``cols`` is not covered by ``tokens``".

    ``all`` in the tokens covers everything, so nothing is "not covered". NULLs count as
    not covered, written out so that SQL's three-valued logic cannot drop a row.
    """
    if "all" in tokens:
        return false()
    codes, cats = _split_tokens(tokens)
    conds = [cols.nibrs_code.not_in(codes) if codes else true()]
    if cats:
        conds.append(or_(cols.crime_against.is_(None), cols.crime_against.not_in(cats)))
    if "part1" in tokens:
        conds.append(cols.ucr_part1.is_(None))
    return or_(cols.nibrs_code.is_(None), and_(*conds))


def _split_tokens(tokens: frozenset[str]) -> tuple[list[str], list[str]]:
    """Split offence tokens into NIBRS codes (they start with a digit) and categories."""
    codes = sorted(t for t in tokens if t[:1].isdigit())
    cats = sorted(
        t
        for t in tokens
        if not t[:1].isdigit() and t not in ("part1", "all") and not is_call_token(t)
    )
    return codes, cats


def _excluded(tokens: frozenset[str], o: Row) -> bool:
    if "all" in tokens:
        return True
    return offence_matches(tokens, o.get("nibrs_code"), o.get("crime_against"), o.get("ucr_part1"))


def release_time(row: Row) -> datetime:
    """Return when a record's publication delay starts.

    The latest of when it started, ended and was reported; when none is known, when the
    platform first stored it.
    """
    times: list[datetime] = [row[c] for c in _TIME_COLUMNS if row.get(c) is not None]
    created: datetime = row["created_at"]
    return max(times) if times else created


#: Earlier than every stored time: a missing time compares as released.
_DAWN = datetime(1, 1, 1, tzinfo=UTC)


#: The parts of :func:`_released_by_sql` that do not depend on the cutoff, built once.
_RELEASE_TIMES = tuple(
    func.coalesce(incidents.c[c], literal(_DAWN, type_=incidents.c[c].type)) for c in _TIME_COLUMNS
)
_ANY_TIME = tuple(incidents.c[c].is_not(None) for c in _TIME_COLUMNS)
_BOOLEAN = Boolean()


def _released_by_sql(cutoff: datetime) -> ColumnElement[bool]:
    """Return SQL for ``release_time(row) <= cutoff``.

    A missing time counts as released (``coalesce`` with the earliest time rather than
    ``IS NULL OR``): the same condition, but one no index can serve, so that SQLite
    never answers it with a multi-index OR over the time index (it holds for nearly
    every row) instead of the H3 or spatial index the read needs (issue #8).

    Every read builds it for each delayed rule (the rest of a rule's condition is
    built once, :func:`_covered_sql`), so it is assembled from prebuilt parts with the
    cutoff as one bound parameter: 0.2 ms where building it with the column operators
    took 1.5 ms (both on a loaded machine).
    """
    created = incidents.c.created_at
    at = bindparam(None, cutoff, type_=created.type, unique=True)
    return and_(
        *(BinaryExpression(when, at, operators.le, type_=_BOOLEAN) for when in _RELEASE_TIMES),
        or_(*_ANY_TIME, BinaryExpression(created, at, operators.le, type_=_BOOLEAN)),
    )


def coarsen(when: datetime | None, resolution: TimeResolution, timezone: str) -> datetime | None:
    """Return ``when`` floored to the hour, day or month in a time zone (as UTC).

    Examples
    --------
    >>> t = datetime(2024, 3, 4, 21, 30, tzinfo=UTC)
    >>> coarsen(t, TimeResolution.DAY, "America/Los_Angeles").isoformat()
    '2024-03-04T08:00:00+00:00'
    """
    if when is None or resolution is TimeResolution.EXACT:
        return when
    zone = ZoneInfo(timezone)
    local = when.astimezone(zone)
    if resolution is TimeResolution.HOUR:
        floored = local.replace(minute=0, second=0, microsecond=0)
    elif resolution is TimeResolution.DAY:
        floored = datetime(local.year, local.month, local.day, tzinfo=zone)
    else:
        floored = datetime(local.year, local.month, 1, tzinfo=zone)
    return floored.astimezone(UTC)


def coarser_time_precision(stored: str, resolution: TimeResolution) -> str:
    """Return the published time precision: the coarser of the stored one and the resolution."""
    if resolution is TimeResolution.EXACT:
        return stored
    stored_rank = _TIME_ORDER.index(stored) if stored in _TIME_ORDER else len(_TIME_ORDER) - 1
    return _TIME_ORDER[max(stored_rank, _TIME_ORDER.index(resolution.value))]
