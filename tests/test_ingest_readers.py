"""Source readers: every format, encodings, damaged files, bounded memory."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossbeat.ingest.profile import SourceSpec
from crossbeat.ingest.readers import RawRecord, SourceError, file_sha256, open_source

CSV = SourceSpec(format="csv")


def write(tmp_path: Path, name: str, data: bytes | str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode(encoding) if isinstance(data, str) else data)
    return path


def read_all(path: Path, spec: SourceSpec = CSV, **kw: object) -> list[RawRecord]:
    with open_source(path, spec, **kw) as reader:  # type: ignore[arg-type]
        return list(reader)


# -- CSV -------------------------------------------------------------------------------
def test_csv_records_are_numbered_from_the_first_data_row(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,name\n1,a\n2,b\n")
    with open_source(path, CSV, required_columns=["id"]) as reader:
        assert reader.columns == ["id", "name"]
        assert reader.size == path.stat().st_size
        records = list(reader)
    assert [(r.row_number, r.fields) for r in records] == [
        (1, {"id": "1", "name": "a"}),
        (2, {"id": "2", "name": "b"}),
    ]
    assert all(not r.problems for r in records)
    assert records[-1].offset == path.stat().st_size


def test_csv_quoted_newlines_and_delimiters_stay_in_one_value(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'id,text\r\n1,"line one\r\nline two, still"\r\n2,x\r\n')
    records = read_all(path)
    assert records[0].fields["text"] == "line one\r\nline two, still"
    assert records[1].row_number == 2 and records[1].fields == {"id": "2", "text": "x"}


def test_csv_values_are_kept_exactly_as_read(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,beat\n1,3C        \n2,\n")
    records = read_all(path)
    assert records[0].fields["beat"] == "3C        "
    assert records[1].fields["beat"] == ""


def test_csv_header_is_stripped_of_bom_and_padding(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", b"\xef\xbb\xbf Crime ID , Month\n1,2020-01\n")
    with open_source(path, CSV, required_columns=["Crime ID", "Month"]) as reader:
        assert reader.columns == ["Crime ID", "Month"]
        assert list(reader)[0].fields == {"Crime ID": "1", "Month": "2020-01"}


def test_csv_blank_and_duplicate_header_names_get_distinct_names(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,Location,Location,\n1,a,b,c\n")
    with open_source(path, CSV) as reader:
        assert reader.columns == ["id", "Location", "Location (2)", "column_4"]


def test_csv_other_delimiter(tmp_path: Path) -> None:
    path = write(tmp_path, "a.tsv", "id\tname\n1\tx;y\n")
    assert read_all(path, SourceSpec(format="csv", delimiter="\t"))[0].fields == {
        "id": "1",
        "name": "x;y",
    }


def test_cp1252_file_with_auto_encoding_decodes_cleanly(tmp_path: Path) -> None:
    text = "id,address,note\n1,Café Road,“quoted” – €5\n2,Señor Müller St,ok\n"
    path = write(tmp_path, "a.csv", text, encoding="cp1252")
    with open_source(path, SourceSpec(format="csv", encoding="auto")) as reader:
        assert reader.encoding == "cp1252"
        records = list(reader)
    assert records[0].fields == {"id": "1", "address": "Café Road", "note": "“quoted” – €5"}
    assert records[1].fields["address"] == "Señor Müller St"
    assert all(not r.problems for r in records)


def test_wrong_declared_encoding_is_a_record_problem_naming_column_and_bytes(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "a.csv", "id,address\n1,plain\n2,Café Road\n3,ok\n", "cp1252")
    records = read_all(path, SourceSpec(format="csv", encoding="utf-8"))
    assert [bool(r.problems) for r in records] == [False, True, False]
    (problem,) = records[1].problems
    assert "'address'" in problem and "0xE9" in problem and "utf-8" in problem
    assert "source.encoding" in problem
    assert records[1].fields["address"] == "Caf\ufffd Road"
    json.dumps(records[1].fields)  # storable as JSON: no lone surrogates left


def test_utf8_file_with_auto_stays_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,name\n1,Zürich – 東京\n")
    with open_source(path, SourceSpec(format="csv", encoding="auto")) as reader:
        assert reader.encoding == "utf-8-sig"
        assert list(reader)[0].fields["name"] == "Zürich – 東京"


def test_utf16_with_bom_is_detected(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,name\n1,Zoë\n", encoding="utf-16")
    records = read_all(path, SourceSpec(format="csv", encoding="auto"))
    assert records[0].fields == {"id": "1", "name": "Zoë"}


def test_utf16_bom_contradicting_declared_encoding_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,name\n1,Zoë\n", encoding="utf-16")
    with pytest.raises(SourceError, match=r'byte-order mark.*source.encoding = "utf-16"'):
        open_source(path, CSV)


def test_truncated_last_record_is_kept_with_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,date,code\n1,2020-01-01,A\n2,2020-01")
    records = read_all(path)
    assert len(records) == 2
    assert records[1].fields == {"id": "2", "date": "2020-01", "code": None}
    (problem,) = records[1].problems
    assert "2 fields but the header has 3" in problem and "truncated" in problem


def test_file_ending_inside_a_quoted_value_is_kept_with_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'id,text\n1,ok\n2,"cut off he')
    records = read_all(path)
    assert records[1].row_number == 2
    assert records[1].fields == {"_raw": '2,"cut off he'}
    assert "ends inside a quoted value" in records[1].problems[0]


def test_stray_quote_is_a_problem_and_reading_continues(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", 'id,text\n1,"a"b\n2,fine\n')
    records = read_all(path)
    assert records[0].problems and records[0].fields == {"_raw": '1,"a"b\n'}
    assert records[1].fields == {"id": "2", "text": "fine"} and not records[1].problems


def test_extra_fields_are_kept_and_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,text\n1,a,b,c\n")
    (rec,) = read_all(path)
    assert rec.fields == {"id": "1", "text": "a", "_extra_1": "b", "_extra_2": "c"}
    assert "4 fields but the header has 2" in rec.problems[0]


def test_blank_lines_are_not_records(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,text\n\n1,a\n   \n\n2,b\n\n")
    assert [r.fields["id"] for r in read_all(path)] == ["1", "2"]


def test_header_only_file_yields_no_records(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id,text\n")
    with open_source(path, CSV, required_columns=["id"]) as reader:
        assert reader.columns == ["id", "text"]
        assert list(reader) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"empty \(0 bytes\)"),
        (b"\n\n  \n", "no header row"),
        (b'[{"id": 1}]', "looks like JSON"),
        (b"PK\x03\x04rest-of-a-zip", "ZIP archive"),
        (b"\x1f\x8b\x08\x00", "gzip"),
        (b"id,name\n1,a\x00b\n", "NUL bytes"),
    ],
)
def test_unreadable_files_are_source_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path, "a.csv", content)
    with pytest.raises(SourceError, match=message):
        open_source(path, CSV)


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        open_source(tmp_path / "nope.csv", CSV)


def test_missing_columns_are_listed_with_the_files_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "cdatetime,address,crimedescr\n1,2,3\n")
    with pytest.raises(SourceError) as info:
        open_source(path, CSV, required_columns=["CDateTime", "address", "lat"])
    msg = str(info.value)
    assert "'CDateTime', 'lat' are not in the file" in msg
    assert "'cdatetime', 'address', 'crimedescr'" in msg
    assert "'CDateTime' -> 'cdatetime'?" in msg
    # The next step names the real profile and file: the CLI adds it (not "PROFILE FILE").
    assert "Fix the column names in the profile" in msg and "FILE" not in msg


def test_wrong_delimiter_is_suggested(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id;name\n1;a\n")
    with pytest.raises(SourceError, match=r"source.delimiter = ';'"):
        open_source(path, CSV, required_columns=["id", "name"])


def test_a_reader_is_single_pass(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "id\n1\n")
    with open_source(path, CSV) as reader:
        list(reader)
        with pytest.raises(RuntimeError, match="only once"):
            iter(reader)


def test_file_sha256_streams_the_file(tmp_path: Path) -> None:
    data = b"id\n" + b"1234567890\n" * 50_000
    path = write(tmp_path, "a.csv", data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


# -- JSON lines --------------------------------------------------------------------------
JSONL = SourceSpec(format="jsonl")


def test_jsonl_records_render_scalars_as_text(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "a.jsonl",
        '{"id": 1, "lat": 45.514900, "ok": true, "none": null, "loc": {"x": [1, 2.5]}}\n'
        "\n"
        '{"id": "b2"}\n',
    )
    with open_source(path, JSONL, required_columns=["id", "loc.x"]) as reader:
        assert reader.columns == ["id", "lat", "ok", "none", "loc"]
        records = list(reader)
    assert records[0].fields == {
        "id": "1",
        "lat": "45.514900",
        "ok": "true",
        "none": None,
        "loc": '{"x":[1,2.5]}',
    }
    assert (records[1].row_number, records[1].fields) == (2, {"id": "b2"})


def test_jsonl_bad_lines_are_kept_with_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"id": 1}\n{"id": 2,\n[1, 2]\n{"id": 4}\n{"id": 5, "x"')
    records = read_all(path, JSONL)
    assert [r.row_number for r in records] == [1, 2, 3, 4, 5]
    assert records[1].fields == {"_raw": '{"id": 2,'}
    assert "invalid JSON" in records[1].problems[0]
    assert "not an object" in records[2].problems[0]
    assert records[3].fields == {"id": "4"} and not records[3].problems
    assert "truncated" in records[4].problems[0]


def test_jsonl_given_an_array_says_use_json(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '[{"id": 1}]')
    with pytest.raises(SourceError, match='source.format = "json"'):
        open_source(path, JSONL)


def test_jsonl_wrong_encoding_is_a_record_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "a.jsonl", '{"id": 1, "a": "Café"}\n', encoding="cp1252")
    (rec,) = read_all(path, JSONL)
    assert rec.fields == {"id": "1", "a": "Caf\ufffd"}
    assert "0xE9" in rec.problems[0]


# -- JSON documents -------------------------------------------------------------------
def test_json_array(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", '[{"id": 1, "t": "x"}, {"id": 2, "n": {"a": 1}}]')
    records = read_all(path, SourceSpec(format="json"))
    assert [r.fields for r in records] == [{"id": "1", "t": "x"}, {"id": "2", "n": '{"a":1}'}]


def test_json_object_with_records_key(tmp_path: Path) -> None:
    doc = {"meta": {"n": 2}, "result": {"rows": [{"id": 1}, {"id": 2}]}}
    path = write(tmp_path, "a.json", json.dumps(doc))
    records = read_all(path, SourceSpec(format="json", records_key="result.rows"))
    assert [r.fields["id"] for r in records] == ["1", "2"]


def test_json_object_without_records_key_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", '{"rows": []}')
    with pytest.raises(SourceError, match="set source.records_key"):
        open_source(path, SourceSpec(format="json"))


def test_json_records_key_not_in_the_file_lists_the_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", '{"meta": 1, "data": [{"id": 1}]}')
    with pytest.raises(SourceError, match=r"no array under 'rows'.*'meta', 'data'"):
        open_source(path, SourceSpec(format="json", records_key="rows"))


def test_json_empty_array_yields_no_records(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", '{"rows": []}')
    assert read_all(path, SourceSpec(format="json", records_key="rows")) == []


def test_truncated_json_keeps_the_records_before_the_break(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", '[{"id": 1}, {"id": 2}, {"id": 3, "t": "cut')
    records = read_all(path, SourceSpec(format="json"))
    assert [r.fields for r in records[:2]] == [{"id": "1"}, {"id": "2"}]
    assert len(records) == 3 and records[2].row_number == 3
    assert "truncated" in records[2].problems[0] and "byte" in records[2].problems[0]


def test_json_items_that_are_not_objects_are_problems(tmp_path: Path) -> None:
    records = read_all(write(tmp_path, "a.json", '[{"id": 1}, 7]'), SourceSpec(format="json"))
    assert records[1].fields == {"_raw": "7"} and "not an object" in records[1].problems[0]


def test_json_wrong_encoding_names_the_column(tmp_path: Path) -> None:
    path = write(tmp_path, "a.json", '[{"id": 1, "addr": "Café"}]', encoding="cp1252")
    (rec,) = read_all(path, SourceSpec(format="json"))
    assert rec.fields["addr"] == "Caf\ufffd" and "'addr'" in rec.problems[0]
    (rec,) = read_all(path, SourceSpec(format="json", encoding="cp1252"))
    assert rec.fields["addr"] == "Café" and not rec.problems


# -- GeoJSON ------------------------------------------------------------------------------
GEOJSON = SourceSpec(format="geojson")


def test_geojson_features(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "f1",
                "properties": {"case": "A1", "n": 3},
                "geometry": {"type": "Point", "coordinates": [7643645.25, 681349.5]},
            },
            {"type": "Feature", "properties": None, "geometry": None},
        ],
    }
    path = write(tmp_path, "a.geojson", json.dumps(doc))
    with open_source(path, GEOJSON, required_columns=["case"]) as reader:
        assert reader.columns == ["case", "n", "@id"]
        records = list(reader)
    assert records[0].fields == {"case": "A1", "n": "3", "@id": "f1"}
    assert records[0].geometry == {"type": "Point", "coordinates": [7643645.25, 681349.5]}
    assert records[1].fields == {} and records[1].geometry is None


def test_geojson_crs_member_must_agree_with_the_profile(tmp_path: Path) -> None:
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2913"}},
        "features": [{"type": "Feature", "properties": {"id": 1}, "geometry": None}],
    }
    path = write(tmp_path, "a.geojson", json.dumps(doc))
    with pytest.raises(SourceError, match=r"declares.*EPSG::2913.*set source.crs"):
        open_source(path, GEOJSON)
    assert read_all(path, SourceSpec(format="geojson", crs="EPSG:2913"))[0].fields == {"id": "1"}
    doc["crs"]["properties"]["name"] = "urn:ogc:def:crs:OGC:1.3:CRS84"  # = EPSG:4326 lon/lat
    path.write_text(json.dumps(doc))
    assert len(read_all(path, GEOJSON)) == 1


def test_not_a_feature_collection_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.geojson", '{"type": "Point", "coordinates": [1, 2]}')
    with pytest.raises(SourceError, match="not a GeoJSON FeatureCollection"):
        open_source(path, GEOJSON)


def test_truncated_geojson(tmp_path: Path) -> None:
    feature = '{"type":"Feature","properties":{"id":1},"geometry":null}'
    path = write(
        tmp_path, "a.geojson", '{"type":"FeatureCollection","features":[' + feature + ',{"ty'
    )
    records = read_all(path, GEOJSON)
    assert records[0].fields == {"id": "1"}
    assert records[1].problems and "truncated" in records[1].problems[0]


# -- robustness -----------------------------------------------------------------------
FORMATS = [
    SourceSpec(format="csv"),
    SourceSpec(format="csv", encoding="auto"),
    SourceSpec(format="jsonl"),
    SourceSpec(format="json"),
    SourceSpec(format="json", records_key="rows"),
    SourceSpec(format="geojson"),
]

_garbage = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(lambda s: s.encode("utf-8")),
    st.lists(
        st.sampled_from(['"', ",", "\n", "\r", "{", "}", "[", "]", ":", "a", "1", "é", "\x00"]),
        max_size=120,
    ).map(lambda parts: "".join(parts).encode("utf-8")),
    st.sampled_from(
        [b'[{"a":1},', b'{"rows":[{"a"', b'{"features":[{"properties":{"a":1}}', b"a,b\n1"]
    ),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_garbage, spec=st.sampled_from(FORMATS))
def test_garbage_gives_records_or_a_source_error(
    tmp_path: Path, data: bytes, spec: SourceSpec
) -> None:
    path = tmp_path / "fuzz.dat"
    path.write_bytes(data)
    try:
        with open_source(path, spec, required_columns=()) as reader:
            records = list(reader)
    except SourceError as exc:
        assert str(exc)
        return
    for number, rec in enumerate(records, start=1):
        assert rec.row_number == number
        assert all(isinstance(k, str) for k in rec.fields)
        assert all(v is None or isinstance(v, str) for v in rec.fields.values())
        json.dumps({"fields": rec.fields, "geometry": rec.geometry})  # storable


@pytest.mark.slow
def test_memory_stays_bounded_for_a_large_csv(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("id,occurred,address,code,lat,lon,narrative\n")
        for i in range(200_000):
            fh.write(
                f"{i},2020-01-{i % 28 + 1:02d} 12:{i % 60:02d},{i % 9000} MAIN ST,"
                f'{2200 + i % 7},45.{i:06d},-122.{i:06d},"some text, with a comma {i}"\n'
            )
    assert path.stat().st_size > 15_000_000
    tracemalloc.start()
    try:
        count = 0
        with open_source(path, CSV, required_columns=["id"]) as reader:
            for rec in reader:
                count += 1
                assert not rec.problems
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert peak < 2_000_000, f"peak {peak} bytes: memory grows with the file"
