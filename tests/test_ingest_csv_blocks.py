"""The columnar CSV reader reads what the streaming reader reads (issue #9).

Generated files with every kind of odd record (quoted values, embedded line breaks,
blank lines, short and long records, bytes that are not UTF-8, a byte-order mark,
CRLF or LF, no final line break) are read both ways: plain blocks as columns with the
streaming reader resuming at the first block that is not plain, and the streaming
reader alone. The records — numbers, fields and read problems — must be the same, and
each block's byte offsets must delimit its records.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossbeat.ingest.csv_ import CsvReader
from crossbeat.ingest.csv_blocks import Block, Rest, blocks, plain_start
from crossbeat.ingest.profile import SourceSpec
from crossbeat.ingest.readers import open_source

HEADER = ["id", "when", "name", "lat"]
_PLAIN = st.text(alphabet="abcXYZ019 .-é/", max_size=8)
_ODD = st.sampled_from(['say "hi"', "a,b", "line\nbreak", "back\\slash", "tab\there", "", " "])


def _read_both(path: Path, spec: SourceSpec, block_bytes: int) -> tuple[list[Any], list[Any]]:
    """Return the records read by the streaming reader, and by blocks then the rest."""
    with open_source(path, spec) as reader:
        streamed = [(r.row_number, r.fields, r.problems) for r in reader]
    with open_source(path, spec) as reader:
        assert isinstance(reader, CsvReader)
        start = plain_start(path, reader.encoding, spec.delimiter, len(reader.columns))
        if start is None:
            return streamed, [(r.row_number, r.fields, r.problems) for r in reader]
        data = path.read_bytes()
        out: list[Any] = []
        end = start
        for b in blocks(path, spec.delimiter, len(reader.columns), start, block_bytes=block_bytes):
            if isinstance(b, Rest):
                assert b.offset == end
                with reader.resume(b.offset, b.rows_before) as rest:
                    out += [(r.row_number, r.fields, r.problems) for r in rest]
                break
            assert isinstance(b, Block)
            values = [c.to_pylist() for c in b.columns]
            for i, row in enumerate(zip(*values, strict=True)):
                line = data[end : int(b.ends[i])]
                assert line.endswith(b"\n")
                assert line.rstrip(b"\r\n").decode().split(spec.delimiter) == list(row)
                end = int(b.ends[i])
                out.append((b.first_row + i, dict(zip(reader.columns, row, strict=True)), ()))
    return streamed, out


@st.composite
def _exports(draw: st.DrawFn) -> tuple[bytes, str]:
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    rows: list[list[str]] = []
    for i in range(draw(st.integers(0, 40))):
        row = [f"R{i}", draw(_PLAIN), draw(_PLAIN), draw(_PLAIN)]
        if draw(st.integers(0, 9)) == 0:
            row[draw(st.integers(1, 3))] = draw(_ODD)
        rows.append(row)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=terminator)
    w.writerow(HEADER)
    lines = []
    for row in rows:
        one = io.StringIO()
        csv.writer(one, delimiter=delimiter, lineterminator=terminator).writerow(row)
        lines.append(one.getvalue())
    at = draw(st.integers(0, len(lines)))
    damage = draw(st.sampled_from(["none", "blank", "short", "long", "bad byte", "cr"]))
    extra = {
        "none": "",
        "blank": terminator,
        "short": "X1" + delimiter + "a" + terminator,
        "long": delimiter.join(["X2", "a", "b", "c", "d"]) + terminator,
        "bad byte": "",
        "cr": "X3" + delimiter + "a\rb" + delimiter + "c" + delimiter + "d" + terminator,
    }[damage]
    lines.insert(at, extra)
    data = (buf.getvalue() + "".join(lines)).encode("utf-8")
    if damage == "bad byte":
        data += delimiter.join(["X4", "caf", "x", "1"]).encode() + b"\xe9" + terminator.encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 4)) == 0:
        data = data.rstrip(b"\r\n")
    return data, delimiter


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(export=_exports(), block_bytes=st.sampled_from([16, 64, 200, 1 << 20]))
def test_blocks_read_what_the_streaming_reader_reads(
    export: tuple[bytes, str], block_bytes: int, tmp_path: Path
) -> None:
    data, delimiter = export
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    spec = SourceSpec(format="csv", delimiter=delimiter, encoding="utf-8")
    streamed, blockwise = _read_both(path, spec, block_bytes)
    assert blockwise == streamed


def test_a_plain_file_is_read_in_blocks_and_an_odd_one_hands_over(tmp_path: Path) -> None:
    lines = ["id,when,name,lat"] + [f"R{i},2024-01-0{i % 9 + 1},n{i},45.{i}" for i in range(50)]
    plain = tmp_path / "plain.csv"
    plain.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = SourceSpec(format="csv", encoding="utf-8")
    start = plain_start(plain, "utf-8-sig", ",", 4)
    assert start == len(lines[0]) + 1
    found = list(blocks(plain, ",", 4, start, block_bytes=100))
    assert all(isinstance(b, Block) for b in found) and len(found) > 5
    assert sum(b.rows for b in found if isinstance(b, Block)) == 50

    odd = tmp_path / "odd.csv"
    odd.write_text("\n".join([*lines[:30], 'R99,"2024, late",x,1', *lines[30:]]) + "\n")
    found = list(blocks(odd, ",", 4, start, block_bytes=100))
    rest = found[-1]
    assert isinstance(rest, Rest) and 0 < rest.rows_before < 30
    streamed, blockwise = _read_both(odd, spec, 100)
    assert blockwise == streamed and len(streamed) == 51

    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join(lines), encoding="utf-8")  # no final line break
    assert plain_start(cut, "utf-8-sig", ",", 4) is None
    assert plain_start(plain, "cp1252", ",", 4) is None
