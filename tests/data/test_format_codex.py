"""Codex CLI rollout importer, on fixtures hand-written from the openai/codex rollout types
(see tests/fixtures/codex/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records
from toolcast.data.provenance import trace_provenance

HERE = Path(__file__).parent.parent / "fixtures" / "codex"
FIXTURES = Path(__file__).parent.parent / "fixtures"
SID = "019a2d7a-41c4-78b1-b7cc-a45d62a89cd5"
NEW = HERE / f"rollout-2025-10-29T01-00-00-{SID}.jsonl"
OLD = HERE / "rollout-2025-05-07T17-24-21-5973b6c0-94b8-487b-a530-2aeb6098ae0e.jsonl"


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("path", [NEW, OLD], ids=["rollout", "old-rollout"])
def test_fixture_is_detected_as_codex_only(path):
    report = ImportReport()
    traces = load_traces(path, report=report)
    assert report.formats == {"codex": 1} and len(traces) == 1
    _, first = next(iter_records(path))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["codex"]


def test_no_other_fixture_is_taken():
    for path in sorted(FIXTURES.rglob("*.json*")):
        if "codex" in path.parts or "model_tiny" in path.parts:
            continue
        for _, record in iter_records(path):
            assert not FORMATS["codex"].sniff(record), path
            break


def test_rollout_events_calls_results_and_errors():
    (trace,) = load_traces(NEW)
    assert (trace.trace_id, trace.group, trace.source, trace.tools) == (SID, SID, "codex", [])
    shape = [(type(e).__name__, getattr(e, "role", None) or e.tool, e.turn) for e in trace.events]
    assert shape == [("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
                     ("ToolCall", "shell", 0), ("ToolCall", "shell", 0), ("Message", "assistant", 1),
                     ("ToolCall", "view_image", 1), ("Message", "assistant", 2),
                     ("ToolCall", "apply_patch", 2), ("Message", "assistant", 3), ("ToolCall", "shell", 3),
                     ("Message", "assistant", None), ("Message", "user", None), ("Message", "assistant", 4),
                     ("ToolCall", "shell", 4)]
    context = trace.events[0]  # Codex's <environment_context>, sent as a user item
    assert context.text.startswith("<environment_context>") and context.extra == {"role": "user"}
    first = trace.events[2]
    reasoning = ["**Running the tests and finding the screenshot**"]
    assert (first.text, first.extra) == ("", {"reasoning": reasoning, "encrypted_reasoning": 1})
    make, ls, img, patch, retest, commit = trace.calls
    assert (make.error, ls.error, patch.error, retest.error) == (True, False, False, False)
    assert json.loads(make.output)["metadata"]["exit_code"] == 2
    assert make.args == {"command": ["bash", "-lc", "make test"], "workdir": "/repo"}
    assert img.output == "Image /repo/docs/error.png:"
    assert img.extra["result"]["parts"][0]["type"] == "input_image"
    assert patch.args["input"].startswith("*** Begin Patch") and patch.extra["custom"] is True
    assert (commit.call_id, commit.output, commit.t_end) == ("call_commit", None, None)  # no result
    assert make.t_start == first.t_end and make.t_end - make.t_start == pytest.approx(1.053)
    md = trace.metadata
    assert (md["cli_version"], md["agent_model"], md["turn_context"]["approval_policy"]) == (
        "0.46.0", "gpt-5-codex", "on-request")
    assert md["event_msg_counts"] == {"user_message": 2, "exec_command_end": 3, "token_count": 1,
                                      "agent_message": 1}
    assert [o["item"]["type"] for o in md["other_items"]] == ["ghost_snapshot"]
    assert "turn_context_changes" not in md  # the second turn_context repeats the first


def test_decision_points_and_provenance():
    (trace,) = load_traces(NEW)
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["shell", "shell"], ["view_image"], ["apply_patch"], ["shell"], ["<respond>"],
                      ["shell"]]
    found = {(p.call_id, p.path): p for p in trace_provenance(trace)}
    path = found[("call_img", "path")]
    assert (path.kind, path.source_tool) == ("output", "shell")  # ls printed it


def test_old_rollout_bare_meta_items_and_state_lines():
    (trace,) = load_traces(OLD)
    assert trace.trace_id == "5973b6c0-94b8-487b-a530-2aeb6098ae0e"
    count, ls = trace.calls
    assert (count.turn, ls.turn, count.error) == (0, 0, False)
    assert (ls.output, ls.error) == ("ls: cannot access 'srcs': No such file or directory", True)
    assert trace.metadata["state"][1] == {"previous_response_id": "resp_6829a1f3c4e08190"}
    assert trace.events[-1].text == "There are 7 Python files in src."


def test_exec_command_end_marks_a_failed_call_and_instructions_open_the_trace(tmp_path):
    lines = [{"timestamp": "2025-10-29T01:00:00.000Z", "type": "session_meta",
              "payload": {"id": "s1", "instructions": "Be terse.", "cwd": "/r"}},
             {"timestamp": "2025-10-29T01:00:01.000Z", "type": "response_item",
              "payload": {"type": "function_call", "name": "shell", "arguments": "{}", "call_id": "c1"}},
             {"timestamp": "2025-10-29T01:00:02.000Z", "type": "event_msg",
              "payload": {"type": "exec_command_end", "call_id": "c1", "exit_code": 1}},
             {"timestamp": "2025-10-29T01:00:02.000Z", "type": "response_item",
              "payload": {"type": "function_call_output", "call_id": "c1", "output": "boom"}}]
    (trace,) = load_traces(write_jsonl(tmp_path / "r.jsonl", lines))
    assert (trace.events[0].role, trace.events[0].text) == ("system", "Be terse.")
    assert (trace.calls[0].output, trace.calls[0].error) == ("boom", True)


@pytest.mark.parametrize("path", [NEW, OLD], ids=["rollout", "old-rollout"])
def test_round_trip_through_the_canonical_schema(path):
    for trace in load_traces(path):
        assert all(isinstance(e, (Message, ToolCall)) for e in trace.events)
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_import_cli_round_trips_through_toolcast_jsonl(import_round_trip):
    import_round_trip(HERE, "codex", 2, files=2)


def item(payload, ts="2025-10-29T01:00:01.000Z"):
    return {"timestamp": ts, "type": "response_item", "payload": payload}


META = {"timestamp": "2025-10-29T01:00:00.000Z", "type": "session_meta", "payload": {"id": "s1"}}
BAD = [
    pytest.param(item({"type": "function_call", "name": "f", "arguments": "{\"a\"", "call_id": "c"}),
                 "payload.arguments", "not valid JSON", id="arguments-json"),
    pytest.param(item({"type": "function_call_output", "call_id": "nope", "output": "x"}),
                 "payload.call_id", "no earlier tool call has that id", id="output-without-call"),
    pytest.param(item({"type": "message", "role": "user", "content": 5}), "payload.content",
                 "expected str or list, got int", id="content-type"),
    pytest.param({"timestamp": "2025-10-29T01:00:01.000Z", "type": "response_item", "payload": "x"},
                 "payload", "expected dict, got str", id="payload-type"),
    pytest.param(item({"type": "message", "role": "user", "content": "x"}, ts="soon"), "timestamp",
                 "not an ISO 8601 time", id="timestamp"),
]


@pytest.mark.parametrize(("bad", "field", "message"), BAD)
def test_bad_line_names_file_line_and_field_and_skip_leaves_the_file_out(tmp_path, bad, field, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [META, bad])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert (info.value.field, info.value.where.line) == (field, 2)
    assert message in info.value.reason and "bad.jsonl, line 2" in str(info.value)
    hello = item({"type": "message", "role": "user", "content": "hi"})
    good = write_jsonl(tmp_path / "good.jsonl", [META, hello])
    report = ImportReport()
    traces = load_traces(path, good, errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["s1"] and [t.events[0].text for t in traces] == ["hi"]
    assert [e.field for e in report.skipped] == [field]


def _raise(error):
    raise error


@pytest.mark.parametrize("path", [NEW, OLD], ids=["rollout", "old-rollout"])
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, path):
    records = list(iter_records(path))
    for i, (where, record) in enumerate(records):
        for mutated in mutate(record):
            lines = [*records[:i], (where, mutated), *records[i + 1:]]
            try:
                traces = list(FORMATS["codex"].read(lines, _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


def test_local_shell_web_search_and_compacted_lines(tmp_path):
    shell = {"type": "local_shell_call", "call_id": "ls1", "status": "completed",
             "action": {"type": "exec", "command": ["ls"], "timeout_ms": None, "working_directory": None,
                        "env": None, "user": None}}
    query = {"type": "search", "query": "codex"}
    search = {"type": "web_search_call", "status": "completed", "action": query}
    go = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]}
    output = {"type": "function_call_output", "call_id": "ls1", "output": "a.txt"}
    compacted = {"timestamp": "2025-10-29T01:00:05.000Z", "type": "compacted",
                 "payload": {"message": "summary"}}
    lines = [META, item(go), item(shell), item(output), item(search), compacted]
    (trace,) = load_traces(write_jsonl(tmp_path / "r.jsonl", lines))
    ls, web = trace.calls
    assert (ls.tool, ls.args["command"], ls.output) == ("local_shell", ["ls"], "a.txt")
    assert (web.tool, web.args, web.call_id) == ("web_search", query, "web_search:5")  # Codex writes no id
    assert trace.metadata["compactions"] == [{"line": 6, "message": "summary"}]
