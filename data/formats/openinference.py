"""OpenInference spans (Arize Phoenix; the OpenInference instrumentations of OpenAI, Anthropic, LangChain,
LlamaIndex, DSPy, smolagents, CrewAI...) -> canonical traces, one per traceId.

Written against the public specs, Arize-ai/openinference:
- spec/semantic_conventions.md and python/openinference-semantic-conventions
  (src/openinference/semconv/trace/__init__.py): `openinference.span.kind` (LLM, TOOL, CHAIN, AGENT,
  RETRIEVER, EMBEDDING, RERANKER, GUARDRAIL, EVALUATOR, PROMPT, UNKNOWN); `llm.input_messages` /
  `llm.output_messages` flattened as `.{i}.message.role`, `.content`, `.contents.{j}.message_content.type`
  / `.text` (type text, image, audio, reasoning...), `.tool_calls.{j}.tool_call.id` / `.function.name` /
  `.function.arguments`, `.tool_call_id` (a tool result); the deprecated `message.function_call_name` /
  `message.function_call_arguments_json`; `llm.tools.{i}.tool.json_schema` (OpenAI tool format);
  `llm.model_name`, `llm.provider`, `llm.system`, `llm.token_count.completion`; `tool.name`,
  `tool.description`, `tool.parameters`, `tool.id` (the tool_call.id a TOOL span answers); `input.value`,
  `input.mime_type`, `output.value`, `output.mime_type`; `session.id`, `user.id`, `agent.name`, `metadata`.
- spec/tool_calling.md (tool calls in output messages, results as role "tool" input messages with
  message.tool_call_id) and spec/traces.md (span kinds; status; Phoenix's span JSON).
Files read: OTLP JSON (decoded in `otlp.py`) whose spans carry `openinference.span.kind` and no GenAI
`gen_ai.operation.name` (those are `otel`'s, which also takes a document mixing both), one document or one
per line; and Phoenix's span JSON (see `openinference_spans.py`): the REST answer `{"data": [spans]}`,
a list of spans, or one span per line.

Mapping: one trace per traceId (an agent run), grouped by `session.id` so that a session's runs stay on
one side of a split; every run's first LLM input already repeats the session's history. Each LLM span ->
an assistant Message (span times, completion tokens, text and reasoning of its first output message) and
the tool calls it asked for. Each TOOL span -> a ToolCall (output = output.value, times from the span,
error = status ERROR) matched to a requested call: by `tool_call.id` / `tool.id` when the span has one,
else to the owning LLM span's first unmatched request with the same tool name, in order; the owner is the
LLM span that requested its id, else the latest LLM span started before it. A matched call keeps the
arguments the model wrote; an unmatched TOOL span takes its arguments from input.value (a JSON object, or
text as {"input": text}). A requested call with no TOOL span is still a call, its result from a later LLM
span's role "tool" input message with that id. LLM or TOOL spans nested inside a span of the same kind
(two instrumentations tracing one call) are left out and counted in metadata["nested_spans_skipped"];
TOOL spans with no tool name, id, input or output (a handoff) are listed in
metadata["empty_tool_spans_skipped"]; a listed tool schema that names no tool (`{}`) is logged and
listed in metadata["skipped_tool_schemas"], the rest of the trace read. An LLM span's text and calls are
gathered from all its output messages (the OpenAI Agents instrumentation gives the text and each
function call messages of their own).
The first LLM span's inputs give the system and user messages and any history they repeat (assistant
messages, their calls, results matched by message.tool_call_id; no times, so a log with one LLM call per
trace, as an SDK instrumentation alone writes, folds like a request log); later user turns come from the
user messages that end a later LLM span's inputs.
Not read: Phoenix's `/spans/otlpv1` answer (snake_case OTLP), get_spans_dataframe exports (columns not
confirmed), span events (exception details beyond the status message).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect
from toolcast.data.formats.chat import CallBook, output_text, parse_arguments
from toolcast.data.formats.openinference_spans import (
    KIND,
    Call,
    Msg,
    flatten,
    is_phoenix_span,
    messages,
    phoenix_span,
    tool_name,
    tool_specs,
    trace_metadata,
)
from toolcast.data.formats.otlp import STATUS_ERROR, Span, parse_document, read_traces
from toolcast.data.schema import Event, Message, ToolCall, Trace

SOURCE = "openinference"
_OUT = "llm.output_messages"
_IN = "llm.input_messages"
# A TOOL span with none of these (the OpenAI Agents SDK's "handoff to X") says nothing about a call.
_TOOL_KEYS = ("tool.name", "tool_call.function.name", "tool_call.id", "tool.id", "input.value",
              "output.value")


# ---- detection -----------------------------------------------------------------------------------------


def _otlp_attr_keys(doc: Any) -> Iterator[str]:
    for rs in doc.get("resourceSpans") or []:
        for ss in (rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []) \
                if isinstance(rs, dict) else []:
            for span in (ss.get("spans") or []) if isinstance(ss, dict) else []:
                for kv in (span.get("attributes") or []) if isinstance(span, dict) else []:
                    if isinstance(kv, dict) and isinstance(kv.get("key"), str):
                        yield kv["key"]


def sniff(record: Any) -> bool:
    item = record[0] if isinstance(record, list) and record else record
    if not isinstance(item, dict):
        return False
    if isinstance(item.get("resourceSpans"), list):
        try:
            keys = set(_otlp_attr_keys(item))
        except (AttributeError, TypeError):
            return False
        return KIND in keys and "gen_ai.operation.name" not in keys
    data = item.get("data")
    return is_phoenix_span(item) or (isinstance(data, list) and bool(data) and is_phoenix_span(data[0]))


# ---- reading -------------------------------------------------------------------------------------------


def _spans(at: Location, item: Any, errors: list[tuple[str | None, TraceFormatError]]) -> Iterator[Span]:
    if isinstance(item, dict) and "resourceSpans" in item:
        for span in parse_document(at, item, errors):
            span.attrs = flatten(span.attrs)  # an attribute may hold a kvlist or an array of kvlists
            yield span
        return
    if isinstance(item, dict) and "context" not in item:  # the REST answer {"data": [...], "next_cursor"}
        found = [(f"data[{k}]", s) for k, s in enumerate(expect(item.get("data"), list, at, "data"))]
    else:
        found = [("span", item)]
    for path, raw in found:
        try:
            yield phoenix_span(at, raw, path)
        except TraceFormatError as e:
            context = raw.get("context") if isinstance(raw, dict) else None
            tid = context.get("trace_id") if isinstance(context, dict) else None
            errors.append((tid if isinstance(tid, str) else None, e))


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    return read_traces(records, on_error, _spans, _trace)


# ---- spans -> trace ------------------------------------------------------------------------------------


def _kind(span: Span) -> str:
    kind = span.attrs.get(KIND)
    return kind.upper() if isinstance(kind, str) else ""


def _nested_in_same_kind(span: Span, by_id: dict[str, Span]) -> bool:
    seen, parent = set(), by_id.get(span.parent_id)
    while parent is not None and parent.span_id not in seen:
        if _kind(parent) == _kind(span):
            return True
        seen.add(parent.span_id)
        parent = by_id.get(parent.parent_id)
    return False


def _tool_span_id(t: Span) -> str | None:
    for key in ("tool_call.id", "tool.id"):
        value = t.attrs.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _trace(trace_id: str, spans: list[Span]) -> Trace:
    spans = sorted(spans, key=lambda s: (s.start is None, s.start or 0.0))
    by_id = {s.span_id: s for s in spans}
    kept = [s for s in spans if _kind(s) in ("LLM", "TOOL")]
    nested = [s for s in kept if _nested_in_same_kind(s, by_id)]
    skip = {id(s) for s in nested}
    llms = [s for s in kept if _kind(s) == "LLM" and id(s) not in skip]
    tools = [s for s in kept if _kind(s) == "TOOL" and id(s) not in skip]
    empty = [t for t in tools if not any(t.attrs.get(k) is not None for k in _TOOL_KEYS)]
    tools = [t for t in tools if all(t is not e for e in empty)]
    outputs = {c.span_id: messages(c, _OUT) for c in llms}
    requested = {c.span_id: [call for m in outputs[c.span_id] for call in m.calls] for c in llms}
    requester = {call.call_id: c for c in llms for call in requested[c.span_id] if call.call_id}
    results = {m.tool_call_id: m for c in llms for m in messages(c, _IN) if m.tool_call_id}

    owned: dict[str, list[Span]] = {c.span_id: [] for c in llms}
    orphans: list[Span] = []
    for t in tools:
        owner = requester.get(_tool_span_id(t) or "") or _preceding(llms, t)
        (owned[owner.span_id] if owner else orphans).append(t)

    events: list[Event] = []
    book = CallBook()
    turn, unanswered = -1, []
    if llms:
        opening, turn, unanswered = _opening(llms[0], book)
        events.extend(opening)
    last: Span | None = None
    for t in orphans:  # tool spans before any LLM span: parallel while they overlap
        overlaps = last is not None and None not in (t.start, last.end) and t.start < last.end
        turn += 0 if overlaps else 1
        events.append(_tool_call(t, None, book, turn))
        last = t
    for ci, llm in enumerate(llms):
        if ci:
            events.extend(_new_user_messages(llm))
        message = _assistant(llm, outputs[llm.span_id])
        calls = _calls(llm, requested[llm.span_id], owned[llm.span_id], results, book, turn + 1)
        if calls:
            turn += 1
            message.turn = turn
        events.append(message)
        events.extend(calls)

    metadata = trace_metadata(spans, llms)
    if nested:
        metadata["nested_spans_skipped"] = len(nested)
    if empty:
        metadata["empty_tool_spans_skipped"] = [t.name for t in empty]
    if unanswered:
        metadata["unmatched_input_messages"] = unanswered
    skipped: list[dict[str, Any]] = []
    specs = tool_specs(llms, tools, skipped)
    if skipped:
        metadata["skipped_tool_schemas"] = skipped
    trace = Trace(trace_id=trace_id, group=str(metadata.get("session_id") or trace_id), source=SOURCE,
                  metadata=metadata, tools=specs, events=events)
    trace.validate()
    return trace


def _preceding(llms: list[Span], tool: Span) -> Span | None:
    if tool.start is None:
        return None
    before = [c for c in llms if c.start is not None and c.start <= tool.start]
    return before[-1] if before else None


def _calls(llm: Span, requested: list[Call], tools: list[Span], results: dict[str, Msg], book: CallBook,
           turn: int) -> list[ToolCall]:
    """The calls of one LLM turn in the order the model asked for them, then TOOL spans it did not ask for."""
    match: dict[int, Span] = {}
    free = []
    for t in tools:
        sid = _tool_span_id(t)
        k = next((k for k, r in enumerate(requested) if sid and r.call_id == sid and k not in match), None)
        if k is None:
            free.append(t)
        else:
            match[k] = t
    unmatched = []
    for t in free:  # no id (or an id the model did not write): the next request with that name
        name = tool_name(t)
        k = next((k for k, r in enumerate(requested) if k not in match and r.name == name
                  and not (r.call_id and _tool_span_id(t))), None)
        if k is None:
            unmatched.append(t)
        else:
            match[k] = t
    calls = []
    for k, r in enumerate(requested):
        if k in match:
            calls.append(_tool_call(match[k], r, book, turn))
            continue
        result = results.get(r.call_id) if r.call_id else None
        extra: dict[str, Any] = {"from": _OUT}
        if result is not None and result.extra:
            extra["result_extra"] = result.extra
        calls.append(book.add(r.call_id or f"{llm.span_id}:{k}", turn, r.name,
                              parse_arguments(r.args, llm.where, r.field), extra=extra,
                              output=result.text if result is not None else None))
    calls.extend(_tool_call(t, None, book, turn) for t in unmatched)
    return calls


def _tool_call(t: Span, asked: Call | None, book: CallBook, turn: int) -> ToolCall:
    name = asked.name if asked else tool_name(t)
    extra: dict[str, Any] = {"span_id": t.span_id}
    raw = t.attrs.get("input.value")
    if asked is not None:
        args = parse_arguments(asked.args, t.where, asked.field)
        if raw is not None and raw != asked.args:
            extra["input_value"] = raw
        if tool_name(t) != name:
            extra["span_tool_name"] = tool_name(t)
    else:
        args = _span_arguments(t, extra)
    output = output_text(t.attrs.get("output.value"))
    error = t.status_code == STATUS_ERROR
    if t.status_message:
        extra["status_message"] = t.status_message
    if error and output is None:
        output = t.status_message or None
    call_id = (asked.call_id if asked else None) or _tool_span_id(t) or t.span_id
    return book.add(call_id, turn, name, args, extra=extra, output=output, error=error,
                    t_start=t.start, t_end=t.end)


def _span_arguments(t: Span, extra: dict[str, Any]) -> dict[str, Any]:
    """A TOOL span the model did not ask for: `tool_call.function.arguments` on the span, else input.value
    when it holds a JSON object, else input.value as {"input": value}. input.value is any text the
    instrumentation chose (LangChain's is often a Python repr), so it is never an error."""
    if t.attrs.get("tool_call.function.arguments") is not None:
        return parse_arguments(t.attrs["tool_call.function.arguments"], t.where,
                               t.field("tool_call.function.arguments"))
    raw = t.attrs.get("input.value")
    try:
        return parse_arguments(raw, t.where, t.field("input.value"))
    except TraceFormatError:
        extra["input_not_json_object"] = True
        return {"input": raw}


def _as_message(m: Msg) -> Message | None:
    role = {"system": "system", "developer": "system", "user": "user", "human": "user"}.get(m.role.lower())
    return Message(role, m.text, extra=m.extra) if role else None


def _opening(llm: Span, book: CallBook) -> tuple[list[Event], int, list[dict[str, Any]]]:
    """The first LLM span's input messages, with the history a request repeats (a run an SDK instrumentation
    traced one LLM call per trace; a session's earlier runs): system and user messages, assistant messages
    and the calls they made, each call's result the role "tool" message with its id (without an id, the
    first unanswered call with the message's name). History has no times, so request-per-trace logs fold
    (data/fold.py). Returns the events, the last turn and the results that answered no call."""
    out: list[Event] = []
    turn, pending, unanswered = -1, [], []
    for m in messages(llm, _IN):
        if m.role.lower() in ("tool", "function"):
            call = book.answer(m.tool_call_id) if m.tool_call_id else None
            name = (m.extra.get("attributes") or {}).get("message.name")
            if call is None and not m.tool_call_id:
                call = next((c for c in pending if c.tool == name and c.output is None), None)
            if call is None:
                unanswered.append({"tool_call_id": m.tool_call_id, "name": name, "text": m.text})
            else:
                call.output = m.text
                if m.extra:
                    call.extra["result_extra"] = m.extra
            continue
        if m.role.lower() != "assistant":
            message = _as_message(m)
            if message is not None:
                out.append(message)
            elif m.text or m.extra:
                unanswered.append({"role": m.role, "text": m.text})
            continue
        message = Message("assistant", m.text, extra={**m.extra, "from": _IN})
        out.append(message)
        if m.calls:
            turn += 1
            message.turn = turn
            for j, c in enumerate(m.calls):
                call = book.add(c.call_id or f"{llm.span_id}:in{len(out)}:{j}", turn, c.name,
                                parse_arguments(c.args, llm.where, c.field), extra={"from": _IN})
                pending.append(call)
                out.append(call)
    return out, turn, unanswered


def _new_user_messages(llm: Span) -> list[Message]:
    trailing: list[Message] = []
    for m in reversed(messages(llm, _IN)):
        message = _as_message(m)
        if message is None or message.role != "user":
            break
        trailing.append(message)
    return trailing[::-1]


def _assistant(llm: Span, outputs: list[Msg]) -> Message:
    """One message for the whole response: instrumentations of the Responses API put its text and each
    function call in output messages of their own (openinference-instrumentation-openai-agents)."""
    text, extra = "\n".join(m.text for m in outputs if m.text), {}
    for m in outputs:
        for key, value in m.extra.items():
            extra.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    if not outputs and llm.attrs.get("output.mime_type") != "application/json":
        value = llm.attrs.get("output.value")
        text = value if isinstance(value, str) else ""
    if llm.status_code == STATUS_ERROR:
        extra["error"] = llm.status_message or True
    tokens = llm.attrs.get("llm.token_count.completion")
    tokens = tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None
    return Message("assistant", text, t_start=llm.start, t_end=llm.end, tokens=tokens, extra=extra)


FORMAT = TraceFormat(
    "openinference",
    "OpenInference spans (Arize Phoenix, OpenInference instrumentations) in OTLP JSON, or Phoenix's span "
    "JSON (REST /v1/projects/{id}/spans answers, span lists, span lines): one trace per traceId",
    sniff,
    read,
)
