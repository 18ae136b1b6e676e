"""OpenTelemetry GenAI spans in OTLP JSON -> canonical traces, one per traceId.

Written against the public specs:
- OTLP JSON Protobuf encoding (decoded in `otlp.py`): a document `{"resourceSpans": [...]}`, or one
  document per line as the OTLP file exporter writes; a trace's spans may be spread over several lines.
- GenAI semantic conventions (open-telemetry/semantic-conventions-genai, docs/gen-ai/gen-ai-spans.md):
  inference spans (`gen_ai.operation.name` chat / generate_content / text_completion) with
  `gen_ai.input.messages`, `gen_ai.output.messages` ({role, parts: [{type: text, content} | {type:
  tool_call, id, name, arguments} | {type: tool_call_response, id, response}]}), `gen_ai.system_instructions`,
  `gen_ai.tool.definitions`, `gen_ai.usage.output_tokens`; `execute_tool` spans with `gen_ai.tool.name`,
  `gen_ai.tool.call.id`, `gen_ai.tool.call.arguments`, `gen_ai.tool.call.result` (either a JSON string or
  structured), `error.type`. Older names still read (see `_OLD`): `gen_ai.system` (renamed to
  `gen_ai.provider.name`), `gen_ai.usage.completion_tokens` (renamed to `gen_ai.usage.output_tokens`),
  and `instrumentationLibrarySpans` (the pre-1.0 OTLP name of `scopeSpans`).

Mapping: each inference span -> an assistant `Message` (span times, output tokens, text of the first
output message); each execute_tool span -> a `ToolCall` in the turn of the inference span that is its
parent, else the latest one that started before it (tools with neither share a turn only while they
overlap in time). A tool call that an inference span requested in its output messages but that has no
execute_tool span still becomes a `ToolCall` (no times), with the result later input messages carry.
System and user messages come from the first inference span's input messages, and later user turns from
the user messages that end a later span's input. error = status code 2 (ERROR) or an `error.type`.
Metadata: agent_model (gen_ai.request.model), agent_implementation (gen_ai.agent.name, else service.name),
provider, service, conversation_id (also the group: a session's traces stay on one side of a split).
Not read: the per-message events of conventions <= v1.36 (gen_ai.user.message, gen_ai.choice, ...),
which were log records with a body, not span attributes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, schema_error
from toolcast.data.formats.chat import CallBook, output_text, parse_arguments
from toolcast.data.formats.otlp import STATUS_ERROR, Span, parse_document, read_traces
from toolcast.data.schema import Event, Message, SchemaError, ToolCall, ToolSpec, Trace

SOURCE = "otel"
INFERENCE_OPS = ("chat", "generate_content", "text_completion")
TOOL_OP = "execute_tool"
# Attributes the spec renamed: current name -> the older name, still read when the current one is absent.
_OLD = {"gen_ai.provider.name": "gen_ai.system",  # renamed in semantic conventions v1.37
        "gen_ai.usage.output_tokens": "gen_ai.usage.completion_tokens"}


def sniff(record: Any) -> bool:
    doc = record[0] if isinstance(record, list) and record else record
    return isinstance(doc, dict) and isinstance(doc.get("resourceSpans"), list)


def _get(span: Span, key: str) -> Any:
    value = span.attrs.get(key)
    return span.attrs.get(_OLD[key]) if value is None and key in _OLD else value


def _op(span: Span) -> str | None:
    op = span.attrs.get("gen_ai.operation.name")
    if isinstance(op, str):
        return op
    # A span named "{operation} {model or tool}" with gen_ai attributes but no operation attribute.
    head = span.name.split(" ", 1)[0]
    if head in (*INFERENCE_OPS, TOOL_OP) and any(k.startswith("gen_ai.") for k in span.attrs):
        return head
    return None


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    return read_traces(records, on_error, parse_document, _trace)


# ---- GenAI spans -> trace ------------------------------------------------------------------------------


def _trace(trace_id: str, spans: list[Span]) -> Trace:
    spans = sorted(spans, key=lambda s: (s.start is None, s.start or 0.0))
    chats = [s for s in spans if _op(s) in INFERENCE_OPS]
    tools = [s for s in spans if _op(s) == TOOL_OP]
    owned: dict[str, list[Span]] = {c.span_id: [] for c in chats}
    chat_by_id = {c.span_id: c for c in chats}
    orphans: list[Span] = []
    for t in tools:
        owner = chat_by_id.get(t.parent_id) or _preceding(chats, t)
        (owned[owner.span_id] if owner else orphans).append(t)
    traced_ids = {_get(t, "gen_ai.tool.call.id") for t in tools} - {None}
    responses = {r_id: r for c in chats for r_id, r in _responses(c)}

    events: list[Event] = []
    book = CallBook()
    turn = -1
    if chats:
        events.extend(_opening_messages(chats[0]))
    last: Span | None = None
    for t in orphans:  # tool spans before any inference span: parallel while they overlap
        overlaps = last is not None and last.parent_id == t.parent_id and None not in (t.start, last.end) \
            and t.start < last.end
        turn += 0 if overlaps else 1
        events.append(_tool_call(t, book, turn))
        last = t
    assistants = {c.span_id: _assistant(c) for c in chats}
    known_ids = None
    if all(_get(t, "gen_ai.tool.call.id") for t in tools):
        known_ids = {str(i) for i in traced_ids} | {r[0] for _, req in assistants.values() for r in req}
    for ci, chat in enumerate(chats):
        if ci:
            _check_new_results(chat, known_ids)
            events.extend(_new_user_messages(chat))
        message, requested = assistants[chat.span_id]
        calls = [_tool_call(t, book, turn + 1) for t in owned[chat.span_id]]
        unnamed = Counter(_get(t, "gen_ai.tool.name") for t in owned[chat.span_id]
                          if not _get(t, "gen_ai.tool.call.id"))
        for k, (call_id, name, args) in enumerate(requested):
            if call_id in traced_ids:
                continue
            if unnamed[name]:  # an execute_tool span without a call id ran it
                unnamed[name] -= 1
            else:
                source_id = call_id or f"{chat.span_id}:{k}"
                calls.append(book.add(source_id, turn + 1, name, args,
                                      output=output_text(responses.get(call_id)),
                                      extra={"from": "gen_ai.output.messages"}))
        if calls:
            turn += 1
            message.turn = turn
        events.append(message)
        events.extend(calls)

    metadata = _metadata(spans, chats)
    trace = Trace(trace_id=trace_id, group=str(metadata.get("conversation_id") or trace_id), source=SOURCE,
                  metadata=metadata, tools=_tool_specs(spans), events=events)
    trace.validate()
    return trace


def _preceding(chats: list[Span], tool: Span) -> Span | None:
    if tool.start is None:
        return None
    before = [c for c in chats if c.start is not None and c.start <= tool.start]
    return before[-1] if before else None


def _tool_call(t: Span, book: CallBook, turn: int) -> ToolCall:
    name = _get(t, "gen_ai.tool.name")
    if not isinstance(name, str) or not name:
        raise TraceFormatError(t.where, "is missing (an execute_tool span names its tool)",
                               field=t.field("gen_ai.tool.name"))
    call_id = _get(t, "gen_ai.tool.call.id")
    args = parse_arguments(_get(t, "gen_ai.tool.call.arguments"), t.where,
                           t.field("gen_ai.tool.call.arguments"))
    output = output_text(_get(t, "gen_ai.tool.call.result"))
    error_type = _get(t, "error.type")
    error = t.status_code == STATUS_ERROR or error_type is not None
    extra: dict[str, Any] = {"span_id": t.span_id}
    if error_type is not None:
        extra["error_type"] = error_type
    if t.status_message:
        extra["status_message"] = t.status_message
    if error and output is None:
        output = t.status_message or (str(error_type) if error_type is not None else None)
    return book.add(str(call_id) if call_id else t.span_id, turn, name, args, extra=extra, output=output,
                    error=error, t_start=t.start, t_end=t.end)


def _messages(span: Span, key: str) -> list[dict]:
    """A messages attribute (JSON string or structured) as a list of {role, parts}."""
    value = _get(span, key)
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise TraceFormatError(span.where, f"not valid JSON: {e.msg} (column {e.colno})",
                                   field=span.field(key)) from None
    for i, m in enumerate(expect(value, list, span.where, span.field(key))):
        m = expect(m, dict, span.where, f"{span.field(key)}[{i}]")
        expect(m.get("role"), str, span.where, f"{span.field(key)}[{i}].role")
        expect(m.get("parts", []), list, span.where, f"{span.field(key)}[{i}].parts")
    return value


def _parts_text(m: dict) -> tuple[str, dict[str, Any]]:
    texts, extra = [], {}
    for part in m.get("parts") or []:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif kind == "reasoning":
            extra.setdefault("reasoning", []).append(part.get("content"))
        elif kind not in ("tool_call", "tool_call_response"):
            extra.setdefault("parts", []).append(part)
    return "\n".join(texts), extra


def _as_message(m: dict) -> Message | None:
    role = {"system": "system", "user": "user"}.get(m.get("role"))
    if role is None or _only_results(m):
        return None
    text, extra = _parts_text(m)
    return Message(role, text, extra=extra)


def _opening_messages(chat: Span) -> list[Message]:
    out = []
    instructions = _get(chat, "gen_ai.system_instructions")
    if isinstance(instructions, str):
        try:
            instructions = json.loads(instructions)
        except json.JSONDecodeError:
            pass  # plain text instructions
    if isinstance(instructions, str):
        out.append(Message("system", instructions))
    elif isinstance(instructions, list):
        out.append(Message("system", _parts_text({"parts": instructions})[0]))
    out.extend(m for m in map(_as_message, _messages(chat, "gen_ai.input.messages")) if m is not None)
    return out


def _check_new_results(chat: Span, known_ids: set | None) -> None:
    """Tool results the agent got since its last inference must answer calls of this trace."""
    if known_ids is None:  # some execute_tool span has no call id: nothing to match against
        return
    messages = _messages(chat, "gen_ai.input.messages")
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None)
    for i in range(last + 1 if last is not None else 0, len(messages)):
        for j, part in enumerate(messages[i].get("parts") or []):
            if isinstance(part, dict) and part.get("type") == "tool_call_response" \
                    and isinstance(part.get("id"), str):
                if part["id"].strip() not in known_ids:
                    raise TraceFormatError(chat.where, f"tool result for call id {part['id']!r}, but no "
                                           "tool call in this trace has that id",
                                           field=f"{chat.field('gen_ai.input.messages')}[{i}].parts[{j}].id")


def _new_user_messages(chat: Span) -> list[Message]:
    """The user messages that end a later span's input; one that only carries tool results (pydantic-ai
    sends them with role "user") is no user turn and ends the search."""
    trailing: list[Message] = []
    for m in reversed(_messages(chat, "gen_ai.input.messages")):
        if m.get("role") != "user" or _only_results(m):
            break
        trailing.append(_as_message(m))
    return trailing[::-1]


def _only_results(m: dict) -> bool:
    parts = m.get("parts") or []
    return bool(parts) and all(isinstance(p, dict) and p.get("type") == "tool_call_response" for p in parts)


def _assistant(chat: Span) -> tuple[Message, list[tuple[str | None, str, dict]]]:
    outputs = _messages(chat, "gen_ai.output.messages")
    text, extra = _parts_text(outputs[0]) if outputs else ("", {})
    requested = []
    for k, part in enumerate(outputs[0].get("parts") or [] if outputs else []):
        if isinstance(part, dict) and part.get("type") == "tool_call":
            field = f"{chat.field('gen_ai.output.messages')}[0].parts[{k}]"
            name = expect(part.get("name"), str, chat.where, f"{field}.name")
            call_id = part.get("id")
            call_id = expect(call_id, str, chat.where, f"{field}.id") if call_id is not None else None
            requested.append((call_id, name, parse_arguments(part.get("arguments"), chat.where,
                                                             f"{field}.arguments")))
    if chat.status_code == STATUS_ERROR or _get(chat, "error.type") is not None:
        extra["error"] = _get(chat, "error.type") or chat.status_message or True
    tokens = _get(chat, "gen_ai.usage.output_tokens")
    tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
    message = Message("assistant", text, t_start=chat.start, t_end=chat.end, tokens=tokens, extra=extra)
    return message, requested


def _responses(chat: Span) -> Iterator[tuple[str, Any]]:
    for m in _messages(chat, "gen_ai.input.messages"):
        for part in m.get("parts") or []:
            if isinstance(part, dict) and part.get("type") == "tool_call_response" \
                    and isinstance(part.get("id"), str):
                yield part["id"].strip(), part.get("response", part.get("result"))  # pydantic-ai: result


def _tool_specs(spans: list[Span]) -> list[ToolSpec]:
    specs: dict[str, ToolSpec] = {}
    for s in spans:
        value = _get(s, "gen_ai.tool.definitions")
        if value is None:
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise TraceFormatError(s.where, f"not valid JSON: {e.msg} (column {e.colno})",
                                       field=s.field("gen_ai.tool.definitions")) from None
        for i, d in enumerate(expect(value, list, s.where, s.field("gen_ai.tool.definitions"))):
            path = f"{s.field('gen_ai.tool.definitions')}[{i}]"
            d = expect(d, dict, s.where, path)
            if isinstance(d.get("function"), dict):  # tolerate OpenAI-style nesting
                d, path = d["function"], f"{path}.function"
            try:
                spec = ToolSpec.from_dict({k: d.get(k) for k in ("name", "description", "parameters")},
                                          f"{path}.")
            except SchemaError as e:
                raise schema_error(s.where, e) from None
            specs.setdefault(spec.name, spec)
    return list(specs.values())


def _metadata(spans: list[Span], chats: list[Span]) -> dict[str, Any]:
    def first(key: str, among: list[Span]) -> Any:
        return next((_get(s, key) for s in among if _get(s, key) is not None), None)

    agent = first("gen_ai.agent.name", spans)
    service = next((s.resource["service.name"] for s in spans if "service.name" in s.resource), None)
    found = {  # agent_model / agent_implementation: the keys the other importers and the featurizer use
        "agent_model": first("gen_ai.request.model", chats) or first("gen_ai.response.model", chats),
        "agent_implementation": agent or service,
        "agent_name": agent,
        "provider": first("gen_ai.provider.name", spans),
        "service": service,
        "conversation_id": first("gen_ai.conversation.id", spans),
    }
    return {k: v for k, v in found.items() if v is not None}


FORMAT = TraceFormat(
    "otel",
    "OpenTelemetry GenAI spans in OTLP JSON ({resourceSpans}, or one such document per line as the OTLP "
    "file exporter writes): one trace per traceId",
    sniff,
    read,
)
