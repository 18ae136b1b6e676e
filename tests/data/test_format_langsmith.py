"""LangSmith runs importer, on fixtures hand-written from the SDK's Run model and LangChain's tracer
(see tests/fixtures/langsmith/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records
from toolcast.data.load import detect_format
from toolcast.data.provenance import trace_provenance

FIXTURES = Path(__file__).parent.parent / "fixtures"
HERE = FIXTURES / "langsmith"
NAMES = ["react_runs.jsonl", "runs_query_page.json", "nested_child_runs.json", "wrap_openai_list.json"]
FIRST = "1ef6a001-0001-4b7c-9d1e-0a2b3c4d5e6f"
SECOND = "1ef6a002-0001-4b7c-9d1e-0a2b3c4d5e6f"
REACT_SHAPE = [("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
               ("ToolCall", "get_weather", 0), ("ToolCall", "get_weather", 0), ("Message", "assistant", 1),
               ("ToolCall", "get_time", 1), ("Message", "assistant", None)]


def shape(trace):
    return [(type(e).__name__, e.role if isinstance(e, Message) else e.tool, e.turn) for e in trace.events]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_detected_as_langsmith_only(name):
    report = ImportReport()
    traces = load_traces(HERE / name, report=report)
    assert traces and report.formats == {"langsmith": len(traces)}
    _, first = next(iter_records(HERE / name))
    assert detect_format(HERE / name, first).name == "langsmith"
    # A run has toolcast's "trace_id" and "events" too: toolcast's sniffer leaves records with a run_type
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["langsmith"]


def test_other_formats_fixtures_are_not_langsmith():
    others = [p for p in FIXTURES.rglob("*.json*") if p.parent.name not in ("langsmith", "model_tiny")]
    assert others
    for path in others:
        _, first = next(iter_records(path))
        assert not FORMATS["langsmith"].sniff(first), path


def test_react_agent_runs_in_any_order_parallel_calls_an_error_and_times():
    (first, second) = load_traces(HERE / "react_runs.jsonl", fold=False)
    assert (first.trace_id, first.group, first.source) == (FIRST, "thread-7", "langsmith")
    assert shape(first) == REACT_SHAPE
    assert [t.name for t in first.tools] == ["get_weather", "get_time"]
    assert first.metadata["agent_model"] == "gpt-4o-mini" and first.metadata["run_name"] == "LangGraph"
    paris, tokyo, clock = first.calls
    assert (paris.call_id, paris.args, paris.error) == ("call_Wp1", {"city": "Paris"}, False)
    assert json.loads(paris.output)["tz"] == "Europe/Paris"
    assert (tokyo.args, tokyo.error, tokyo.output.startswith("Error: ToolException")) == (
        {"city": "Tokyo"}, True, True)
    assert tokyo.extra["run_error"].startswith("ToolException('City not found: Tokyo')")
    assert (clock.args, clock.output) == ({"tz": "Europe/Paris"}, "14:30")
    t0 = 1725373800.0  # 2024-09-03T14:30:00 UTC; the API writes naive UTC times
    assert [round(c.t_start - t0, 2) for c in first.calls] == [2.02, 2.03, 5.02]
    assert [round(c.t_end - t0, 2) for c in first.calls] == [3.4, 2.6, 5.45]
    answers = [e for e in first.events if isinstance(e, Message) and e.role == "assistant"]
    assert [(round(m.t_start - t0, 2), m.tokens) for m in answers] == [(0.02, 41), (3.52, 18), (5.52, 22)]
    assert answers[0].extra["run_id"] == "1ef6a001-0003-4b7c-9d1e-0a2b3c4d5e6f"
    # the thread's next trace: the first turn again (from the graph state), a new question, a call that
    # never ran (the graph stopped before the tool node)
    assert second.group == "thread-7" and shape(second)[:8] == REACT_SHAPE
    assert shape(second)[8:] == [("Message", "user", None), ("Message", "assistant", 2),
                                 ("ToolCall", "get_weather", 2)]
    assert (second.calls[-1].output, second.calls[-1].t_start) == (None, None)


def test_folding_keeps_the_later_trace_of_the_thread_with_the_earlier_ones_times():
    report = ImportReport()
    (trace,) = load_traces(HERE / "react_runs.jsonl", report=report)
    assert trace.trace_id == SECOND and (report.folded, report.conversations) == (1, 1)
    (first, _) = load_traces(HERE / "react_runs.jsonl", fold=False)
    assert [(e.t_start, e.t_end) for e in trace.events[:8]] == [(e.t_start, e.t_end) for e in first.events]


@pytest.mark.parametrize("name", ["runs_query_page.json", "nested_child_runs.json"])
def test_query_page_and_nested_child_runs_read_like_the_flat_export(name):
    (trace,) = load_traces(HERE / name)
    (flat, _) = load_traces(HERE / "react_runs.jsonl", fold=False)
    assert trace.to_dict() == flat.to_dict()


def test_wrapped_openai_client_role_messages_and_a_traceable_tool():
    (trace,) = load_traces(HERE / "wrap_openai_list.json")
    assert trace.group == "chat-42" and trace.metadata["agent_model"] == "gpt-4o-mini"
    assert shape(trace) == [("Message", "system", None), ("Message", "user", None),
                            ("Message", "assistant", 0), ("ToolCall", "get_weather", 0),
                            ("Message", "assistant", None)]
    (call,) = trace.calls
    assert (call.call_id, call.args, json.loads(call.output)["temp_c"]) == ("call_O1", {"city": "Oslo"}, 4)
    assert call.extra["run_id"] == "1ef6a003-0003-4b7c-9d1e-0a2b3c4d5e6f" and call.t_start is not None
    assert trace.events[-1].text == "It is 4°C and raining in Oslo." and trace.events[-1].tokens == 11


def test_decision_points_and_provenance():
    (first, _) = load_traces(HERE / "react_runs.jsonl", fold=False)
    assert [label.tools for _, label in first.decision_points()] == [
        ["get_weather", "get_weather"], ["get_time"], ["<respond>"]]
    found = {(p.call_id, p.path): p for p in trace_provenance(first)}
    tz = found[("call_Tz3", "tz")]
    assert (tz.kind, tz.source_tool) == ("output", "get_weather")


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_the_canonical_schema(name):
    for trace in load_traces(HERE / name):
        assert all(isinstance(e, (Message, ToolCall)) for e in trace.events)
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_import_cli_round_trips_through_toolcast_jsonl(import_round_trip):
    import_round_trip(HERE / "react_runs.jsonl", "langsmith", 1)


# ---- shapes beside the fixtures ------------------------------------------------------------------------


def run(rid, run_type, trace="t1", **fields):
    return {"id": rid, "run_type": run_type, "name": fields.pop("name", rid), "trace_id": trace,
            "start_time": "2024-01-01T00:00:00", **fields}


def ai_out(*calls, content=""):
    message = {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"],
               "kwargs": {"content": content, "type": "ai", "tool_calls": [
                   {"name": n, "args": a, "id": i, "type": "tool_call"} for n, a, i in calls]}}
    return {"generations": [[{"text": content, "message": message}]]}


HUMAN = {"type": "human", "content": "hi"}


def test_tool_runs_without_llm_runs_are_the_trace_and_unmatched_runs_are_kept(tmp_path):
    path = write_jsonl(tmp_path / "runs.jsonl", [
        run("a", "tool", name="search", inputs={"input": '{"q": "x"}'}, outputs={"output": "found"}),
        run("b", "tool", name="open", inputs={"input": "plain text"}, error="boom"),
        run("c", "llm", trace="t2", inputs={"messages": [[HUMAN]]}, outputs=ai_out(("f", {}, "id1"))),
        run("d", "tool", trace="t2", name="g", inputs={"x": 1}),
    ])
    tools_only, with_llm = load_traces(path)
    assert shape(tools_only) == [("ToolCall", "search", 0), ("ToolCall", "open", 1)]
    assert [(c.args, c.output, c.error) for c in tools_only.calls] == [
        ({"q": "x"}, "found", False), ({"input": "plain text"}, None, True)]
    assert [c.tool for c in with_llm.calls] == ["f"]
    assert with_llm.metadata["unmatched_tool_runs"][0]["name"] == "g"


def test_a_tool_run_finds_its_call_by_the_tool_call_id_of_its_output(tmp_path):
    out = {"content": "B", "type": "tool", "tool_call_id": "id2", "status": "success"}
    path = write_jsonl(tmp_path / "runs.jsonl", [
        run("c", "llm", inputs={"messages": [[HUMAN]]},
            outputs=ai_out(("f", {"n": 1}, "id1"), ("f", {"n": 2}, "id2"))),
        run("b", "tool", name="f", dotted_order="2", inputs={"input": "{'n': 2}"}, outputs={"output": out}),
        run("a", "tool", name="f", dotted_order="3", inputs={"input": "{'n': 1}"}, outputs={"output": "A"}),
    ])
    (trace,) = load_traces(path)
    assert [(c.call_id, c.output, c.extra["run_id"]) for c in trace.calls] == [
        ("id1", "A", "a"), ("id2", "B", "b")]


def test_an_llm_run_that_is_no_prefix_of_the_conversation_is_listed(tmp_path):
    other = {"type": "human", "content": "summarise"}
    path = write_jsonl(tmp_path / "runs.jsonl", [
        run("a", "llm", inputs={"messages": [[HUMAN, {"type": "ai", "content": "yo"}, HUMAN]]},
            outputs=ai_out(content="done")),
        run("b", "llm", name="summariser", inputs={"messages": [[other]]}, outputs=ai_out(content="ok")),
    ])
    (trace,) = load_traces(path)
    assert [e.text for e in trace.events] == ["hi", "yo", "hi", "done"]
    assert trace.metadata["other_llm_runs"] == [{"id": "b", "name": "summariser"}]


def test_wrapped_anthropic_client_messages_and_a_tool_use_block(tmp_path):
    tools = [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}}]
    asked = [{"role": "user", "content": "hi"}]
    use = [{"type": "text", "text": "calling"},
           {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "R"}]}
    request = {"system": "be brief", "tools": tools, "model": "claude-sonnet-4-5"}
    path = write_jsonl(tmp_path / "runs.jsonl", [
        run("l1", "llm", end_time="2024-01-01T00:00:01", inputs={"messages": asked, **request},
            outputs={"type": "message", "role": "assistant", "content": use}),
        run("t", "tool", name="f", start_time="2024-01-01T00:00:02", inputs={"a": 1},
            outputs={"output": "R"}),
        run("l2", "llm", start_time="2024-01-01T00:00:03",
            inputs={"messages": [*asked, {"role": "assistant", "content": use}, result], **request},
            outputs={"type": "message", "role": "assistant", "content": [{"type": "text", "text": "done"}]}),
    ])
    (trace,) = load_traces(path)
    assert shape(trace) == [("Message", "system", None), ("Message", "user", None),
                            ("Message", "assistant", 0), ("ToolCall", "f", 0), ("Message", "assistant", None)]
    assert [t.name for t in trace.tools] == ["f"] and trace.metadata["agent_model"] == "claude-sonnet-4-5"
    assert [e.extra.get("run_id") for e in trace.events] == [None, None, "l1", "t", "l2"]
    assert (trace.calls[0].output, trace.calls[0].args) == ("R", {"a": 1})


def test_a_parquet_export_as_json_custom_run_types_and_langchain_format_outputs(tmp_path):
    """Bulk exports are Parquet; converted to JSON lines their object fields are JSON text. A custom llm
    run in LangSmith's LangChain format answers with outputs.messages; any run_type is allowed."""
    answer = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]}
    path = write_jsonl(tmp_path / "export.jsonl", [
        run("r", "agent_step", inputs="{}"),
        run("l", "llm", inputs=json.dumps({"messages": [{"role": "user", "content": "go"}]}),
            outputs=json.dumps({"messages": [answer]}), extra=json.dumps({"metadata": {"thread_id": "th"}})),
        run("t", "tool", name="f", inputs='{"input": "{\'a\': 1}"}', outputs='{"output": "done"}'),
    ])
    (trace,) = load_traces(path)
    assert trace.group == "th" and shape(trace) == [
        ("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", "f", 0)]
    call = trace.calls[0]
    assert (call.args, call.output, call.extra["run_id"]) == ({"a": 1}, "done", "t")


