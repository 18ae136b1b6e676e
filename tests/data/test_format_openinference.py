"""OpenInference spans importer (OTLP JSON and Phoenix span JSON), on fixtures hand-written from the
OpenInference spec's examples (see tests/fixtures/openinference/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records
from toolcast.data.load import detect_format
from toolcast.data.provenance import trace_provenance

FIXTURES = Path(__file__).parent.parent / "fixtures"
HERE = FIXTURES / "openinference"
NAMES = ["agent_trace.json", "phoenix_spans.jsonl", "phoenix_rest.json"]
AGENT = "0af7651916cd43dd8448eb211c80319c"


def attr(key, value):
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value if isinstance(value, str) else json.dumps(value)}}


def span(span_id, start, end, trace_id=AGENT, parent="", status=None, name="span", **attrs):
    """An OTLP span; keyword attributes use "__" for "." (tool__name -> tool.name)."""
    t0 = 1_700_000_000_000_000_000
    return {"traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": name,
            "startTimeUnixNano": str(t0 + int(start * 1e9)), "endTimeUnixNano": str(t0 + int(end * 1e9)),
            "attributes": [attr(k.replace("__", "."), v) for k, v in attrs.items()], "status": status or {}}


def document(*spans):
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": list(spans)}]}]}


def llm(span_id, start, end, calls=(), **attrs):
    out = {"openinference__span__kind": "LLM", "llm__input_messages__0__message__role": "user",
           "llm__input_messages__0__message__content": "hi"}
    for j, (call_id, name, args) in enumerate(calls):
        p = f"llm__output_messages__0__message__tool_calls__{j}__tool_call__"
        out.update({p + "function__name": name, p + "function__arguments": args})
        if call_id:
            out[p + "id"] = call_id
    return span(span_id, start, end, **out, **attrs)


def tool(span_id, start, end, name, **attrs):
    return span(span_id, start, end, openinference__span__kind="TOOL", tool__name=name, **attrs)


def write_jsonl(path, docs):
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def events(trace):
    return [e.to_dict() for e in trace.events]


# ---- detection -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_detected_as_openinference_only(name):
    report = ImportReport()
    traces = load_traces(HERE / name, report=report)
    assert traces and report.formats == {"openinference": len(traces)}
    _, first = next(iter_records(HERE / name))
    assert detect_format(HERE / name, first).name == "openinference"
    # otel's sniffer takes any OTLP document; openinference is registered before it, so it wins
    assert [f for f in FORMATS if FORMATS[f].sniff(first)] in (["openinference"], ["openinference", "otel"])


def test_other_formats_fixtures_are_not_taken():
    for path in sorted(FIXTURES.glob("*/*.json*")):
        if path.parent.name in ("openinference", "model_tiny"):
            continue
        for _, record in iter_records(path):
            assert not FORMATS["openinference"].sniff(record), path
            break


def test_genai_spans_stay_otel():
    chat = span("a1", 0, 1, gen_ai__operation__name="chat", openinference__span__kind="LLM")
    assert not FORMATS["openinference"].sniff(document(chat))
    assert FORMATS["otel"].sniff(document(chat))


# ---- what a trace looks like ---------------------------------------------------------------------------


def test_agent_run_with_parallel_tools_a_failed_call_and_reasoning():
    agent, chat = load_traces(HERE / "agent_trace.json")
    assert (agent.trace_id, agent.group, agent.source) == (AGENT, "sess-26bcd3d2", "openinference")
    assert agent.metadata == {"agent_model": "gpt-4o-2024-08-06", "agent_implementation": "Weather Agent",
                              "agent_name": "Weather Agent", "provider": "openai",
                              "service": "weather-service", "session_id": "sess-26bcd3d2",
                              "user_id": "user-9328ae73",
                              "span_metadata": {"tier": "free"}}
    assert [t.name for t in agent.tools] == ["get_weather"]
    assert agent.tools[0].parameters["required"] == ["location"]
    t0 = 1_700_000_000
    assert events(agent) == [
        {"type": "message", "role": "system", "text": "You are a weather assistant.", "t_start": None,
         "t_end": None, "tokens": None},
        {"type": "message", "role": "user", "text": "What's the weather in New York and London?",
         "t_start": None, "t_end": None, "tokens": None},
        {"type": "message", "role": "assistant", "text": "", "t_start": t0 + 0.1, "t_end": t0 + 1.5,
         "tokens": 46, "turn": 0},
        {"type": "tool_call", "call_id": "call_001", "turn": 0, "tool": "get_weather",
         "args": {"location": "New York"}, "output": '{"temperature": 72, "condition": "sunny"}',
         "error": False, "t_start": t0 + 1.6, "t_end": t0 + 1.9, "extra": {"span_id": "c000000000000001"}},
        {"type": "tool_call", "call_id": "call_002", "turn": 0, "tool": "get_weather",
         "args": {"location": "London"}, "output": "TimeoutError: weather service did not answer",
         "error": True, "t_start": t0 + 1.6, "t_end": t0 + 3.6,
         "extra": {"span_id": "c000000000000002",
                   "status_message": "TimeoutError: weather service did not answer"}},
        {"type": "message", "role": "assistant",
         "text": "New York is 72°F and sunny. I could not reach the weather service for London.",
         "t_start": t0 + 3.7, "t_end": t0 + 4.9, "tokens": 21,
         "extra": {"reasoning": ["London failed; report New York only."]}},
    ]
    assert [(m.role, m.text) for m in chat.events] == [("user", "Hello?"), ("assistant", "Yes, I am here.")]
    assert chat.events[0].extra["contents"][0]["message_content.type"] == "image"  # kept, not dropped
    assert (chat.group, chat.metadata["provider"]) == (chat.trace_id, "anthropic")


def test_phoenix_rest_lines_calls_without_tool_spans_and_a_later_user_turn():
    (trace,) = load_traces(HERE / "phoenix_spans.jsonl")  # newest first in the file: sorted by time
    assert (trace.group, trace.metadata["agent_model"]) == ("sess-boston", "gpt-4o-mini")
    kinds = [(e.role, e.text) if e.type == "message" else (e.tool, e.call_id, e.output) for e in trace.events]
    assert kinds == [
        ("user", "What's the weather in Boston?"), ("assistant", ""),
        ("get_weather", "call_123", '{"temperature": 65, "condition": "cloudy"}'),
        ("user", "And tomorrow?"), ("assistant", ""),
        ("get_forecast", "call_124", None),  # asked for, never answered
    ]
    assert [c.turn for c in trace.calls] == [0, 1]
    assert trace.calls[1].args == {"location": "Boston, MA", "days": 1}


def test_nested_phoenix_attributes_legacy_function_call_and_ids():
    (trace,) = load_traces(HERE / "phoenix_rest.json")
    add, mul = trace.calls
    assert (add.tool, add.args, add.output, add.turn) == ("add", {"a": 2, "b": 3}, "5", 0)
    assert (mul.call_id, mul.tool, mul.args, mul.output, mul.turn) == ("call_mul", "multiply",
                                                                        {"a": 5, "b": 4}, "20", 1)
    assert [t.name for t in trace.tools] == ["add", "multiply"]
    assert trace.tools[0].description == "Add two integers"
    assert trace.events[-1].text == "(2 + 3) * 4 = 20"
    assert trace.metadata["span_metadata"] == {"app": "calc"}


def test_decision_points_and_provenance(tmp_path):
    (trace,) = load_traces(HERE / "phoenix_rest.json")
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["add"], ["multiply"], ["<respond>"]]
    doc = document(llm("b1", 0, 1, calls=[("call_1", "get_user", '{"name": "ann"}')]),
                   tool("c1", 1, 2, "get_user", tool__id="call_1", output__value='{"order_id": "ORD-1234"}'),
                   llm("b2", 2, 3, calls=[("call_2", "get_order", '{"order_id": "ORD-1234"}')]))
    (run,) = load_traces(write_jsonl(tmp_path / "t.jsonl", [doc]))
    provs = {(p.call_id, p.path): p for p in trace_provenance(run)}
    copied = provs[("call_2", "order_id")]
    assert (copied.kind, copied.source_tool) == ("output", "get_user")


def test_round_trip_through_the_canonical_schema():
    for trace in load_traces(*(HERE / n for n in NAMES)):
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


# ---- file shapes ---------------------------------------------------------------------------------------


def test_a_json_list_of_spans_and_otlp_lines_read_like_the_fixtures(tmp_path):
    spans = [json.loads(line) for line in (HERE / "phoenix_spans.jsonl").read_text().splitlines()]
    listed = tmp_path / "spans.json"
    listed.write_text(json.dumps(spans), encoding="utf-8")
    assert events(load_traces(listed)[0]) == events(load_traces(HERE / "phoenix_spans.jsonl")[0])
    doc = json.loads((HERE / "agent_trace.json").read_text())
    scope = doc["resourceSpans"][0]["scopeSpans"][0]
    lines = [{"resourceSpans": [{**doc["resourceSpans"][0], "scopeSpans": [{**scope, "spans": [s]}]}]}
             for s in scope["spans"]]
    split = load_traces(write_jsonl(tmp_path / "export.jsonl", lines))  # one span per line
    bare = tmp_path / "docs.json"
    bare.write_text(json.dumps(lines), encoding="utf-8")  # a bare list of OTLP documents
    whole = load_traces(HERE / "agent_trace.json")[0]
    for traces in (split, load_traces(bare)):
        assert [events(t) for t in traces] == [events(whole)]


def test_tool_spans_match_by_name_in_order_and_unasked_spans_keep_their_input(tmp_path):
    doc = document(
        llm("b1", 0, 1, calls=[(None, "search", '{"q": "a"}'), (None, "search", '{"q": "b"}')]),
        tool("c1", 1.1, 1.5, "search", output__value="A"),
        tool("c2", 1.2, 1.6, "search", output__value="B"),
        tool("c3", 1.3, 1.4, "lookup", input__value="plain text", output__value="L"),
        llm("b2", 2, 3))
    (trace,) = load_traces(write_jsonl(tmp_path / "t.jsonl", [doc]))
    assert [(c.tool, c.args, c.output, c.turn) for c in trace.calls] == [
        ("search", {"q": "a"}, "A", 0), ("search", {"q": "b"}, "B", 0),
        ("lookup", {"input": "plain text"}, "L", 0)]


def test_openai_agents_shape_text_and_calls_in_separate_output_messages(tmp_path):
    """openinference-instrumentation-openai-agents: a Responses API answer's text is output message 0 and
    its function calls go to the next message; tool spans carry no id; a handoff is an empty TOOL span."""
    out = "llm__output_messages__"
    response = span("b1", 0, 1, openinference__span__kind="LLM",
                    llm__input_messages__0__message__role="system",
                    llm__input_messages__0__message__content="Be brief.",
                    llm__input_messages__1__message__role="user",
                    llm__input_messages__1__message__contents__0__message_content__type="text",
                    llm__input_messages__1__message__contents__0__message_content__text="weather in Paris?",
                    **{out + "0__message__role": "assistant",
                       out + "0__message__contents__0__message_content__type": "text",
                       out + "0__message__contents__0__message_content__text": "Checking.",
                       out + "1__message__role": "assistant",
                       out + "1__message__tool_calls__0__tool_call__id": "call_a",
                       out + "1__message__tool_calls__0__tool_call__function__name": "get_weather",
                       out + "1__message__tool_calls__0__tool_call__function__arguments": '{"city": "Paris"}',
                       out + "1__message__tool_calls__1__tool_call__id": "call_b",
                       out + "1__message__tool_calls__1__tool_call__function__name": "transfer_to_agent"})
    run = tool("c1", 1.1, 1.2, "get_weather", input__value='{"city": "Paris"}',
               input__mime_type="application/json", output__value="sunny")
    handoff = span("c2", 1.3, 1.3, name="handoff to agent", openinference__span__kind="TOOL")
    (trace,) = load_traces(write_jsonl(tmp_path / "t.jsonl", [document(response, run, handoff)]))
    assert [(m.role, m.text) for m in trace.events if m.type == "message"] == [
        ("system", "Be brief."), ("user", "weather in Paris?"), ("assistant", "Checking.")]
    assert [(c.call_id, c.tool, c.args, c.output) for c in trace.calls] == [
        ("call_a", "get_weather", {"city": "Paris"}, "sunny"), ("call_b", "transfer_to_agent", {}, None)]
    assert trace.metadata["empty_tool_spans_skipped"] == ["handoff to agent"]


def test_a_tool_input_that_is_not_json_is_kept_as_text(tmp_path):
    doc = document(llm("b1", 0, 1), tool("c1", 1, 2, "search", input__value="{'q': 'python repr'}",
                                         tool__parameters="not json"))
    (trace,) = load_traces(write_jsonl(tmp_path / "t.jsonl", [doc]))
    (call,) = trace.calls
    assert (call.args, call.extra["input_not_json_object"]) == ({"input": "{'q': 'python repr'}"}, True)
    assert trace.tools[0].name == "search"


def test_one_llm_call_per_trace_keeps_the_history_and_folds(tmp_path):
    """OpenAIInstrumentor alone: each chat completion is a trace of its own whose input repeats the run so
    far; the history becomes events without times, so the earlier call's trace folds into the later one."""
    first = llm("b1", 0, 1, trace_id="a" * 32, calls=[("call_1", "get_user", '{"name": "ann"}')])
    m, tc = "llm__input_messages__", "llm__input_messages__1__message__tool_calls__0__tool_call__"
    second = span("b2", 2, 3, trace_id="b" * 32, openinference__span__kind="LLM", **{
        m + "0__message__role": "user", m + "0__message__content": "hi", m + "1__message__role": "assistant",
        tc + "id": "call_1", tc + "function__name": "get_user", tc + "function__arguments": '{"name": "ann"}',
        m + "2__message__role": "tool", m + "2__message__tool_call_id": "call_1",
        m + "2__message__content": '{"id": 7}',
        m + "3__message__role": "tool", m + "3__message__tool_call_id": "x",
        m + "3__message__content": "stray",
        "llm__output_messages__0__message__role": "assistant",
        "llm__output_messages__0__message__content": "Ann is user 7."})
    path = write_jsonl(tmp_path / "sdk.jsonl", [document(first), document(second)])
    report = ImportReport()
    (trace,) = load_traces(path, report=report)
    assert (trace.trace_id, report.folded) == ("b" * 32, 1)
    assert [(e.type, e.role if e.type == "message" else e.tool) for e in trace.events] == [
        ("message", "user"), ("message", "assistant"), ("tool_call", "get_user"), ("message", "assistant")]
    call = trace.calls[0]
    assert (call.call_id, call.turn, call.output, call.t_start) == ("call_1", 0, '{"id": 7}', None)
    stray = {"tool_call_id": "x", "name": None, "text": "stray"}
    assert trace.metadata["unmatched_input_messages"] == [stray]
    assert [label.tools for _, label in trace.decision_points()] == [["get_user"], ["<respond>"]]


