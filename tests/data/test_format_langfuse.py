"""Langfuse importer, on exports hand-written from Langfuse's API definition and integrations (see
tests/fixtures/langfuse/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records
from toolcast.data.provenance import trace_provenance

FIXTURES = Path(__file__).parent.parent / "fixtures"
HERE = FIXTURES / "langfuse"
NAMES = ["trace_v2.json", "traces.json", "observations_page.json", "observations.jsonl"]


def shape(trace):
    return [(type(e).__name__, e.role if isinstance(e, Message) else e.tool, e.turn) for e in trace.events]


def obs(id, type="GENERATION", trace="t1", start="2025-01-01T00:00:00.000Z", end=None, **kw):
    return {"id": id, "traceId": trace, "type": type, "startTime": start, "endTime": end, **kw}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_detected_as_langfuse_only(name):
    report = ImportReport()
    traces = load_traces(HERE / name, report=report)
    assert traces and report.formats == {"langfuse": len(traces)} and not report.folded
    _, first = next(iter_records(HERE / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["langfuse"]


def test_other_formats_fixtures_are_not_langfuse():
    others = [p for p in FIXTURES.rglob("*.json*") if p.parent.name not in ("langfuse", "model_tiny")]
    assert others
    for path in others:
        _, first = next(iter_records(path))
        assert not FORMATS["langfuse"].sniff(first), path
        assert not FORMATS["langfuse"].sniff([first]), path


def test_v2_trace_parallel_spans_and_a_failed_one():
    trace, = load_traces(HERE / "trace_v2.json")
    assert (trace.trace_id, trace.group, trace.source) == ("trace-weather-1", "session-42", "langfuse")
    assert [(t.name, t.param_names) for t in trace.tools] == [("get_weather", ["city"])]
    assert shape(trace) == [("Message", "system", None), ("Message", "user", None),
                            ("Message", "assistant", 0), ("ToolCall", "get_weather", 0),
                            ("ToolCall", "get_weather", 0), ("Message", "assistant", None)]
    _, user, first, paris, rome, answer = trace.events
    assert user.text == "Weather in Paris and Rome?"
    assert (first.text, first.tokens, first.extra["observation_id"]) == ("", 35, "gen-1")
    assert (first.t_start, first.t_end) == pytest.approx((1740823200.1, 1740823200.9))
    # the two spans started together: each is matched to its call by the arguments in its input
    assert (paris.call_id, paris.args, paris.error, paris.extra["observation_id"]) == (
        "call_paris", {"city": "Paris"}, False, "span-paris")
    assert json.loads(paris.output) == {"city": "Paris", "temp_c": 21, "conditions": "sunny"}
    assert (paris.t_start, paris.t_end) == pytest.approx((1740823201.0, 1740823201.4))
    assert (rome.call_id, rome.error, rome.output) == ("call_rome", True, "Error: upstream timeout")
    assert rome.extra["status_message"] == "upstream timeout"
    assert answer.text.startswith("Paris is sunny") and answer.tokens == 20
    assert trace.metadata["agent_model"] == "gpt-4o-2024-08-06"
    assert (trace.metadata["userId"], trace.metadata["tags"]) == ("user-7", ["prod"])
    assert "input" not in trace.metadata and "observations" in trace.metadata
    assert trace.metadata["observations"] == [{"id": "span-root", "type": "SPAN", "name": "weather-agent"}]
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["get_weather", "get_weather"], ["<respond>"]]


def test_langchain_callback_trace_and_anthropic_trace_in_a_json_list():
    lc, claude = load_traces(HERE / "traces.json")
    assert lc.group == "trace-lc-1" and [t.name for t in lc.tools] == ["read_file", "list_dir"]
    assert shape(lc) == [("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
                         ("ToolCall", "read_file", 0), ("ToolCall", "read_file", 0),
                         ("Message", "assistant", 1), ("ToolCall", "list_dir", 1)]
    a, b, ls = lc.calls
    assert (a.call_id, a.args, a.output, a.error) == ("call_a", {"path": "a.txt"}, "hello", False)
    assert (b.call_id, b.error, b.extra["status_message"]) == ("call_b", True, "FileNotFoundError: b.txt")
    assert b.output.startswith("Error: FileNotFoundError")
    assert (ls.output, ls.error, ls.t_start) == (None, False, None)  # requested, never ran
    assert lc.metadata["scores"][0]["name"] == "helpful"
    assert {o["type"] for o in lc.metadata["observations"]} == {"AGENT", "CHAIN"}

    assert (claude.group, [t.param_names for t in claude.tools]) == ("session-calc", [["a", "b"]])
    assert shape(claude) == [("Message", "system", None), ("Message", "user", None),
                             ("Message", "assistant", 0), ("ToolCall", "multiply", 0),
                             ("Message", "assistant", None)]
    thought = claude.events[2]
    assert thought.text == "Let me compute that." and thought.extra["thinking"] == ["I should call multiply."]
    call = claude.calls[0]
    assert (call.call_id, call.args, call.output, call.extra["observation_id"]) == (
        "toolu_01", {"a": 17, "b": 23}, "391", "c-tool")


def test_observations_page_with_raw_string_io_and_provenance():
    trace, = load_traces(HERE / "observations_page.json")
    assert (trace.trace_id, trace.group, trace.metadata["agent_model"]) == (
        "trace-page-1", "session-page", "gpt-4.1")
    search, fetch = trace.calls
    assert (search.call_id, search.extra["observation_id"]) == ("call_s1", "p-search")  # by its metadata id
    assert json.loads(search.output)[0]["url"] == "https://example.org/toolcast"
    assert (fetch.output, fetch.t_start) == (None, None)
    assert trace.events[3].text == "Let me open the first result."
    event = trace.metadata["observations"][1]
    assert (event["type"], event["level"]) == ("EVENT", "WARNING")
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels[:2] == [["search"], ["fetch"]]
    prov = {p.call_id: p for p in trace_provenance(trace)}
    assert (prov["call_f1"].kind, prov["call_f1"].source_tool) == ("output", "search")


def test_jsonl_export_interleaved_traces_text_turns_and_a_tool_no_generation_asked_for():
    chat, orders = load_traces(HERE / "observations.jsonl")
    assert [(e.role, e.text) for e in chat.events] == [
        ("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "What is 2+2?"), ("assistant", "4")]
    assert [e.tokens for e in chat.events if e.role == "assistant"] == [6, 1]
    assert shape(orders) == [("Message", "user", None), ("ToolCall", "lookup_order", 0),
                             ("Message", "assistant", None)]
    lookup = orders.calls[0]
    assert (lookup.call_id, lookup.args, json.loads(lookup.output)["status"]) == (
        "j-lookup", {"order_id": "A17"}, "shipped")
    assert orders.events[0].extra == {"langfuse_input": True}


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_the_canonical_schema(name):
    for trace in load_traces(HERE / name):
        assert all(isinstance(e, (Message, ToolCall)) for e in trace.events)
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_import_cli_round_trips_through_toolcast_jsonl(import_round_trip):
    import_round_trip(HERE / "traces.json", "langfuse", 2)


def test_snake_case_dumps_bare_lists_streamed_outputs_and_nanosecond_times(tmp_path):
    gen = {"id": "g1", "trace_id": "t9", "type": "GENERATION", "start_time": "2025-01-01 00:00:00.123456789",
           "input": "Find x", "output": [{"function": {"name": "find", "arguments": "{\"q\": \"x\"}"}}],
           "parent_observation_id": None, "session_id": "s9"}
    tool = {"id": "tl", "trace_id": "t9", "type": "TOOL", "name": "find",
            "start_time": "2025-01-01T00:00:01Z", "end_time": "2025-01-01T00:00:02Z",
            "input": "{\"q\": \"x\"}", "output": "found", "status_message": None}
    path = tmp_path / "bare.json"
    path.write_text(json.dumps([tool, gen]), encoding="utf-8")
    trace, = load_traces(path)
    assert (trace.trace_id, trace.group) == ("t9", "s9")
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", "find", 0)]
    call = trace.calls[0]
    assert (call.call_id, call.args, call.output, call.t_end) == (
        "g1:output:0", {"q": "x"}, "found", 1735689602.0)
    assert trace.events[1].t_start == pytest.approx(1735689600.123456)


def test_a_later_trace_of_a_session_carrying_the_earlier_one_absorbs_it(tmp_path):
    first = [obs("a1", trace="t1", input=[{"role": "user", "content": "Hi"}], output="Hello",
                 start="2025-01-01T00:00:00Z", sessionId="s")]
    second = [obs("b1", trace="t2", start="2025-01-01T00:01:00Z", sessionId="s", output="Paris",
                  input=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                         {"role": "user", "content": "Capital of France?"}])]
    report = ImportReport()
    traces = load_traces(write_jsonl(tmp_path / "s.jsonl", first + second), report=report)
    assert [t.trace_id for t in traces] == ["t2"] and traces[0].group == "s" and report.folded == 1
    assert [e.text for e in traces[0].events] == ["Hi", "Hello", "Capital of France?", "Paris"]
    hello = traces[0].events[1]  # the kept trace lost nothing: the earlier turn keeps its generation
    assert (hello.t_start, hello.extra["observation_id"]) == (1735689600.0, "a1")
    # two runs that say the same at different times stay two traces
    again = [dict(o, traceId="t3", id="c1", startTime="2025-01-02T00:00:00Z") for o in first]
    traces = load_traces(write_jsonl(tmp_path / "r.jsonl", first + again))
    assert [t.trace_id for t in traces] == ["t1", "t3"]


BAD = [
    pytest.param(obs("g", output={"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{oops"}}]}),
        "output.tool_calls[0].function.arguments", "not valid JSON", id="arguments"),
    pytest.param(obs("g", start="yesterday"), "startTime", "not an ISO 8601 time", id="time"),
    pytest.param(obs("g", input=[{"role": "tool", "tool_call_id": "nope", "content": "x"}], output="ok"),
                 "input[0].tool_call_id", "no earlier tool call", id="orphan-result"),
    pytest.param(obs("g", input={"messages": [], "tools": [{"type": "function", "function": {"name": 3}}]}),
                 "input.tools[0].function.name", "expected str", id="tool-name"),
    pytest.param(obs("tl", type="TOOL", output="x"), "name", "TOOL observation names its tool",
                 id="tool-no-name"),
    pytest.param(dict(obs("g"), id=7), "id", "expected str", id="id"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD)
def test_bad_observation_names_file_line_and_field_and_skip_drops_its_trace(tmp_path, record, field, message):
    good = obs("ok", trace="t0", input="Hi", output="Hello")
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="langfuse")
    assert (info.value.field, "bad.jsonl, line 2" in str(info.value)) == (field, True)
    assert message in info.value.reason
    report = ImportReport()
    assert [t.trace_id for t in load_traces(path, format="langfuse", errors="skip", report=report)] == ["t0"]
    assert [e.field for e in report.skipped] == [field]


def test_bad_observation_inside_a_trace_names_its_path(tmp_path):
    doc = {"id": "t1", "timestamp": "2025-01-01T00:00:00Z", "observations": [
        obs("g1", input="Hi", output="Hello"), obs("g2", start="2025-01-01T00:00:01Z", output=[
            {"role": "assistant", "content": 5}])]}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"trace\.json, line 1, field 'observations\[1\]\.output"):
        load_traces(path)


def _raise(error):
    raise error


@pytest.mark.parametrize("name", NAMES)
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(HERE / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["langfuse"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


def test_traces_list_page_says_to_fetch_each_trace(tmp_path):
    summary = {"id": "t1", "timestamp": "2025-01-01T00:00:00Z", "htmlPath": "/p/traces/t1",
               "observations": ["o1", "o2"], "scores": []}
    path = tmp_path / "traces.json"
    path.write_text(json.dumps({"data": [summary], "meta": {"page": 1, "totalPages": 1}}), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"GET /api/public/traces/\{id\}") as info:
        load_traces(path)
    assert info.value.field == "data[0].observations"


def test_older_langchain_tool_calls_in_additional_kwargs_and_observe_kwargs(tmp_path):
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}
    gen = obs("g1", input=[{"role": "user", "content": "go"}],
              output={"role": "assistant", "content": "", "additional_kwargs": {"tool_calls": [call]}})
    run = obs("t1", type="TOOL", name="f", start="2025-01-01T00:00:01Z",
              input={"args": [], "kwargs": {"x": 1}}, output="done")
    other = obs("t2", type="TOOL", name="g", start="2025-01-01T00:00:02Z",
                input={"args": [], "kwargs": {"y": 2}})
    trace, = load_traces(write_jsonl(tmp_path / "o.jsonl", [gen, run, other]))
    requested, standalone = trace.calls
    assert (requested.call_id, requested.args, requested.output) == ("c1", {"x": 1}, "done")
    assert (standalone.tool, standalone.args, standalone.turn) == ("g", {"y": 2}, 1)


def test_tool_output_text_is_kept_as_logged(tmp_path):
    text = '{"note": "it\\u2019s here"}'  # JSON text with escapes: never re-encoded
    gen = obs("g1", input="go", output={"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})
    run = obs("t1", type="TOOL", name="f", start="2025-01-01T00:00:01Z", output=text)
    trace, = load_traces(write_jsonl(tmp_path / "o.jsonl", [gen, run]))
    assert trace.calls[0].output == text


def test_an_observation_exported_twice_counts_once(tmp_path):
    gen = obs("g1", input="go", output={"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]})
    doc = {"id": "t1", "timestamp": "2025-01-01T00:00:00Z", "observations": [gen]}
    trace, = load_traces(write_jsonl(tmp_path / "o.jsonl", [doc, gen]))
    assert [c.call_id for c in trace.calls] == ["c1"]
