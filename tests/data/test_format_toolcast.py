"""toolcast's own JSONL: exact round trip, and schema errors that name the field."""

import json

import pytest

from toolcast.data import TraceFormatError, load_traces


def test_round_trip_is_exact(tmp_path, make_trace):
    lines = [make_trace("a").to_json(), make_trace("b").to_json()]
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    traces = load_traces(path)
    assert [t.to_json() for t in traces] == lines
    assert traces[0] == make_trace("a")


def test_detected_by_content(tmp_path, make_trace):
    path = tmp_path / "whatever.txt"
    path.write_text(make_trace().to_json() + "\n", encoding="utf-8")
    assert load_traces(path, format="auto")[0].trace_id == "t1"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["events"][2].__setitem__("turn", "zero"), "events[2].turn"),
        (lambda d: d["events"][0].__setitem__("role", "robot"), "events[0].role"),
        (lambda d: d["events"][2].__delitem__("tool"), "events[2].tool"),
        (lambda d: d["events"][3].__setitem__("call_id", "c1"), "events[3].call_id"),
        (lambda d: d["tools"][0].__setitem__("name", 7), "tools[0].name"),
        (lambda d: d["events"][1].__setitem__("tokens", True), "events[1].tokens"),
    ],
)
def test_schema_errors_name_file_line_and_field(tmp_path, make_trace, mutate, field):
    good = make_trace("a").to_dict()
    bad = make_trace("b").to_dict()
    mutate(bad)
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(TraceFormatError) as err:
        load_traces(path)
    assert err.value.field == field
    assert str(path) in str(err.value) and "line 2" in str(err.value) and field in str(err.value)
