"""Seeded synthetic incidents for the demo region: the ground truth behind the exports.

:func:`simulate` draws one year of events with the space-time structure an analyst
expects to find, then :mod:`crossbeat.demo.exports` writes each agency's share of them
in that agency's own format. Every random choice comes from one
``random.Random(seed)`` drawn in a fixed order, so the same seed and size give the
same events (and byte-identical files).

What is planted, and recorded in :class:`Simulation` so tests and later analyses can
check it:

* persistent hotspots (:data:`crossbeat.demo.region.HOTSPOTS`) with seasonality by
  month, weekday and hour;
* near-repeat residential burglary clusters (follow-ups within ~200 m and 14 days);
* a commercial robbery series with one MO that crosses the city/county border;
* incidents at city light-rail stations reported by both transit and city police;
* sensitive offences (sexual offences, domestic violence, juvenile victims,
  informants), including miscoded ones whose harmless code hides a domestic or sexual
  incident that only a flag column or the narrative reveals.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from shapely.geometry import Point
from shapely.prepared import prep

from crossbeat.demo import region
from crossbeat.demo.text import FIRST_NAMES, LAST_NAMES, SERIES_MO, narrative

#: Local time zone of every demo agency.
TIMEZONE = "America/Los_Angeles"
#: First day of the default demo year (local time).
DEFAULT_START = date(2025, 11, 1)

_HOURS = {
    # Relative weights for each hour of the day, 0..23.
    "day": (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 10, 10, 10, 10, 9, 8, 6, 5, 4, 3, 2, 1),
    "night": (9, 8, 7, 5, 3, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 5, 6, 7, 9, 10),
    "evening": (3, 2, 1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 7, 8, 9, 10, 10, 10, 9, 8, 6, 4),
    "overnight": (8, 8, 8, 7, 6, 4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 4, 5, 6, 7, 8),
    "service": (2, 1, 0, 0, 0, 2, 5, 9, 10, 7, 5, 5, 6, 6, 6, 8, 10, 10, 8, 6, 5, 4, 3, 3),
}


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of incident the simulation draws, with its habits."""

    annual: int
    hours: str
    premises: tuple[str, ...]
    weekend: float = 1.0
    sensitive: tuple[str, ...] = ()
    juvenile_share: float = 0.03


#: Background incidents per year at size 1.0 (city and county together).
KINDS: dict[str, Kind] = {
    "theft_other": Kind(950, "day", ("residence", "commercial", "street", "school")),
    "theft_from_vehicle": Kind(950, "overnight", ("street", "parking", "residence")),
    "shoplifting": Kind(600, "day", ("department_store", "grocery", "convenience")),
    "vehicle_theft": Kind(520, "overnight", ("street", "parking", "residence")),
    "burglary_residential": Kind(460, "day", ("residence",), weekend=0.7),
    "burglary_commercial": Kind(220, "overnight", ("commercial", "restaurant", "convenience")),
    "vandalism": Kind(780, "night", ("street", "residence", "commercial", "school")),
    "assault_simple": Kind(600, "evening", ("street", "residence", "bar"), weekend=1.5),
    "assault_aggravated": Kind(220, "night", ("street", "residence", "bar"), weekend=1.6),
    "assault_dv": Kind(
        360, "evening", ("residence",), weekend=1.3, sensitive=("domestic_violence",)
    ),
    "robbery_street": Kind(130, "night", ("street", "parking"), juvenile_share=0.1),
    "robbery_commercial": Kind(50, "evening", ("convenience", "gas_station", "bank")),
    "sexual_assault": Kind(
        50, "night", ("residence", "street"), sensitive=("sexual_offence",), juvenile_share=0.2
    ),
    "sexual_fondling": Kind(
        45, "evening", ("residence", "school", "street"), sensitive=("sexual_offence",),
        juvenile_share=0.3,
    ),
    "drugs": Kind(380, "night", ("street", "parking", "residence")),
    "trespass": Kind(300, "night", ("commercial", "residence", "school")),
    "disorderly": Kind(380, "night", ("street", "bar"), weekend=1.6),
    "weapons": Kind(90, "night", ("street", "residence")),
    "pickpocket": Kind(100, "day", ("street", "department_store")),
}  # fmt: skip

