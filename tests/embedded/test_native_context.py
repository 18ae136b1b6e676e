"""`context_from_record`: a context from the agent's own request body, on the base install.

Runs in the base-install environment too (`make test-embedded`): no torch, no datasets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolcast.data import TraceFormatError, context_from_record
from toolcast.data.formats import FORMATS
from toolcast.data.formats.base import TraceFormat
from toolcast.data.load import load_traces
from toolcast.data.native import NATIVE_FORMAT_NAMES, REQUEST
from toolcast.data.schema import Context, Message, ToolCall
from toolcast.predictor import Predictor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOOLS = [{"type": "function", "function": {
    "name": "ls", "description": "List a directory.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}}]
MESSAGES = [
    {"role": "system", "content": "You are a file assistant."},
    {"role": "user", "content": "List the files in /tmp."},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_ls", "type": "function",
         "function": {"name": "ls", "arguments": "{\"path\": \"/tmp\"}"}}]},
    {"role": "tool", "tool_call_id": "call_ls", "content": "a.txt\nb.txt"},
]
# One conversation per fixture file, in each provider's own spelling.
ONE_CONVERSATION = [("openai", "openai/messages.json"), ("anthropic", "anthropic/messages.json"),
                    ("gemini", "gemini/contents.json"), ("langchain", "langchain/messages_to_dict.json"),
                    ("openai_responses", "openai_responses/agents_session.json"),
                    ("openai_responses", "openai_responses/response.json")]


def _load(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("fmt", "name"), ONE_CONVERSATION, ids=[n for _, n in ONE_CONVERSATION])
def test_each_format_gives_what_toolcast_import_reads(fmt, name):
    (trace,) = load_traces(FIXTURES / name)
    for format in ("auto", fmt):
        context = context_from_record(_load(name), format=format)
        assert context.events == trace.events
        assert context.tools == trace.tools
        assert context.metadata == {"source": trace.source, **trace.metadata}


def test_context_is_the_decision_point_at_the_end(tmp_path):
    """A conversation ending on a tool result: the context is the trace's last decision point's."""
    record = {"model": "gpt-4.1", "messages": MESSAGES, "tools": TOOLS}
    context = context_from_record(record)
    (tmp_path / "record.json").write_text(json.dumps(record), encoding="utf-8")
    (trace,) = load_traces(tmp_path / "record.json")
    last, label = list(trace.decision_points())[-1]
    assert label.is_respond and context.events == last.events and context.tools == last.tools
    assert context.metadata == last.metadata
    assert context.metadata["agent_model"] == "gpt-4.1"
    assert [type(e) for e in context.events] == [Message, Message, Message, ToolCall]
    assert context.events[-1].output == "a.txt\nb.txt"


def test_metadata_given_wins_over_the_records():
    context = context_from_record({"model": "gpt-4o", "messages": MESSAGES, "tools": TOOLS},
                                  metadata={"agent_model": "gpt-4.1", "domain": "files"})
    assert context.metadata["agent_model"] == "gpt-4.1" and context.metadata["domain"] == "files"
    assert context.metadata["source"] == "openai"


def test_a_bad_field_is_named_and_located_at_request():
    bad = [*MESSAGES[:3], {"role": "tool", "tool_call_id": "call_nope", "content": "x"}]
    with pytest.raises(TraceFormatError) as e:
        context_from_record({"messages": bad, "tools": TOOLS})
    assert e.value.field == "messages[3].tool_call_id"
    assert str(e.value).startswith("request, field 'messages[3].tool_call_id': ")
    assert e.value.where.path == "request" and e.value.where.line is None


def test_a_named_format_that_does_not_fit_names_the_field():
    with pytest.raises(TraceFormatError) as e:
        context_from_record({"messages": MESSAGES}, format="langchain")
    assert e.value.field == "messages[0].type" and str(e.value).startswith("request, field")


def test_a_record_with_no_events_is_an_error():
    """Gemini reads an object with no `contents` as an empty conversation: no decision point there."""
    with pytest.raises(TraceFormatError, match=r"holds no messages \(read as gemini\)"):
        context_from_record({"messages": MESSAGES}, format="gemini")


@pytest.mark.parametrize("record", [{}, {"foo": 1}, [], 3, "hi", None], ids=repr)
def test_no_known_format_lists_the_formats(record):
    with pytest.raises(TraceFormatError) as e:
        context_from_record(record)
    assert "no known format" in str(e.value)
    assert all(name in str(e.value) for name in FORMATS)


def test_one_message_is_told_to_send_the_list():
    with pytest.raises(TraceFormatError, match="one message: send the list"):
        context_from_record({"role": "user", "content": "hi"})


def test_several_conversations_are_an_error():
    records = [{"messages": MESSAGES}, {"messages": MESSAGES[:2]}]
    with pytest.raises(TraceFormatError, match="holds 2 conversations"):
        context_from_record(records)


def test_unknown_format_name():
    assert NATIVE_FORMAT_NAMES[0] == "auto" and set(NATIVE_FORMAT_NAMES[1:]) == set(FORMATS)
    with pytest.raises(ValueError, match="unknown format 'openai_chat'"):
        context_from_record({"messages": MESSAGES}, format="openai_chat")


def test_an_importer_crash_becomes_a_format_error(monkeypatch):
    def read(records, on_error):
        raise TypeError("unhashable type: 'dict'")
        yield

    monkeypatch.setitem(FORMATS, "openai", TraceFormat("openai", "broken", FORMATS["openai"].sniff, read))
    with pytest.raises(TraceFormatError, match=r"request: cannot be read as openai \(TypeError"):
        context_from_record({"messages": MESSAGES})


def test_embedded_predictor_predicts_from_the_agents_own_messages():
    """The README's embedded example, on the committed tiny model."""
    predictor = Predictor.load(FIXTURES / "model_tiny")
    calls = predictor.predict(context_from_record({"messages": MESSAGES, "tools": TOOLS}), k=3)
    assert 1 <= len(calls) <= 3
    assert all(0.0 <= c.p_call <= c.p_tool <= 1.0 for c in calls)


def test_reading_a_record_loads_no_heavy_package():
    code = ("import sys\nfrom toolcast.data import context_from_record\n"
            f"context_from_record({{'messages': {MESSAGES!r}}})\n"
            "loaded = [m for m in ('torch', 'lightning', 'transformers', 'datasets') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_context_is_a_plain_context():
    assert isinstance(context_from_record(MESSAGES), Context)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _paths(x, path=()):
    yield path
    children = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for key, value in children:
        yield from _paths(value, (*path, key))


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_damaged_record_reads_or_names_what_is_wrong(data):
    """Valid records of every format with values replaced or deleted at random places: each gives a
    context or a TraceFormatError of the importer's own (never an importer crash wrapped as one)."""
    _fmt, name = data.draw(st.sampled_from(ONE_CONVERSATION))
    record = _load(name)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(record) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON)
    try:
        context = context_from_record(record)
    except TraceFormatError as e:
        assert e.where == REQUEST or e.where.path == "request"
        assert "cannot be read as" not in e.reason, e.reason  # an importer crash: a bug to fix there
        return
    assert isinstance(context, Context) and context.events
