"""Normalise a part of a file column by column; only the exception rows one by one (#9).

:class:`ColumnarNormaliser` gives, for a list of records, exactly what
:meth:`crossbeat.ingest.normalise.Normaliser.normalise` gives for each of them, in order,
but it works on whole columns for the common path:

* every column's values are cleaned (stripped, null markers) once per distinct value;
* dates are parsed once per distinct (date, time) pair by the field's own
  :class:`~crossbeat.ingest.dates.DateParser` and then looked up;
* offences are classified by the crosswalk once per distinct (code, description) pair
  and joined back (a dict lookup), as are location types and hundred-block addresses;
* coordinates go through pyproj as arrays (one call for the part), and the range and
  extent checks are numpy comparisons.

A row leaves the common path as soon as anything about it is not plain: a read
problem, a blank id, a date that does not parse, carries a note or is implausible, a
point that is blank, (0, 0), out of range or outside the agency's extent, an unmapped
offence code, an unknown location type or precision value, a person's age that is not
a number, a withdrawal or an expunge. Those rows — the ones that warn or quarantine —
go through the per-row normaliser, which says every reason. A row the columnar path
keeps therefore has no warning and no reason at all, and both paths build its
incident from the same values: a property test (``tests/test_ingest_columnar.py``)
compares them row by row on generated and real exports.

Only the profiles the columns cover take this path (:func:`covers`): not update feeds,
and only points from ``location.x`` / ``location.y`` columns (a GeoJSON geometry is
read per row).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from crossbeat.geo.address import hundred_block
from crossbeat.geo.crs import is_wgs84, transformer_to_wgs84
from crossbeat.ingest.dates import ParsedTime, implausible
from crossbeat.ingest.normalise import (
    Normalised,
    Normaliser,
    Rejected,
    Updated,
    _Issues,
    raw_hash,
)
from crossbeat.ingest.points import PointError, coarsest, parse_coordinate
from crossbeat.ingest.profile import Profile
from crossbeat.ingest.readers import RawRecord
from crossbeat.model import (
    CrimeAgainst,
    Incident,
    Location,
    Offence,
    PersonalData,
    Provenance,
    Sensitivity,
    TimePrecision,
)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: occurred_from, occurred_to, time precision, reported_at.
_Times = tuple[datetime | None, datetime | None, TimePrecision, datetime | None]

#: A value that sends its row to the per-row normaliser.
_EXCEPTION: Any = object()


def covers(profile: Profile) -> bool:
    """Return whether the columnar path can normalise a profile's rows.

    Update feeds and points from GeoJSON geometries are normalised row by row.
    """
    loc = profile.location
    return profile.kind != "updates" and bool(loc.x and loc.y)


def _lookup(keys: Sequence[K], compute: Callable[[K], V]) -> list[V]:
    """Return ``compute(k)`` for each key, computed once per distinct key (a dict join)."""
    table: dict[K, V] = {}
    out: list[V] = []
    for k in keys:
        try:
            out.append(table[k])
        except KeyError:
            value = table[k] = compute(k)
            out.append(value)
    return out


class ColumnarNormaliser:
    """Normalise parts of one file for one agency, column by column.

    Parameters
    ----------
    normaliser
        The per-row normaliser of the same profile, agency and file: it normalises the
        exception rows and holds the per-file state (hash-id occurrences).
    """

    def __init__(self, normaliser: Normaliser) -> None:
        self.n = normaliser
        self.enabled = covers(normaliser.profile)
        self._cleaners: dict[str | None, dict[str | None, str | None]] = {}

    # -- columns ---------------------------------------------------------------------
    def column(self, recs: Sequence[RawRecord], name: str | None) -> list[str | None]:
        """Return a column's cleaned values (``Normaliser.value``), once per distinct value."""
        if name is None:
            return [None] * len(recs)
        if "." in name:  # nested JSON: rare, resolved row by row
            return [self.n.value(rec, name) for rec in recs]
        clean = self._cleaners.setdefault(name, {})
        value = self.n.value
        out: list[str | None] = []
        for rec in recs:
            raw = rec.fields.get(name)
            try:
                out.append(clean[raw])
            except KeyError:
                found = clean[raw] = value(rec, name)
                out.append(found)
            except TypeError:  # pragma: no cover - fields are text or None
                out.append(value(rec, name))
        if len(clean) > 65_536:
            clean.clear()  # ids and free text never repeat: keep memory flat
        return out

    # -- the part --------------------------------------------------------------------
    def normalise(self, recs: Sequence[RawRecord]) -> list[Normalised | Updated | Rejected]:
        """Normalise a part's records, in order; exception rows one by one.

        Returns
        -------
        list
            For each record, what :meth:`Normaliser.normalise` returns for it.
        """
        built = self.common(recs)
        # The exception rows, in file order: the per-row normaliser keeps per-file state.
        return [
            b if b is not None else self.n.normalise(rec)
            for rec, b in zip(recs, built, strict=True)
        ]

    def common(self, recs: Sequence[RawRecord]) -> list[Normalised | None]:
        """Return the incident of every row on the common path, None for the exceptions.

        The caller normalises the exception rows with the per-row normaliser, in file
        order (it keeps the hash-id occurrence counts of the file).
        """
        n, profile = self.n, self.n.profile
        size = len(recs)
        if not self.enabled or not size:
            return [None] * size
        ok = np.fromiter((not rec.problems for rec in recs), dtype=bool, count=size)
        ids = self._ids(recs, ok)
        if profile.withdraw is not None:
            ok &= np.fromiter((n._action(rec) == "upsert" for rec in recs), dtype=bool, count=size)
        times = self._times(recs, ok)
        locations = self._locations(recs, ok)
        offences = self._offences(recs, ok)
        persons = self._persons(recs, ok)
        narrative = self.column(recs, profile.narrative)
        status = self.column(recs, profile.status)
        disposition = self.column(recs, profile.disposition)
        keep = {c: self.column(recs, c) for c in profile.keep}
        addresses = self._addresses(recs)
        flags = self._flags(recs, offences, narrative, persons)
        defaults = profile.defaults
        out: list[Normalised | None] = [None] * size
        for i in np.flatnonzero(ok).tolist():
            rec = recs[i]
            found, implied = offences[i]
            people = persons[i]
            occurred_from, occurred_to, precision, reported_at = times[i]
            location = locations[i]
            assert location is not None  # a row without its location left the path
            incident = Incident(
                agency_id=n.agency_id,
                source_id=ids[i],
                offences=tuple(found),
                occurred_from=occurred_from,
                occurred_to=occurred_to,
                time_precision=precision,
                location=location,
                reported_at=reported_at,
                status=status[i] or defaults.get("status"),
                disposition=disposition[i] or defaults.get("disposition"),
                sensitivity=implied | flags[i],
                personal=PersonalData(
                    full_address=addresses[i], narrative=narrative[i], persons=tuple(people)
                ),
                attributes={c: keep[c][i] for c in profile.keep},
                provenance=Provenance(n.source_file, rec.row_number, raw_hash(rec)),
                withdrawn=False,
            )
            out[i] = Normalised(incident, "upsert", ())
        return out

    def _ids(self, recs: Sequence[RawRecord], ok: np.ndarray) -> list[str]:
        """Return the source ids; a blank id (hash fallback or refusal) leaves the path."""
        spec = self.n.profile.id
        columns = [self.column(recs, c) for c in spec.columns]
        if not columns:
            ok[:] = False  # every id is a hash: counted row by row, in file order
            return [""] * len(recs)
        ids: list[str] = []
        for i, values in enumerate(zip(*columns, strict=True)):
            if any(v is not None for v in values):
                ids.append(spec.prefix + "|".join(v or "" for v in values))
            else:
                ids.append("")
                ok[i] = False
        return ids

    # -- times -----------------------------------------------------------------------
    def _times(self, recs: Sequence[RawRecord], ok: np.ndarray) -> list[_Times]:
        now = self.n.clock.now()
        fields = {name: self._field(recs, name, now) for name in self.n._dates}
        blank: list[ParsedTime | None] = [None] * len(recs)
        start = fields.get("occurred_from", blank)
        end = fields.get("occurred_to", blank)
        reported = fields.get("reported_at", blank)
        out: list[_Times] = []
        for i in range(len(recs)):
            s, e, r = start[i], end[i], reported[i]
            if s is _EXCEPTION or e is _EXCEPTION or r is _EXCEPTION:
                ok[i] = False
                out.append((None, None, TimePrecision.UNKNOWN, None))
                continue
            if s is None and "occurred_from" in fields:
                ok[i] = False  # a warning: no date
            if s is not None and e is not None and e.end < s.start:
                ok[i] = False  # a reason: ends before it starts
            if s is not None and r is not None and r.end < s.start:
                ok[i] = False  # a warning: reported before it occurred
            occurred_to = e.end if e is not None else None
            if occurred_to is None and s is not None and s.precision != TimePrecision.MINUTE:
                occurred_to = s.end
            out.append(
                (
                    s.start if s else None,
                    occurred_to,
                    s.precision if s else TimePrecision.UNKNOWN,
                    r.start if r else None,
                )
            )
        return out

    def _field(self, recs: Sequence[RawRecord], name: str, now: datetime) -> list[Any]:
        """Return one date field's parsed values: None (blank) or an exception marker."""
        parser = self.n._dates[name]
        spec = parser.spec
        texts = self.column(recs, spec.column or spec.date_column)
        clocks = self.column(recs, spec.time_column)

        def parse(key: tuple[str | None, str | None]) -> Any:
            text, clock = key
            if text is None:
                return None if clock is None else _EXCEPTION  # a time without a date warns
            try:
                parsed = parser.parse(text, clock)
            except ValueError:
                return _EXCEPTION
            if parsed.notes or implausible(parsed, now):
                return _EXCEPTION
            return parsed

        return _lookup(list(zip(texts, clocks, strict=True)), parse)

    # -- location --------------------------------------------------------------------
    def _addresses(self, recs: Sequence[RawRecord]) -> list[str | None]:
        loc = self.n.profile.location
        if loc.address:
            return self.column(recs, loc.address)
        parts = [self.column(recs, c) for c in loc.address_parts]
        if not parts:
            return [None] * len(recs)
        return [" ".join(p for p in row if p) or None for row in zip(*parts, strict=True)]

    def _locations(self, recs: Sequence[RawRecord], ok: np.ndarray) -> list[Location | None]:
        n, loc = self.n, self.n.profile.location
        size = len(recs)
        default_type = n.profile.defaults.get("location_type")
        local_types = [t or default_type for t in self.column(recs, loc.location_type)]

        def nibrs(local: str | None) -> Any:
            if not local:
                return None
            found = n._types.get(local.casefold())
            return _EXCEPTION if found is None and n._types else found

        types = _lookup(local_types, nibrs)
        addresses = self._addresses(recs)
        blocks = addresses if loc.address_is_public else _lookup(addresses, hundred_block)
        default_precision = coarsest(loc.precision, n._rounding)

        def precision_of(value: str | None) -> Any:
            if value is None:
                return default_precision
            mapped = n._precisions.get(value.casefold())
            return _EXCEPTION if mapped is None else coarsest(mapped, n._rounding)

        precisions = _lookup(self.column(recs, loc.precision_column), precision_of)
        xs, ys = self.column(recs, loc.x), self.column(recs, loc.y)
        x = np.zeros(size)
        y = np.zeros(size)
        assert loc.x is not None and loc.y is not None
        for i in range(size):
            if not ok[i]:
                continue
            if types[i] is _EXCEPTION or precisions[i] is _EXCEPTION:
                ok[i] = False
                continue
            xt, yt = xs[i], ys[i]
            if xt is None or yt is None:
                ok[i] = False  # no point (a warning) or half a point (a reason)
                continue
            try:
                x[i] = parse_coordinate(xt, loc.x)
                y[i] = parse_coordinate(yt, loc.y)
            except PointError:
                ok[i] = False
        if loc.null_island_is_missing:
            ok &= ~((x == 0) & (y == 0))
        lon, lat = self._to_wgs84(x, y, ok)
        ok &= np.isfinite(lon) & np.isfinite(lat)
        with np.errstate(invalid="ignore"):
            ok &= (lat >= -90) & (lat <= 90) & (lon >= -180) & (lon <= 180)
            if n.extent is not None:
                min_lon, min_lat, max_lon, max_lat = n.extent
                inside = (lon >= min_lon) & (lon <= max_lon) & (lat >= min_lat) & (lat <= max_lat)
                ok &= inside  # outside: checked (and perhaps refused) row by row
        out: list[Location | None] = [None] * size
        lons, lats = lon.tolist(), lat.tolist()
        for i in np.flatnonzero(ok).tolist():
            out[i] = Location(lats[i], lons[i], precisions[i], blocks[i], types[i], local_types[i])
        return out

    def _to_wgs84(
        self, x: np.ndarray, y: np.ndarray, ok: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Transform the points of the common rows in one pyproj call."""
        if is_wgs84(self.n.crs):
            return x.copy(), y.copy()
        lon = np.full(len(x), np.nan)
        lat = np.full(len(x), np.nan)
        if ok.any():
            tx, ty = transformer_to_wgs84(self.n.crs).transform(x[ok], y[ok], errcheck=False)
            lon[ok], lat[ok] = tx, ty
        return lon, lat

    # -- offences and persons --------------------------------------------------------
    def _offences(
        self, recs: Sequence[RawRecord], ok: np.ndarray
    ) -> list[tuple[list[Offence], frozenset[Sensitivity]]]:
        """Join each row's offences from the crosswalk, classified once per distinct pair."""
        n = self.n
        slots = []
        for (spec, _), classify in zip(n._crosswalks, n._classify, strict=True):
            codes = self.column(recs, spec.code)
            descriptions = self.column(recs, spec.description)

            def join(key: tuple[str | None, str | None], classify: Any = classify) -> Any:
                code, description = key
                if code is None and description is None:
                    return None
                offence, implied = classify(code, description)
                return (offence, implied) if offence.mapped else _EXCEPTION

            keys = [(c or spec.constant, d) for c, d in zip(codes, descriptions, strict=True)]
            slots.append(_lookup(keys, join))
        out: list[tuple[list[Offence], frozenset[Sensitivity]]] = []
        for i in range(len(recs)):
            found: list[Offence] = []
            flags: set[Sensitivity] = set()
            for slot in slots:
                entry = slot[i]
                if entry is None:
                    continue
                if entry is _EXCEPTION:
                    ok[i] = False  # an unmapped code warns
                    continue
                found.append(entry[0])
                flags |= entry[1]
            if not found:
                ok[i] = False  # no offence: a reason
            out.append((found, frozenset(flags)))
        return out

    def _flags(
        self,
        recs: Sequence[RawRecord],
        offences: list[tuple[list[Offence], frozenset[Sensitivity]]],
        narrative: list[str | None],
        persons: list[list[Any]],
    ) -> list[frozenset[Sensitivity]]:
        """Return each row's sensitivity flags, derived once per distinct set of inputs."""
        n = self.n
        flag_values = list(zip(*(self.column(recs, c) for _, c, _ in n._flags), strict=True))
        if not flag_values:
            flag_values = [()] * len(recs)
        keyword_columns = n.profile.sensitivity.keyword_columns
        texts = list(zip(*(self.column(recs, c) for c in keyword_columns), strict=True))
        if not texts:
            texts = [()] * len(recs)
        keys = []
        for i in range(len(recs)):
            found = offences[i][0]
            keys.append(
                (
                    flag_values[i],
                    texts[i] + tuple(o.local_description for o in found),
                    any(o.crime_against == CrimeAgainst.PERSON for o in found),
                    narrative[i],
                    any(p.age is not None and p.age < 18 for p in persons[i]),
                )
            )
        return _lookup(keys, lambda key: n.flags_of(*key))

    def _persons(self, recs: Sequence[RawRecord], ok: np.ndarray) -> list[list[Any]]:
        """Return each row's persons; an age that is not a number leaves the path."""
        if not self.n.profile.persons:
            return [[] for _ in recs]
        out = []
        for i, rec in enumerate(recs):
            issues = _Issues()
            out.append(self.n._persons(rec, issues))
            if issues.warnings:
                ok[i] = False
        return out
