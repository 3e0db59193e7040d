"""Crosswalks: one TOML file per local offence scheme, mapping local codes to NIBRS.

A crosswalk is data, reviewed like code. Its format is documented in
``docs/taxonomy.md``; in short::

    [crosswalk]
    scheme = "police-uk"          # must equal the file name without .toml
    version = "2026.11.0"
    description = "..."
    source = "where the local codes come from"
    key = "code"                  # match on the local "code" or the "description" text

    [[map]]                       # exact entries, matched first
    local = "Burglary"
    aliases = []                  # other spellings of the same local code
    name = ""                     # what the local code means (for numeric codes)
    nibrs = "220"                 # a NIBRS code, or "none" = not a criminal offence
    # call = "alarm"              # or, instead of nibrs: a call-for-service category
    match = "exact"               # exact | narrower | broader | approximate
    sensitivity = []              # extra flags implied by this local code
    note = "why"

    [[pattern]]                   # regular expressions, tried in file order afterwards
    regex = '^459\\b'
    nibrs = "220"
    match = "narrower"

Local codes are compared case-insensitively with runs of whitespace collapsed. A code
that no entry or pattern matches is *unmapped*: the offence keeps its local code, its
``match`` is None and nothing is guessed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crossbeat.model import CrimeAgainst, Offence, Sensitivity
from crossbeat.taxonomy.calls import CALL_PREFIX, call_categories
from crossbeat.taxonomy.nibrs import TaxonomyError, nibrs_offences

#: How a local code relates to the NIBRS offence it is mapped to.
MATCH_LEVELS: tuple[str, ...] = ("exact", "narrower", "broader", "approximate")

#: The ``nibrs`` value of a local code that is explicitly not a criminal offence.
NOT_A_CRIME = "none"

_BUILTIN_DIR = Path(str(resources.files("crossbeat.taxonomy") / "data" / "crosswalks"))

MatchLevel = Literal["exact", "narrower", "broader", "approximate"]


def normalise_local(text: str) -> str:
    """Return ``text`` as crosswalks compare it: whitespace collapsed, case folded.

    Examples
    --------
    >>> normalise_local("459 PC  BURGLARY   Residence ")
    '459 pc burglary residence'
    """
    return " ".join(text.split()).casefold()


# -- the file format (validated once, at load time) ----------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Header(_Strict):
    scheme: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    source: str = ""
    key: Literal["code", "description"] = "code"


class _Rule(_Strict):
    #: A NIBRS code or "none"; exactly one of ``nibrs`` and ``call`` is given.
    nibrs: str | None = Field(default=None, min_length=1)
    #: A call-for-service category (``data/call_categories.csv``) instead of an offence.
    call: str | None = Field(default=None, min_length=1)
    match: MatchLevel
    sensitivity: list[Sensitivity] = Field(default_factory=list)
    #: Override the crime-against category of the NIBRS code (e.g. for 90Z).
    crime_against: CrimeAgainst | None = None
    #: What the local code means, for schemes whose codes are numbers.
    name: str = ""
    note: str = ""


class _MapEntry(_Rule):
    local: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)


class _PatternEntry(_Rule):
    regex: str = Field(min_length=1)


class _File(_Strict):
    crosswalk: _Header
    map: list[_MapEntry] = Field(default_factory=list)
    pattern: list[_PatternEntry] = Field(default_factory=list)


# -- loaded form ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CrosswalkRule:
    """One mapping of a crosswalk: an exact local code or a pattern, and its target."""

    #: The local code as written in the file, or the pattern's regular expression.
    local: str
    #: A NIBRS offence code, or :data:`NOT_A_CRIME` (also for a call for service).
    nibrs: str
    match: str
    sensitivity: frozenset[Sensitivity]
    crime_against: CrimeAgainst | None = None
    #: What the local code means (optional; for numeric schemes such as NCIC).
    name: str = ""
    note: str = ""
    is_pattern: bool = False
    #: The call-for-service category, when the local code is a call, not an offence.
    call_category: str | None = None

    @property
    def not_a_crime(self) -> bool:
        """Whether the rule says the local code is not a criminal offence."""
        return self.nibrs == NOT_A_CRIME

    @property
    def target(self) -> str:
        """The rule's target: a NIBRS code, ``none`` or ``call:<category>``."""
        return CALL_PREFIX + self.call_category if self.call_category else self.nibrs


