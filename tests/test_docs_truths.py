"""Messages, drafts and docs that say what is true (issue 6, "Docs and code")."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pyproj import CRS

from crossbeat.cli import cli
from crossbeat.ingest.draft import draft_profile
from crossbeat.ingest.draft.columns import projected
from crossbeat.ingest.normalise import Rejected
from crossbeat.ingest.source import undecodable_problem
from crossbeat.taxonomy.coverage import format_share
from tests.test_cli_newcomer_errors import PROFILE, one_line_error
from tests.test_ingest_normalise import GOOD, RMS, normaliser, profile, rec

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def test_profiles_md_says_the_provenance_hash_is_keyed() -> None:
    text = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    provenance = text[text.index("**Provenance.**") :].split("\n\n")[0]
    assert "HMAC-SHA256" in provenance and "fingerprint key" in provenance
    assert not re.search(r"records .* and the SHA-256 of", provenance)


def test_the_state_plane_hint_names_each_code_with_its_real_foot() -> None:
    hint = projected("X", "Y", (7_641_000, 7_700_000), (681_000, 700_000), None).hint or ""
    assert "EPSG:2913" in hint
    us_part, intl_part = hint.split("US survey feet", 1)[1].split("international feet", 1)
    for part, unit in ((us_part, "US survey foot"), (intl_part, "foot")):
        codes = re.findall(r"EPSG:(\d+)", part)
        assert codes, hint
        for code in codes:
            assert CRS.from_epsg(int(code)).axis_info[0].unit_name == unit, code


def test_draft_prefers_the_case_type_with_its_description_over_a_coarse_category(
    tmp_path: Path,
) -> None:
    types = [(f"T{n:02d}", f"CASE TYPE NUMBER {n} DESCRIBED") for n in range(30)]
    lines = ["Case Number,Occurred,Category,Case Type,Case Type Description,Lat,Lon"]
    for i in range(300):
        code, text = types[(i * 7) % len(types)]
        category = ("PART 1", "PART 2", "OTHER", "TRAFFIC")[i % 4]
        lines.append(
            f"C{i:05d},2024-03-{1 + i % 28:02d} 10:{i % 60:02d},{category},{code},{text},"
            f"{38.5 + i / 10000:.5f},{-121.5 - i / 10000:.5f}"
        )
    path = tmp_path / "calls.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (offence,) = draft_profile(path, timezone="America/Los_Angeles").profile.offences
    assert offence.code == "Case Type"
    assert offence.description == "Case Type Description"


def test_an_unreadable_file_names_itself_in_the_next_step(tmp_path: Path) -> None:
    prof = tmp_path / "tiny.toml"
    prof.write_text(PROFILE, encoding="utf-8")
    data = tmp_path / "export-2024.csv"
    data.write_text("ID,WHEN,LONGITUDE,LAT,CODE\n1,2023-03-04,-82.9,39.9,220\n", encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'x.db'}"
    added = run("agency", "add", "cityx", "--name", "City X", "--timezone", "America/New_York",
                "--db", db)  # fmt: skip
    assert added.exit_code == 0, added.output
    out = run("ingest", "--db", db, "--agency", "cityx", "--profile", str(prof), str(data))
    one_line_error(out, "'LON'", f"crossbeat profile check {prof} {data}")
    assert not out.output.rstrip().endswith("FILE")
    assert "PROFILE FILE" not in out.output


def test_a_decode_error_under_auto_does_not_advise_auto() -> None:
    detected = undecodable_problem("NAME", b"\xe9", "utf-8", True)
    assert 'instead of "auto"' in detected and 'or to "auto"' not in detected
    declared = undecodable_problem("NAME", b"\xe9", "utf-8", False)
    assert 'or to "auto"' in declared


@pytest.mark.parametrize(
    ("part", "whole", "shown"),
    [(2244, 2245, "99.9%"), (2245, 2245, "100.0%"), (1, 10_000, "0.1%"), (0, 5, "0.0%"),
     (999_999, 1_000_000, "99.9%"), (1, 2, "50.0%")],
)  # fmt: skip
def test_a_share_reads_100_only_when_it_is(part: int, whole: int, shown: str) -> None:
    assert format_share(part, whole) == shown


def test_a_missing_column_is_not_called_blank() -> None:
    fields = {k: v for k, v in GOOD.items() if k != "LAT"}
    result = normaliser(profile(RMS)).normalise(rec(1, **fields))
    assert isinstance(result, Rejected)
    (reason,) = result.reasons
    assert "column 'LAT' is not in this record, but column 'LON' holds" in reason
    assert "blank" not in reason


@pytest.fixture
def demo_db(tmp_path: Path) -> str:
    folder = tmp_path / "demo"
    out = run("demo", "--no-serve", "--dir", str(folder), "--size", "0.05")
    assert out.exit_code == 0, out.output
    return f"sqlite:///{folder / 'crossbeat-demo.db'}"


def test_quarantine_list_says_when_it_stops_early(demo_db: str) -> None:
    full = json.loads(run("quarantine", "list", "--json", "--all", "--db", demo_db).output)
    n = len(full["entries"])
    assert n >= 3 and full["more"] == 0
    out = run("quarantine", "list", "--limit", "2", "--db", demo_db)
    assert out.exit_code == 0, out.output
    assert f"shown: the first 2 of {n} open entries; see more with --limit {n} or --all" in (
        out.output
    )
    page = json.loads(run("quarantine", "list", "--limit", "2", "--json", "--db", demo_db).output)
    assert len(page["entries"]) == 2 and page["more"] == n - 2
    everything = run("quarantine", "list", "--all", "--db", demo_db).output
    assert "shown: the first" not in everything
    assert everything.count("\n#") + everything.startswith("#") == n
