"""The events of one Langfuse trace from its ordered observations (the rules: langfuse.py's docstring).

Kept apart from the record level (langfuse.py) as gemini_contents.py and langchain_messages.py are: the
conversation is rebuilt from GENERATION inputs/outputs and read by the OpenAI / Anthropic importers,
then tool observations give the calls their times, errors and outputs.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats import anthropic, openai
from toolcast.data.formats.chat import chat_dialect, output_text
from toolcast.data.formats.langfuse_generations import (
    attributes,
    conversation_generations,
    final_answer,
    generation_input,
    generation_output,
    late_results,
    resolve_results,
)
from toolcast.data.formats.langfuse_messages import Item, get, parse_json
from toolcast.data.schema import Event, Message, ToolCall, ToolSpec

_TOOL_PREFIXES = ("running tool: ", "execute_tool ", "tool.")  # pydantic-ai's, Google ADK's, Koog's spans
_CALL_ID_KEYS = ("gen_ai.tool.call.id", "ai.toolCall.id")  # OTel GenAI; Vercel AI SDK
_TOOL_NAME_KEYS = ("gen_ai.tool.name", "ai.toolCall.name", "tool.name")  # OTel GenAI; Vercel; OpenInference

@dataclass
class Observation:
    where: Location
    path: str
    """Field path of the observation inside its record ("" for a bare observation)."""
    d: dict
    start: float | None
    end: float | None
    order: int

    def field(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    @property
    def type(self) -> str:
        return self.d["type"]

    @property
    def id(self) -> str:
        return self.d["id"]


# ---- tools --------------------------------------------------------------------------------------------


def tool_args(value: Any) -> dict[str, Any]:
    """A tool observation's input as call arguments: an object (@observe's {"args": [], "kwargs"}: the
    kwargs), JSON text or a Python dict repr (LangChain passes `str(tool_input)`); else {"input": value}."""
    value = parse_json(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, RecursionError, MemoryError, TypeError):
            pass
    if isinstance(value, dict) and set(value) == {"args", "kwargs"} and not value["args"] \
            and isinstance(value["kwargs"], dict):
        return value["kwargs"]  # @observe's capture of a call made with keyword arguments only
    if isinstance(value, dict):
        return value
    return {} if value is None or value == "" else {"input": value}


def _same_args(call: ToolCall, o: Observation) -> bool:
    """Whether a tool observation's input is the call's arguments (the Claude Agent SDK wraps them in
    {"input": ...})."""
    args = tool_args(get(o.d, "input"))
    return call.args in (args, args.get("input"))


def tool_output(value: Any) -> tuple[str | None, bool]:
    """A tool observation's output as text, and whether it says the tool failed (a LangChain ToolMessage
    dump with status "error", an MCP result with isError). Text stays as logged (JSON text too: the v2
    API returns outputs as text); an MCP result {"content": [text parts]} gives its text."""
    parsed = parse_json(value)
    if isinstance(parsed, dict) and "content" in parsed and (
            "tool_call_id" in parsed or parsed.get("type") == "tool"):
        content = parsed["content"]
        failed = parsed.get("status") == "error"
        return (content if isinstance(content, str) else output_text(content)), failed
    if isinstance(parsed, dict) and set(parsed) <= {"content", "isError", "structuredContent", "_meta"} \
            and isinstance(parsed.get("content"), list) and parsed["content"] and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
            for p in parsed["content"]):
        return "\n".join(p["text"] for p in parsed["content"]), parsed.get("isError") is True
    return output_text(value), False


def _call_id(o: Observation) -> str | None:
    """The call id a tool observation names: in its metadata (or the span attributes there), or in a
    ToolMessage output."""
    for holder in (parse_json(o.d.get("metadata")), attributes(o.d), parse_json(o.d.get("output"))):
        if isinstance(holder, dict):
            value = next((holder[k] for k in ("tool_call_id", "toolCallId", *_CALL_ID_KEYS) if holder.get(k)),
                         None)
            if isinstance(value, str) and value:
                return value
    return None


def tool_name(o: Observation) -> str | None:
    """The tool an observation ran: the span attribute naming it, else its name without a framework's
    prefix ("running tool: X", "execute_tool X")."""
    attrs = attributes(o.d)
    name = next((attrs[k] for k in _TOOL_NAME_KEYS if isinstance(attrs.get(k), str) and attrs[k]), None)
    name = name or o.d.get("name")
    if isinstance(name, str):
        for prefix in _TOOL_PREFIXES:
            name = name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else name
    return name


# ---- messages -----------------------------------------------------------------------------------------


def read_messages(items: list[Item]) -> list[Event]:
    """Events of the items through the OpenAI or Anthropic importer; errors name each item's own
    location and field path."""
    messages = [m for _, _, m in items]
    dialect = chat_dialect({"messages": [m for m in messages if m.get("role") != "system"] or messages})
    try:
        if dialect == "anthropic":
            return anthropic._events(items[0][0], [(f"[{i}]", m) for i, m in enumerate(messages)])
        return openai._events(items[0][0], [(f"[{i}]", m) for i, m in enumerate(messages)])
    except TraceFormatError as e:
        match = re.match(r"\[(\d+)\]", e.field or "")
        if match is None:
            raise
        where, path, _ = items[int(match.group(1))]
        raise TraceFormatError(where, e.reason, field=path + (e.field or "")[match.end():]) from None


# ---- the trace's events -------------------------------------------------------------------------------


def build_events(obs: list[Observation], final: Any = None
                 ) -> tuple[list[Event], list[ToolSpec], set[str], dict[str, Any]]:
    """(events, tools, ids of the observations used, notes for metadata) of observations in order;
    `final` is the trace's output (the answer when the last generation logged none)."""
    notes: dict[str, Any] = {}
    gens = conversation_generations(obs, notes)
    tools: list[ToolSpec] = []
    items: list[Item] = []
    outputs: dict[int, Observation] = {}
    previous: list[dict] = []
    answered = True  # whether the previous generation logged its output
    for k, g in enumerate(gens):
        unread: dict[str, Any] = {}
        full = resolve_results(generation_input(g, tools, not items, unread), skip=f"{g.id}:")
        new = full
        if k:
            shown = [x for x in full if x[2].get("role") not in ("system", "developer")]
            last = max((i for i, (_, _, m) in enumerate(shown) if m.get("role") == "assistant"), default=None)
            extends = [m for _, _, m in shown[:len(previous)]] == previous
            if extends and (last is None or not answered):
                new = shown[len(previous):]  # what was said since: with the unlogged answer (BeeAI)
                if not answered and new and new[0][2].get("role") == "assistant":
                    outputs[len(items)] = gens[k - 1]
            else:  # from the answer on, with results of calls still waiting that it already had (Koog)
                cut = (last if last is not None else -1) + 1
                new = [*late_results(items, shown[:cut]), *shown[cut:]]
            previous = [m for _, _, m in shown]
        else:
            previous = [m for _, _, m in full if m.get("role") not in ("system", "developer")]
        items.extend(new)
        out = generation_output(g)
        if out is None and k == len(gens) - 1 and g.d.get("level") != "ERROR" and final_answer(final):
            out = (g.where, "trace.output", {"role": "assistant", "content": final_answer(final),
                                             "from_trace_output": True})
        answered = out is not None
        if out is not None and unread:
            out[2]["langfuse_input"] = unread[g.id]  # kept on its answer, read as extra
        if out is None:
            failed = {"id": g.id, "level": g.d.get("level"), "statusMessage": get(g.d, "statusMessage"),
                      "input": unread.get(g.id)}
            notes.setdefault("failed_generations", []).append({k: v for k, v in failed.items() if v})
            continue
        outputs[len(items)] = g
        items.append(out)
    events = read_messages(resolve_results(items)) if items else []

    stamped: list[tuple[Observation, int]] = []  # (generation, index of its message in events)
    assistants = [i for i, e in enumerate(events) if isinstance(e, Message) and e.role == "assistant"]
    assistant_items = [i for i, (_, _, m) in enumerate(items) if m.get("role") == "assistant"]
    for item, index in zip(assistant_items, assistants, strict=False):
        if item in outputs:
            _stamp(events[index], outputs[item])
            stamped.append((outputs[item], index))
    used = _match_tools(obs, events, stamped)
    _standalone(obs, events, stamped, used)
    _renumber(events)
    specs: dict[str, ToolSpec] = {}
    for spec in tools:
        specs.setdefault(spec.name, spec)
    return events, list(specs.values()), used, notes