def test_reasoning_stays_out_of_the_text_and_multi_part_tool_output(tmp_path):
    """ChatAnthropic with extended thinking: thinking / text / tool_use blocks in the AIMessage; the tool
    returned text and an image (content parts), and no ToolMessage came back into a later llm run."""
    content = [{"type": "thinking", "thinking": "The user wants a chart.", "signature": "sig"},
               {"type": "text", "text": "Let me plot it."},
               {"type": "tool_use", "id": "toolu_9", "name": "plot", "input": {"series": [1, 2]}}]
    answer = {"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", "AIMessage"],
              "kwargs": {"content": content, "type": "ai", "tool_calls": [
                  {"name": "plot", "args": {"series": [1, 2]}, "id": "toolu_9", "type": "tool_call"}]}}
    parts = [{"type": "text", "text": "plotted"},
             {"type": "image", "base64": "iVBO", "mime_type": "image/png"}]
    result = {"content": parts, "type": "tool", "tool_call_id": "toolu_9", "status": "success"}
    path = write_jsonl(tmp_path / "runs.jsonl", [
        run("l", "llm", inputs={"messages": [[HUMAN]]}, outputs={"generations": [[{"message": answer}]]}),
        run("t", "tool", name="plot", inputs={"input": "{'series': [1, 2]}"}, outputs={"output": result}),
    ])
    (trace,) = load_traces(path)
    said, call = trace.events[1], trace.calls[0]
    assert (said.text, said.extra["thinking"]) == ("Let me plot it.", ["The user wants a chart."])
    assert (call.call_id, call.args, call.extra["run_id"]) == ("toolu_9", {"series": [1, 2]}, "t")
    assert (call.output, call.extra["result_content"]) == ("plotted", parts)


