"""Anthropic Messages importer, on fixtures hand-written from Anthropic's docs
(see tests/fixtures/anthropic/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["conversations.jsonl", "messages.json"])
def test_fixture_is_detected_as_anthropic_only(name):
    report = ImportReport()
    traces = load_traces(FIXTURES / name, report=report)
    assert traces and report.formats == {"anthropic": len(traces)}
    _, first = next(iter_records(FIXTURES / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["anthropic"]


def test_parallel_tool_use_results_errors_and_user_text_after_results():
    trace = load_traces(FIXTURES / "conversations.jsonl")[0]
    assert (trace.trace_id, trace.group, trace.source) == ("sf-weather", "weather", "anthropic")
    assert trace.metadata == {"id": "sf-weather", "group": "weather", "model": "claude-sonnet-4-5",
                              "max_tokens": 1024, "agent_model": "claude-sonnet-4-5"}
    assert [(t.name, t.param_names) for t in trace.tools] == [("get_weather", ["location", "unit"]),
                                                              ("get_time", ["timezone"])]
    shape = [(type(e).__name__, getattr(e, "role", None), e.turn) for e in trace.events]
    assert shape == [("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
                     ("ToolCall", None, 0), ("ToolCall", None, 0), ("Message", "user", None),
                     ("Message", "assistant", 1), ("ToolCall", None, 1), ("Message", "assistant", None)]
    assistant = trace.events[2]
    assert assistant.text == "I'll check the weather and the time for you."  # thinking kept out of the text
    assert assistant.extra["thinking"] == ["I need the weather and the time; I can ask for both at once."]
    assert assistant.tokens == 91
    weather, time_, retry = trace.calls
    assert (weather.call_id, weather.args, weather.output, weather.error) == (
        "toolu_01A09q90qw90lq917835lq9", {"location": "San Francisco, CA", "unit": "celsius"}, "15 degrees",
        False)
    assert (time_.output, time_.error) == ("ConnectionError: the time service is unavailable", True)
    assert (retry.tool, retry.output, retry.error) == ("get_time", "09:30", False)
    assert trace.events[5].text == "Also, should I bring an umbrella?"
    assert trace.events[5].extra == {"with_tool_results": True}
    labels = [label.tools for _, label in trace.decision_points()]
    calls = [tools for tools in labels if tools != ["<respond>"]]
    assert calls == [["get_weather", "get_time"], ["get_time"]]
    assert labels[-1] == ["<respond>"]


def test_system_blocks_and_redacted_thinking():
    trace = load_traces(FIXTURES / "conversations.jsonl")[1]
    assert trace.trace_id == "conversations:2"
    system, user, assistant = trace.events
    assert (system.role, system.text) == ("system", "Be brief.")
    assert (user.text, assistant.text) == ("Hello, Claude", "Hello!")
    assert assistant.extra == {"redacted_thinking": 1}


def test_bare_message_list_with_block_content():
    (trace,) = load_traces(FIXTURES / "messages.json")
    (call,) = trace.calls
    assert (call.tool, call.args, call.output) == ("list_dir", {"path": "/tmp"}, "a.txt\nb.txt")
    assert [e.role for e in trace.events if hasattr(e, "role")] == ["user", "assistant", "assistant"]


def test_round_trip_through_the_canonical_schema():
    for trace in load_traces(FIXTURES / "conversations.jsonl"):
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_server_tool_use_and_its_result_in_the_same_message(tmp_path):
    messages = [{"role": "user", "content": "News about OTel?"},
                {"role": "assistant", "content": [
                    {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                     "input": {"query": "otel"}},
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1",
                     "content": [{"type": "web_search_result", "url": "https://opentelemetry.io",
                                  "title": "OTel"}]},
                    {"type": "text", "text": "Here is what I found."}]}]
    (trace,) = load_traces(write_jsonl(tmp_path / "s.jsonl", [{"messages": messages}]))
    (call,) = trace.calls
    assert (call.tool, call.extra, json.loads(call.output)[0]["url"]) == (
        "web_search", {"block": "server_tool_use"}, "https://opentelemetry.io")
    assert trace.events[1].text == "Here is what I found."


def use(tool_input):
    block = {"type": "tool_use", "id": "toolu_1", "name": "f", "input": tool_input}
    return {"role": "assistant", "content": [block]}


BAD_RECORDS = [
    pytest.param({"messages": [{"role": "user", "content": 5}]}, "messages[0].content",
                 "expected str or list, got int", id="content-wrong-type"),
    pytest.param({"messages": [use({}), {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "x", "is_error": "yes"}]}]},
                 "messages[1].content[0].is_error", "expected bool, got str", id="is_error-wrong-type"),
    pytest.param({"messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]},
                 "messages[0].content[0].tool_use_id", "no earlier tool call has that id",
                 id="result-without-call"),
    pytest.param({"messages": [use("{\"a\": 1")]}, "messages[0].content[0].input", "not valid JSON",
                 id="input-invalid-json"),
    pytest.param({"messages": [use([1, 2])]}, "messages[0].content[0].input", "expected a JSON object",
                 id="input-wrong-type"),
    pytest.param({"messages": [{"role": "user", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]},
                 "messages[0].content[0].type", "cannot hold a tool call", id="tool_use-in-user-message"),
    pytest.param({"system": "s", "messages": [], "tools": [{"name": "f", "input_schema": "object"}]},
                 "tools[0].input_schema", "expected dict, got str", id="input_schema-wrong-type"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD_RECORDS)
def test_bad_record_names_file_line_and_field_and_skip_goes_on(tmp_path, record, field, message):
    good = {"system": "s", "messages": [{"role": "user", "content": "hi"}]}
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record, good])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="anthropic")
    assert info.value.field == field
    assert message in info.value.reason
    assert "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, format="anthropic", errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["bad:1", "bad:3"]
    assert [e.field for e in report.skipped] == [field]


def _raise(error):
    raise error


@pytest.mark.parametrize("name", ["conversations.jsonl", "messages.json"])
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(FIXTURES / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["anthropic"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


def test_a_request_log_with_its_saved_response_folds_to_the_whole_conversation(tmp_path):
    user = {"role": "user", "content": "Weather in Paris?"}
    call = {"role": "assistant", "content": [
        {"type": "tool_use", "id": "tu1", "name": "get_weather", "input": {"city": "Paris"}}]}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": "14 C"}]}
    answer = {"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
              "content": [{"type": "text", "text": "14 C in Paris."}], "usage": {"output_tokens": 9}}
    path = write_jsonl(tmp_path / "proxy.jsonl", [
        {"system": "Be brief.", "messages": [user], "response": {**call, "id": "msg_1", "type": "message"}},
        {"system": "Be brief.", "messages": [user, call, result], "response": answer},
    ])
    report = ImportReport()
    (trace,) = load_traces(path, report=report)
    assert report.folded == 1
    assert [getattr(e, "text", None) for e in trace.events] == [
        "Be brief.", "Weather in Paris?", "", None, "14 C in Paris."]
    assert trace.events[-1].tokens == 9 and trace.calls[0].output == "14 C"
    assert trace.metadata["response"] == {"id": "msg_2", "model": "claude-sonnet-4-5"}


def test_a_request_log_without_tools_or_system_is_anthropic_by_its_saved_response(tmp_path):
    """A Messages API request ({model, max_tokens, messages} only) and its response: nothing OpenAI's lacks
    but the response's shape ({"type": "message", "content": [blocks], "stop_reason", "usage"})."""
    record = {"model": "claude-sonnet-4-5", "max_tokens": 1024,
              "messages": [{"role": "user", "content": "Hello"}],
              "response": {"id": "msg_01", "type": "message", "role": "assistant",
                           "model": "claude-sonnet-4-5",
                           "content": [{"type": "text", "text": "Hi! How can I help?"}],
                           "stop_reason": "end_turn", "stop_sequence": None,
                           "usage": {"input_tokens": 8, "output_tokens": 9}}}
    path = write_jsonl(tmp_path / "log.jsonl", [record])
    assert [f.name for f in FORMATS.values() if f.sniff(record)] == ["anthropic"]
    report = ImportReport()
    (trace,) = load_traces(path, report=report)
    assert report.formats == {"anthropic": 1}
    assert [(e.role, e.text, e.tokens) for e in trace.events] == [
        ("user", "Hello", None), ("assistant", "Hi! How can I help?", 9)]
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}],
            "response": {"id": "chatcmpl-1", "object": "chat.completion", "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}]}}
    assert [f.name for f in FORMATS.values() if f.sniff(chat)] == ["openai"]
