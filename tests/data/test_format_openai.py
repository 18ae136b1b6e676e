"""OpenAI chat importer, on fixtures hand-written from OpenAI's docs (see tests/fixtures/openai/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"


def by_id(path):
    return {t.trace_id: t for t in load_traces(path)}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["finetune.jsonl", "messages.json", "records.json"])
def test_fixture_is_detected_as_openai_only(name):
    report = ImportReport()
    traces = load_traces(FIXTURES / name, report=report)
    assert traces and report.formats == {"openai": len(traces)}
    _, first = next(iter_records(FIXTURES / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["openai"]


def test_parallel_calls_are_one_turn_with_outputs_matched_by_id():
    trace = by_id(FIXTURES / "finetune.jsonl")["weather-1"]
    assert (trace.source, trace.group) == ("openai", "weather")
    assert trace.metadata == {"id": "weather-1", "group": "weather", "parallel_tool_calls": True}
    assert [t.name for t in trace.tools] == ["get_current_weather"]
    assert trace.tools[0].param_names == ["location", "format"]
    kinds = [(type(e).__name__, getattr(e, "role", None), e.turn) for e in trace.events]
    assert kinds == [("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
                     ("ToolCall", None, 0), ("ToolCall", None, 0), ("Message", "assistant", None)]
    sf, tk = trace.calls
    assert (sf.call_id, sf.args, sf.output, sf.error) == (
        "call_sf", {"location": "San Francisco, USA", "format": "celsius"}, '{"temperature": 15}', False)
    assert (tk.call_id, tk.args["location"], tk.output) == ("call_tk", "Tokyo, Japan", '{"temperature": 22}')
    assert trace.events[2].text == ""
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["get_current_weather", "get_current_weather"], ["<respond>"]]


def test_developer_role_content_parts_and_object_arguments():
    trace = by_id(FIXTURES / "finetune.jsonl")["order-42"]
    system, user, assistant, call, answer = trace.events
    assert (system.role, system.text, system.extra) == ("system", "Answer briefly.", {"role": "developer"})
    assert user.text == "Where is order 42?"
    assert (assistant.text, assistant.turn, assistant.extra) == ("Let me look it up.", 0, {"weight": 1})
    assert (call.args, call.output) == ({"order_id": "42"}, '{"status": "shipped"}')
    assert answer.extra == {"weight": 0}
    assert trace.group == "order-42"


def test_legacy_function_call_and_functions():
    trace = by_id(FIXTURES / "finetune.jsonl")["finetune:3"]
    assert [t.name for t in trace.tools] == ["get_current_weather"]
    (call,) = trace.calls
    assert (call.tool, call.args["location"], call.output) == (
        "get_current_weather", "San Francisco, USA", '{"temperature": 15}')
    assert trace.events[1].turn == call.turn == 0


def test_plain_chat_without_metadata_gets_file_and_line_ids():
    trace = by_id(FIXTURES / "finetune.jsonl")["finetune:4"]
    assert trace.group == "finetune:4" and not trace.calls and not trace.tools
    assert [e.role for e in trace.events] == ["system", "user", "assistant"]


def test_bare_message_list_and_json_list_of_records():
    (trace,) = load_traces(FIXTURES / "messages.json")
    assert trace.trace_id == "messages"
    assert [(c.tool, c.args, c.output) for c in trace.calls] == [("ls", {"path": "/tmp"}, "a.txt\nb.txt")]
    traces = load_traces(FIXTURES / "records.json")
    assert [t.trace_id for t in traces] == ["records:0", "records:1"]
    assert traces[1].calls[0].args == {}


def test_round_trip_through_the_canonical_schema():
    for trace in load_traces(FIXTURES / "finetune.jsonl"):
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_duplicate_call_ids_become_unique_and_results_match_the_latest_call(tmp_path):
    call = {"id": "call_0", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [{"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "content": "one"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_0", "content": "two"}]
    (trace,) = load_traces(write_jsonl(tmp_path / "dup.jsonl", [{"messages": messages}]))
    assert [(c.call_id, c.output, c.extra) for c in trace.calls] == [
        ("call_0", "one", {}), ("call_0#2", "two", {"source_call_id": "call_0"})]


def test_error_flag_only_from_an_explicit_boolean(tmp_path):
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    messages = [{"role": "assistant", "content": None, "tool_calls": [call, {**call, "id": "d"}]},
                {"role": "tool", "tool_call_id": "c", "content": "Error: no such file"},
                {"role": "tool", "tool_call_id": "d", "content": "boom", "is_error": True}]
    (trace,) = load_traces(write_jsonl(tmp_path / "e.jsonl", [{"messages": messages}]))
    assert [c.error for c in trace.calls] == [False, True]


CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}
BAD_RECORDS = [
    pytest.param({"messages": [{"role": "user", "content": 5}]}, "messages[0].content",
                 "expected str or list, got int", id="content-wrong-type"),
    pytest.param({"messages": [{"role": "assistant", "tool_calls": {"id": "x"}}]}, "messages[0].tool_calls",
                 "expected list, got dict", id="tool_calls-wrong-type"),
    pytest.param({"messages": "hello"}, "messages", "expected list, got str", id="messages-wrong-type"),
    pytest.param({"messages": [{"role": "tool", "tool_call_id": "call_9", "content": "x"}]},
                 "messages[0].tool_call_id", "no earlier tool call has that id", id="result-without-call"),
    pytest.param({"messages": [{"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": "{\"a\": 1"}}]}]},
                 "messages[0].tool_calls[0].function.arguments", "not valid JSON",
                 id="arguments-invalid-json"),
    pytest.param({"messages": [{"role": "assistant", "tool_calls": [
        {**CALL, "function": {"name": "f", "arguments": "[1, 2]"}}]}]},
                 "messages[0].tool_calls[0].function.arguments", "must be a JSON object",
                 id="arguments-not-object"),
    pytest.param({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "unknown role",
                 id="unknown-role"),
    pytest.param({"messages": [], "tools": [{"type": "function", "function": {"description": "no name"}}]},
                 "tools[0].function.name", "is missing", id="tool-without-name"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD_RECORDS)
def test_bad_record_names_file_line_and_field_and_skip_goes_on(tmp_path, record, field, message):
    good = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record, good])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="openai")
    assert info.value.field == field
    assert message in info.value.reason
    assert "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, format="openai", errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["bad:1", "bad:3"]
    assert [e.field for e in report.skipped] == [field]


def test_bad_item_of_a_json_list_names_the_item(tmp_path):
    good = {"messages": [{"role": "user", "content": "hi"}]}
    bad = {"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}
    path = tmp_path / "list.json"
    path.write_text(json.dumps([good, bad, good]), encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"list\.json, line 1, record \[1\], field 'messages\[0\]"):
        load_traces(path)
    report = ImportReport()
    assert [t.trace_id for t in load_traces(path, errors="skip", report=report)] == ["list:1:0", "list:1:2"]
    assert len(report.skipped) == 1


def test_events_are_messages_and_calls_only():
    for trace in load_traces(FIXTURES / "finetune.jsonl"):
        assert all(isinstance(e, (Message, ToolCall)) for e in trace.events)


def _raise(error):
    raise error


@pytest.mark.parametrize("name", ["finetune.jsonl", "messages.json", "records.json"])
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(FIXTURES / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["openai"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


def test_token_usage_on_an_assistant_message(tmp_path):
    usage = {"prompt_tokens": 9, "completion_tokens": 3}
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "usage": usage}]
    (trace,) = load_traces(write_jsonl(tmp_path / "u.jsonl", [{"messages": messages, "model": "gpt-4.1"}]))
    assert trace.events[1].tokens == 3
    assert trace.metadata == {"model": "gpt-4.1", "agent_model": "gpt-4.1"}


def _completion(message, n_choices=1):
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4.1",
            "choices": [{"index": i, "message": message, "finish_reason": "stop"} for i in range(n_choices)],
            "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}}


def test_a_request_log_with_its_saved_response_folds_to_the_whole_conversation(tmp_path):
    """LLM proxies (LiteLLM) log each call as the request's messages plus the completion: the records fold
    into one trace that ends with the last answer."""
    user = {"role": "user", "content": "Where is order W1?"}
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"id": "W1"}'}}]}
    result = {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'}
    answer = {"role": "assistant", "content": "It has shipped."}
    path = write_jsonl(tmp_path / "proxy.jsonl", [
        {"model": "gpt-4.1", "messages": [user], "response": _completion(call)},
        {"model": "gpt-4.1", "messages": [user, call, result], "response": _completion(answer, 2)},
    ])
    report = ImportReport()
    (trace,) = load_traces(path, report=report)
    assert report.folded == 1
    assert [(type(e).__name__, getattr(e, "text", None)) for e in trace.events] == [
        ("Message", "Where is order W1?"), ("Message", ""), ("ToolCall", None),
        ("Message", "It has shipped.")]
    assert trace.calls[0].output == '{"status": "shipped"}'
    assert trace.events[-1].tokens == 7
    saved = trace.metadata["response"]
    assert saved["id"] == "chatcmpl-1" and len(saved["other_choices"]) == 1
    assert [label.tools for _, label in trace.decision_points()] == [["get_order"], ["<respond>"]]


def test_a_response_that_is_no_completion_stays_in_metadata(tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [{"messages": [{"role": "user", "content": "hi"}],
                                               "response": {"status": 200}}])
    (trace,) = load_traces(path)
    assert trace.metadata["response"] == {"status": 200} and len(trace.events) == 1
