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
from toolcast.data.formats.base import expect, schema_error
from toolcast.data.formats.chat import chat_dialect, output_text
from toolcast.data.schema import Event, Message, SchemaError, ToolCall, ToolSpec

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
Item = tuple[Location, str, dict]
"""A conversation message: where its record is, its field path there, the message (normalized)."""


def get(d: dict, key: str) -> Any:
    """A field by its camelCase API name, or by its snake_case name (SDK model dumps, blob exports)."""
    value = d.get(key)
    return d.get(_SNAKE.sub("_", key).lower()) if value is None else value


def parse_json(value: Any) -> Any:
    """The v2 observations API returns input/output as raw strings: JSON text is parsed."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    return value


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


def tool_specs(value: Any, at: Location, name: str) -> list[ToolSpec]:
    """Tools in OpenAI ({"type": "function", "function"}), function or Anthropic (input_schema) form."""
    out = []
    for i, tool in enumerate(expect(parse_json(value), list, at, name)):
        path = f"{name}[{i}]"
        tool = expect(parse_json(tool), dict, at, path)
        if isinstance(tool.get("function"), dict):
            tool, path = tool["function"], f"{path}.function"
        key = "input_schema" if "input_schema" in tool else "parameters"
        d = {"name": tool.get("name"), "description": tool.get("description"), "parameters": tool.get(key)}
        try:
            out.append(ToolSpec.from_dict(d, f"{path}."))
        except SchemaError as e:
            raise schema_error(at, SchemaError(e.field.replace(".parameters", f".{key}"),
                                               str(e).split(": ", 1)[-1])) from None
    return out


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


def tool_output(value: Any) -> tuple[str | None, bool]:
    """A tool observation's output as text, and whether it says the tool failed (a LangChain ToolMessage
    dump with status "error"). Text stays as logged (JSON text too: the v2 API returns outputs as text)."""
    parsed = parse_json(value)
    if isinstance(parsed, dict) and "content" in parsed and (
            "tool_call_id" in parsed or parsed.get("type") == "tool"):
        content = parsed["content"]
        failed = parsed.get("status") == "error"
        return (content if isinstance(content, str) else output_text(content)), failed
    return output_text(value), False


def _call_id(o: Observation) -> str | None:
    """The call id a tool observation names: in its metadata, or in a ToolMessage output."""
    for holder in (parse_json(o.d.get("metadata")), parse_json(o.d.get("output"))):
        if isinstance(holder, dict):
            value = holder.get("tool_call_id") or holder.get("toolCallId")
            if isinstance(value, str) and value:
                return value
    return None


# ---- messages -----------------------------------------------------------------------------------------


def _normalize(m: Any, at: Location, path: str, gen_id: str) -> dict:
    """A message with LangChain tool calls ({name, args, id}) in OpenAI form; calls without an id (older
    SDKs' streamed outputs) get `<generation id>:<path>:<k>`."""
    m = expect(m, dict, at, path)
    kwargs = m.get("additional_kwargs")
    if isinstance(kwargs, dict) and not m.get("tool_calls") and not m.get("function_call"):
        # older LangChain handlers kept the provider's tool calls in additional_kwargs only
        m = {**m, **{k: kwargs[k] for k in ("tool_calls", "function_call") if kwargs.get(k)}}
    calls = m.get("tool_calls")
    if not isinstance(calls, list) or not calls:
        return m
    out = []
    for k, tc in enumerate(calls):
        tc = expect(tc, dict, at, f"{path}.tool_calls[{k}]")
        if "function" not in tc and "name" in tc:
            tc = {"id": tc.get("id"), "type": "function",
                  "function": {"name": tc["name"], "arguments": tc.get("args", tc.get("arguments"))}}
        if not tc.get("id"):
            tc = {**tc, "id": f"{gen_id}:{path}:{k}"}
        out.append(tc)
    return {**m, "tool_calls": out}


def _input(g: Observation, tools: dict[str, ToolSpec]) -> list[Item]:
    """A generation's input as messages (tools it lists go to `tools`)."""
    value, base = parse_json(get(g.d, "input")), g.field("input")
    for key in ("metadata", "modelParameters"):
        holder = parse_json(get(g.d, key))
        if isinstance(holder, dict) and holder.get("tools") is not None:
            _add_tools(tools, tool_specs(holder["tools"], g.where, g.field(f"{key}.tools")))
    head: list[Item] = []
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        for key in ("tools", "functions"):
            if value.get(key) is not None:
                _add_tools(tools, tool_specs(value[key], g.where, f"{base}.{key}"))
        if value.get("system") is not None:
            head.append((g.where, f"{base}.system", {"role": "system", "content": value["system"]}))
        value, base = value["messages"], f"{base}.messages"
    elif value is None:
        return []
    elif not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value)):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return [(g.where, base, {"role": "user", "content": text, "langfuse_input": True})]
    out = head
    for j, m in enumerate(value):
        path = f"{base}[{j}]"
        if isinstance(m, dict) and m.get("role") == "tool" and "tool_call_id" not in m \
                and isinstance(m.get("content"), dict):  # LangChain appends the bound tools so
            _add_tools(tools, tool_specs([m["content"]], g.where, f"{path}.content"))
            continue
        out.append((g.where, path, _normalize(m, g.where, path, g.id)))
    return out


