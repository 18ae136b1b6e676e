"""A JSON file holding a list of bare conversations (`json.dump([messages, messages, ...])`): each
conversation is a trace, as if each were a JSON line."""

from __future__ import annotations

import json

import pytest

from toolcast.data import TraceFormatError, load_traces

CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "a", "type": "function", "function": {"name": "find", "arguments": '{"q": "x"}'}}]}
ONE = [{"role": "user", "content": "find x"}, CALL, {"role": "tool", "tool_call_id": "a", "content": "found"}]
TWO = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hi!"}]


def test_each_conversation_of_the_list_is_a_trace_with_its_own_id(tmp_path):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([ONE, TWO], indent=1), encoding="utf-8")
    traces = load_traces(path)
    assert [(t.trace_id, t.source, len(t.events)) for t in traces] == [("runs:0", "openai", 3),
                                                                      ("runs:1", "openai", 2)]
    assert traces[0].calls[0].output == "found"


def test_gemini_contents_lists_too(tmp_path):
    contents = [{"role": "user", "parts": [{"text": "weather?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}]}]
    path = tmp_path / "g.json"
    path.write_text(json.dumps([contents, contents[:1]]), encoding="utf-8")
    traces = load_traces(path, fold=False)
    assert [(t.source, len(t.events)) for t in traces] == [("gemini", 3), ("gemini", 1)]


def test_a_bad_message_names_its_conversation_and_field(tmp_path):
    bad = [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "nope", "content": "?"}]
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([ONE, bad]), encoding="utf-8")
    with pytest.raises(TraceFormatError) as e:
        load_traces(path)
    assert "runs.json" in str(e.value) and e.value.field == "[1].tool_call_id"
    assert [t.trace_id for t in load_traces(path, errors="skip")] == ["runs:1:0"]


def test_a_json_list_of_records_is_read_as_before(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([{"messages": ONE}, {"messages": TWO}]), encoding="utf-8")
    assert [t.trace_id for t in load_traces(path)] == ["records:1:0", "records:1:1"]


def test_every_line_of_a_jsonl_file_of_conversation_lists_is_read(tmp_path):
    """Each line a list of conversations: the lines after the first were silently dropped."""
    path = tmp_path / "batches.jsonl"
    path.write_text(json.dumps([ONE, TWO]) + "\n" + json.dumps([TWO, ONE]) + "\n", encoding="utf-8")
    traces = load_traces(path, fold=False)
    assert [len(t.events) for t in traces] == [3, 2, 2, 3]
    assert len({t.trace_id for t in traces}) == 4
