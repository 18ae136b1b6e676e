"""Anthropic Messages API conversations -> canonical traces.

Written against the public Messages API docs (platform.claude.com: "Using the Messages API", tool use
"Handle tool calls", "Define tools", "Extended thinking"): a request body is
`{"system"?: str | [text blocks], "messages": [{"role": "user"|"assistant", "content": str | [blocks]}],
"tools"?: [{"name", "description", "input_schema"}]}`; blocks are `text`, `tool_use {id, name, input}`
(assistant), `tool_result {tool_use_id, content?: str | [blocks], is_error?}` (user, before any text),
`thinking {thinking, signature}` / `redacted_thinking {data}`, and server-tool blocks
(`server_tool_use`, `*_tool_result`, `mcp_tool_use` / `mcp_tool_result`).

A file holds one record per JSON line, a JSON list of records, or a bare list of messages. Per record:
- an assistant message becomes a `Message` (its text blocks; thinking goes to `extra["thinking"]`, never
  into the text), with the `turn` of its tool_use blocks, followed by one `ToolCall` per tool_use
  (server and MCP tool uses too, marked in `extra["block"]`);
- a tool_result fills the output and `is_error` of the call with its `tool_use_id` (no such call: an
  error naming the field); text blocks in the same user message become a user `Message` after them,
  marked `extra["with_tool_results"]` (one API message: the LLM did not answer between the two);
- trace_id / group: `metadata.id` / `metadata.group` when present, else `<file stem>:<line or index>`;
- a request log's saved answer (`"response"`: a Messages API response beside the request) is the last
  assistant message, so a folded request log ends with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, schema_error
from toolcast.data.formats.chat import (
    CallBook,
    chat_dialect,
    open_record,
    output_text,
    parse_arguments,
    read_chat_records,
)
from toolcast.data.schema import Event, Message, SchemaError, ToolCall, ToolSpec, Trace

SOURCE = "anthropic"
_RECORD_KEYS = ("system", "messages", "tools", "metadata")
_CALL_BLOCKS = ("tool_use", "server_tool_use", "mcp_tool_use")


def sniff(record: Any) -> bool:
    return chat_dialect(record) == "anthropic"


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    return read_chat_records(records, on_error, _trace)


def _trace(at: Location, record: Any, index: int | None) -> Trace:
    opened = open_record(at, record, index, _RECORD_KEYS, "a Messages API record")
    rec, messages, prefix, metadata = opened.fields, opened.messages, opened.prefix, opened.metadata
    trace_id, group = opened.trace_id, opened.group
    events: list[Event] = []
    if rec.get("system") is not None:
        blocks = _blocks(at, rec["system"], "system")
        events.append(Message("system", "\n".join(blocks.texts), extra=blocks.extra))
    items = [(f"{prefix}[{j}]", m) for j, m in enumerate(messages)]
    response = rec.get("response")
    if isinstance(response, dict) and response.get("role") == "assistant" and "content" in response:
        items.append(("response", response))  # a request log's saved answer (a Messages API response)
        metadata.pop("response", None)
        rest = {k: v for k, v in response.items() if k not in ("role", "content", "usage", "type")}
        if rest:
            metadata["response"] = rest
    events.extend(_events(at, items))
    trace = Trace(trace_id=trace_id, group=group, source=SOURCE, metadata=metadata,
                  tools=_tools(at, rec.get("tools")), events=events)
    trace.validate()
    return trace


def _tools(at: Location, tools: Any) -> list[ToolSpec]:
    out = []
    for i, tool in enumerate(expect(tools, list, at, "tools") if tools is not None else []):
        tool = expect(tool, dict, at, f"tools[{i}]")
        # Client tools carry input_schema; server tools ({"type": "web_search_20250305", "name", ...}) don't.
        d = {"name": tool.get("name"), "description": tool.get("description"),
             "parameters": tool.get("input_schema"), "annotations": tool.get("annotations")}
        try:
            out.append(ToolSpec.from_dict(d, f"tools[{i}]."))
        except SchemaError as e:
            e = SchemaError(e.field.replace(".parameters", ".input_schema"), str(e).split(": ", 1)[-1])
            raise schema_error(at, e) from None
    return out


@dataclass
class _Blocks:
    """What one message's content held, sorted by what becomes of it."""

    texts: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict]] = field(default_factory=list)  # (field path, block)
    results: list[tuple[str, dict]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _blocks(at: Location, content: Any, path: str) -> _Blocks:
    out = _Blocks()
    if isinstance(content, str):
        out.texts.append(content)
        return out
    for i, block in enumerate(expect(content, (str, list), at, path)):
        bpath = f"{path}[{i}]"
        block = expect(block, dict, at, bpath)
        kind = expect(block.get("type"), str, at, f"{bpath}.type")
        if kind == "text":
            out.texts.append(expect(block.get("text"), str, at, f"{bpath}.text"))
        elif kind in _CALL_BLOCKS:
            out.calls.append((bpath, block))
        elif kind == "tool_result" or kind.endswith("_tool_result"):
            out.results.append((bpath, block))
        elif kind == "thinking":
            out.extra.setdefault("thinking", []).append(
                expect(block.get("thinking", ""), str, at, f"{bpath}.thinking"))
        elif kind == "redacted_thinking":
            out.extra["redacted_thinking"] = out.extra.get("redacted_thinking", 0) + 1
        else:  # image, document, search_result, ...: not text, but never silently dropped
            out.extra.setdefault("blocks", []).append(block)
    return out


def _events(at: Location, items: list[tuple[str, Any]]) -> list[Event]:
    """Events of (field path, message) pairs, in order."""
    events: list[Event] = []
    book = CallBook()
    turn = -1
    for path, m in items:
        m = expect(m, dict, at, path)
        role = expect(m.get("role"), str, at, f"{path}.role")
        if role not in ("user", "assistant", "system"):
            raise TraceFormatError(at, f"unknown role {role!r} (expected user or assistant)",
                                   field=f"{path}.role")
        if "content" not in m:
            raise TraceFormatError(at, "is missing", field=f"{path}.content")
        blocks = _blocks(at, m["content"], f"{path}.content")
        extra = {**blocks.extra, **{k: v for k, v in m.items() if k not in ("role", "content", "usage")}}
        if role == "assistant":
            calls = [_call(at, b, p, book, turn + 1) for p, b in blocks.calls]
            tokens = _output_tokens(at, m.get("usage"), f"{path}.usage")
            message = Message("assistant", "\n".join(blocks.texts), tokens=tokens, extra=extra)
            if calls:
                turn += 1
                message.turn = turn
            events.append(message)
            events.extend(calls)
            for p, b in blocks.results:  # server tools: the result sits in the same assistant message
                _fill(at, b, p, book)
        else:
            if blocks.calls:
                p, _ = blocks.calls[0]
                raise TraceFormatError(at, f"a {role} message cannot hold a tool call", field=f"{p}.type")
            filled = [_fill(at, b, p, book) for p, b in blocks.results]
            if blocks.texts or "blocks" in blocks.extra or not filled:
                if filled:  # sent with the results: the LLM saw both at once, it did not answer between
                    extra["with_tool_results"] = True
                events.append(Message(role, "\n".join(blocks.texts), extra=extra))
            elif extra:  # a message of tool results only: its other keys stay with the last result
                filled[-1].extra["message"] = extra
    return events


def _call(at: Location, block: dict, path: str, book: CallBook, turn: int) -> ToolCall:
    call_id = expect(block.get("id"), str, at, f"{path}.id")
    name = expect(block.get("name"), str, at, f"{path}.name")
    args = parse_arguments(block.get("input"), at, f"{path}.input")
    extra = {"block": block["type"]} if block["type"] != "tool_use" else {}
    if block.get("server_name") is not None:
        extra["server_name"] = block["server_name"]
    return book.add(call_id, turn, name, args, extra=extra)


def _fill(at: Location, block: dict, path: str, book: CallBook) -> ToolCall:
    call = book.answer_or_fail(expect(block.get("tool_use_id"), str, at, f"{path}.tool_use_id"),
                               at, f"{path}.tool_use_id")
    if block["type"] == "tool_result" or block["type"] == "mcp_tool_result":
        fill_result(at, block, path, call)
    else:  # server tool results (web_search_tool_result, ...): structured content, kept as JSON text
        call.output = output_text(block.get("content"))
        if block.get("is_error") is not None:
            call.error = expect(block["is_error"], bool, at, f"{path}.is_error")
    return call


def fill_result(at: Location, block: dict, path: str, call: ToolCall) -> None:
    """A `tool_result` block's content and `is_error` into its call: text blocks joined as the output
    (other blocks kept whole in `extra["result_content"]`). Claude Code transcripts carry the same blocks."""
    content = block.get("content")
    if content is None or isinstance(content, str):
        call.output = content
    else:
        inner = _blocks(at, content, f"{path}.content")
        call.output = "\n".join(inner.texts)
        if inner.extra or inner.calls or inner.results:
            call.extra["result_content"] = content
    if block.get("is_error") is not None:
        call.error = expect(block["is_error"], bool, at, f"{path}.is_error")


def _output_tokens(at: Location, usage: Any, path: str) -> int | None:
    if usage is None:
        return None
    tokens = expect(usage, dict, at, path).get("output_tokens")
    return expect(tokens, int, at, f"{path}.output_tokens") if tokens is not None else None


FORMAT = TraceFormat(
    "anthropic",
    "Anthropic Messages API conversations: {system, messages, tools} per JSON line, a JSON list of them, "
    "or a bare list of messages with content blocks",
    sniff,
    read,
)