class Crosswalk:
    """A loaded, validated crosswalk for one local offence scheme."""

    def __init__(
        self,
        *,
        scheme: str,
        version: str,
        description: str,
        source: str,
        key: str,
        entries: Mapping[str, CrosswalkRule],
        patterns: Sequence[tuple[re.Pattern[str], CrosswalkRule]],
        path: Path | None = None,
    ) -> None:
        self.scheme = scheme
        self.version = version
        self.description = description
        self.source = source
        self.key = key
        self.path = path
        self._entries = dict(entries)
        self._patterns = tuple(patterns)

    def __repr__(self) -> str:
        return f"Crosswalk({self.scheme!r}, version={self.version!r}, rules={len(self)})"

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def rules(self) -> tuple[CrosswalkRule, ...]:
        """Every rule of the file: exact entries (without aliases), then patterns."""
        exact = {id(r): r for r in self._entries.values()}
        return (*exact.values(), *(rule for _, rule in self._patterns))

    def lookup(self, local: str) -> CrosswalkRule | None:
        """Return the rule that maps a local code, or None when it is unmapped.

        Parameters
        ----------
        local
            The local code (or description, for description-keyed schemes).

        Returns
        -------
        CrosswalkRule or None
            The exact entry if there is one, else the first matching pattern.
        """
        norm = normalise_local(local)
        if not norm:
            return None
        rule = self._entries.get(norm)
        if rule is not None:
            return rule
        collapsed = " ".join(local.split())
        for regex, pattern_rule in self._patterns:
            if regex.search(collapsed):
                return pattern_rule
        return None

    def classify(
        self, code: str | None, description: str | None = None
    ) -> tuple[Offence, frozenset[Sensitivity]]:
        """Classify one local offence through this crosswalk.

        Parameters
        ----------
        code
            The local offence code as received (may be None when the description
            carries it).
        description
            The local description or statute text, if any.

        Returns
        -------
        tuple[Offence, frozenset[Sensitivity]]
            The offence (``match`` None when the local code is unmapped: it is then
            flagged, never guessed) and the sensitivity flags implied by the NIBRS
            code and by the crosswalk rule.

        Raises
        ------
        TaxonomyError
            When neither a code nor a description is given.
        """
        code = code.strip() if code and code.strip() else None
        description = description.strip() if description and description.strip() else None
        if self.key == "description":
            local = description or code
        else:
            local = code or description
        if local is None:
            raise TaxonomyError(
                f"an offence of scheme {self.scheme!r} has neither a code nor a description: "
                "check the profile's [[offences]] columns"
            )
        base = Offence(
            local_code=local,
            local_description=description,
            scheme=self.scheme,
            crosswalk_version=self.version,
        )
        rule = self.lookup(local)
        if rule is None:
            return base, frozenset()
        if rule.not_a_crime:
            offence = Offence(
                local_code=local,
                local_description=description,
                scheme=self.scheme,
                crosswalk_version=self.version,
                crime_against=CrimeAgainst.NOT_A_CRIME,
                match=rule.match,
                call_category=rule.call_category,
            )
            return offence, rule.sensitivity
        nibrs = nibrs_offences()[rule.nibrs]
        offence = Offence(
            local_code=local,
            local_description=description,
            scheme=self.scheme,
            crosswalk_version=self.version,
            nibrs_code=nibrs.code,
            crime_against=rule.crime_against or nibrs.crime_against,
            ucr_part1=nibrs.ucr_part1,
            match=rule.match,
        )
        return offence, nibrs.sensitivity | rule.sensitivity


