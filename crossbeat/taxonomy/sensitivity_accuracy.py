"""How well free-text sensitivity detection works, measured on a labelled set.

``data/narratives_labelled.csv`` holds short police narratives, each labelled with the
sensitivity flags a careful reader would give it (none for an ordinary incident). Its
columns:

``id``
    A unique id.
``split``
    ``tune`` (written and used while the rules were tuned and the narrative model was
    fitted: the training set) or ``holdout`` (the evaluation set: written in batches,
    each after the rules and the model it measures were frozen, measured once, never
    tuned or trained on).
``crime_against``
    ``person``, ``property``, ``society`` or empty: the kind of offence the record is
    filed under. Empty means a harmless or unknown code, the hard case.
``labels``
    Space-separated flags (``sexual_offence domestic_violence juvenile
    victim_identifying informant``), empty for an ordinary incident.
``text``
    The narrative.

:func:`measure` runs the same detection the ingest runs on every row
(:func:`crossbeat.taxonomy.sensitivity.keyword_sensitivity`) and reports recall per
flag, the share of sensitive narratives caught at all (what keeps them from the public)
and the false-positive rate on ordinary ones.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from crossbeat.model import Sensitivity
from crossbeat.taxonomy.narrative import explain
from crossbeat.taxonomy.nibrs import TaxonomyError
from crossbeat.taxonomy.sensitivity import narrative_sensitivity, rules_version

#: The labelled set shipped with CrossBeat.
LABELLED_SET = resources.files("crossbeat.taxonomy") / "data" / "narratives_labelled.csv"
SPLITS = ("tune", "holdout")
_CRIME_AGAINST = ("", "person", "property", "society")


@dataclass(frozen=True, slots=True)
class LabelledNarrative:
    """One narrative of the labelled set."""

    id: str
    split: str
    crime_against: str
    labels: frozenset[Sensitivity]
    text: str


@dataclass(frozen=True, slots=True)
class ClassScore:
    """Recall and precision of one flag."""

    flag: Sensitivity
    labelled: int
    found: int
    predicted: int

    @property
    def recall(self) -> float:
        """Share of narratives labelled with the flag that got it (1.0 when none)."""
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        """Share of narratives given the flag that are labelled with it (1.0 when none)."""
        return self.found / self.predicted if self.predicted else 1.0


@dataclass(frozen=True, slots=True)
class Miss:
    """A narrative whose flags differ from its labels."""

    id: str
    text: str
    labels: frozenset[Sensitivity]
    predicted: frozenset[Sensitivity]
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class AccuracyReport:
    """Figures of one measurement (see :func:`measure`)."""

    rules_version: str
    split: str
    rows: int
    sensitive: int
    caught: int
    complete: int
    ordinary: int
    false_positives: int
    classes: tuple[ClassScore, ...]
    micros_per_row: float
    misses: tuple[Miss, ...] = field(default=())
    false_alarms: tuple[Miss, ...] = field(default=())
    extra_flags: tuple[Miss, ...] = field(default=())

    @property
    def recall_any(self) -> float:
        """Share of sensitive narratives given at least one flag (kept from the public)."""
        return self.caught / self.sensitive if self.sensitive else 1.0

    @property
    def recall_all(self) -> float:
        """Share of sensitive narratives given every flag they are labelled with."""
        return self.complete / self.sensitive if self.sensitive else 1.0

    @property
    def false_positive_rate(self) -> float:
        """Share of ordinary narratives given any flag."""
        return self.false_positives / self.ordinary if self.ordinary else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain data (for ``--json``)."""

        def miss(m: Miss) -> dict[str, Any]:
            return {
                "id": m.id,
                "text": m.text,
                "labels": sorted(m.labels),
                "predicted": sorted(m.predicted),
                "reasons": list(m.reasons),
            }

        return {
            "rules_version": self.rules_version,
            "split": self.split,
            "rows": self.rows,
            "sensitive": self.sensitive,
            "recall_any_flag": round(self.recall_any, 4),
            "recall_all_flags": round(self.recall_all, 4),
            "ordinary": self.ordinary,
            "false_positives": self.false_positives,
            "false_positive_rate": round(self.false_positive_rate, 4),
            "classes": {
                c.flag.value: {
                    "labelled": c.labelled,
                    "found": c.found,
                    "recall": round(c.recall, 4),
                    "predicted": c.predicted,
                    "precision": round(c.precision, 4),
                }
                for c in self.classes
            },
            "micros_per_row": round(self.micros_per_row, 1),
            "misses": [miss(m) for m in self.misses],
            "false_alarms": [miss(m) for m in self.false_alarms],
            "extra_flags": [miss(m) for m in self.extra_flags],
        }


