"""Every shell command shown in README.md and docs/*.md runs, as written (issue 6).

The commands of each document's fenced ``sh`` blocks run in order in one bash session,
as a reader would type them into one terminal: ``export`` and ``source`` carry over.
The session starts in a fresh folder holding a fresh demo (``crossbeat demo
--no-serve``), a ``.venv`` (this Python's environment), the repository's ``examples``,
and stand-ins for the files the walkthrough names as the reader's own (``export.csv``,
``export-*.csv``, ``boroughs.geojson``, ``wards.gpkg``, ``*-outcomes.csv``): a small
police.uk-format export of the City of London Police and its areas, generated here.

What is not run as written, and why (keep this list short):

* :data:`SKIPPED` commands, which cannot run inside a test;
* :data:`PLACEHOLDERS`, words that stand for a value the reader picks from an earlier
  command's output, replaced by such a value.

Blocks marked ``console`` are transcripts (with output and ``$`` prompts) and are not run.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from crossbeat.vault.kek import KEK_FILE_SETTING, KEK_SETTING

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Commands that cannot run in a test (matched on their start), with the reason.
SKIPPED = {
    "make demo": "serves until stopped; the demo it builds is what these commands run on",
    "make test": "the test suite itself",
    "make bench": "a benchmark that runs for minutes (benchmarks/run.py)",
    "python benchmarks/run.py": "a benchmark that runs for minutes",
    "python benchmarks/reads.py": "a benchmark that builds 1 M incidents (docs/benchmarks.md)",
    "curl http://127.0.0.1:8000/": "needs the server `make demo` starts on port 8000 "
    "(tests/test_api_health.py serves /health)",
}

#: A stand-in Crime ID of the generated export: the reader's SOURCE_ID.
FIRST_ID = "c0" * 32
#: Words that stand for a value the reader takes from an earlier output.
PLACEHOLDERS = {"SOURCE_ID": FIRST_ID}


@dataclass(frozen=True)
class Command:
    """One shell command of a document: where it is, and its text."""

    doc: str
    line: int
    text: str


def shell_commands(path: Path) -> list[Command]:
    """Return the commands of a document's ``sh`` blocks (continuation lines joined)."""
    found: list[Command] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    fence: str | None = None
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if fence is None:
            match = re.fullmatch(r"```(\w*)", stripped)
            if match:
                fence = match.group(1) or "text"
            continue
        if stripped == "```":
            fence = None
            continue
        if fence not in ("sh", "bash", "shell") or not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(stripped[:-1].rstrip() if stripped.endswith("\\") else stripped)
        if not stripped.endswith("\\"):
            found.append(Command(path.name, start, " ".join(pending)))
            pending = []
    return found


def skip_reason(command: Command) -> str | None:
    """Return why a command is not run, or None when it is."""
    return next((why for start, why in SKIPPED.items() if command.text.startswith(start)), None)


# -- the stand-in files ---------------------------------------------------------------------
CITY = (-0.1140, 51.5065, -0.0730, 51.5230)  # the City of London, roughly
CRIME_TYPES = ("Burglary", "Theft from the person", "Other theft", "Shoplifting", "Drugs")


def _crime_ids(n: int) -> list[str]:
    rnd = random.Random(6)
    return [FIRST_ID] + [f"{rnd.getrandbits(256):064x}" for _ in range(n - 1)]


def _street_csv(ids: list[str], month: str) -> str:
    rnd = random.Random(month)
    header = (
        "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,"
        "LSOA name,Crime type,Last outcome category,Context"
    )
    rows = []
    for i, crime in enumerate(ids):
        lon = rnd.uniform(CITY[0] + 0.005, CITY[2] - 0.005)
        lat = rnd.uniform(CITY[1] + 0.003, CITY[3] - 0.003)
        rows.append(
            f"{crime},{month},City of London Police,City of London Police,{lon:.6f},{lat:.6f},"
            f"On or near Cheapside,E01032739,City of London 001F,{CRIME_TYPES[i % 5]},"
            "Under investigation,"
        )
    return header + "\n" + "\n".join(rows) + "\n"


def _outcomes_csv(ids: list[str], month: str) -> str:
    header = (
        "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,"
        "LSOA name,Outcome type"
    )
    rows = [
        f"{crime},{month},City of London Police,City of London Police,-0.092,51.514,"
        "On or near Cheapside,E01032739,City of London 001F,"
        "Investigation complete; no suspect identified"
        for crime in ids
    ]
    return header + "\n" + "\n".join(rows) + "\n"


