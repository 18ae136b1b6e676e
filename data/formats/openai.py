"""OpenAI chat messages (Chat Completions, fine-tuning JSONL) -> canonical traces.

Written against the public docs: the Chat Completions API reference (message objects, `tool_calls`
with `function.name` / `function.arguments`, `role: "tool"` messages with `tool_call_id`, content as a
string, null or a list of `{"type": "text", "text": ...}` parts), the fine-tuning guide's chat format
(one `{"messages", "tools", "parallel_tool_calls"?}` example per JSONL line, `weight` on assistant
messages) and the deprecated `function_call` / `functions` / `role: "function"` form that the
fine-tuning docs still describe.

A file holds: one record per JSON line, a JSON list of records, or a bare list of messages (a JSON line
or a whole JSON file). One record is one trace:
- trace_id = `metadata.id`, else `<file stem>:<line or index>`; group = `metadata.group`, else trace_id;
- every assistant message becomes a `Message` (text may be ""); when it issued calls, it carries their
  `turn` and is followed by one `ToolCall` per call (several = parallel calls, one turn);
- a tool message fills the output of the call with its `tool_call_id`; one with no such call is an
  error. `error` is True only when the tool message says so with a boolean `is_error` / `error` field
  (the API has none; the text is never guessed from);
- system and developer messages become role "system"; keys the canonical trace has no field for are
  kept in `extra` (messages) or `metadata` (record);
- a request log's saved answer (`"response"`: a chat completion or an assistant message, as LLM proxies
  such as LiteLLM log it beside the request's messages) is the last assistant message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, schema_error
from toolcast.data.formats.chat import CallBook, chat_dialect, open_record, parse_arguments, read_chat_records
from toolcast.data.schema import Event, Message, SchemaError, ToolCall, ToolSpec, Trace

SOURCE = "openai"
_RECORD_KEYS = ("messages", "tools", "functions", "metadata")
_MESSAGE_KEYS = {"role", "content", "tool_calls", "function_call", "tool_call_id", "usage"}


def sniff(record: Any) -> bool:
    return chat_dialect(record) == "openai"


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    return read_chat_records(records, on_error, _trace)


def _trace(at: Location, record: Any, index: int | None) -> Trace:
    opened = open_record(at, record, index, _RECORD_KEYS, "a chat record")
    rec, messages, prefix, metadata = opened.fields, opened.messages, opened.prefix, opened.metadata
    trace_id, group = opened.trace_id, opened.group
    tools = _tools(at, rec.get("tools"), "tools") + _tools(at, rec.get("functions"), "functions")
    items = [(f"{prefix}[{j}]", m) for j, m in enumerate(messages)]
    answer = _response(at, rec.get("response"), metadata)
    events = _events(at, items + answer)
    trace = Trace(trace_id=trace_id, group=group, source=SOURCE, metadata=metadata, tools=tools,
                  events=events)
    trace.validate()
    return trace


def _tools(at: Location, tools: Any, key: str) -> list[ToolSpec]:
    """`tools: [{"type": "function", "function": {...}}]`, or the legacy `functions: [{...}]`."""
    if tools is None:
        return []
    out = []
    for i, tool in enumerate(expect(tools, list, at, key)):
        path = f"{key}[{i}]"
        tool = expect(tool, dict, at, path)
        if key == "tools" and "function" in tool:
            tool, path = expect(tool["function"], dict, at, f"{path}.function"), f"{path}.function"
        try:
            out.append(ToolSpec.from_dict(tool, f"{path}."))
        except SchemaError as e:
            raise schema_error(at, e) from None
    return out


def _response(at: Location, response: Any, metadata: dict[str, Any]) -> list[tuple[str, Any]]:
    """The answer a request log saved beside the request (`"response"`: a chat completion, as LiteLLM's
    logs keep it, or an assistant message): its first choice's message, with the completion's usage;
    other choices stay in metadata. Anything else under "response" stays in metadata as it was."""
    if not isinstance(response, dict):
        return []
    if response.get("role") == "assistant":
        metadata.pop("response", None)
        return [("response", response)]
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        return []
    first = expect(choices[0], dict, at, "response.choices[0]")
    message = dict(expect(first.get("message"), dict, at, "response.choices[0].message"))
    if isinstance(response.get("usage"), dict) and "usage" not in message:
        message["usage"] = response["usage"]
    metadata.pop("response", None)
    rest = {k: v for k, v in response.items() if k not in ("choices", "usage", "object")}
    if len(choices) > 1:
        rest["other_choices"] = choices[1:]
    if rest:
        metadata["response"] = rest
    return [("response.choices[0].message", message)]


def _events(at: Location, items: list[tuple[str, Any]]) -> list[Event]:
    """Events of (field path, message) pairs, in order."""
    events: list[Event] = []
    book = CallBook()
    legacy: list[ToolCall] = []  # function_call calls waiting for their role "function" message
    turn = -1
    for j, (path, m) in enumerate(items):
        m = expect(m, dict, at, path)
        role = expect(m.get("role"), str, at, f"{path}.role")
        if role == "tool":
            call_id = expect(m.get("tool_call_id"), str, at, f"{path}.tool_call_id")
            call = book.answer_or_fail(call_id, at, f"{path}.tool_call_id")
            _fill_result(at, call, m, path)
        elif role == "function":
            name = expect(m.get("name"), str, at, f"{path}.name")
            call = next((c for c in reversed(legacy) if c.tool == name), None)
            if call is None:
                raise TraceFormatError(at, f"function result for {name!r}, but no earlier function_call "
                                       "of that name is waiting for one", field=f"{path}.name")
            legacy.remove(call)
            _fill_result(at, call, m, path)
        elif role in ("system", "developer", "user"):
            text, extra = _content(at, m.get("content"), f"{path}.content")
            extra.update(_extra(m))
            if role == "developer":
                extra["role"] = "developer"
            events.append(Message("user" if role == "user" else "system", text, extra=extra))
        elif role == "assistant":
            message, calls = _assistant(at, m, path, j, book, turn + 1)
            if calls:
                turn += 1
                message.turn = turn
                legacy.extend(c for c in calls if c.extra.get("function_call"))
            events.append(message)
            events.extend(calls)
        else:
            raise TraceFormatError(at, f"unknown role {role!r} (expected system, developer, user, "
                                   "assistant, tool or function)", field=f"{path}.role")
    return events


def _assistant(at: Location, m: dict, path: str, j: int, book: CallBook,
               turn: int) -> tuple[Message, list[ToolCall]]:
    text, extra = _content(at, m.get("content"), f"{path}.content")
    extra.update(_extra(m))
    tokens = None
    if m.get("usage") is not None:
        usage = expect(m["usage"], dict, at, f"{path}.usage")
        tokens = usage.get("completion_tokens", usage.get("output_tokens"))
        tokens = expect(tokens, int, at, f"{path}.usage.completion_tokens") if tokens is not None else None
    calls: list[ToolCall] = []
    for k, tc in enumerate(expect(m.get("tool_calls") or [], list, at, f"{path}.tool_calls")):
        calls.append(_tool_call(at, tc, f"{path}.tool_calls[{k}]", book, turn))
    if m.get("function_call") is not None:
        fc_path = f"{path}.function_call"
        fc = expect(m["function_call"], dict, at, fc_path)
        name = expect(fc.get("name"), str, at, f"{fc_path}.name")
        args = parse_arguments(fc.get("arguments"), at, f"{fc_path}.arguments")
        calls.append(book.add(f"function_call:{j}", turn, name, args, extra={"function_call": True}))
    return Message("assistant", text, tokens=tokens, extra=extra), calls


def _tool_call(at: Location, tc: Any, path: str, book: CallBook, turn: int) -> ToolCall:
    tc = expect(tc, dict, at, path)
    call_id = expect(tc.get("id"), str, at, f"{path}.id")
    kind = tc.get("type", "function")
    if kind == "custom":  # custom tools (free-form text input) carry {"custom": {"name", "input"}}
        custom = expect(tc.get("custom"), dict, at, f"{path}.custom")
        name = expect(custom.get("name"), str, at, f"{path}.custom.name")
        text = expect(custom.get("input", ""), str, at, f"{path}.custom.input")
        return book.add(call_id, turn, name, {"input": text}, extra={"custom": True})
    if kind != "function":
        raise TraceFormatError(at, f"unknown tool call type {kind!r} (expected function or custom)",
                               field=f"{path}.type")
    fn = expect(tc.get("function"), dict, at, f"{path}.function")
    name = expect(fn.get("name"), str, at, f"{path}.function.name")
    args = parse_arguments(fn.get("arguments"), at, f"{path}.function.arguments")
    return book.add(call_id, turn, name, args)


def _fill_result(at: Location, call: ToolCall, m: dict, path: str) -> None:
    text, extra = _content(at, m.get("content"), f"{path}.content")
    call.output = text if m.get("content") is not None else None
    for key in ("is_error", "error"):
        if isinstance(m.get(key), bool):
            call.error = m[key]
    rest = {k: v for k, v in _extra(m).items() if k not in ("name", "is_error", "error")}
    if extra or rest:
        call.extra["result"] = {**extra, **rest}


def _content(at: Location, content: Any, field: str) -> tuple[str, dict[str, Any]]:
    """Text of a message's content (string, null, or content parts) and what else it held."""
    if content is None:
        return "", {}
    if isinstance(content, str):
        return content, {}
    parts = expect(content, (str, list), at, field)  # a string was handled above: this names the types
    texts: list[str] = []
    extra: dict[str, Any] = {}
    for i, part in enumerate(parts):
        part = expect(part, dict, at, f"{field}[{i}]")
        kind = expect(part.get("type"), str, at, f"{field}[{i}].type")
        if kind == "text":
            texts.append(expect(part.get("text"), str, at, f"{field}[{i}].text"))
        elif kind == "refusal":
            extra["refusal"] = expect(part.get("refusal"), str, at, f"{field}[{i}].refusal")
        else:  # image_url, input_audio, file: not text, but never silently dropped
            extra.setdefault("parts", []).append(part)
    return "\n".join(texts), extra


def _extra(m: dict) -> dict[str, Any]:
    return {k: v for k, v in m.items() if k not in _MESSAGE_KEYS and v is not None}


FORMAT = TraceFormat(
    "openai",
    "OpenAI chat messages: fine-tuning JSONL ({messages, tools, metadata}), a JSON list of such records, "
    "or a bare list of messages",
    sniff,
    read,
)