#: Kinds of transit police incidents, as shares of :data:`TRANSIT_ANNUAL`.
TRANSIT_KINDS: dict[str, float] = {
    "fare_evasion": 0.30,
    "theft_other": 0.11,
    "pickpocket": 0.08,
    "assault_simple": 0.10,
    "assault_aggravated": 0.03,
    "robbery_street": 0.04,
    "vandalism": 0.08,
    "drugs": 0.08,
    "trespass": 0.06,
    "disorderly": 0.07,
    "weapons": 0.02,
    "sexual_fondling": 0.02,
    "theft_from_vehicle": 0.03,
    "vehicle_theft": 0.02,
}
#: Transit police incidents per year at size 1.0 (besides the double-reported ones).
TRANSIT_ANNUAL = 1100
#: Incidents per year at size 1.0 drawn around the hotspots, shared by their weights.
HOTSPOT_ANNUAL = 1500


@dataclass(frozen=True, slots=True)
class Event:
    """One simulated incident as its reporting agency saw it."""

    key: str
    agency: str
    kind: str
    occurred_from: datetime
    occurred_to: datetime | None
    reported_at: datetime
    x: float
    y: float
    premise: str
    victim: str | None = None
    victim_age: int | None = None
    suspect: str | None = None
    narrative: str = ""
    status: str = "open"
    sensitive: frozenset[str] = frozenset()
    #: A harmless-looking code recorded instead of the true one (miscoded sensitive).
    recorded_kind: str | None = None
    #: For transit events: the station, line and whether it happened on a train.
    station: str | None = None
    line: str | None = None
    on_train: bool = False
    #: Ground-truth labels: ``near_repeat:NR0001``, ``series:R1``, ``duplicate:D001``,
    #: ``hotspot:<name>``, ``miscoded``.
    tags: tuple[str, ...] = ()
    parity: int = 0


@dataclass
class Simulation:
    """The simulated year: events by agency plus the planted structure."""

    seed: int
    size: float
    start: date
    days: int
    events: list[Event] = field(default_factory=list)

    def for_agency(self, agency_id: str) -> list[Event]:
        """Return one agency's events, in the order it reported them."""
        chosen = [e for e in self.events if e.agency == agency_id]
        return sorted(chosen, key=lambda e: (e.reported_at, e.key))

    def tagged(self, prefix: str) -> list[Event]:
        """Return the events carrying a tag that starts with ``prefix``."""
        return [e for e in self.events if any(t.startswith(prefix) for t in e.tags)]


