"""Langfuse exports (traces and observations from the public API, the SDKs or the UI) -> canonical traces.

Checked against the public API definition and SDK types (URLs in tests/fixtures/langfuse/README.md):
langfuse/langfuse fern/apis/server/definition/commons.yml (Trace, TraceWithFullDetails, Observation,
ObservationsView, ObservationLevel DEBUG/DEFAULT/WARNING/ERROR) and observations.yml (`GET
/api/public/v2/observations`: {"data", "meta"}, input/output returned as raw strings, types GENERATION,
SPAN, EVENT, AGENT, TOOL, CHAIN, RETRIEVER, EVALUATOR, EMBEDDING, GUARDRAIL);
https://js.reference.langfuse.com/interfaces/_langfuse_core.TraceWithFullDetails.html (sessionId,
observations, usageDetails); https://langfuse.com/docs/observability/features/observation-types; and
what the integrations log (langfuse-python langfuse/openai.py: input = messages, or {"messages", "tools",
"functions"}; output = the assistant message, or its text; langfuse/langchain/CallbackHandler.py: input
= message dicts with LangChain tool calls {name, args, id} and the bound tools appended as {"role":
"tool", "content": <tool>}; TOOL observations named after the tool, error = level ERROR + statusMessage),
and the real framework traces Langfuse keeps (worker/src/__tests__/chatml/framework-traces: the message
shapes they hold are listed in langfuse_messages.py and langfuse_generations.py).

A file holds, as one JSON document, a JSON list or JSON lines (snake_case keys read as well): traces
as `GET /api/public/traces/{id}` returns them (`observations` inline), `{"trace", "observations"}` (as
the UI hands a trace out and Langfuse's repository stores them; the full observations win over the
trace's inline ones), pages {"data": [...], "meta"} of
observations or of such traces, or single observations (the UI's JSONL export). Observations are grouped
by `traceId`, in any order, over the whole file. One Langfuse trace is one trace:
- trace_id = the Langfuse trace id; group = `sessionId` when the trace or an observation has one. A
  session's later trace whose first input repeats an earlier trace's conversation holds it whole; those
  repeated turns take the times the earlier trace gave them (`_share_times`), so load_traces'
  request-log folding drops the earlier one, a prefix, and loses nothing (traces that time the same
  content differently, repeated runs, are kept apart).
- Observations are ordered by startTime, then parents before children. The conversation comes from the
  GENERATION observations (one inside another logs the same call twice: only one level is read, listed
  in metadata["nested_generations"]; those with neither input nor output in ["empty_generations"]),
  every shape brought to OpenAI messages first (OTel GenAI parts, Gemini, Responses items, Vercel AI
  SDK, ...: langfuse_messages.py): the first one's input whole, each later one's input from its last
  assistant message on (the tool results and user turns sent since, and results of calls still waiting
  it repeats; system messages again are left out; an input that is no messages is no new turn), or, when
  the previous generation logged no output, from the end of the previous input on (its answer is there:
  BeeAI); each one's output as the assistant message, the last one's missing output taken from the
  trace's output. Tool results without a call id answer the earliest waiting call of their tool's name.
  Messages are read by the OpenAI or Anthropic importer (`chat_dialect` decides), so a tool message
  fills the call with its `tool_call_id`. A generation's times, output tokens (usageDetails / usage
  `output`), id and model go to its assistant message; a failed generation (no output) is listed in
  metadata["failed_generations"].
- Tool runs: a TOOL observation names its tool by the span attributes Langfuse keeps in its metadata
  (gen_ai.tool.name, ai.toolCall.name, tool.name), else by its name without a framework's prefix
  ("running tool: X", "execute_tool X", "tool.X"). It fills the requested call whose id it names
  (metadata tool_call_id, gen_ai.tool.call.id / ai.toolCall.id, or a ToolMessage output), else an
  unfilled call of its name requested by the generation it follows (started at or after it, before the
  next one; of parallel calls of one tool, the one whose argument values its input mentions), else an
  earlier waiting call of its name and arguments (also wrapped as {"input": ...}: the Claude Agent SDK);
  any other observation type named like such a call (v2 SDKs trace tools as SPANs) fills it when no TOOL
  does. It gives the call times, `error` (level ERROR, a ToolMessage status "error", an MCP result's
  isError), the output (as logged; an MCP result's text) when no tool message carried one, and its call
  id to a call logged without one. A TOOL observation no call asked for becomes a call of its own (args:
  its input object, JSON or dict-repr text, @observe's kwargs), after the generation it follows; such
  calls share a turn while they overlap in time.
- Tools: `tools` / `functions` in a generation's input (OpenAI, Anthropic, Gemini or Vercel form),
  LangChain's appended tool messages, `tools` in its metadata or modelParameters, the span attributes
  gen_ai.tool.definitions / model_request_parameters, a Responses output's tools; else none.
- Metadata: the trace's fields (name, userId, sessionId, tags, metadata, scores, ...; not its input and
  output, which repeat the conversation), agent_model, and id/type/name of observations that are no
  generation and ran no call (metadata["observations"]).
A record that fails makes its trace fail whole (`on_error`), never half-read. Not read: the traces
listing (`GET /api/public/traces` gives observation ids only: an error says what to fetch), sessions
(`GET /api/public/sessions/{id}` lists traces without observations), calls written only as ReAct text
(BeeAI's "Function Name:"), and the UI's CSV export.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, good_records, schema_error
from toolcast.data.formats.langfuse_conversation import Observation, build_events
from toolcast.data.formats.langfuse_messages import get as _get
from toolcast.data.schema import Message, SchemaError, ToolCall, Trace

SOURCE = "langfuse"
OBSERVATION_TYPES = ("GENERATION", "SPAN", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR",
                     "EMBEDDING", "GUARDRAIL")
_TRACE_SKIP = ("id", "observations", "input", "output")  # trace fields left out of metadata
def _is_observation(x: Any) -> bool:
    return (isinstance(x, dict) and x.get("type") in OBSERVATION_TYPES and isinstance(x.get("id"), str)
            and _get(x, "startTime") is not None)


def _is_trace(x: Any) -> bool:
    obs = x.get("observations") if isinstance(x, dict) else None
    return (isinstance(obs, list) and isinstance(x.get("id"), str) and all(map(_is_observation, obs))
            and (bool(obs) or "timestamp" in x))


def _is_wrapped(x: Any) -> bool:
    """{"trace": {...}, "observations": [...]}: a trace and its observations side by side, as Langfuse's own
    repository stores them (worker/src/__tests__/chatml/framework-traces, from the UI's tRPC routes)."""
    return (isinstance(x, dict) and isinstance(x.get("trace"), dict)
            and isinstance(x.get("observations"), list)
            and isinstance(x["trace"].get("id"), str) and all(map(_is_observation, x["observations"])))


def _is_trace_summary(x: Any) -> bool:
    """A trace as `GET /api/public/traces` lists it: observation ids only (taken, to say what to fetch)."""
    obs = x.get("observations") if isinstance(x, dict) else None
    return (isinstance(obs, list) and bool(obs) and all(isinstance(o, str) for o in obs)
            and isinstance(x.get("id"), str) and "timestamp" in x and "htmlPath" in x)


def _is_page(x: Any) -> bool:
    data = x.get("data") if isinstance(x, dict) else None
    return (isinstance(data, list) and isinstance(x.get("meta"), dict) and bool(data)
            and (_is_observation(data[0]) or _is_trace(data[0]) or _is_trace_summary(data[0])))


def sniff(record: Any) -> bool:
    first = record[0] if isinstance(record, list) and record else record
    return (_is_observation(first) or _is_trace(first) or _is_wrapped(first) or _is_trace_summary(first)
            or _is_page(first))


# ---- collecting observations by trace ------------------------------------------------------------------


@dataclass
class _Group:
    head: dict[str, Any] = field(default_factory=dict)
    where: Location | None = None
    obs: list[Observation] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    """Observation ids read: an observation exported twice (in its trace and on its own line) counts once."""


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    groups: dict[str, _Group] = {}
    bad: dict[str, TraceFormatError] = {}
    for where, record in good_records(records, on_error):
        items = ([(where.child(f"[{i}]"), item) for i, item in enumerate(record)]
                 if isinstance(record, list) else [(where, record)])
        for at, item in items:
            _collect(at, item, groups, bad, on_error)
    traces = []
    for trace_id, group in groups.items():
        if trace_id in bad:
            on_error(bad.pop(trace_id))
            continue
        try:
            traces.append(_trace(trace_id, group))
        except TraceFormatError as e:
            on_error(e)
        except SchemaError as e:
            on_error(schema_error(group.where or group.obs[0].where, e))
    for e in bad.values():
        on_error(e)
    _share_times(traces)
    yield from traces


def _share_times(traces: list[Trace]) -> None:
    """A session's later trace repeats the earlier turns (its first input) without their observations:
    those calls (by id, tool and arguments) and assistant messages (by text and the ids of their calls)
    take the times, tokens and observation ids the session's other traces gave them, so that folding
    sees one run and the later trace it keeps lost nothing."""
    seen: dict[tuple, Message | ToolCall] = {}
    keyed = []
    for trace in traces:
        for i, e in enumerate(trace.events):
            if isinstance(e, ToolCall):
                keyed.append((e, (trace.group, "call", e.call_id, *e.key)))
            elif e.role == "assistant":
                ids = [c.call_id for c in trace.events[i + 1:] if isinstance(c, ToolCall) and c.turn == e.turn
                       and e.turn is not None]
                keyed.append((e, (trace.group, "message", e.text, *ids)))
    for event, key in keyed:
        if event.t_start is not None or event.t_end is not None:
            seen.setdefault(key, event)
    for event, key in keyed:
        source = seen.get(key)
        if source is not None and event.t_start is None and event.t_end is None:
            event.t_start, event.t_end = source.t_start, source.t_end
            if isinstance(event, Message) and event.tokens is None:
                event.tokens = source.tokens
            if "observation_id" in source.extra:
                event.extra.setdefault("observation_id", source.extra["observation_id"])


def _collect(at: Location, item: Any, groups: dict[str, _Group], bad: dict[str, TraceFormatError],
             on_error: OnError) -> None:
    """One record's traces and observations into `groups`; a bad one marks its trace bad (or, when it
    names no trace, goes to `on_error`)."""
    if _is_page(item):
        for i, x in enumerate(item["data"]):
            _collect_one(at, x, f"data[{i}]", groups, bad, on_error)
    else:
        _collect_one(at, item, "", groups, bad, on_error)


def _collect_one(at: Location, x: Any, path: str, groups: dict[str, _Group],
                 bad: dict[str, TraceFormatError], on_error: OnError) -> None:
    def sub(name: str) -> str:
        return f"{path}.{name}" if path else name

    if isinstance(x, dict) and isinstance(x.get("trace"), dict) and "observations" in x:
        _collect_wrapped(at, x, path, groups, bad, on_error)
        return
    if _is_trace_summary(x):
        on_error(TraceFormatError(at, "a trace from GET /api/public/traces lists observation ids only; "
                                  "export each trace with GET /api/public/traces/{id} (observations inline) "
                                  "or its observations", field=sub("observations")))
        return
    if isinstance(x, dict) and isinstance(x.get("observations"), list):
        trace_id = x.get("id")
        try:
            trace_id = expect(trace_id, str, at, sub("id"))
            group = groups.setdefault(trace_id, _Group())
            group.head, group.where = x, at
            for j, o in enumerate(x["observations"]):
                _add(at, o, sub(f"observations[{j}]"), trace_id, group)
        except TraceFormatError as e:
            if isinstance(trace_id, str):
                bad.setdefault(trace_id, e)
            else:
                on_error(e)
        return
    trace_id = _get(x, "traceId") if isinstance(x, dict) else None
    try:
        if not isinstance(x, dict) or x.get("type") not in OBSERVATION_TYPES:
            raise TraceFormatError(at, "expected a Langfuse observation (type one of "
                                   f"{', '.join(OBSERVATION_TYPES)}) or a trace with observations",
                                   field=sub("type") if isinstance(x, dict) else path or None)
        trace_id = expect(trace_id, str, at, sub("traceId"))
        _add(at, x, path, trace_id, groups.setdefault(trace_id, _Group()))
    except TraceFormatError as e:
        if isinstance(trace_id, str):
            bad.setdefault(trace_id, e)
        else:
            on_error(e)


def _collect_wrapped(at: Location, x: dict, path: str, groups: dict[str, _Group],
                     bad: dict[str, TraceFormatError], on_error: OnError) -> None:
    """{"trace", "observations"}: the full observations beside the trace; those the trace lists inline
    (summaries without input and output) count only where no full one has their id."""
    def sub(name: str) -> str:
        return f"{path}.{name}" if path else name

    head = x["trace"]
    trace_id = head.get("id")
    try:
        trace_id = expect(trace_id, str, at, sub("trace.id"))
        group = groups.setdefault(trace_id, _Group())
        group.head, group.where = {k: v for k, v in head.items() if k != "observations"}, at
        for j, o in enumerate(expect(x["observations"], list, at, sub("observations"))):
            _add(at, o, sub(f"observations[{j}]"), trace_id, group)
        inline = head.get("observations")
        for j, o in enumerate(inline if isinstance(inline, list) else []):
            if not (isinstance(o, dict) and o.get("id") in group.ids):
                _add(at, o, sub(f"trace.observations[{j}]"), trace_id, group)
    except TraceFormatError as e:
        if isinstance(trace_id, str):
            bad.setdefault(trace_id, e)
        else:
            on_error(e)


def _add(at: Location, o: Any, path: str, trace_id: str, group: _Group) -> None:
    def sub(name: str) -> str:
        return f"{path}.{name}" if path else name

    o = expect(o, dict, at, path or "record")
    expect(o.get("id"), str, at, sub("id"))
    kind = expect(o.get("type"), str, at, sub("type"))
    if kind not in OBSERVATION_TYPES:
        raise TraceFormatError(at, f"unknown observation type {kind!r}", field=sub("type"))
    for key in ("parentObservationId", "name", "level", "statusMessage"):
        if _get(o, key) is not None:
            expect(_get(o, key), str, at, sub(key))
    own = _get(o, "traceId")
    if own is not None and own != trace_id:
        raise TraceFormatError(at, f"observation of trace {own!r} inside trace {trace_id!r}",
                               field=sub("traceId"))
    if isinstance(_get(o, "sessionId"), str) and "sessionId" not in group.head:
        group.head = {**group.head, "sessionId": _get(o, "sessionId")}
    start = _time(_get(o, "startTime"), at, sub("startTime"))
    end = _time(_get(o, "endTime"), at, sub("endTime"))
    if o["id"] not in group.ids:
        group.ids.add(o["id"])
        group.obs.append(Observation(at, path, o, start, end, len(group.obs)))


_FRACTION = re.compile(r"(\.\d{6})\d+")


def _time(value: Any, at: Location, name: str) -> float | None:
    """An ISO 8601 time (the API's datetime) as seconds since the epoch; no zone means UTC."""
    if value is None:
        return None
    text = _FRACTION.sub(r"\1", expect(value, str, at, name).strip())
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise TraceFormatError(at, f"not an ISO 8601 time: {value!r}", field=name) from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


# ---- one trace ----------------------------------------------------------------------------------------


def _trace(trace_id: str, group: _Group) -> Trace:
    obs = _ordered(group.obs)
    events, tools, used, notes = build_events(obs, group.head.get("output"))
    head = group.head
    metadata: dict[str, Any] = {k: v for k, v in head.items()
                                if k not in _TRACE_SKIP and v is not None and v != [] and v != {}}
    models = [_get(o.d, "model") or _get(o.d, "providedModelName") for o in obs if o.type == "GENERATION"]
    model = next((m for m in models if isinstance(m, str) and m), None)
    if model:
        metadata["agent_model"] = model
    metadata.update(notes)
    others = [{k: v for k, v in (("id", o.d["id"]), ("type", o.type), ("name", o.d.get("name")),
                                 ("level", o.d.get("level") if o.d.get("level") in ("WARNING", "ERROR")
                                  else None), ("statusMessage", _get(o.d, "statusMessage")
                                               if o.d.get("level") in ("WARNING", "ERROR") else None))
               if v is not None}
              for o in obs if o.type != "GENERATION" and o.d["id"] not in used]
    if others:
        metadata["observations"] = others
    session = head.get("sessionId") or head.get("session_id")
    trace = Trace(trace_id=trace_id, group=str(session) if session else trace_id, source=SOURCE,
                  metadata=metadata, tools=tools, events=events)
    trace.validate()
    return trace


def _ordered(obs: list[Observation]) -> list[Observation]:
    """By start time, parents before their children at equal times, then as read."""
    parent = {o.d["id"]: _get(o.d, "parentObservationId") for o in obs}

    def depth(o: Observation) -> int:
        n, p, seen = 0, parent.get(o.d["id"]), set()
        while p in parent and p not in seen:
            seen.add(p)
            n, p = n + 1, parent[p]
        return n

    return sorted(obs, key=lambda o: (o.start is None, o.start or 0.0, depth(o), o.order))


FORMAT = TraceFormat(
    "langfuse",
    "Langfuse exports: traces from GET /api/public/traces/{id} (observations inline), observation pages "
    "({data, meta}), or observations one per JSON line (UI export); one trace per Langfuse trace",
    sniff,
    read,
)