def _boroughs() -> dict[str, object]:
    def box(name: str, x0: float, y0: float, x1: float, y1: float) -> dict[str, object]:
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {
            "type": "Feature",
            "properties": {"name": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    return {
        "type": "FeatureCollection",
        "features": [
            box("City of London", *CITY),
            box("Westminster", -0.20, 51.48, -0.1141, 51.54),
        ],
    }


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory, kek_text: str) -> Path:
    """Build the demo once (``crossbeat demo --no-serve``); each document gets a copy."""
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if k != KEK_FILE_SETTING}
    env[KEK_SETTING] = kek_text  # as the tests' environment has it (conftest._kek_setting)
    demo = subprocess.run(
        [sys.executable, "-m", "crossbeat", "demo", "--no-serve", "--size", "0.05"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    return folder


def _reader_folder(folder: Path, demo_folder: Path) -> None:
    """Write a copy of the fresh demo and the reader's own files into ``folder``."""
    shutil.copytree(demo_folder, folder, symlinks=True, dirs_exist_ok=True)
    (folder / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (folder / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    ids = _crime_ids(24)
    (folder / "export.csv").write_text(_street_csv(ids, "2020-01"), encoding="utf-8")
    (folder / "export-2020-01.csv").write_text(_street_csv(ids[:16], "2020-01"), encoding="utf-8")
    (folder / "export-2020-02.csv").write_text(_street_csv(ids[16:], "2020-02"), encoding="utf-8")
    (folder / "2020-03-city-of-london-outcomes.csv").write_text(
        _outcomes_csv(ids[1:6], "2020-03"), encoding="utf-8"
    )
    (folder / "boroughs.geojson").write_text(json.dumps(_boroughs()), encoding="utf-8")
    _wards(folder / "wards.gpkg")


def _wards(path: Path) -> None:
    """Write a GeoPackage of three wards splitting the City west to east (``WARD_NAME``)."""
    from pyogrio.raw import write
    from shapely import box, to_wkb

    x0, y0, x1, y1 = CITY
    step = (x1 - x0) / 3
    names = ["Farringdon Within", "Cheap", "Aldgate"]
    shapes = [box(x0 + i * step, y0, x0 + (i + 1) * step, y1) for i in range(3)]
    write(path, to_wkb(shapes), [np.array(names, dtype=object)], fields=["WARD_NAME"],
          geometry_type="Polygon", crs="EPSG:4326", driver="GPKG")  # fmt: skip


# -- running a document ------------------------------------------------------------------------
def _script(commands: list[Command]) -> str:
    parts = ["exec 2>&1", "set -o pipefail"]  # each command's errors next to its output
    for i, command in enumerate(commands):
        text = command.text
        for word, value in PLACEHOLDERS.items():
            text = re.sub(rf"\b{word}\b", value, text)
        parts.append(f"printf '\\n@@BEGIN {i}\\n'")
        parts.append(text)
        parts.append(f"printf '\\n@@END {i} %s\\n' \"$?\"")
    return "\n".join(parts) + "\n"


def _outcomes(output: str, n: int) -> dict[int, tuple[int, str]]:
    found: dict[int, tuple[int, str]] = {}
    for match in re.finditer(r"@@BEGIN (\d+)\n(.*?)\n@@END \1 (\d+)\n", output, re.S):
        found[int(match.group(1))] = (int(match.group(3)), match.group(2))
    assert len(found) == n, output[-3000:]
    return found


DOCUMENTS = [path for path in DOCS if shell_commands(path)]


@pytest.mark.slow
@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_shell_command_of_the_document_runs(
    path: Path, tmp_path: Path, demo_folder: Path
) -> None:
    commands = [c for c in shell_commands(path) if skip_reason(c) is None]
    _reader_folder(tmp_path, demo_folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBEAT_DB")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    run = subprocess.run(
        ["bash", "-c", _script(commands)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    results = _outcomes(run.stdout, len(commands))
    failed = [
        f"{path.name}:{c.line}: exit {results[i][0]}: {c.text}\n{results[i][1][-1500:]}"
        for i, c in enumerate(commands)
        if results[i][0] != 0
    ]
    assert not failed, "\n\n".join(failed)


def test_the_commands_are_found_and_the_skip_list_stays_small() -> None:
    readme = shell_commands(ROOT / "README.md")
    texts = [c.text for c in readme]
    assert any(t.startswith("crossbeat agency list") for t in texts)
    assert any(t.startswith("crossbeat agency add colp") and "City of London" in t for t in texts)
    skipped = [c for path in DOCS for c in shell_commands(path) if skip_reason(c)]
    assert len(skipped) <= len(SKIPPED) + 1, [c.text for c in skipped]
    for start in SKIPPED:  # no stale entry
        assert any(c.text.startswith(start) for path in DOCS for c in shell_commands(path)), start
