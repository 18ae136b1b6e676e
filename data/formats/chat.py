"""What the chat-log importers (openai, anthropic, otel) share: matching results to calls, parsing
arguments, default trace ids, and telling an OpenAI chat record from an Anthropic one.

Kept apart so the three importers apply one rule each: a result matches the latest unanswered call
with its id; call ids in a trace are unique (a log that reuses an id gets `id#2`, with the log's id
kept in `extra["source_call_id"]`); arguments are a JSON object or an error naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, expect, good_records, schema_error
from toolcast.data.schema import SchemaError, ToolCall, Trace

# ---- calls and their results ------------------------------------------------------------------------


class CallBook:
    """The calls of one trace, by the id the log gave them, so that results can find their call."""

    def __init__(self) -> None:
        self._by_source: dict[str, list[ToolCall]] = {}
        self._answered: set[int] = set()
        self._used: set[str] = set()

    def add(self, source_id: str, turn: int, tool: str, args: dict[str, Any],
            extra: dict[str, Any] | None = None, **fields: Any) -> ToolCall:
        call_id, n = source_id, 2
        while call_id in self._used:
            call_id, n = f"{source_id}#{n}", n + 1
        extra = dict(extra or {})
        if call_id != source_id:
            extra["source_call_id"] = source_id
        call = ToolCall(call_id=call_id, turn=turn, tool=tool, args=args, extra=extra, **fields)
        self._used.add(call_id)
        self._by_source.setdefault(source_id, []).append(call)
        return call

    def knows(self, source_id: str) -> bool:
        return source_id in self._by_source

    def answer(self, source_id: str) -> ToolCall | None:
        """The latest call with this id that has no result yet (now marked answered), else None."""
        for call in reversed(self._by_source.get(source_id, [])):
            if id(call) not in self._answered:
                self._answered.add(id(call))
                return call
        return None

    def answer_or_fail(self, source_id: str, where: Location, field: str) -> ToolCall:
        """`answer`, or an error that says whether the id is unknown or already answered."""
        call = self.answer(source_id)
        if call is not None:
            return call
        if self.knows(source_id):
            raise TraceFormatError(where, f"a second result for call id {source_id!r}", field=field)
        raise TraceFormatError(where, f"tool result for call id {source_id!r}, but no earlier tool call "
                               "has that id", field=field)


def parse_arguments(value: Any, where: Location, field: str) -> dict[str, Any]:
    """A call's arguments: a JSON object, or a string holding one. Empty or null means no arguments."""
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if not isinstance(value, str):
        raise TraceFormatError(where, f"expected a JSON object or a string holding one, got "
                               f"{type(value).__name__}", field=field)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as e:
        raise TraceFormatError(where, f"arguments are not valid JSON: {e.msg} (column {e.colno})",
                               field=field) from None
    except RecursionError:
        raise TraceFormatError(where, "arguments are nested too deeply", field=field) from None
    if not isinstance(parsed, dict):
        raise TraceFormatError(where, f"arguments must be a JSON object, got {_json_type(parsed)}",
                               field=field)
    return parsed


