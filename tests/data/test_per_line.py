"""Logs written one message per JSON line (data/per_line.py): read as the bare message list they spell,
errors located at the line of the bad message, conversations split by a per-line key."""

import gzip
import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, TraceFormatError, load_traces
from toolcast.data.per_line import is_message_line

FIXTURES = Path(__file__).parent.parent / "fixtures"
PER_LINE = FIXTURES / "per_line"

# per-line fixture -> (format, the bare-list fixture whose items it writes one per line)
PAIRS = {
    "openai.jsonl": ("openai", "openai/messages.json"),
    "anthropic.jsonl": ("anthropic", "anthropic/messages.json"),
    "openai_responses.jsonl": ("openai_responses", "openai_responses/agents_session.json"),
    "openai_responses_js.jsonl": ("openai_responses", "openai_responses/agents_js_history.json"),
    "gemini.jsonl": ("gemini", "gemini/contents.json"),
    "gemini_adk_events.jsonl": ("gemini", "gemini/adk_run_events.json"),
    "langchain.jsonl": ("langchain", "langchain/messages_to_dict.json"),
}


def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def lines_of(name):
    return [json.loads(line) for line in (PER_LINE / name).read_text(encoding="utf-8").splitlines()]


def content(trace):
    """A trace without its ids: what a per-line file must share with its bare list."""
    d = trace.to_dict()
    return {k: d[k] for k in ("source", "metadata", "tools", "events")}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_per_line_file_is_its_bare_list(name):
    fmt, bare = PAIRS[name]
    report = ImportReport()
    [trace] = load_traces(PER_LINE / name, report=report)
    [expected] = load_traces(FIXTURES / bare)
    assert report.formats == {fmt: 1}
    assert trace.trace_id == trace.group == Path(name).stem  # as a bare-list file named so would get
    assert content(trace) == content(expected)
    assert [(c.call_id, c.tool, c.args, c.output, c.error) for c in trace.calls] == \
        [(c.call_id, c.tool, c.args, c.output, c.error) for c in expected.calls]
    assert any(c.output is not None for c in trace.calls)  # every fixture has calls with results


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_line_is_a_message_line_and_the_format_can_be_forced(name, tmp_path):
    fmt, _ = PAIRS[name]
    assert all(is_message_line(m) for m in lines_of(name))
    [forced] = load_traces(PER_LINE / name, format=fmt)
    [auto] = load_traces(PER_LINE / name)
    assert forced.to_dict() == auto.to_dict()


def test_the_format_is_chosen_from_all_lines_not_the_first():
    """Line 1 is plain user text (which alone counts as OpenAI chat); the tool_use on line 2 decides."""
    first = lines_of("anthropic.jsonl")[0]
    assert first["role"] == "user" and "tool_use" not in json.dumps(first)
    [trace] = load_traces(PER_LINE / "anthropic.jsonl")
    assert trace.source == "anthropic"


def test_one_line_file_is_a_conversation_of_one_message(tmp_path):
    [trace] = load_traces(write_lines(tmp_path / "one.jsonl", [{"role": "user", "content": "hi"}]))
    assert [(e.role, e.text) for e in trace.events] == [("user", "hi")]


def test_gzip_and_folder(tmp_path):
    (tmp_path / "logs").mkdir()
    data = (PER_LINE / "gemini.jsonl").read_bytes()
    (tmp_path / "logs" / "chat.jsonl.gz").write_bytes(gzip.compress(data))
    (tmp_path / "logs" / "notes.json").write_text('{"title": "not a log"}', encoding="utf-8")
    report = ImportReport()
    [trace] = load_traces(tmp_path / "logs", report=report)
    assert trace.trace_id == "chat" and report.formats == {"gemini": 1}
    assert report.ignored == [str(tmp_path / "logs" / "notes.json")]