def _add_tools(tools: dict[str, ToolSpec], specs: list[ToolSpec]) -> None:
    for spec in specs:
        tools.setdefault(spec.name, spec)


def _output(g: Observation) -> Item | None:
    """A generation's output as the assistant message, or None when it has none (failed, or not logged)."""
    value, path = parse_json(get(g.d, "output")), g.field("output")
    if value is None:
        return None
    m: dict[str, Any]
    if isinstance(value, str):
        m = {"role": "assistant", "content": value}
    elif isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        choice = expect(value["choices"][0], dict, g.where, f"{path}.choices[0]")
        m, path = dict(expect(choice.get("message"), dict, g.where, f"{path}.choices[0].message")), \
            f"{path}.choices[0].message"
    elif isinstance(value, dict) and ("role" in value or any(k in value for k in openai._MESSAGE_KEYS)):
        m = dict(value)
    elif isinstance(value, dict) and "name" in value and "arguments" in value:  # a bare function_call
        m = {"role": "assistant", "content": None, "function_call": value}
    elif isinstance(value, list) and value and all(isinstance(x, dict) and "role" in x for x in value):
        m = {**value[0], "other_choices": value[1:]} if len(value) > 1 else dict(value[0])
    elif isinstance(value, list) and value and all(
            isinstance(x, dict) and ("function" in x or ("name" in x and ("args" in x or "arguments" in x)))
            for x in value):  # bare tool calls (streamed outputs of older SDKs)
        m = {"role": "assistant", "content": None, "tool_calls": value}
    elif isinstance(value, list) and value and all(isinstance(x, dict) and "type" in x for x in value):
        m = {"role": "assistant", "content": value}  # content blocks
    else:
        m = {"role": "assistant", "content": json.dumps(value, ensure_ascii=False), "output_json": True}
    m["role"] = "assistant"
    return g.where, path, _normalize(m, g.where, path, g.id)


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


def build_events(obs: list[Observation]) -> tuple[list[Event], list[ToolSpec], set[str], dict[str, Any]]:
    """(events, tools, ids of the observations used, notes for metadata) of observations in order."""
    gens = [o for o in obs if o.type == "GENERATION"]
    tools: dict[str, ToolSpec] = {}
    items: list[Item] = []
    outputs: dict[int, Observation] = {}
    notes: dict[str, Any] = {}
    previous: list[Item] = []
    for k, g in enumerate(gens):
        full = _input(g, tools)
        new = full
        if k:
            last = max((i for i, (_, _, m) in enumerate(full) if m.get("role") == "assistant"), default=None)
            if last is None and [m for _, _, m in full[:len(previous)]] == [m for _, _, m in previous]:
                new = full[len(previous):]  # extends the previous input (calls without the answers)
            else:
                new = [x for x in full[(last or -1) + 1:] if x[2].get("role") not in ("system", "developer")]
        previous = full
        items.extend(new)
        out = _output(g)
        if out is None:
            failed = {"id": g.id, "level": g.d.get("level"), "statusMessage": get(g.d, "statusMessage")}
            notes.setdefault("failed_generations", []).append({k: v for k, v in failed.items() if v})
            continue
        outputs[len(items)] = g
        items.append(out)
    events = read_messages(items) if items else []

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
    return events, list(tools.values()), used, notes


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
    by_id = {}
    for o in tools:
        by_id.setdefault(_call_id(o), o)
    for call in (e for e in events if isinstance(e, ToolCall)):
        o = by_id.get(call.extra.get("source_call_id", call.call_id))
        if o is not None and o.id not in used:
            _fill(call, o)
            used.add(o.id)
    for k, (g, index) in enumerate(stamped):
        after = stamped[k + 1][0].start if k + 1 < len(stamped) else None

        def within(o: Observation, g: Observation = g, after: float | None = after) -> bool:
            return o.id not in used and (o.start is None or ((g.start is None or o.start >= g.start) and (
                after is None or o.start < after)))

        for call in _turn_calls(events, index):
            if "observation_id" in call.extra:
                continue
            o = _best(call, [t for t in tools if within(t) and t.d.get("name") == call.tool
                             and _call_id(t) is None]) or _best(
                call, [t for t in named if within(t) and t.d.get("name") == call.tool])
            if o is not None:
                _fill(call, o)
                used.add(o.id)
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
        name = o.d.get("name")
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