# -- reading and validating files ------------------------------------------------------
def _format_validation_error(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "file"
        problems.append(f"{where}: {err['msg']}")
    return problems


def _parse(path: Path) -> tuple[_File | None, list[str]]:
    try:
        with path.open("rb") as fh:
            raw: Any = tomllib.load(fh)
    except OSError as exc:
        return None, [f"cannot read the file: {exc.strerror or exc}"]
    except tomllib.TOMLDecodeError as exc:
        return None, [f"not valid TOML: {exc}"]
    try:
        return _File.model_validate(raw), []
    except ValidationError as exc:
        return None, _format_validation_error(exc)


def _check_target(where: str, rule: _Rule, problems: list[str]) -> None:
    if (rule.nibrs is None) == (rule.call is None):
        problems.append(
            f"{where}: give either nibrs (an offence, or {NOT_A_CRIME!r}) or call (a "
            "call-for-service category), not both or neither"
        )
        return
    if rule.call is not None:
        if rule.call not in call_categories():
            problems.append(
                f"{where}: unknown call category {rule.call!r}; use one of "
                f"{', '.join(call_categories())} (call_categories.csv)"
            )
        if rule.crime_against is not None:
            problems.append(f"{where}: crime_against cannot be set on a call for service")
        return
    if rule.nibrs != NOT_A_CRIME and rule.nibrs not in nibrs_offences():
        problems.append(
            f"{where}: unknown NIBRS code {rule.nibrs!r} (see nibrs_offences.csv, "
            f'or use "{NOT_A_CRIME}" for a local code that is not a criminal offence)'
        )
    if rule.nibrs == NOT_A_CRIME and rule.crime_against not in (None, CrimeAgainst.NOT_A_CRIME):
        problems.append(f"{where}: crime_against cannot be set on a {NOT_A_CRIME!r} entry")


def _semantic_problems(path: Path, parsed: _File) -> list[str]:
    problems: list[str] = []
    if parsed.crosswalk.scheme != path.stem:
        problems.append(
            f"crosswalk.scheme {parsed.crosswalk.scheme!r} differs from the file name "
            f"{path.name!r}: name the file {parsed.crosswalk.scheme}.toml"
        )
    seen: dict[str, int] = {}
    for i, entry in enumerate(parsed.map):
        where = f"map[{i}] ({entry.local!r})"
        _check_target(where, entry, problems)
        for name in (entry.local, *entry.aliases):
            norm = normalise_local(name)
            if not norm:
                problems.append(f"{where}: empty local code or alias")
            elif norm in seen:
                problems.append(
                    f"{where}: duplicate local code {name!r} (already in map[{seen[norm]}])"
                )
            else:
                seen[norm] = i
    for i, pat in enumerate(parsed.pattern):
        where = f"pattern[{i}] ({pat.regex!r})"
        _check_target(where, pat, problems)
        try:
            re.compile(pat.regex, re.IGNORECASE)
        except re.error as exc:
            problems.append(f"{where}: bad regular expression: {exc}")
    return problems


def validate_crosswalk_file(path: Path) -> list[str]:
    """Return every problem of a crosswalk file (an empty list when it is valid).

    Checks the TOML syntax and structure, the match levels and sensitivity flags,
    that every NIBRS code exists, that no local code (or alias) appears twice, that
    every regular expression compiles and that ``scheme`` equals the file stem.

    Parameters
    ----------
    path
        The ``<scheme>.toml`` file.

    Returns
    -------
    list[str]
        Human-readable problems, each naming where in the file it is.
    """
    path = Path(path)
    parsed, problems = _parse(path)
    if parsed is None:
        return problems
    return _semantic_problems(path, parsed)


def _build(path: Path) -> Crosswalk:
    parsed, problems = _parse(path)
    if parsed is not None:
        problems = _semantic_problems(path, parsed)
    if parsed is None or problems:
        listing = "\n  - ".join(problems)
        raise TaxonomyError(
            f"crosswalk {path} is invalid; fix these problems "
            f"(`crossbeat taxonomy check {path}` lists them):\n  - {listing}"
        )
    entries: dict[str, CrosswalkRule] = {}
    for entry in parsed.map:
        rule = CrosswalkRule(
            local=entry.local,
            nibrs=entry.nibrs or NOT_A_CRIME,
            match=entry.match,
            sensitivity=frozenset(entry.sensitivity),
            crime_against=entry.crime_against,
            name=entry.name,
            note=entry.note,
            call_category=entry.call,
        )
        for name in (entry.local, *entry.aliases):
            entries[normalise_local(name)] = rule
    patterns = [
        (
            re.compile(p.regex, re.IGNORECASE),
            CrosswalkRule(
                local=p.regex,
                nibrs=p.nibrs or NOT_A_CRIME,
                match=p.match,
                sensitivity=frozenset(p.sensitivity),
                crime_against=p.crime_against,
                name=p.name,
                note=p.note,
                is_pattern=True,
                call_category=p.call,
            ),
        )
        for p in parsed.pattern
    ]
    head = parsed.crosswalk
    return Crosswalk(
        scheme=head.scheme,
        version=head.version,
        description=head.description,
        source=head.source,
        key=head.key,
        entries=entries,
        patterns=patterns,
        path=path,
    )


@lru_cache(maxsize=64)
def _load_cached(path: Path, mtime_ns: int, size: int) -> Crosswalk:
    # Keyed by modification time and size too, so an edited agency crosswalk is
    # re-read by a long-running process instead of being served stale.
    return _build(path)


def available_crosswalks(extra_dirs: Sequence[Path] = ()) -> dict[str, Path]:
    """Return every known scheme and the file that defines it.

    Parameters
    ----------
    extra_dirs
        Agency-local crosswalk folders, searched before the shipped crosswalks; the
        first file found for a scheme wins.

    Returns
    -------
    dict[str, Path]
        Scheme name to ``<scheme>.toml`` path, sorted by scheme.
    """
    found: dict[str, Path] = {}
    for folder in (*(Path(d) for d in extra_dirs), _BUILTIN_DIR):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            found.setdefault(path.stem, path)
    return dict(sorted(found.items()))


def load_crosswalk(scheme: str, extra_dirs: Sequence[Path] = ()) -> Crosswalk:
    """Load the crosswalk of a local offence scheme.

    Parameters
    ----------
    scheme
        The scheme name, e.g. ``"police-uk"`` or ``"sacramento-statute"``.
    extra_dirs
        Agency-local crosswalk folders, searched before the shipped crosswalks.

    Returns
    -------
    Crosswalk
        The validated crosswalk (cached until its file changes).

    Raises
    ------
    TaxonomyError
        When no file defines the scheme (the message lists the available ones) or
        when the file is invalid (the message lists every problem).
    """
    known = available_crosswalks(extra_dirs)
    path = known.get(scheme)
    if path is None:
        where = ", ".join(str(d) for d in extra_dirs) or "no agency crosswalk folder"
        raise TaxonomyError(
            f"unknown offence scheme {scheme!r}; available: {', '.join(known) or 'none'}. "
            f"Fix the profile's scheme, or add {scheme}.toml to an agency crosswalk "
            f"folder (searched: {where})"
        )
    stat = path.stat()
    return _load_cached(path.resolve(), stat.st_mtime_ns, stat.st_size)