def _stamp(message: Message, g: Observation) -> None:
    message.t_start, message.t_end = g.start, g.end
    for key in ("usageDetails", "usage"):
        usage = get(g.d, key)
        tokens = usage.get("output", usage.get("completion_tokens")) if isinstance(usage, dict) else None
        if message.tokens is None and isinstance(tokens, int) and not isinstance(tokens, bool):
            message.tokens = tokens
    message.extra["observation_id"] = g.id
    model = get(g.d, "model") or get(g.d, "providedModelName")
    if isinstance(model, str) and model:
        message.extra["model"] = model
    if g.d.get("level") in ("WARNING", "ERROR"):
        message.extra["level"] = g.d["level"]
        message.extra["status_message"] = get(g.d, "statusMessage")


def _turn_calls(events: list[Event], index: int) -> list[ToolCall]:
    turn, calls = events[index].turn, []
    for e in events[index + 1:]:
        if not (isinstance(e, ToolCall) and turn is not None and e.turn == turn):
            break
        calls.append(e)
    return calls


def _match_tools(obs: list[Observation], events: list[Event],
                 stamped: list[tuple[Observation, int]]) -> set[str]:
    """Fill requested calls from the tool observations that ran them; the ids of those used."""
    used: set[str] = set()
    tools = [o for o in obs if o.type == "TOOL"]
    named = [o for o in obs if o.type not in ("GENERATION", "TOOL", "EVENT")]
    calls = [e for e in events if isinstance(e, ToolCall)]
    by_id: dict[str | None, Observation] = {}
    for o in tools:
        by_id.setdefault(_call_id(o), o)
    for call in calls:
        o = by_id.get(call.extra.get("source_call_id", call.call_id))
        if o is not None and o.id not in used:
            _fill(call, o)
            used.add(o.id)
    known = {c.extra.get("source_call_id", c.call_id) for c in calls}
    for k, (g, index) in enumerate(stamped):
        after = stamped[k + 1][0].start if k + 1 < len(stamped) else None

        def within(o: Observation, g: Observation = g, after: float | None = after) -> bool:
            return o.id not in used and (o.start is None or ((g.start is None or o.start >= g.start) and (
                after is None or o.start < after)))

        for call in _turn_calls(events, index):
            if "observation_id" in call.extra:
                continue
            o = _best(call, [t for t in tools if within(t) and tool_name(t) == call.tool
                             and _call_id(t) not in known]) or _best(
                call, [t for t in named if within(t) and tool_name(t) == call.tool])
            if o is not None:
                _fill(call, o)
                used.add(o.id)
    # a tool that ran after a later generation had started (the Claude Agent SDK streams its calls): the
    # earlier waiting call of its name and arguments
    for o in (t for t in tools if t.id not in used and _call_id(t) not in known):
        call = next((c for c in calls if "observation_id" not in c.extra and c.tool == tool_name(o)
                     and _same_args(c, o)), None)
        if call is not None:
            _fill(call, o)
            used.add(o.id)
    # a call logged without an id (Gemini) takes the one its tool observation names (ADK: adk-...)
    gen_ids, by_obs = {o.id for o in obs if o.type == "GENERATION"}, {o.id: o for o in tools}
    taken = {c.call_id for c in calls}
    for call in calls:
        o = by_obs.get(call.extra.get("observation_id"))
        cid = _call_id(o) if o is not None else None
        if cid and cid not in taken and call.call_id.split(":", 1)[0] in gen_ids:
            call.call_id = cid
            taken.add(cid)
    return used