def load_labelled(path: str | Path | None = None) -> list[LabelledNarrative]:
    """Read a labelled narrative file (default: the shipped set).

    Raises
    ------
    TaxonomyError
        For a missing column, an unknown flag, split or ``crime_against`` value, a
        duplicate id or an empty text, naming the line.
    """
    source = Path(path) if path is not None else LABELLED_SET
    try:
        with io.StringIO(source.read_text(encoding="utf-8"), newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"id", "split", "crime_against", "labels", "text"} - set(
                reader.fieldnames or []
            )
            if missing:
                raise TaxonomyError(f"{source}: missing columns {sorted(missing)}")
            rows: list[LabelledNarrative] = []
            seen: set[str] = set()
            for line, rec in enumerate(reader, start=2):
                rows.append(_row(source, line, rec, seen))
    except OSError as exc:
        raise TaxonomyError(f"cannot read the labelled set {source}: {exc}") from exc
    return rows


def _row(source: Any, line: int, rec: dict[str, str], seen: set[str]) -> LabelledNarrative:
    where = f"{source}, line {line}"
    rid = (rec.get("id") or "").strip()
    if not rid or rid in seen:
        raise TaxonomyError(f"{where}: id {rid!r} is empty or repeated")
    seen.add(rid)
    split = (rec.get("split") or "").strip()
    if split not in SPLITS:
        raise TaxonomyError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)}")
    against = (rec.get("crime_against") or "").strip()
    if against not in _CRIME_AGAINST:
        raise TaxonomyError(f"{where}: crime_against {against!r} is not person/property/society")
    try:
        labels = frozenset(Sensitivity(x) for x in (rec.get("labels") or "").split())
    except ValueError as exc:
        valid = ", ".join(s.value for s in Sensitivity)
        raise TaxonomyError(f"{where}: {exc}; flags are {valid}") from exc
    text = (rec.get("text") or "").strip()
    if not text:
        raise TaxonomyError(f"{where}: empty text")
    return LabelledNarrative(rid, split, against, labels, text)


def detect(row: LabelledNarrative) -> frozenset[Sensitivity]:
    """Return the flags the ingest would give this narrative (its free-text part)."""
    return narrative_sensitivity(row.text, person_crime=row.crime_against == "person")


def measure_splits(rows: Sequence[LabelledNarrative]) -> list[AccuracyReport]:
    """Measure the held-out (evaluation) rows and the tune (training) rows separately.

    Splits with no rows are left out (an own file may hold only one).
    """
    present = {r.split for r in rows}
    return [measure(rows, split) for split in ("holdout", "tune") if split in present]


def holdout_batches(rows: Sequence[LabelledNarrative]) -> list[tuple[str, int, int, int, int]]:
    """Return, per writing batch of the held-out rows, (batch, sensitive, caught, ordinary,
    flagged): recall and false positives of each batch written after a freeze."""
    from crossbeat.taxonomy.narrative_model import batches

    held = [r for r in rows if r.split == "holdout"]
    out = []
    for batch in sorted(set(batches([r.id for r in held]))):
        chosen = [r for r, b in zip(held, batches([r.id for r in held]), strict=True) if b == batch]
        found = [detect(r) for r in chosen]
        out.append(
            (
                batch,
                sum(1 for r in chosen if r.labels),
                sum(1 for r, f in zip(chosen, found, strict=True) if r.labels and f),
                sum(1 for r in chosen if not r.labels),
                sum(1 for r, f in zip(chosen, found, strict=True) if not r.labels and f),
            )
        )
    return out


def measure(rows: Sequence[LabelledNarrative], split: str = "all") -> AccuracyReport:
    """Measure detection on the rows of a split (``tune``, ``holdout`` or ``all``).

    Raises
    ------
    TaxonomyError
        For an unknown split name or a split with no rows.
    """
    if split not in (*SPLITS, "all"):
        raise TaxonomyError(f"unknown split {split!r}; use tune, holdout or all")
    chosen = [r for r in rows if split == "all" or r.split == split]
    if not chosen:
        raise TaxonomyError(f"the labelled set has no rows in split {split!r}")
    version = rules_version()
    narrative_sensitivity("warm up the rules and the narrative model")
    # Timing: CPU time of this process (not wall time, which a busy machine inflates),
    # the best of three passes as timeit does; the first pass also fills the lemma
    # cache, as an ingest of many rows does.
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        predicted = [detect(r) for r in chosen]
        best = min(best, time.process_time() - start)
    micros = best * 1e6 / len(chosen)
    return _score(chosen, predicted, split, version, micros)


