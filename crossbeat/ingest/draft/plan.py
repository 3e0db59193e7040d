"""Turn the guesses about a sampled export into the sections of a draft profile.

:func:`plan_sections` runs the guessers of :mod:`~crossbeat.ingest.draft.columns`,
:mod:`~crossbeat.ingest.draft.dates`, :mod:`~crossbeat.ingest.draft.location` and
:mod:`~crossbeat.ingest.draft.offences` in an
order that lets each claim its columns (id, dates, coordinates, address, categories,
people, then the offence among what is left), and lays the result out as
:class:`~crossbeat.ingest.draft.render.Section` objects, each key with its comment.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from crossbeat.ingest.draft.columns import (
    DraftError,
    IdGuess,
    Sample,
    agency_hint,
    guess_flags,
    guess_id,
    guess_named,
    guess_narrative,
    guess_persons,
    hash_columns,
    id_name_strength,
    is_personal,
    snake,
)
from crossbeat.ingest.draft.dates import (
    DateGuess,
    date_role,
    describe_offsets,
    guess_date,
    guess_time,
    occurrence_score,
    placeholder_time,
    swap_day_month,
    time_partner,
    window_stem,
    zones_for_offsets,
)
from crossbeat.ingest.draft.location import plan_location
from crossbeat.ingest.draft.offences import OffenceGuess, guess_offence
from crossbeat.ingest.draft.render import Entry, Section
from crossbeat.ingest.profile import SourceSpec


class _Planner:
    def __init__(
        self,
        sample: Sample,
        source: SourceSpec,
        *,
        file_name: str,
        name: str,
        agency: str | None,
        timezone: str | None,
        now: datetime,
    ) -> None:
        self.sample = sample
        self.source = source
        self.file_name = file_name
        self.name = name
        self.agency = agency
        self.timezone = timezone
        self.now = now
        self.taken: set[str] = set()
        self.personal = {c for c in sample.names if is_personal(c)}
        self.mutable: set[str] = set()
        self.blank_columns: set[str] = set()
        self.top = Section("")
        self.src = Section("source")
        self.sections: list[Section] = []
        self.notes: list[str] = []

    def take(self, *columns: str | None) -> None:
        self.taken |= {c for c in columns if c}

    # -- the whole plan ------------------------------------------------------------------
    def plan(self, layout_notes: list[str]) -> list[Section]:
        self._source(layout_notes)
        ident = guess_id(self.sample, taken=self.personal)
        self.take(*ident.columns)
        dates = self._dates()
        point_sections = plan_location(
            self.sample, source=self.source, src=self.src, taken=self.taken, timezone=self.timezone
        )
        status = guess_named(self.sample, ("status",), taken=self.taken)
        self.take(status)
        disposition = guess_named(
            self.sample, ("disposition", "outcome", "clearance", "cleared"), taken=self.taken
        )
        disposition = disposition or self._blank_named(("disposition", "outcome"))
        self.take(disposition)
        self.mutable |= {c for c in (status, disposition) if c}
        narrative = guess_narrative(self.sample, taken=self.taken)
        self.take(narrative)
        if narrative:
            self.personal.add(narrative)
        persons = self._persons()
        flags = self._flags(narrative)
        local = f"{self.agency or self.name.split('.')[0]}-local"
        offence = guess_offence(
            self.sample, taken=self.taken, file_stem=Path(self.file_name).stem, local=local
        )
        update_id = self._update_id(offence, status, disposition)
        self._top(status, disposition, narrative, updates=update_id is not None)
        if update_id is not None:
            # An update feed reads only its id, date and status columns.
            self.taken = {c for c in (status, disposition) if c}
            self.src.entries = [e for e in self.src.entries if e.key != "crs"]
            self.sections.append(self._update_id_section(update_id))
            self.sections += self._as_of(dates)
            self._timezone(dates)
            self._unused(kept=False)
            return [self.top, self.src, *self.sections]
        self.take(offence.code, offence.description)
        self.sections.append(self._id_section(ident))
        self.sections += self._date_sections(dates)
        self._timezone(dates)
        self.sections += point_sections
        self.sections.append(self._offence_section(offence))
        self.sections += persons
        self.sections += flags
        self._unused(kept=True)
        return [self.top, self.src, *self.sections]

    # -- top level and source ------------------------------------------------------------
    def _top(
        self, status: str | None, disposition: str | None, narrative: str | None, *, updates: bool
    ) -> None:
        top = self.top
        top.add("name", self.name, "from the file name" if self.name else "")
        top.add("description", f"DRAFT from {self.file_name}: review every comment")
        if updates:
            top.add(
                "kind",
                "updates",
                "guess: no column holds offences, but an id and an outcome/status column do: "
                "an update feed that changes incidents already stored (see docs/profiles.md)",
            )
        if self.agency:
            top.add("agency", self.agency, "from --agency")
        else:
            top.add(
                "agency",
                "AGENCY",
                "TODO: the agency id the feed belongs to (or give --agency to crossbeat ingest "
                "and delete this line)",
                off=True,
            )
        hint = agency_hint(self.sample)
        if hint and not self.agency:
            top.add(None, comment=hint)
        if status:
            top.add("status", status, "guess: named like a case status")
        if disposition:
            why = "guess: named like an outcome/disposition"
            if disposition in self.blank_columns:
                why += ", though blank in every sampled row"
            top.add("disposition", disposition, why)
        if narrative:
            top.add(
                "narrative",
                narrative,
                f"guess: {narrative!r} holds free text: personal data, stored encrypted",
            )

    def _source(self, layout_notes: list[str]) -> None:
        spec, src = self.source, self.src
        src.add("format", spec.format, "detected from the content")
        src.add("encoding", spec.encoding, "detected from the first 64 KiB")
        if spec.delimiter != ",":
            src.add("delimiter", spec.delimiter, "detected: splits every line into equal fields")
        if spec.records_key:
            src.add("records_key", spec.records_key, "the array holding the records")
        for note in layout_notes:
            if note.startswith("TODO"):
                src.add(None, comment=note)

    def _timezone(self, dates: dict[str, DateGuess]) -> None:
        if self.timezone:
            self.src.entries.insert(2, _entry("timezone", self.timezone, "from --timezone"))
            return
        offsets = [o for g in dates.values() for o in g.offsets]
        zones = zones_for_offsets(offsets) if any(o for _, o in offsets) else []
        if zones:
            also = f"; also consistent: {', '.join(zones[1:4])}" if len(zones) > 1 else ""
            why = (
                f"guess: the UTC offsets written in the dates ({describe_offsets(offsets)}) fit "
                f"{zones[0]}{also}. Local times without an offset are read in this zone"
            )
            self.src.entries.insert(2, _entry("timezone", zones[0], why))
            return
        why = (
            "TODO: the dates carry no UTC offset, so their time zone is unknown: set the "
            "agency's IANA zone (e.g. America/Los_Angeles, Europe/London); until then local "
            "times are read as UTC"
        )
        if offsets:
            why = (
                "TODO: the dates are written in UTC (+00:00), but local values (a separate "
                "time column, dates without an offset) need the agency's IANA zone: set it"
            )
        self.src.entries.insert(2, _entry("timezone", "UTC", why))

    # -- ids -------------------------------------------------------------------------------
    def _id_section(self, ident: IdGuess) -> Section:
        section = Section("id")
        if ident.columns:
            section.add("columns", ident.columns, ident.comment)
        if ident.fallback == "hash":
            leave_out = self.personal | self.mutable | set(ident.columns)
            columns = hash_columns(self.sample, leave_out=leave_out) or [
                c for c in self.sample.names if c not in leave_out and not c.startswith("_")
            ]
            if not columns:
                raise DraftError(
                    "the export has no id column and no column to build a hash id from "
                    "that is not personal data: add a record number to the export"
                )
            why = ("rows without an id get a hash id" if ident.columns else ident.comment) + (
                ", built from the columns below (personal, status and outcome columns are "
                "left out: they change, or must not be derived from); if the feed comes "
                "split into disjoint files, add hash_file_name = true"
            )
            section.add("fallback", "hash", why)
            section.add("hash_columns", columns)
        return section

    def _blank_named(self, keys: tuple[str, ...]) -> str | None:
        """Return a column named for ``keys`` that is blank in the whole sample."""
        for col in self.sample.columns.values():
            if (
                not col.values
                and col.name not in self.taken
                and any(k in snake(col.name) for k in keys)
            ):
                self.blank_columns.add(col.name)
                return col.name
        return None

    def _update_id(
        self, offence: OffenceGuess, status: str | None, disposition: str | None
    ) -> str | None:
        if offence.constant is None or not (status or disposition):
            return None
        for col in self.sample.columns.values():
            if id_name_strength(col.name) == 2 and col.values and not col.blank:
                return col.name
        return None

    def _update_id_section(self, column: str) -> Section:
        section = Section("id")
        why = (
            f"guess: {column!r} is named like an id; the same id as the incident feed builds "
            "(its values may repeat: each row is one update)"
        )
        section.add("columns", [column], why)
        self.take(column)
        return section

    # -- dates -------------------------------------------------------------------------------
    def _dates(self) -> dict[str, DateGuess]:
        guesses: dict[str, DateGuess] = {}
        times: dict[str, list[str]] = {}
        for col in self.sample.columns.values():
            if col.name in self.taken or not col.values:
                continue
            found = None if "date" in col.name.lower() else guess_time(col.name, col.values)
            if found:
                times[col.name] = found
                continue
            guess = guess_date(col.name, col.values, self.now)
            if guess is not None:
                guesses[col.name] = guess
        for time_column, formats in times.items():
            partner = time_partner(time_column, guesses, len(times))
            if partner is not None:
                partner.time_column, partner.time_formats = time_column, formats
        self.mutable |= {n for n in guesses if date_role(n) == "skip"}
        return guesses

    def _choose_dates(self, dates: dict[str, DateGuess]) -> dict[str, DateGuess]:
        chosen: dict[str, DateGuess] = {}
        occurred = [g for g in dates.values() if date_role(g.column) == "occurred"]
        if occurred:
            chosen["occurred_from"] = max(occurred, key=lambda g: occurrence_score(g.column))
            ends = [g for g in dates.values() if date_role(g.column) == "end"]
            first = chosen["occurred_from"].column
            same = [g for g in ends if window_stem(g.column) == window_stem(first)]
            if same or len(ends) == 1:
                chosen["occurred_to"] = (same or ends)[0]
        reported = [g for g in dates.values() if date_role(g.column) == "reported"]
        if reported:
            chosen["reported_at"] = max(reported, key=lambda g: g.time_column is not None)
        return chosen

    def _date_sections(self, dates: dict[str, DateGuess]) -> list[Section]:
        chosen = self._choose_dates(dates)
        sections = []
        for key, guess in chosen.items():
            sections.append(self._date_section(key, guess))
        if "occurred_from" not in chosen:
            note = Section("")
            todo = (
                "TODO: no column reads as the occurrence date: incidents are stored with an "
                "unknown time; add [occurred_from] with the date column and its formats"
            )
            sections.insert(0, note)
            note.add(None, comment=todo)
        unused = [n for n in dates if n not in {g.column for g in chosen.values()}]
        if unused:
            self.notes.append(f"other date columns, not used: {', '.join(unused)}")
        return sections

    def _as_of(self, dates: dict[str, DateGuess]) -> list[Section]:
        usable = [g for g in dates.values() if date_role(g.column) != "skip"]
        if not usable:
            section = Section("as_of")
            section.notes.append(
                "TODO: no column reads as a date: name the column saying when each update "
                "took effect"
            )
            section.add("column", "TODO")
            return [section]
        best = max(usable, key=lambda g: occurrence_score(g.column))
        return [self._date_section("as_of", best)]

    def _date_section(self, key: str, guess: DateGuess) -> Section:
        section = Section(key)
        self.take(guess.column, guess.time_column)
        if guess.time_column:
            section.add("date_column", guess.column, _date_why(key, guess))
            section.add(
                "time_column",
                guess.time_column,
                f"guess: the time of day of {guess.column!r} (names match)",
            )
        else:
            section.add("column", guess.column, _date_why(key, guess))
        formats = self._formats(guess)
        section.add("formats", formats, self._format_why(guess, formats))
        if guess.time_column:
            section.add("time_formats", guess.time_formats, "guess: read every sampled time")
        placeholder = placeholder_time(self.sample.rows, guess, self.timezone)
        if placeholder is not None:
            section.add("placeholder_times", [placeholder.time], placeholder.describe())
        return section

    def _formats(self, guess: DateGuess) -> list[str]:
        if not guess.ambiguous or not self.timezone or self.timezone.startswith("America/"):
            return guess.formats
        return [swap_day_month(f) for f in guess.formats]

    def _format_why(self, guess: DateGuess, formats: list[str]) -> str:
        share = (
            f"all {guess.distinct}"
            if guess.read == guess.distinct
            else f"{guess.read} of the {guess.distinct}"
        )
        why = f"guess: read {share} distinct sampled values; {guess.precision} precision"
        if "year_month" in formats:
            why += " (stored as the whole month)"
        why += "".join(f"; {n}" for n in guess.notes)
        if guess.ambiguous:
            order = "day/month" if formats != guess.formats else "month/day"
            why = (
                f"TODO: every sampled day and month is 12 or less, so the order cannot be told "
                f"from the values: assumed {order}; swap %d and %m if that is wrong. " + why
            )
        if guess.read < guess.distinct:
            why += "; the other values would be quarantined: see them with profile check"
        return why

    # -- people and flags --------------------------------------------------------------------
    def _persons(self) -> list[Section]:
        sections = []
        for role, columns in sorted(guess_persons(self.sample, taken=self.taken).items()):
            section = Section("[persons]")
            why = f"guess: columns named for the {role}: personal data, stored encrypted"
            section.add("role", role, why)
            for key in ("name", "age", "sex"):
                if key in columns:
                    section.add(key, columns[key])
                    self.take(columns[key])
                    self.personal.add(columns[key])
            sections.append(section)
        return sections

    def _flags(self, narrative: str | None) -> list[Section]:
        flags = guess_flags(self.sample, taken=self.taken)
        if not flags and not narrative:
            return []
        section = Section("sensitivity")
        for flag, column in flags.items():
            self.take(column)
            why = f"guess: a yes/no column named for the {flag.replace('_', ' ')} flag"
            section.add(flag, {"column": column}, why)
        if narrative:
            section.add("keyword_columns", [narrative], "the narrative is scanned for keywords")
        return [section]

    # -- offences ------------------------------------------------------------------------------
    def _offence_section(self, offence: OffenceGuess) -> Section:
        section = Section("[offences]")
        why = offence.todo or offence.comment
        section.add("scheme", offence.scheme, why)
        for key in ("code", "description", "constant"):
            value = getattr(offence, key)
            if value is not None:
                section.add(key, value, _offence_key_why(key, offence))
        if not offence.todo and offence.code and offence.unmapped:
            shown = ", ".join(repr(v) for v in offence.unmapped[:8])
            self.notes.append(
                f"offence values {offence.scheme} does not map (stored unmapped and flagged; "
                f"`crossbeat taxonomy suggest` proposes codes): {shown}"
            )
        for score in offence.scores[:5]:
            if score.mapped:
                self.notes.append(score.describe())
        return section

    # -- what is left --------------------------------------------------------------------------
    def _unused(self, *, kept: bool) -> None:
        unused = [c for c in self.sample.names if c not in self.taken and not c.startswith("_")]
        personal = [c for c in unused if c in self.personal or is_personal(c)]
        shareable = [c for c in unused if c not in personal]
        if shareable and kept:
            self.top.add(
                "keep",
                shareable,
                "unused columns, not stored; uncomment to keep the ones worth keeping in each "
                "incident's attributes (shared with partners like the rest of the record)",
                off=True,
            )
        elif shareable:
            self.top.add(None, comment=f"unused columns, not stored: {', '.join(shareable)}")
        if personal:
            self.top.add(
                None,
                comment=f"personal data, not stored and never to keep: {', '.join(personal)}",
            )


def plan_sections(
    sample: Sample,
    *,
    layout_notes: list[str],
    source: SourceSpec,
    top_columns: list[str],
    file_name: str,
    name: str,
    agency: str | None,
    timezone: str | None,
    now: datetime,
) -> tuple[list[Section], list[str], list[str]]:
    """Return the sections of a draft profile, its preamble and notes for the findings.

    Parameters
    ----------
    sample
        The sampled records.
    layout_notes
        What format detection noticed (a declared CRS, the records key ...).
    source
        The ``[source]`` settings the sample was read with.
    top_columns
        The reader's own column names (top-level keys for JSON).
    file_name, name, agency, timezone
        The export's file name, the profile name, and the user's ``--agency`` and
        ``--timezone`` (or None).
    now
        The current time, to judge dates plausible.
    """
    planner = _Planner(
        sample,
        source,
        file_name=file_name,
        name=name,
        agency=agency,
        timezone=timezone,
        now=now,
    )
    sections = planner.plan(layout_notes)
    preamble = [
        f"DRAFT source profile for {file_name}, written by `crossbeat profile draft` from its "
        f"first {len(sample.rows)} records ({len(top_columns)} columns).",
        "Every guess is explained in a comment; settle each TODO, then check the profile "
        f"against the file: crossbeat profile check PROFILE.toml {file_name}",
    ]
    notes = [n for n in layout_notes if not n.startswith("TODO")] + planner.notes
    if sample.read_problems:
        notes.append(f"{sample.read_problems} sampled records have read problems (left out)")
    return sections, preamble, notes


# -- small helpers ---------------------------------------------------------------------------
def _entry(key: str, value: object, comment: str) -> Entry:
    return Entry(key, value, comment)


def _date_why(key: str, guess: DateGuess) -> str:
    what = {
        "occurred_from": "the occurrence date (or its start)",
        "occurred_to": "the end of the occurrence window",
        "reported_at": "the report date",
        "as_of": "when each update took effect",
    }[key]
    return f"guess: {guess.column!r} reads as dates and is named like {what}"


def _offence_key_why(key: str, offence: OffenceGuess) -> str:
    if key == "constant":
        return ""
    if key == "description" and offence.code:
        return "guess: one text per code, named like a description"
    return "the column the scheme maps"