def test_a_pretty_printed_message_is_no_line(tmp_path):
    """One JSON document spanning lines is not a log written line by line: unknown format, as before."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"role": "user", "content": "hi"}, indent=2), encoding="utf-8")
    with pytest.raises(TraceFormatError, match="unknown format"):
        load_traces(path)


# ---- errors name the file, the line and the field -----------------------------------------------------


def test_bad_message_names_its_line_and_field(tmp_path):
    lines = lines_of("openai.jsonl")
    lines[1]["tool_calls"][0]["function"]["arguments"] = "{not json"
    path = write_lines(tmp_path / "chat.jsonl", lines)
    with pytest.raises(TraceFormatError) as e:
        load_traces(path)
    assert e.value.where.line == 2 and e.value.field == "tool_calls[0].function.arguments"
    assert str(e.value).startswith(f"{path}, line 2, field 'tool_calls[0].function.arguments': arguments are "
                                   "not valid JSON")


def test_result_for_no_call_names_its_line(tmp_path):
    lines = lines_of("openai.jsonl")
    lines[2]["tool_call_id"] = "call_nope"
    path = write_lines(tmp_path / "chat.jsonl", lines)
    with pytest.raises(TraceFormatError, match=r"chat\.jsonl, line 3, field 'tool_call_id': tool result for "
                       "call id 'call_nope', but no earlier tool call has that id"):
        load_traces(path)


@pytest.mark.parametrize("name,line,field", [
    ("anthropic.jsonl", 3, "content[0].tool_use_id"),
    ("gemini.jsonl", 2, "parts[0].functionCall.name"),
    ("gemini_adk_events.jsonl", 1, "content.parts[0].functionCall.name"),
    ("langchain.jsonl", 3, "data.tool_calls[0].name"),
    ("openai_responses.jsonl", 2, "name"),
])
def test_every_format_locates_a_bad_line(tmp_path, name, line, field):
    lines = lines_of(name)
    node = lines[line - 1]
    *path, last = field.replace("[0]", ".0").split(".")
    for part in path:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = 7 if last == "name" else "toolu_nope"
    bad = write_lines(tmp_path / name, lines)
    with pytest.raises(TraceFormatError) as e:
        load_traces(bad)
    assert (e.value.where.path, e.value.where.line, e.value.field) == (str(bad), line, field)


def test_blank_lines_keep_line_numbers(tmp_path):
    lines = lines_of("openai.jsonl")
    lines[2]["tool_call_id"] = "call_nope"
    path = tmp_path / "gaps.jsonl"
    path.write_text("\n".join(json.dumps(m) + "\n" for m in lines), encoding="utf-8")  # blank line between
    with pytest.raises(TraceFormatError, match=r"gaps\.jsonl, line 5, field 'tool_call_id'"):
        load_traces(path)


def test_line_that_is_not_json_fails_the_file(tmp_path):
    text = (PER_LINE / "openai.jsonl").read_text(encoding="utf-8").splitlines()
    text[2] = text[2][:-10]
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"cut\.jsonl, line 3: invalid JSON"):
        load_traces(path)
    report = ImportReport()
    assert load_traces(path, errors="skip", report=report) == []  # never a conversation without its line
    assert [e.where.line for e in report.skipped] == [3]


def test_line_that_is_no_message_is_named(tmp_path):
    lines = [*lines_of("openai.jsonl")[:2], {"hello": "world"}, *lines_of("openai.jsonl")[2:]]
    with pytest.raises(TraceFormatError, match=r"x\.jsonl, line 3: line 1 holds one message, as in a log "
                       "written one message per line, but this line holds an object with keys hello"):
        load_traces(write_lines(tmp_path / "x.jsonl", lines))


def test_lines_of_two_formats_are_named(tmp_path):
    mixed = [*lines_of("openai.jsonl")[:2], lines_of("anthropic.jsonl")[1]]
    with pytest.raises(TraceFormatError, match=r"mixed\.jsonl: each line holds one message, but no format "
                       "reads them as one conversation"):
        load_traces(write_lines(tmp_path / "mixed.jsonl", mixed))


# ---- conversations split by a per-line key --------------------------------------------------------------


def test_sessions_split_by_key_each_as_its_bare_list():
    report = ImportReport()
    ann, bob = load_traces(PER_LINE / "sessions.jsonl", report=report)
    assert report.formats == {"openai": 2}
    assert (ann.trace_id, ann.group, ann.metadata) == ("sessions:s-ann", "s-ann", {"session_id": "s-ann"})
    assert (bob.trace_id, bob.group, bob.metadata) == ("sessions:s-bob", "s-bob", {"session_id": "s-bob"})
    [expected] = load_traces(FIXTURES / "openai" / "messages.json")
    assert ann.to_dict()["events"] == expected.to_dict()["events"]  # the key is not left on the messages
    assert [(c.tool, c.args, c.output) for c in bob.calls] == [("get_time", {"city": "Paris"}, "14:05")]
    assert bob.events[-1].text == "It is 14:05 in Paris."


def test_bad_line_fails_only_its_conversation(tmp_path):
    lines = lines_of("sessions.jsonl")
    bad = next(i for i, m in enumerate(lines) if m.get("tool_call_id") == "call_time")
    lines[bad]["tool_call_id"] = "call_nope"
    path = write_lines(tmp_path / "s.jsonl", lines)
    with pytest.raises(TraceFormatError, match=rf"s\.jsonl, line {bad + 1}, field 'tool_call_id'"):
        load_traces(path)
    report = ImportReport()
    [ann] = load_traces(path, errors="skip", report=report)
    assert ann.group == "s-ann" and [e.where.line for e in report.skipped] == [bad + 1]


def test_line_without_the_key_is_named(tmp_path):
    lines = lines_of("sessions.jsonl")
    del lines[3]["session_id"]
    with pytest.raises(TraceFormatError, match=r"s\.jsonl, line 4, field 'session_id': is missing; the "
                       "file's other lines carry session_id"):
        load_traces(write_lines(tmp_path / "s.jsonl", lines))


def test_same_session_ids_in_two_files_stay_two_traces(tmp_path):
    a = write_lines(tmp_path / "a.jsonl", [{"thread_id": 1, **m} for m in lines_of("openai.jsonl")])
    b = write_lines(tmp_path / "b.jsonl", [{"thread_id": 1, **m} for m in lines_of("openai.jsonl")])
    assert [(t.trace_id, t.group) for t in load_traces(a, b)] == [("a:1", "1"), ("b:1", "1")]


# ---- ordinary files do not change ---------------------------------------------------------------------


def test_ordinary_jsonl_records_are_not_message_lines():
    for path in sorted(FIXTURES.glob("*/*.json*")):
        if path.parent.name in ("per_line", "model_tiny"):
            continue
        first = json.loads(path.read_text(encoding="utf-8").splitlines()[0]) if path.suffix == ".jsonl" \
            else json.loads(path.read_text(encoding="utf-8"))
        assert not is_message_line(first), path


def test_ordinary_jsonl_of_bare_lists_is_one_trace_per_line(tmp_path):
    """A bare message LIST on each line is a conversation per line, as before."""
    messages = json.loads((FIXTURES / "openai" / "messages.json").read_text(encoding="utf-8"))
    other = [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "Hi."}]
    traces = load_traces(write_lines(tmp_path / "lists.jsonl", [messages, other]))
    assert [(t.trace_id, len(t.events)) for t in traces] == [("lists:1", 4), ("lists:2", 2)]


def test_a_session_that_opens_like_a_longer_one_is_not_folded_away(tmp_path):
    """Its lines say it is a conversation of its own: folding (for request logs) dropped it."""
    path = tmp_path / "sessions.jsonl"
    write_lines(path, [
        {"session_id": "a", "role": "user", "content": "Hi"},
        {"session_id": "a", "role": "assistant", "content": "Hello! How can I help?"},
        {"session_id": "b", "role": "user", "content": "Hi"},
        {"session_id": "b", "role": "assistant", "content": "Hello! How can I help?"},
        {"session_id": "b", "role": "user", "content": "Cancel my order"},
    ])
    report = ImportReport()
    assert [t.trace_id for t in load_traces(path, report=report)] == ["sessions:a", "sessions:b"]
    assert report.folded == 0