def _score(
    rows: Sequence[LabelledNarrative],
    predicted: Sequence[frozenset[Sensitivity]],
    split: str,
    version: str,
    micros: float,
) -> AccuracyReport:
    classes = []
    for flag in Sensitivity:
        labelled = [flag in r.labels for r in rows]
        given = [flag in p for p in predicted]
        classes.append(
            ClassScore(
                flag,
                labelled=sum(labelled),
                found=sum(a and b for a, b in zip(labelled, given, strict=True)),
                predicted=sum(given),
            )
        )
    sensitive = [(r, p) for r, p in zip(rows, predicted, strict=True) if r.labels]
    ordinary = [(r, p) for r, p in zip(rows, predicted, strict=True) if not r.labels]
    return AccuracyReport(
        rules_version=version,
        split=split,
        rows=len(rows),
        sensitive=len(sensitive),
        caught=sum(1 for _, p in sensitive if p),
        complete=sum(1 for r, p in sensitive if r.labels <= p),
        ordinary=len(ordinary),
        false_positives=sum(1 for _, p in ordinary if p),
        classes=tuple(classes),
        micros_per_row=micros,
        misses=tuple(_miss(r, p) for r, p in sensitive if not r.labels <= p),
        false_alarms=tuple(_miss(r, p) for r, p in ordinary if p),
        extra_flags=tuple(_miss(r, p) for r, p in sensitive if p - r.labels),
    )


def _miss(row: LabelledNarrative, predicted: frozenset[Sensitivity]) -> Miss:
    reasons = tuple(
        f"{f.flag.value}: {f.reason}"
        for f in explain(row.text, person_crime=row.crime_against == "person")
    )
    return Miss(row.id, row.text, row.labels, predicted, reasons)


_TITLES = {
    "holdout": "HELD-OUT evaluation set (never tuned or trained on)",
    "tune": "TUNE training set (the rules were tuned and the model fitted on it)",
    "all": "all rows",
}


def render(report: AccuracyReport, *, errors: bool = False) -> Iterable[str]:
    """Yield the lines of a plain-text report."""
    yield f"== {_TITLES.get(report.split, report.split)}"
    yield (
        f"sensitivity rules {report.rules_version}, split {report.split}: "
        f"{report.rows} narratives ({report.sensitive} sensitive, {report.ordinary} ordinary)"
    )
    yield f"{'flag':<20} {'labelled':>8} {'found':>6} {'recall':>7} {'given':>6} {'precision':>9}"
    for c in report.classes:
        yield (
            f"{c.flag.value:<20} {c.labelled:>8} {c.found:>6} {c.recall:>7.3f} "
            f"{c.predicted:>6} {c.precision:>9.3f}"
        )
    yield (
        f"sensitive narratives given at least one flag (kept from the public): "
        f"{report.caught}/{report.sensitive} = recall {report.recall_any:.3f}"
    )
    yield (
        f"sensitive narratives given every labelled flag: "
        f"{report.complete}/{report.sensitive} = {report.recall_all:.3f}"
    )
    yield (
        f"ordinary narratives given a flag: {report.false_positives}/{report.ordinary} = "
        f"false-positive rate {report.false_positive_rate:.3f}"
    )
    yield f"detection time: {report.micros_per_row:.0f} µs of CPU per narrative"
    if errors:
        sections = (
            ("missed (a labelled flag not given)", report.misses),
            ("false alarms (an ordinary narrative given a flag)", report.false_alarms),
            ("extra flags (a sensitive narrative given a flag it is not labelled with)",
             report.extra_flags),
        )  # fmt: skip
        for title, items in sections:
            if items:
                yield f"{title}:"
            for m in items:
                labels = " ".join(sorted(m.labels)) or "-"
                got = " ".join(sorted(m.predicted)) or "-"
                yield f"  {m.id} [{labels}] got [{got}]: {m.text}"
                for reason in m.reasons:
                    yield f"      {reason}"