def test_nested_llm_spans_are_counted_not_doubled(tmp_path):
    outer = llm("b1", 0, 2, calls=[("call_1", "f", "{}")])
    inner = llm("b2", 0.1, 1.9, parent="b1", calls=[("call_1", "f", "{}")])
    (trace,) = load_traces(write_jsonl(tmp_path / "t.jsonl", [document(outer, inner)]))
    assert [c.call_id for c in trace.calls] == ["call_1"]
    assert trace.metadata["nested_spans_skipped"] == 1


# ---- bad input -----------------------------------------------------------------------------------------

BAD = [
    ("args", llm("b9", 0, 1, calls=[("c", "f", "{oops")]),
     "resourceSpans[0].scopeSpans[0].spans[0].attributes.llm.output_messages.0.message.tool_calls.0"
     ".tool_call.function.arguments", "not valid JSON"),
    ("role", span("b9", 0, 1, openinference__span__kind="LLM", llm__input_messages__0__message__role=3),
     "resourceSpans[0].scopeSpans[0].spans[0].attributes.llm.input_messages.0.message.role", "expected str"),
    ("schema", span("b9", 0, 1, openinference__span__kind="LLM", llm__tools__0__tool__json_schema="[1]"),
     "resourceSpans[0].scopeSpans[0].spans[0].attributes.llm.tools.0.tool.json_schema", "expected dict"),
]