def output_text(value: Any) -> str | None:
    """A tool result as text: strings stay as they are, anything structured becomes JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__)


# ---- trace ids ---------------------------------------------------------------------------------------

_SUFFIXES = (".gz", ".jsonl", ".ndjson", ".json")


def default_trace_id(where: Location, index: int | None) -> str:
    """`<file stem>:<line>` for a JSON line, `<file stem>:<index>` for an item of a JSON list."""
    name = PurePath(where.path).name
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    parts = [name]
    if where.line is not None:
        parts.append(str(where.line))
    if index is None and where.record and where.record.startswith("[") and where.record[1:-1].isdigit():
        index = int(where.record[1:-1])  # one conversation of a JSON list of conversations (load.py)
    if index is not None:
        parts.append(str(index))
    return ":".join(parts)


def record_ids(metadata: dict[str, Any], where: Location, index: int | None) -> tuple[str, str]:
    """(trace_id, group): `metadata.id` and `metadata.group` when the record has them.

    Also copies a top-level `model` to `agent_model`, the key the featurizer reads.
    """
    trace_id = metadata.get("id")
    if isinstance(trace_id, bool) or not isinstance(trace_id, (str, int)) or trace_id == "":
        trace_id = default_trace_id(where, index)
    if isinstance(metadata.get("model"), str):  # a logged request body names its model
        metadata.setdefault("agent_model", metadata["model"])
    group = metadata.get("group")
    if isinstance(group, bool) or not isinstance(group, (str, int)) or group == "":
        group = trace_id
    return str(trace_id), str(group)


# ---- which chat dialect ------------------------------------------------------------------------------

OPENAI_MESSAGE_KEYS = ("tool_calls", "function_call", "tool_call_id")
OPENAI_ROLES = ("system", "developer", "tool", "function")
RESPONSES_PARTS = ("input_text", "output_text", "input_image", "input_file")  # Responses API content parts
# request parameters only the Messages API has (OpenAI: "stop", no top_k; Bedrock/Vertex: anthropic_version)
ANTHROPIC_PARAMS = ("anthropic_version", "stop_sequences", "top_k")
ANTHROPIC_BLOCKS = ("tool_use", "tool_result", "thinking", "redacted_thinking", "server_tool_use",
                    "mcp_tool_use", "mcp_tool_result", "document", "search_result")


def chat_dialect(record: Any) -> str | None:
    """'openai', 'anthropic', or None (not a chat record, or one with signs of both).

    A record is a chat record when it is {"messages": [...]}, a list of such records, or a bare list
    of messages (objects with a string "role"). OpenAI signs: tool_calls / function_call /
    tool_call_id, a system/developer/tool/function role inside the messages, OpenAI-style tools.
    Anthropic signs: a top-level "system" (or anthropic_version / stop_sequences / top_k), tool_use /
    tool_result / thinking blocks, tools with an input_schema, a saved "response" that is a Messages API
    response. Plain text chats carry neither and count as OpenAI (both importers read them alike).
    """
    head, messages = _head_and_messages(record)
    if messages is None or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return None
    if any("parts" in m and "content" not in m for m in messages):
        return None  # Gemini contents ({"role", "parts"}), not chat messages
    if any(isinstance(p, dict) and p.get("type") in RESPONSES_PARTS
           for m in messages if isinstance(m.get("content"), list) for p in m["content"]):
        return None  # OpenAI Responses API items (input_text / output_text parts): openai_responses.py
    openai = anthropic = False
    tools = head.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict):
            openai |= isinstance(tool.get("function"), dict)
            anthropic |= "input_schema" in tool
    openai |= "functions" in head
    anthropic |= "system" in head or any(k in head for k in ANTHROPIC_PARAMS) or _anthropic_answer(head)
    for m in messages:
        openai |= m["role"] in OPENAI_ROLES or any(k in m for k in OPENAI_MESSAGE_KEYS)
        content = m.get("content")
        if isinstance(content, list):
            anthropic |= any(isinstance(b, dict) and b.get("type") in ANTHROPIC_BLOCKS for b in content)
    if openai and anthropic:
        return None
    return "anthropic" if anthropic else "openai"


def _anthropic_answer(head: dict) -> bool:
    """A request log's saved answer that is a Messages API response ({"type": "message", "role":
    "assistant", "content": [blocks], "stop_reason", "usage": {"input_tokens", ...}}): a chat completion
    has "choices" and "object" instead. A log of a request without tools or system has no other sign."""
    response = head.get("response")
    return (isinstance(response, dict) and response.get("type") == "message"
            and response.get("role") == "assistant" and isinstance(response.get("content"), list)
            and ("stop_reason" in response
                 or (isinstance(response.get("usage"), dict) and "input_tokens" in response["usage"])))


def _head_and_messages(record: Any) -> tuple[dict, list | None]:
    if isinstance(record, dict):
        messages = record.get("messages")
        return record, messages if isinstance(messages, list) else None
    if isinstance(record, list) and record and isinstance(record[0], dict):
        if "messages" in record[0]:
            return _head_and_messages(record[0])
        return {}, record
    return {}, None


# ---- the record level both chat dialects share ----------------------------------------------------


@dataclass
class ChatRecord:
    """One chat record opened: its other fields, its messages, and the ids of the trace it makes."""

    fields: dict[str, Any]
    messages: list
    prefix: str
    """Field path of the message list inside the record ("messages", or "" for a bare list)."""
    metadata: dict[str, Any]
    trace_id: str
    group: str


def open_record(at: Location, record: Any, index: int | None, record_keys: tuple[str, ...],
                what: str) -> ChatRecord:
    """A record ({"messages": [...], ...}) or a bare message list; unknown top-level keys go to metadata."""
    if isinstance(record, list):
        rec: dict[str, Any] = {}
        messages, prefix = record, ""
    else:
        rec = expect(record, dict, at, "record")
        if "messages" not in rec:
            raise TraceFormatError(at, f"is missing (expected {what} with a messages list)", field="messages")
        messages, prefix = expect(rec["messages"], list, at, "messages"), "messages"
    raw_metadata = rec.get("metadata")
    metadata = dict(expect(raw_metadata, dict, at, "metadata")) if raw_metadata is not None else {}
    for key, value in rec.items():
        if key not in record_keys:
            metadata.setdefault(key, value)
    trace_id, group = record_ids(metadata, at, index)
    return ChatRecord(rec, messages, prefix, metadata, trace_id, group)


def read_chat_records(records: Records, on_error: OnError,
                      build: Callable[[Location, Any, int | None], Trace],
                      is_record: Callable[[Any], bool] | None = None) -> Iterator[Trace]:
    """Each record of a file (a JSON list of records counts item by item) through `build`, one trace each.

    `is_record` tells a list of records (read item by item) from a bare list of messages (one record);
    by default an item with "messages" is a record. A record that fails goes to `on_error` whole: no
    half-read trace is ever yielded.
    """
    for where, record in good_records(records, on_error):
        for at, item, index in _items(where, record, is_record or _has_messages):
            try:
                yield build(at, item, index)
            except TraceFormatError as e:
                on_error(e)
            except SchemaError as e:
                on_error(schema_error(at, e))


def _has_messages(item: Any) -> bool:
    return isinstance(item, dict) and "messages" in item


def _items(where: Location, record: Any,
           is_record: Callable[[Any], bool]) -> Iterator[tuple[Location, Any, int | None]]:
    """(location, record or message list, index in a JSON list) for each trace the record holds."""
    if isinstance(record, list) and record and is_record(record[0]):
        for i, item in enumerate(record):
            yield where.child(f"[{i}]"), item, i
    else:
        yield where, record, None