class _Sim:
    """The drawing machinery; one instance per :func:`simulate` call."""

    def __init__(self, seed: int, size: float, start: date, days: int) -> None:
        self.rng = random.Random(seed)
        self.size = size
        self.zone = ZoneInfo(TIMEZONE)
        self.start = start
        self.days = days
        self.city = prep(region.city_polygon())
        self.county_box = region.county_outline().bounds
        self.counter = 0

    # -- small draws -----------------------------------------------------------------
    def count(self, annual: float, minimum: int = 1) -> int:
        return max(minimum, round(annual * self.size * self.days / 365))

    def key(self) -> str:
        self.counter += 1
        return f"E{self.counter:06d}"

    def season(self, day: int) -> float:
        doy = (self.start + timedelta(days=day)).timetuple().tm_yday
        return 1.0 + 0.18 * math.cos(2 * math.pi * (doy - 200) / 365)

    def when(self, kind: str, hours: str | None = None) -> datetime:
        spec = KINDS.get(kind)
        profile = _HOURS[hours or (spec.hours if spec else "day")]
        weekend = spec.weekend if spec else 1.0
        while True:
            day = self.rng.randrange(self.days)
            local = self.start + timedelta(days=day)
            factor = self.season(day) * (weekend if local.weekday() >= 4 else 1.0)
            if self.rng.random() * 1.2 * max(weekend, 1.0) <= factor:
                break
        hour = self.rng.choices(range(24), weights=profile)[0]
        minute = self.rng.randrange(60)
        if self.rng.random() < 0.3:
            minute -= minute % 15  # people round the times they report
        naive = datetime(local.year, local.month, local.day, hour, minute)
        return naive.replace(tzinfo=self.zone).astimezone(UTC)

    def background_point(self) -> tuple[float, float]:
        minx, miny, maxx, maxy = self.county_box
        if self.rng.random() < 0.62:
            city = region.city_polygon()
            bx0, by0, bx1, by1 = city.bounds
            while True:
                x, y = self.rng.uniform(bx0, bx1), self.rng.uniform(by0, by1)
                if self.city.contains(Point(x, y)):
                    return x, y
        while True:
            x, y = self.rng.gauss(0, 5500), self.rng.gauss(-1500, 4500)
            if minx < x < maxx and miny < y < maxy:
                return x, y

    def person(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def age(self, juvenile_share: float) -> int:
        if self.rng.random() < juvenile_share:
            return self.rng.randint(9, 17)
        return min(90, max(18, round(self.rng.gauss(38, 15))))

    def report_delay(self, kind: str) -> timedelta:
        if kind.startswith("burglary") or kind in ("vehicle_theft", "theft_from_vehicle"):
            return timedelta(minutes=self.rng.randint(20, 60 * 30))
        if kind.startswith("sexual"):
            return timedelta(hours=self.rng.choice((1, 3, 20, 72, 400)))
        return timedelta(minutes=self.rng.randint(2, 90))

    def status(self, kind: str) -> str:
        cleared = 0.45 if kind in ("drugs", "weapons", "trespass", "disorderly") else 0.15
        r = self.rng.random()
        if r < cleared:
            return "arrest"
        return "closed" if r < cleared + 0.45 else "open"

    # -- events ----------------------------------------------------------------------
    def event(
        self,
        kind: str,
        x: float,
        y: float,
        *,
        when: datetime | None = None,
        agency: str | None = None,
        premise: str | None = None,
        tags: tuple[str, ...] = (),
    ) -> Event:
        spec = KINDS.get(kind, KINDS["theft_other"])
        start = when or self.when(kind)
        end = None
        if kind.startswith("burglary"):
            # Burglaries are found later: the source knows only a window.
            end = start + timedelta(minutes=self.rng.randint(60, 60 * 10))
        victim = self.person() if kind not in ("drugs", "trespass", "fare_evasion") else None
        age = self.age(spec.juvenile_share) if victim else None
        sensitive = set(spec.sensitive)
        if age is not None and age < 18:
            sensitive.add("juvenile")
        if kind == "drugs" and self.rng.random() < 0.06:
            sensitive.add("informant")
        reported = (end or start) + self.report_delay(kind)
        return Event(
            key=self.key(),
            agency=agency or region.owner_at(x, y),
            kind=kind,
            occurred_from=start,
            occurred_to=end,
            reported_at=reported,
            x=round(x, 1),
            y=round(y, 1),
            premise=premise or self.rng.choice(spec.premises),
            victim=victim,
            victim_age=age,
            suspect=self.person() if self.rng.random() < 0.25 else None,
            narrative=narrative(self.rng, kind, victim),
            status=self.status(kind),
            sensitive=frozenset(sensitive),
            tags=tags,
            parity=self.rng.randrange(2),
        )

    def background(self) -> list[Event]:
        out = []
        for kind, spec in KINDS.items():
            for _ in range(self.count(spec.annual)):
                x, y = self.background_point()
                out.append(self.event(kind, x, y))
        return out

    def hotspots(self) -> list[Event]:
        out = []
        total = sum(h.weight for h in region.HOTSPOTS)
        for spot in region.HOTSPOTS:
            for _ in range(self.count(HOTSPOT_ANNUAL * spot.weight / total)):
                kind = self.rng.choice(spot.kinds)
                x = self.rng.gauss(spot.x, spot.sigma)
                y = self.rng.gauss(spot.y, spot.sigma)
                out.append(self.event(kind, x, y, tags=(f"hotspot:{spot.name}",)))
        return out

    def near_repeats(self, seeds: list[Event]) -> list[Event]:
        """Add follow-up burglaries near earlier ones (a self-exciting process)."""
        out: list[Event] = []
        end = datetime.combine(self.start + timedelta(days=self.days), datetime.min.time())
        end_utc = end.replace(tzinfo=self.zone).astimezone(UTC)
        n_cluster = 0
        for root in seeds:
            if root.kind != "burglary_residential" or self.rng.random() > 0.3:
                continue
            n_cluster += 1
            label = f"near_repeat:NR{n_cluster:04d}"
            family = [root]
            parent = root
            while len(family) < 5:
                r = 200.0 * math.sqrt(self.rng.random())
                a = self.rng.uniform(0, 2 * math.pi)
                delay = timedelta(hours=self.rng.uniform(12, 14 * 24))
                start = parent.occurred_from + delay
                local = start.astimezone(self.zone)
                hour = self.rng.choices(range(24), weights=_HOURS["day"])[0]
                start = local.replace(hour=hour).astimezone(UTC)
                if start >= end_utc:
                    break
                x, y = root.x + r * math.cos(a), root.y + r * math.sin(a)
                child = self.event("burglary_residential", x, y, when=start, tags=(label,))
                family.append(child)
                parent = child
                if self.rng.random() > 0.45:
                    break
            if len(family) > 1:
                out.extend(family[1:])
                seeds[seeds.index(root)] = replace(root, tags=(*root.tags, label))
        return out

    def robbery_series(self) -> list[Event]:
        """Plant one commercial robbery series along the city/county border."""
        border = region.city_polygon().exterior
        out = []
        day0 = self.days // 2
        start = self.start + timedelta(days=day0)
        n = 7
        for i in range(n):
            d = border.interpolate((0.55 + 0.05 * i) * border.length)
            cx, cy = region.city_polygon().centroid.coords[0]
            dx, dy = d.x - cx, d.y - cy
            norm = math.hypot(dx, dy)
            # Alternate 250-450 m inside and outside the border.
            off = self.rng.uniform(250, 450) * (-1 if i % 2 == 0 else 1)
            x, y = d.x + off * dx / norm, d.y + off * dy / norm
            day = start + timedelta(days=round(i * 24 / (n - 1)))
            local = datetime(day.year, day.month, day.day, self.rng.randint(19, 22),
                             self.rng.randrange(60))  # fmt: skip
            when = local.replace(tzinfo=self.zone).astimezone(UTC)
            ev = self.event(
                "robbery_commercial", x, y, when=when,
                premise=("convenience", "gas_station")[i % 2], tags=("series:R1",),
            )  # fmt: skip
            out.append(replace(ev, narrative=SERIES_MO, victim_age=self.age(0.0)))
        return out

    def miscoded(self) -> list[Event]:
        """Plant sensitive incidents recorded under harmless codes."""
        out = []
        for i in range(self.count(30, minimum=4)):
            x, y = self.background_point()
            true_kind = "sexual_fondling" if i % 5 == 4 else "assault_dv"
            ev = self.event(true_kind, x, y, premise="residence", tags=("miscoded",))
            victim = ev.victim or self.person()
            if true_kind == "assault_dv":
                text = (f"Called for a disturbance. {victim} states her boyfriend pushed her "
                        "into a wall during an argument; domestic, no visible injury.")  # fmt: skip
            else:
                text = (f"Civil standby requested. During contact {victim} disclosed unwanted "
                        "sexual touching by a family acquaintance last week.")  # fmt: skip
            recorded = "disturbance" if true_kind == "assault_dv" else "civil"
            out.append(replace(ev, narrative=text, recorded_kind=recorded))
        return out

    def transit(self) -> list[Event]:
        out = []
        stops = region.stations()
        weights = [
            (4.0 if s.name == "Riverton Central" else 1.0)
            * (1.5 if region.owner_at(s.x, s.y) == "rivertonpd" else 1.0)
            for s in stops
        ]
        kinds = list(TRANSIT_KINDS)
        for _ in range(self.count(TRANSIT_ANNUAL)):
            kind = self.rng.choices(kinds, weights=[TRANSIT_KINDS[k] for k in kinds])[0]
            out.append(self.transit_event(kind, self.rng.choices(stops, weights=weights)[0]))
        return out

    def transit_event(
        self,
        kind: str,
        stop: region.Station,
        *,
        when: datetime | None = None,
        tags: tuple[str, ...] = (),
    ) -> Event:
        ev = self.event(kind, stop.x, stop.y, when=when, agency="metrotransit",
                        premise="transit", tags=tags)  # fmt: skip
        if kind == "fare_evasion":
            ev = replace(ev, narrative="Rider without valid fare; cited and excluded.")
        lines = [ln for ln, stops in region.rail_lines().items()
                 if stops.distance(Point(stop.x, stop.y)) < 1]  # fmt: skip
        return replace(
            ev,
            station=stop.name,
            line=self.rng.choice(lines) if len(lines) > 1 else stop.line,
            on_train=self.rng.random() < 0.25,
        )

    def duplicates(self) -> list[Event]:
        """Plant station incidents that both transit police and city police report."""
        out: list[Event] = []
        city_stops = [s for s in region.stations() if region.owner_at(s.x, s.y) == "rivertonpd"]
        for i in range(self.count(40, minimum=3)):
            stop = city_stops[i % len(city_stops)]
            kind = self.rng.choice(("assault_simple", "robbery_street", "theft_other",
                                    "disorderly"))  # fmt: skip
            label = f"duplicate:D{i + 1:03d}"
            when = self.when(kind, "service")
            tr = self.transit_event(kind, stop, when=when, tags=(label,))
            tr = replace(tr, on_train=False)
            shift = timedelta(minutes=self.rng.randint(-12, 12))
            a = self.rng.uniform(0, 2 * math.pi)
            r = self.rng.uniform(5, 35)
            city = replace(
                tr,
                key=self.key(),
                agency="rivertonpd",
                occurred_from=when + shift,
                reported_at=tr.reported_at + timedelta(minutes=self.rng.randint(3, 40)),
                x=round(stop.x + r * math.cos(a), 1),
                y=round(stop.y + r * math.sin(a), 1),
                station=None,
                line=None,
            )
            out.extend((tr, city))
        return out


def period_ending(end: date, days: int = 365) -> date:
    """Return the first day of the ``days``-day period whose last day is ``end``.

    Examples
    --------
    >>> period_ending(date(2026, 12, 6))
    datetime.date(2025, 12, 7)
    """
    return end - timedelta(days=days - 1)


def report_deadline(end: date) -> datetime:
    """Return the first instant after the local day ``end`` (UTC): nothing is reported later.

    Examples
    --------
    >>> report_deadline(date(2026, 12, 6)).isoformat()
    '2026-12-07T08:00:00+00:00'
    """
    midnight = datetime.combine(end + timedelta(days=1), datetime.min.time())
    return midnight.replace(tzinfo=ZoneInfo(TIMEZONE)).astimezone(UTC)


def simulate(
    seed: int = 7,
    size: float = 1.0,
    *,
    start: date = DEFAULT_START,
    days: int = 365,
    reported_by: datetime | None = None,
) -> Simulation:
    """Draw the demo region's incidents for one period.

    Parameters
    ----------
    seed
        Seed of the single random generator; the same seed gives the same events.
    size
        Scale of the incident counts (1.0 ≈ 10,000 incidents a year; tests use 0.05).
        The planted structures (series, duplicates, miscoded records) keep a minimum
        size so they exist at any scale.
    start
        First local day of the period.
    days
        Length of the period in days.
    reported_by
        When given, no event is reported after this instant: a later report time is
        brought back to it (never before the event ended). A period that ends near
        today (``crossbeat demo``) would otherwise hold reports in the future, which the
        ingest quarantines. The draws are the same with or without it.

    Returns
    -------
    Simulation
        The events of every agency, with ground-truth tags.
    """
    if size <= 0:
        raise ValueError("size must be positive (1.0 is the full demo, 0.05 a small one)")
    sim = _Sim(seed, size, start, days)
    events = sim.background()
    events += sim.hotspots()
    events += sim.near_repeats(events)
    events += sim.robbery_series()
    events += sim.miscoded()
    events += sim.transit()
    events += sim.duplicates()
    if reported_by is not None:
        events = [_reported_by(e, reported_by) for e in events]
    return Simulation(seed=seed, size=size, start=start, days=days, events=events)


def _reported_by(event: Event, deadline: datetime) -> Event:
    """Return the event reported no later than ``deadline`` (nor before it ended)."""
    if event.reported_at <= deadline:
        return event
    ended = event.occurred_to or event.occurred_from
    return replace(event, reported_at=max(deadline, ended))
