"""LangChain / LangGraph importer, on fixtures hand-written from LangChain's docs
(see tests/fixtures/langchain/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records
from toolcast.data.provenance import trace_provenance

FIXTURES = Path(__file__).parent.parent / "fixtures"
HERE = FIXTURES / "langchain"
NAMES = ["messages_to_dict.json", "graph_states.jsonl", "dumpd.json", "snapshot_interrupted_dumpd.json",
         "checkpoint_list_dumpd.json", "stream_updates.jsonl"]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def shape(trace):
    return [(type(e).__name__, e.role if isinstance(e, Message) else e.tool, e.turn) for e in trace.events]


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_detected_as_langchain_only(name):
    report = ImportReport()
    traces = load_traces(HERE / name, report=report)
    assert traces and report.formats == {"langchain": len(traces)}
    _, first = next(iter_records(HERE / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["langchain"]


def test_other_formats_fixtures_are_not_langchain():
    others = [p for p in FIXTURES.rglob("*.json*") if p.parent.name not in ("langchain", "model_tiny")]
    assert others
    for path in others:
        _, first = next(iter_records(path))
        assert not FORMATS["langchain"].sniff(first), path


def test_messages_to_dict_parallel_calls_an_error_result_and_a_retry():
    (trace,) = load_traces(HERE / "messages_to_dict.json")
    assert (trace.trace_id, trace.group, trace.source, trace.tools) == (
        "messages_to_dict", "messages_to_dict", "langchain", [])
    assert trace.metadata == {"agent_model": "gpt-4o-mini-2024-07-18"}
    assert shape(trace) == [
        ("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
        ("ToolCall", "multiply", 0), ("ToolCall", "add", 0), ("Message", "assistant", 1),
        ("ToolCall", "add", 1), ("Message", "assistant", None), ("Message", "user", None),
        ("Message", "assistant", None)]
    mul, add, retry = trace.calls
    assert (mul.call_id, mul.args, mul.output, mul.error, mul.extra) == (
        "call_1fyhJAbJHuKQe6n0PacubGsL", {"a": 3, "b": 12}, "36", False, {})
    assert (add.args, add.error) == ({"a": 11, "b": 49}, True)
    assert add.output.startswith("Error: ConnectionError")
    assert (retry.output, retry.error) == ("60", False)
    first = trace.events[2]
    assert (first.text, first.tokens) == ("", 50)
    # the raw OpenAI tool_calls in additional_kwargs are the same calls: not kept twice
    assert "additional_kwargs" not in first.extra and first.extra["id"] == "run-a1"
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["multiply", "add"], ["add"], ["<respond>"], ["<respond>"]]


def test_langgraph_state_snapshot_with_anthropic_blocks():
    trace = load_traces(HERE / "graph_states.jsonl")[0]
    assert (trace.trace_id, trace.group) == ("graph_states:1", "thread-sf")
    assert [(t.name, t.param_names) for t in trace.tools] == [("get_weather", ["city"])]
    assert trace.metadata["values"] == {"remaining_steps": 21}  # the other state channels stay
    assert trace.metadata["agent_model"] == "claude-sonnet-4-5-20250929"
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0),
                            ("ToolCall", "get_weather", 0), ("Message", "assistant", None)]
    assistant, (call,) = trace.events[1], trace.calls
    assert assistant.text == "Let me check the weather."  # thinking kept out of the text
    assert assistant.extra["thinking"] == [
        "The user wants the weather in San Francisco; get_weather takes a city."]
    assert (call.call_id, call.args, call.output) == (
        "toolu_01A09q90qw90lq917835lq9", {"city": "sf"}, "It's always sunny in sf")


def test_checkpoint_tuple_multipart_outputs_and_a_call_without_result():
    trace = load_traces(HERE / "graph_states.jsonl")[1]
    assert trace.group == "thread-docs"
    assert [t.name for t in trace.tools] == ["search_docs", "screenshot", "fetch_page"]
    assert "channel_values" not in trace.metadata["checkpoint"]
    search, shot, fetch = trace.calls
    assert (search.turn, shot.turn, fetch.turn) == (0, 0, 1)
    assert search.output == "Found 1 page:\nhttps://langchain-ai.github.io/langgraph/concepts/persistence/"
    assert "result_content" not in search.extra
    assert shot.output == "Screenshot taken."
    assert shot.extra["result_content"][1]["type"] == "image"
    assert (fetch.output, fetch.error) == (None, False)  # interrupted before the tool ran
    # (the decision-point rule adds one more point after a trailing call, result or not: left to its rule)
    assert [label.tools for _, label in trace.decision_points()][:2] == [
        ["search_docs", "screenshot"], ["fetch_page"]]
    # the URL fetch_page asks for was in search_docs' output
    prov = {p.call_id: p for p in trace_provenance(trace)}
    assert (prov["call_Xk3"].kind, prov["call_Xk3"].source_tool) == ("output", "search_docs")


def test_dumpd_v1_blocks_reasoning_artifact_and_an_invalid_call():
    trace = load_traces(HERE / "dumpd.json")[0]
    assert (trace.trace_id, trace.group) == ("orders-ada", "orders")
    assert trace.metadata["agent_model"] == "gpt-5-nano"
    assert shape(trace) == [
        ("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", "search_orders", 0),
        ("Message", "assistant", 1), ("ToolCall", "get_order", 1), ("Message", "assistant", 2),
        ("ToolCall", "track_package", 2), ("Message", "assistant", None)]
    reasoning = trace.events[1]
    assert (reasoning.text, reasoning.extra["reasoning"]) == ("", ["Find the customer's orders first."])
    search, get, track = trace.calls  # tool_call blocks repeat tool_calls: each call read once
    assert search.extra["artifact"]["rows"] == 1
    assert trace.events[3].text == "Found it, checking the details."
    assert (track.args, track.error, track.extra["invalid_tool_call"]["args"]) == (
        {}, True, '{"tracking": "1Z999AA10123456784"')
    prov = {(p.call_id, p.path): p for p in trace_provenance(trace)}
    order = prov[(get.call_id, "order_id")]
    assert (order.kind, order.source_tool, order.source_path) == ("output", "search_orders", "orders[0].id")
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["search_orders"], ["get_order"], ["track_package"], ["<respond>"]]


def test_legacy_function_call_and_langchain_js_ids():
    trace = load_traces(HERE / "dumpd.json")[1]
    assert trace.trace_id == "dumpd:1"
    (call,) = trace.calls
    assert (call.tool, call.args, call.output, call.extra) == (
        "get_current_weather", {"location": "Boston, MA"}, '{"temperature": 72, "unit": "fahrenheit"}',
        {"function_call": True})
    assert [e.role for e in trace.events if isinstance(e, Message)] == ["user", "assistant", "assistant"]


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_the_canonical_schema(name):
    for trace in load_traces(HERE / name):
        assert all(isinstance(e, (Message, ToolCall)) for e in trace.events)
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_import_cli_round_trips_through_toolcast_jsonl(import_round_trip):
    import_round_trip(HERE / "dumpd.json", "langchain", 2)


def ai(tool_calls=(), content="", **fields):
    return {"type": "ai", "content": content, "tool_calls": list(tool_calls), **fields}


def tool(call_id, content="ok", **fields):
    return {"type": "tool", "content": content, "tool_call_id": call_id, **fields}


def test_calls_without_ids_are_answered_by_tool_name(tmp_path):
    calls = [{"name": "a", "args": {}, "id": None}, {"name": "b", "args": {"x": 1}, "id": None}]
    messages = [{"type": "human", "content": "go"}, ai(calls),
                tool("x1", "B", name="b"), tool("x2", "A", name="a")]
    (trace,) = load_traces(write_jsonl(tmp_path / "n.jsonl", [messages]))  # a bare list on a JSON line
    assert [(c.tool, c.output, c.extra) for c in trace.calls] == [
        ("a", "A", {"no_call_id": True}), ("b", "B", {"no_call_id": True})]


def test_server_tool_blocks_and_chat_roles_and_remove_messages(tmp_path):
    content = [{"type": "server_tool_call", "id": "srv_1", "name": "web_search", "args": {"query": "otel"}},
               {"type": "server_tool_result", "tool_call_id": "srv_1", "status": "success",
                "output": [{"url": "https://opentelemetry.io"}]},
               {"type": "text", "text": "Found it."}]
    messages = [{"type": "chat", "role": "critic", "content": "Be precise."}, ai(content=content),
                {"type": "remove", "id": "m-9", "content": ""}]
    (trace,) = load_traces(write_jsonl(tmp_path / "s.jsonl", [{"messages": messages}]))
    critic, answer, call = trace.events
    assert (critic.role, critic.extra) == ("user", {"role": "critic"})
    assert (answer.text, answer.turn) == ("Found it.", 0)
    assert (call.tool, call.extra, json.loads(call.output)) == (
        "web_search", {"block": "server_tool_call"}, [{"url": "https://opentelemetry.io"}])
    assert trace.metadata == {"removed_message_ids": ["m-9"]}


def test_pre_0_2_tool_calls_nameless_invalid_calls_and_anthropic_server_tools(tmp_path):
    raw = {"id": "call_7", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"x\"}"}}
    search = [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "lc"}},
              {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
               "content": [{"type": "web_search_result", "url": "https://langchain.com"}]}]
    nameless = {"name": None, "args": "{", "id": "c0", "error": "no name", "type": "invalid_tool_call"}
    messages = [{"type": "human", "content": "q"}, ai(additional_kwargs={"tool_calls": [raw], "x": 1}),
                tool("call_7", "found"), ai(content=search, invalid_tool_calls=[nameless])]
    (trace,) = load_traces(write_jsonl(tmp_path / "o.jsonl", [{"messages": messages}]))
    lookup, web = trace.calls
    assert (lookup.call_id, lookup.args, lookup.output) == ("call_7", {"q": "x"}, "found")
    assert trace.events[1].extra == {"additional_kwargs": {"x": 1}}  # the raw calls were read, not kept twice
    assert (web.extra, json.loads(web.output)[0]["url"]) == ({"block": "server_tool_use"}, "https://langchain.com")
    assert trace.events[3].extra["invalid_tool_calls"] == [nameless]  # no name: no call, but kept


def test_langgraph_api_thread_state_groups_by_its_checkpoint_thread(tmp_path):
    state = {"values": {"messages": [{"type": "human", "content": "hi"}]}, "next": [],
             "checkpoint": {"thread_id": "t-42", "checkpoint_ns": "", "checkpoint_id": "1f0"},
             "metadata": {"step": 1}, "created_at": "2025-10-02T10:00:00+00:00"}
    (trace,) = load_traces(write_jsonl(tmp_path / "api.jsonl", [state]))
    assert (trace.trace_id, trace.group, trace.metadata["step"]) == ("api:1", "t-42", 1)


def test_role_messages_stay_with_the_openai_importer():
    chat = [{"type": "chat", "role": "user", "content": "hi"},
            {"type": "chat", "role": "assistant", "content": "yo"}]
    openai = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    for record in (chat, {"messages": openai}, [{"messages": openai}]):
        assert [f.name for f in FORMATS.values() if f.sniff(record)] == ["openai"]
    assert not FORMATS["langchain"].sniff({"messages": []})


CALL = {"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}
BAD_RECORDS = [
    pytest.param({"messages": [{"type": "human", "content": 5}]}, "messages[0].content",
                 "expected list, got int", id="content-wrong-type"),
    pytest.param({"messages": [ai([{**CALL, "args": [1]}])]}, "messages[0].tool_calls[0].args",
                 "expected a JSON object", id="args-wrong-type"),
    pytest.param({"messages": [ai([{**CALL, "name": None}])]}, "messages[0].tool_calls[0].name",
                 "expected str, got NoneType", id="call-without-name"),
    pytest.param({"messages": [tool("c9")]}, "messages[0].tool_call_id", "no earlier tool call has that id",
                 id="result-without-call"),
    pytest.param({"messages": [ai([CALL]), tool("c1", status="failed")]}, "messages[1].status",
                 "expected 'success' or 'error'", id="status-unknown"),
    pytest.param({"messages": [{"type": "ai", "data": {"content": "", "tool_calls": {"x": 1}}}]},
                 "messages[0].data.tool_calls", "expected list, got dict", id="tool_calls-wrong-type"),
    pytest.param({"messages": [{"lc": 1, "type": "constructor", "id": ["langchain", "Foo"], "kwargs": {}}]},
                 "messages[0].id", "unknown message class", id="unknown-class"),
    pytest.param({"messages": [{"type": "wizard", "content": "hi"}]}, "messages[0].type",
                 "not a LangChain message type", id="unknown-type"),
    pytest.param({"values": {"messages": [{"type": "human"}]}}, "values.messages[0].content", "is missing",
                 id="snapshot-content-missing"),
    pytest.param({"messages": [], "tools": [{"name": "f", "input_schema": "object"}]},
                 "tools[0].input_schema", "expected dict, got str", id="input_schema-wrong-type"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD_RECORDS)
def test_bad_record_names_file_line_and_field_and_skip_goes_on(tmp_path, record, field, message):
    good = {"messages": [{"type": "human", "content": "hi"}, ai(content="hello")]}
    other = {"messages": [{"type": "human", "content": "bye"}, ai(content="hello")]}  # load folds copies
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record, other])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="langchain")
    assert info.value.field == field
    assert message in info.value.reason
    assert "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, format="langchain", errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["bad:1", "bad:3"]
    assert [e.field for e in report.skipped] == [field]


def test_bad_item_of_a_json_list_names_the_item(tmp_path):
    good = {"messages": [{"type": "human", "content": "hi"}]}
    path = tmp_path / "list.json"
    other = {"messages": [{"type": "human", "content": "bye"}]}  # not a copy: load folds repeated records
    path.write_text(json.dumps([good, {"messages": [tool("nope")]}, other]), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"list\.json, line 1, record \[1\], field 'messages\[0\]"):
        load_traces(path)
    report = ImportReport()
    assert [t.trace_id for t in load_traces(path, errors="skip", report=report)] == ["list:1:0", "list:1:2"]


def _raise(error):
    raise error


@pytest.mark.parametrize("name", NAMES)
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(HERE / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["langchain"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


# ---- shapes the real SDKs write (langchain-core 1.7.2, langgraph 1.2.22: see the fixtures' README) ----


def test_interrupted_graph_snapshot_ends_with_calls_that_have_no_result():
    """graph.get_state(config) after interrupt_before=["tools"], values through dumpd()."""
    (trace,) = load_traces(HERE / "snapshot_interrupted_dumpd.json")
    assert trace.group == "thread-2" and trace.metadata["next"] == ["tools"]
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0),
                            ("ToolCall", "get_weather", 0), ("ToolCall", "get_time", 0)]
    assert [c.output for c in trace.events[2:]] == [None, None]
    assert trace.metadata["agent_model"] == "gpt-4o-mini" and trace.events[1].tokens == 8


def test_messages_saved_as_their_str_fail_with_an_error_that_says_how_to_save_them(tmp_path):
    """json.dumps(snapshot._asdict(), default=str) writes each message as its str(): no type, no calls."""
    path = HERE / "snapshot_default_str.json"
    _, first = next(iter_records(path))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["langchain"]
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert info.value.field == "values.messages[0]"
    assert "default=str" in info.value.reason and "messages_to_dict()" in info.value.reason
    tool_str = "content='20C' name='get_weather' id='x' tool_call_id='call_1'"  # a ToolMessage's str()
    assert FORMATS["langchain"].sniff({"messages": [tool_str]})
    assert not FORMATS["langchain"].sniff({"messages": ["content=hello"]})  # plain text is no message's str()
    assert not FORMATS["langchain"].sniff(["content='a' id='b'", {"type": "human", "content": "hi"}])


def test_checkpoint_list_down_to_the_input_checkpoint():
    """[dumpd(t._asdict()) for t in checkpointer.list(config)]: the last (first written) checkpoint holds the
    input under channel_values.__start__ only; it was a missing-messages error that failed the file."""
    traces = load_traces(HERE / "checkpoint_list_dumpd.json", fold=False)
    assert [len(t.events) for t in traces] == [4, 1, 1] and {t.group for t in traces} == {"thread-2"}
    assert traces[2].events[0].text == "Weather in Paris?" and traces[2].metadata["source"] == "input"
    assert [c.output for c in traces[0].calls] == [None, None]  # interrupted before the tools ran


def test_stream_updates_written_one_chunk_per_line_are_one_run():
    """graph.stream(..., stream_mode="updates") chunks through dumpd(), one JSON line each, across an
    interrupt and its resume: {node: {"messages": [...]}} and {"__interrupt__": []} lines. Was: unknown
    format (or one trace per line)."""
    (trace,) = load_traces(HERE / "stream_updates.jsonl")
    assert trace.trace_id == "stream_updates" and len(trace.metadata["interrupts"]) == 2
    assert shape(trace) == [("Message", "assistant", 0), ("ToolCall", "get_weather", 0),
                            ("ToolCall", "get_time", 0), ("Message", "assistant", 1),
                            ("ToolCall", "get_weather", 1)]
    assert [c.output for c in trace.calls] == ["Paris: 20C", '{"city": "Paris", "time": "12:00"}', None]
    assert trace.events[3].extra["node"] == "agent"


def test_bad_message_in_a_stream_update_names_its_line(tmp_path):
    lines = (HERE / "stream_updates.jsonl").read_text().splitlines()
    bad = json.loads(lines[2])
    bad["tools"]["messages"][0]["kwargs"]["tool_call_id"] = "nope"
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join([lines[0], lines[1], json.dumps(bad)]) + "\n", encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert "s.jsonl, line 3" in str(info.value)
    assert info.value.field == "tools.messages[0].kwargs.tool_call_id"
