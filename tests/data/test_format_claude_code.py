"""Claude Code transcript importer, on fixtures hand-written from the documented entry shapes
(see tests/fixtures/claude_code/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records
from toolcast.data.provenance import trace_provenance

HERE = Path(__file__).parent.parent / "fixtures" / "claude_code"
FIXTURES = Path(__file__).parent.parent / "fixtures"
NAMES = ["session.jsonl", "sidechain.jsonl", "agent-a7c91e0.json"]
SESSION = "7f3c2a10-5b1e-4c3d-9a8e-2f6b1c0d4e5a"


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_detected_as_claude_code_only(name):
    report = ImportReport()
    traces = load_traces(HERE / name, report=report)
    assert traces and report.formats == {"claude_code": len(traces)}
    _, first = next(iter_records(HERE / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["claude_code"]


def test_no_other_fixture_is_taken():
    for path in sorted(FIXTURES.rglob("*.json*")):
        if "claude_code" in path.parts or "model_tiny" in path.parts:
            continue
        for _, record in iter_records(path):
            assert not FORMATS["claude_code"].sniff(record), path
            break


def test_one_response_split_over_lines_is_one_turn_with_parallel_calls():
    (trace,) = load_traces(HERE / "session.jsonl")
    assert (trace.trace_id, trace.group, trace.source, trace.tools) == (SESSION, SESSION, "claude_code", [])
    shape = [(type(e).__name__, getattr(e, "role", None) or e.tool, e.turn) for e in trace.events]
    assert shape == [("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", "Bash", 0),
                     ("ToolCall", "Read", 0), ("Message", "assistant", 1), ("ToolCall", "Grep", 1),
                     ("Message", "assistant", 2), ("ToolCall", "Edit", 2), ("Message", "assistant", None),
                     ("Message", "user", None), ("Message", "assistant", 3), ("ToolCall", "Bash", 3)]
    first = trace.events[1]
    assert first.text == "I'll run the tests and read the README."  # thinking kept out of the text
    assert first.extra["thinking"] == ["Run the tests and read the README at once."]
    assert (first.tokens, first.extra["stop_reason"], first.t_start) == (131, "tool_use", None)
    bash, read, grep, edit, last = trace.calls
    assert (bash.error, bash.output.splitlines()[1]) == (True, "1 failed, 3 passed in 0.02s")
    assert bash.extra["toolUseResult"].startswith("Error: FAILED")
    assert (read.output, read.error) == ("# calc\nA tiny calculator. The code is in /repo/calc/ops.py", False)
    assert read.extra["toolUseResult"]["file"]["numLines"] == 2
    assert bash.t_start == first.t_end and bash.t_end - bash.t_start == pytest.approx(2.074)
    assert (last.call_id, last.output, last.t_end) == ("toolu_05Bash", None, None)  # no result
    assert trace.metadata["cwd"] == "/repo" and trace.metadata["agent_model"] == "claude-sonnet-4-5-20250929"
    assert trace.metadata["entry_counts"] == {"file-history-snapshot": 1}
    kinds = [e["type"] for e in trace.metadata["other_entries"]]
    assert kinds == ["summary", "system"]


def test_decision_points_and_provenance():
    (trace,) = load_traces(HERE / "session.jsonl")
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["Bash", "Read"], ["Grep"], ["Edit"], ["<respond>"], ["Bash"]]
    found = {(p.call_id, p.path): p for p in trace_provenance(trace)}
    path = found[("toolu_03Grep", "path")]
    assert (path.kind, path.source_tool) == ("output", "Read")  # the README named the file


def test_sidechain_is_its_own_trace_in_the_session_group():
    main_trace, side = load_traces(HERE / "sidechain.jsonl")
    assert main_trace.group == side.group == main_trace.trace_id
    assert side.trace_id == f"{main_trace.trace_id}/sidechain-0" and side.metadata["sidechain"] is True
    assert [c.tool for c in main_trace.calls] == ["Task"]
    assert main_trace.calls[0].output == "Two test files: test_calc.py and test_cli.py."
    assert [c.tool for c in side.calls] == ["Glob"]
    assert side.events[0].text == "List the test files under /repo/tests"
    assert main_trace.metadata["entry_counts"] == {"queue-operation": 1}


def test_subagent_file_saved_as_a_json_list():
    (trace,) = load_traces(HERE / "agent-a7c91e0.json")
    assert (trace.trace_id, trace.group) == (f"{SESSION}/a7c91e0", SESSION)
    assert trace.metadata["agentId"] == "a7c91e0"
    (call,) = trace.calls
    assert (call.tool, call.error, call.output) == ("Read", True, "Error: file is locked")


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_the_canonical_schema(name):
    for trace in load_traces(HERE / name):
        assert all(isinstance(e, (Message, ToolCall)) for e in trace.events)
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_import_cli_round_trips_through_toolcast_jsonl(import_round_trip):
    import_round_trip(HERE / "sidechain.jsonl", "claude_code", 2)


def entry(kind, content, n, **fields):
    return {"parentUuid": None, "isSidechain": False, "sessionId": "s1", "type": kind, "uuid": f"u{n}",
            "timestamp": "2025-10-08T14:00:00.000Z", "message": {"role": kind, "content": content}, **fields}


def use(n, tool_input, msg_id="m1"):
    e = entry("assistant", [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": tool_input}], n)
    e["message"]["id"] = msg_id
    return e


def test_unmatched_result_is_kept_not_an_error(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [entry("user", "hi", 1), entry("user", [
        {"type": "tool_result", "tool_use_id": "toolu_gone", "content": "x"}], 2)])
    (trace,) = load_traces(path)
    assert trace.metadata["unmatched_results"][0]["line"] == 2
    assert [e.text for e in trace.events] == ["hi"]


BAD = [
    pytest.param(entry("user", 5, 2), "message.content", "expected str or list, got int", id="content-type"),
    pytest.param({**entry("user", "x", 2), "message": "hi"}, "message", "expected dict, got str",
                 id="message-type"),
    pytest.param(use(2, "{\"a\": 1"), "message.content[0].input", "not valid JSON", id="input-json"),
    pytest.param(entry("user", [{"type": "tool_result", "tool_use_id": 7}], 2),
                 "message.content[0].tool_use_id", "expected str, got int", id="tool_use_id-type"),
    pytest.param({**entry("user", "x", 2), "timestamp": "yesterday"}, "timestamp", "not an ISO 8601 time",
                 id="timestamp"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD)
def test_bad_entry_names_file_line_and_field_and_skip_drops_its_conversation(tmp_path, bad, field, message):
    other = {**entry("user", "other session", 9), "sessionId": "s2"}
    path = write_jsonl(tmp_path / "bad.jsonl", [entry("user", "hi", 1), bad, other])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert (info.value.field, info.value.where.line) == (field, 2)
    assert message in info.value.reason and "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["s2"]  # the bad entry's session only is left out
    assert [e.field for e in report.skipped] == [field]


def _raise(error):
    raise error


@pytest.mark.parametrize("name", ["session.jsonl", "sidechain.jsonl"])
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    records = list(iter_records(HERE / name))
    for i, (where, record) in enumerate(records):
        for mutated in mutate(record):
            lines = [*records[:i], (where, mutated), *records[i + 1:]]
            try:
                traces = list(FORMATS["claude_code"].read(lines, _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))