BAD_RUNS = [
    pytest.param(run("x", "llm", inputs={"messages": [[{"type": "wizard", "content": "?"}]]}),
                 "inputs.messages[0][0].type", "not a LangChain message type", id="bad-message"),
    pytest.param(run("x", "tool", start_time="yesterday"), "start_time", "not an ISO 8601 time",
                 id="bad-time"),
    pytest.param(run("x", "llm", inputs={"messages": "hi"}), "inputs.messages", "expected list",
                 id="messages"),
    pytest.param(run("x", "llm", inputs={"messages": [[HUMAN]]}, outputs={"generations": {}}),
                 "outputs.generations", "expected list", id="generations"),
    pytest.param(run("x", "tool", error=["no"]), "error", "expected str", id="error-type"),
    pytest.param(run("x", 5), "run_type", "expected str", id="run-type"),
    pytest.param(run("x", "llm", inputs={"messages": [[HUMAN]]}, outputs={"messages": ["hi"]}),
                 "outputs.messages[0]", "expected dict", id="answer"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD_RUNS)
def test_bad_run_names_file_line_and_field_and_skip_goes_on(tmp_path, record, field, message):
    good = run("g", "tool", trace="t0", inputs={"input": "{}"})
    other = run("o", "tool", trace="t9", name="other", inputs={"input": "{}"})
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record, other])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="langsmith")
    assert (info.value.field, "bad.jsonl, line 2" in str(info.value)) == (field, True)
    assert message in info.value.reason
    report = ImportReport()
    traces = load_traces(path, format="langsmith", errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["t0", "t9"]
    assert [e.field for e in report.skipped] == [field]


def test_a_bad_run_in_a_query_page_names_the_run(tmp_path):
    path = tmp_path / "page.json"
    path.write_text(json.dumps({"runs": [run("g", "tool"), run("b", "tool", end_time="x")],
                                "cursors": {}}), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"record runs\[1\], field 'end_time'"):
        load_traces(path)


def _raise(error):
    raise error


@pytest.mark.parametrize("name", ["nested_child_runs.json", "wrap_openai_list.json"])
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(HERE / name):
        for mutated in mutate(record, values=(None, [], {}, "x", 5)):
            try:
                traces = list(FORMATS["langsmith"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


def test_llm_runs_with_a_flat_generations_list_as_the_sdk_writes_them():
    """Written by the SDK itself (RunTree + langchain-core dumpd, scripts/make_sdk_fixtures.py)."""
    report = ImportReport()
    (trace,) = load_traces(HERE / "sdk_flat_generations.json", report=report)
    assert report.formats == {"langsmith": 1} and not report.skipped
    assert shape(trace) == [("Message", "system", None), ("Message", "user", None),
                            ("Message", "assistant", 0), ("ToolCall", "get_weather", 0),
                            ("Message", "assistant", None)]
    (call,) = trace.calls
    assert (call.call_id, call.args, json.loads(call.output)) == ("call_p1", {"city": "Paris"},
                                                                   {"temp_c": 21, "sky": "sunny"})
    assert call.t_start is not None and trace.events[2].t_start is not None
    assert trace.events[-1].text == "It is sunny in Paris, 21 °C."
    assert (trace.group, [t.name for t in trace.tools]) == ("thread-7", ["get_weather"])


def test_a_flat_list_of_generation_texts_is_the_answer(tmp_path):
    llm = run("l1", "llm", inputs={"messages": [{"lc": 1, "type": "constructor",
                                                 "id": ["langchain", "schema", "messages", "HumanMessage"],
                                                 "kwargs": {"content": "Hi"}}]},
              outputs={"generations": ["Hello!"]})
    (trace,) = load_traces(write_jsonl(tmp_path / "r.jsonl", [llm]))
    assert [(e.role, e.text) for e in trace.events] == [("user", "Hi"), ("assistant", "Hello!")]


def test_import_cli_round_trips_the_sdk_fixture(import_round_trip):
    import_round_trip(HERE / "sdk_flat_generations.json", "langsmith", 1)
