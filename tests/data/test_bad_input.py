"""Bad input: one clear error naming file, line or record, and field; skip mode imports the rest."""

import gzip
import json

import pytest

from toolcast.data import ImportReport, TraceFormatError, load_traces


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_truncated_json_line(tmp_path, make_trace):
    good = make_trace("a").to_json()
    path = write_lines(tmp_path / "t.jsonl", [good, good.replace('"a"', '"b"')[:-40]])
    with pytest.raises(TraceFormatError, match=r"t\.jsonl, line 2: invalid JSON.*truncated"):
        load_traces(path)


def test_truncated_single_document(tmp_path, make_trace):
    doc = json.dumps({"simulations": [{"messages": []}]}, indent=2)
    path = tmp_path / "run.json"
    path.write_text(doc[:-5], encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"run\.json, line \d+: invalid JSON"):
        load_traces(path)


def test_unknown_format(tmp_path, make_trace):
    path = write_lines(tmp_path / "x.jsonl", [json.dumps({"hello": 1, "world": 2})])
    with pytest.raises(
        TraceFormatError, match=r"x\.jsonl, line 1: unknown format: found an object with keys hello"
    ):
        load_traces(path)


def test_empty_file(tmp_path, make_trace):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"empty\.jsonl: the file is empty"):
        load_traces(path)


def test_empty_gzip_file(tmp_path, make_trace):
    path = tmp_path / "empty.jsonl.gz"
    path.write_bytes(gzip.compress(b""))
    with pytest.raises(TraceFormatError, match="the file is empty"):
        load_traces(path)


def test_binary_file(tmp_path, make_trace):
    path = tmp_path / "model.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TraceFormatError, match=r"model\.bin.*binary"):
        load_traces(path)


def test_missing_path(tmp_path, make_trace):
    with pytest.raises(TraceFormatError, match="no such file"):
        load_traces(tmp_path / "nope.jsonl")


def test_skip_mode_imports_the_rest_and_reports(tmp_path, make_trace):
    lines = [
        make_trace("a").to_json(),
        "{not json",
        make_trace("c").to_json(),
        json.dumps({**make_trace("d").to_dict(), "events": "oops"}),
    ]
    path = write_lines(tmp_path / "t.jsonl", lines)
    report = ImportReport()
    traces = load_traces(path, errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["a", "c"]
    assert len(report.skipped) == 2
    assert "line 2" in str(report.skipped[0]) and "line 4" in str(report.skipped[1])
    assert report.skipped[1].field == "events"


def test_gzip_is_detected_by_content(tmp_path, make_trace):
    path = tmp_path / "no_suffix"
    path.write_bytes(gzip.compress((make_trace().to_json() + "\n").encode()))
    assert load_traces(path)[0].trace_id == "t1"


def test_folder_reads_every_file_and_ignores_non_logs(tmp_path, make_trace):
    write_lines(tmp_path / "a.jsonl", [make_trace("a").to_json()])
    (tmp_path / "sub").mkdir()
    write_lines(tmp_path / "sub" / "b.jsonl", [make_trace("b").to_json()])
    (tmp_path / "MANIFEST.json").write_text('{"files": []}', encoding="utf-8")
    (tmp_path / "README.md").write_text("# not a log\n", encoding="utf-8")
    report = ImportReport()
    traces = load_traces(tmp_path, report=report)
    assert sorted(t.trace_id for t in traces) == ["a", "b"]
    assert sorted(report.ignored) == [str(tmp_path / "MANIFEST.json"), str(tmp_path / "README.md")]


def test_named_file_of_unknown_format_is_an_error_even_beside_good_ones(tmp_path, make_trace):
    good = write_lines(tmp_path / "a.jsonl", [make_trace("a").to_json()])
    bad = tmp_path / "MANIFEST.json"
    bad.write_text('{"files": []}', encoding="utf-8")
    with pytest.raises(TraceFormatError, match="unknown format"):
        load_traces(good, bad)
