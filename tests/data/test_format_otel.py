"""OpenTelemetry GenAI (OTLP JSON) importer, on fixtures hand-written from the OTLP and GenAI semantic
convention specs (see tests/fixtures/otel/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records

FIXTURES = Path(__file__).parent.parent / "fixtures" / "otel"
TRACE = "5b8efff798038103d269b633813fc60c"
T0 = 1_700_000_000_000_000_000


def attr(key, value):
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value if isinstance(value, str) else json.dumps(value)}}


def span(span_id, start, end, trace_id=TRACE, parent="", status=None, **attrs):
    """A span; keyword attributes use "__" for "." (gen_ai__tool__name -> gen_ai.tool.name)."""
    return {"traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": "span",
            "startTimeUnixNano": str(T0 + int(start * 1e9)), "endTimeUnixNano": str(T0 + int(end * 1e9)),
            "attributes": [attr(k.replace("__", "."), v) for k, v in attrs.items()], "status": status or {}}


def document(*spans):
    return {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "svc")]},
                               "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}]}]}


def write_jsonl(path, docs):
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def tool_span(span_id, start, end, name="f", call_id=None, arguments="{}", **kw):
    extra = {"gen_ai__tool__call__id": call_id} if call_id else {}
    return span(span_id, start, end, gen_ai__operation__name="execute_tool", gen_ai__tool__name=name,
                gen_ai__tool__call__arguments=arguments, **extra, **kw)


@pytest.mark.parametrize("name", ["agent_trace.json", "file_export.jsonl"])
def test_fixture_is_detected_as_otel_only(name):
    report = ImportReport()
    traces = load_traces(FIXTURES / name, report=report)
    assert traces and report.formats == {"otel": len(traces)}
    _, first = next(iter_records(FIXTURES / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["otel"]


def test_agent_run_with_parallel_tools_and_a_failed_call():
    agent, chat = load_traces(FIXTURES / "agent_trace.json")
    assert (agent.trace_id, agent.group, agent.source) == (TRACE, "conv_5j66UpCpwteGg4YSxUnt7lPY", "otel")
    assert agent.metadata == {"agent_model": "gpt-4o", "agent_implementation": "Weather Agent",
                              "agent_name": "Weather Agent", "provider": "openai", "service": "weather-agent",
                              "conversation_id": "conv_5j66UpCpwteGg4YSxUnt7lPY"}
    assert [(t.name, t.param_names) for t in agent.tools] == [("get_weather", ["location"])]
    shape = [(type(e).__name__, getattr(e, "role", None), e.turn) for e in agent.events]
    assert shape == [("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
                     ("ToolCall", None, 0), ("ToolCall", None, 0), ("Message", "assistant", None)]
    system, user, first, paris, rome, answer = agent.events
    assert (system.text, user.text) == ("You are a weather bot.", "Weather in Paris and Rome?")
    assert (first.text, first.tokens) == ("", 35)
    assert (first.t_start, first.t_end) == pytest.approx((1_700_000_001.0, 1_700_000_001.8))
    assert (paris.call_id, paris.args, paris.error) == ("call_paris", {"location": "Paris"}, False)
    assert json.loads(paris.output)["conditions"] == "sunny"
    assert (paris.t_start, paris.t_end) == pytest.approx((1_700_000_001.9, 1_700_000_002.4))
    assert (rome.call_id, rome.error, rome.output) == ("call_rome", True, "upstream timeout")
    assert rome.extra["error_type"] == "timeout"
    assert answer.text.startswith("Paris is sunny") and answer.tokens == 20
    labels = [label.tools for _, label in agent.decision_points()]
    assert labels == [["get_weather", "get_weather"], ["<respond>"]]
    assert chat.trace_id == "0af7651916cd43dd8448eb211c80319c" and chat.group == chat.trace_id
    assert [(e.role, e.text) for e in chat.events] == [("user", "What is 2+2?"), ("assistant", "4")]


def test_file_export_lines_merge_structured_values_and_old_attribute_names():
    (trace,) = load_traces(FIXTURES / "file_export.jsonl")
    assert trace.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"  # hex ids are case-insensitive
    assert trace.metadata == {"agent_model": "claude-sonnet-4-5", "agent_implementation": "support-bot",
                              "provider": "anthropic", "service": "support-bot"}
    user, ask, call, answer = trace.events
    assert (user.text, ask.text, ask.tokens, ask.turn) == ("Where is order 42?", "Let me check.", 12, 0)
    # No gen_ai.tool.call.id: the span id names the call, and the requested tool_call is not counted twice.
    assert (call.call_id, call.tool, call.args) == ("00f067aa0ba902b8", "get_order", {"order_id": "42"})
    assert json.loads(call.output) == {"status": "shipped", "items": 2}
    assert (answer.text, answer.tokens, answer.turn) == ("Order 42 has shipped.", 9, None)


def test_round_trip_through_the_canonical_schema():
    for trace in load_traces(FIXTURES / "agent_trace.json", FIXTURES / "file_export.jsonl"):
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_calls_requested_without_tool_spans_come_from_the_messages(tmp_path):
    requested = [{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c1", "name": "search", "arguments": {"q": "otel"}}]}]
    results = [{"role": "user", "parts": [{"type": "text", "content": "find otel"}]}, *requested,
               {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1",
                                           "response": ["a", "b"]}]}]
    doc = document(
        span("a1", 0, 1, gen_ai__operation__name="chat", gen_ai__input__messages=results[:1],
             gen_ai__output__messages=requested),
        span("a2", 2, 3, gen_ai__operation__name="chat", gen_ai__input__messages=results,
             gen_ai__output__messages=[{"role": "assistant",
                                        "parts": [{"type": "text", "content": "done"}]}]))
    (trace,) = load_traces(write_jsonl(tmp_path / "chat_only.jsonl", [doc]))
    (call,) = trace.calls
    assert (call.call_id, call.tool, call.args, call.output, call.t_start) == (
        "c1", "search", {"q": "otel"}, '["a", "b"]', None)
    assert [type(e).__name__ for e in trace.events] == ["Message", "Message", "ToolCall", "Message"]


def test_tool_spans_without_an_inference_span_share_a_turn_only_while_they_overlap(tmp_path):
    doc = document(tool_span("b1", 0, 2, parent="ff"), tool_span("b2", 1, 3, parent="ff"),
                   tool_span("b3", 4, 5, parent="ff"))
    (trace,) = load_traces(write_jsonl(tmp_path / "tools.jsonl", [doc]))
    assert [c.turn for c in trace.calls] == [0, 0, 1]


def bad_doc(case):
    chat = span("a1", 0, 1, gen_ai__operation__name="chat")
    if case == "time-wrong-type":
        return document(chat, {**tool_span("a2", 2, 3), "startTimeUnixNano": "soon"})
    if case == "attributes-wrong-type":
        return document(chat, {**tool_span("a2", 2, 3), "attributes": {"gen_ai.tool.name": "f"}})
    if case == "arguments-invalid-json":
        return document(chat, tool_span("a2", 2, 3, arguments='{"q": '))
    if case == "tool-name-missing":
        return document(chat, span("a2", 2, 3, gen_ai__operation__name="execute_tool"))
    if case == "result-without-call":
        late = [{"role": "tool", "parts": [{"type": "tool_call_response", "id": "ghost", "response": "x"}]}]
        return document(chat, tool_span("a2", 2, 3, call_id="c1"),
                        span("a3", 4, 5, gen_ai__operation__name="chat", gen_ai__input__messages=late))
    raise AssertionError(case)


SPAN = "resourceSpans[0].scopeSpans[0].spans"
BAD = [
    ("time-wrong-type", f"{SPAN}[1].startTimeUnixNano", "expected nanoseconds"),
    ("attributes-wrong-type", f"{SPAN}[1].attributes", "expected list, got dict"),
    ("arguments-invalid-json", f"{SPAN}[1].attributes.gen_ai.tool.call.arguments", "not valid JSON"),
    ("tool-name-missing", f"{SPAN}[1].attributes.gen_ai.tool.name", "is missing"),
    ("result-without-call", f"{SPAN}[2].attributes.gen_ai.input.messages[0].parts[0].id",
     "no tool call in this trace has that id"),
]


@pytest.mark.parametrize(("case", "field", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_span_names_file_line_and_field_and_skip_drops_only_its_trace(tmp_path, case, field, message):
    good = document(span("c1", 0, 1, trace_id="ab" * 16, gen_ai__operation__name="chat"))
    path = write_jsonl(tmp_path / "bad.jsonl", [good, bad_doc(case)])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="otel")
    assert info.value.field == field
    assert message in info.value.reason
    assert "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, format="otel", errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["ab" * 16]  # never a half-read trace
    assert [e.field for e in report.skipped] == [field]


def test_base64_ids_are_refused_with_a_hint(tmp_path):
    chat = span("a1", 0, 1, gen_ai__operation__name="chat")
    doc = document({**chat, "traceId": "W47/95gDgQPSabYzgT/GDA=="})
    with pytest.raises(TraceFormatError, match="hex, not base64"):
        load_traces(write_jsonl(tmp_path / "b64.jsonl", [doc]))


def _raise(error):
    raise error


@pytest.mark.parametrize("name", ["agent_trace.json", "file_export.jsonl"])
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(FIXTURES / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["otel"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


def test_sdk_written_genai_parts_with_results_as_tool_or_user_messages():
    """Spans recorded by the OpenTelemetry SDK and encoded by its OTLP encoder (scripts/make_sdk_fixtures.py):
    current conventions (results as role "tool" + response), and pydantic-ai's (role "user" + result)."""
    report = ImportReport()
    traces = load_traces(FIXTURES / "sdk_genai_parts.json", report=report)
    assert report.formats == {"otel": 2}
    for trace, conversation in zip(traces, ["conv-semconv", "conv-pydantic-ai"], strict=True):
        assert trace.group == conversation and [t.name for t in trace.tools] == ["get_weather"]
        assert [(e.role, e.text) for e in trace.events if isinstance(e, Message)] == [
            ("system", "Be brief."), ("user", "Weather in Paris and Rome?"), ("assistant", ""),
            ("assistant", "Paris 21 °C, Rome 25 °C.")]  # results sent as "user" are no user turn
        paris, rome = trace.calls
        assert [(c.call_id, c.args, c.output, c.turn) for c in (paris, rome)] == [
            ("call_a", {"city": "Paris"}, '{"temp_c": 21}', 0),
            ("call_b", {"city": "Rome"}, '{"temp_c": 25}', 0)]
        assert paris.t_start < rome.t_start and trace.events[-1].tokens == 12


def test_results_given_only_in_messages_read_the_result_key(tmp_path):
    out = json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f",
                                                        "arguments": {"x": 1}}]}])
    go = {"role": "user", "parts": [{"type": "text", "content": "go"}]}
    result = {"role": "user", "parts": [{"type": "tool_call_response", "id": "c1", "result": "ok"}]}
    later = json.dumps([go, {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "f"}]},
                        result])
    first = span("a1", 0, 1, gen_ai__operation__name="chat", gen_ai__output__messages=out,
                 gen_ai__input__messages=json.dumps([go]))
    second = span("a2", 2, 3, gen_ai__operation__name="chat", gen_ai__input__messages=later)
    (trace,) = load_traces(write_jsonl(tmp_path / "t.jsonl", [document(first, second)]))
    assert [(c.call_id, c.args, c.output) for c in trace.calls] == [("c1", {"x": 1}, "ok")]
    assert [e.role for e in trace.events if isinstance(e, Message)] == ["user", "assistant", "assistant"]