def _best(call: ToolCall, candidates: list[Observation]) -> Observation | None:
    """The first candidate whose input mentions every argument value of the call (parallel calls of
    one tool run at once: their order says nothing), else the first."""
    def mentions(o: Observation) -> bool:
        text = json.dumps(parse_json(get(o.d, "input")), ensure_ascii=False, default=str)
        return all(str(v) in text or json.dumps(v, ensure_ascii=False, default=str) in text
                   for v in call.args.values())

    return next((o for o in candidates if mentions(o)), candidates[0] if candidates else None)


def _fill(call: ToolCall, o: Observation) -> None:
    call.t_start, call.t_end = o.start, o.end
    call.extra["observation_id"] = o.id
    if o.type != "TOOL":
        call.extra["observation_type"] = o.type
    text, failed = tool_output(get(o.d, "output"))
    status = get(o.d, "statusMessage")
    if status:
        call.extra["status_message"] = status
    error = o.d.get("level") == "ERROR" or failed
    if call.output is None:
        call.output = text if text is not None else (status if error else None)
    call.error = call.error or error


def _standalone(obs: list[Observation], events: list[Event], stamped: list[tuple[Observation, int]],
                used: set[str]) -> None:
    """TOOL observations no requested call matched: calls of their own after the generation they follow;
    those that overlap in time share a turn."""
    rest = [o for o in obs if o.type == "TOOL" and o.id not in used]
    if not rest:
        return
    ids = {e.call_id for e in events if isinstance(e, ToolCall)}
    inserts: dict[int, list[ToolCall]] = {}
    first = stamped[0][1] if stamped else len(events)
    turn, last, last_slot = 0, None, None
    for o in rest:
        owner = [index for g, index in stamped if None not in (g.start, o.start) and g.start <= o.start]
        slot = owner[-1] + 1 + len(_turn_calls(events, owner[-1])) if owner else first
        name = tool_name(o)
        if not isinstance(name, str) or not name:
            raise TraceFormatError(o.where, "is missing (a TOOL observation names its tool)",
                                   field=o.field("name"))
        call_id, n = _call_id(o) or o.id, 2
        while call_id in ids:
            call_id, n = f"{_call_id(o) or o.id}#{n}", n + 1
        ids.add(call_id)
        overlaps = (slot == last_slot and last is not None and None not in (o.start, last.end)
                    and o.start < last.end)
        turn -= 0 if overlaps else 1
        call = ToolCall(call_id=call_id, turn=turn, tool=name, args=tool_args(get(o.d, "input")))
        _fill(call, o)
        inserts.setdefault(slot, []).append(call)
        used.add(o.id)
        last, last_slot = o, slot
    for slot in sorted(inserts, reverse=True):
        events[slot:slot] = inserts[slot]


def _renumber(events: list[Event]) -> None:
    """Turns in order of appearance, 0, 1, ... (standalone tool turns were numbered -1, -2, ...)."""
    mapping: dict[int, int] = {}
    for e in events:
        if e.turn is not None:
            e.turn = mapping.setdefault(e.turn, len(mapping))