@pytest.mark.parametrize(("case", "bad", "field", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_span_names_file_line_and_field_and_skip_drops_only_its_trace(tmp_path, case, bad, field,
                                                                          message):
    good = document(llm("a1", 0, 1, trace_id="ab" * 16))
    path = write_jsonl(tmp_path / "bad.jsonl", [good, document(bad)])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="openinference")
    assert info.value.field == field
    assert message in info.value.reason
    assert "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, format="openinference", errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["ab" * 16]  # never a half-read trace
    assert [e.field for e in report.skipped] == [field]


def test_bad_phoenix_span_names_its_field(tmp_path):
    spans = json.loads((HERE / "phoenix_rest.json").read_text())
    spans["data"][1]["start_time"] = "yesterday"
    path = tmp_path / "rest.json"
    path.write_text(json.dumps(spans), encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert (info.value.field, "rest.json" in str(info.value)) == ("data[1].start_time", True)


def _raise(error):
    raise error


@pytest.mark.parametrize("name", NAMES)
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(HERE / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["openinference"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


def test_cli_import_round_trips_through_toolcast_jsonl(import_round_trip):
    again = import_round_trip(HERE / "agent_trace.json", "openinference", 2)
    assert [t.source for t in again] == ["openinference", "openinference"]


def test_an_empty_tool_schema_is_reported_and_skipped_not_fatal(tmp_path, caplog):
    good = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    bad = llm("b1", 0, 1, calls=[("call_1", "f", "{}")], llm__tools__0__tool__json_schema="{}",
              llm__tools__1__tool__json_schema=json.dumps(good))
    path = write_jsonl(tmp_path / "t.jsonl", [document(bad)])
    with caplog.at_level("WARNING"):
        (trace,) = load_traces(path, format="openinference")
    assert [t.name for t in trace.tools] == ["f"] and [c.tool for c in trace.calls] == ["f"]
    field = "resourceSpans[0].scopeSpans[0].spans[0].attributes.llm.tools.0.tool.json_schema"
    assert trace.metadata["skipped_tool_schemas"] == [{"field": field, "schema": {}}]
    assert f"t.jsonl, line 1, field {field!r}" in caplog.text and "skipped" in caplog.text
