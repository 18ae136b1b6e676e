"""The canonical trace: what every importer produces and every other part reads.

One trace per JSONL line (see docs/architecture.md, "The canonical trace"):

    {"trace_id", "group", "source", "metadata", "tools": [ToolSpec], "events": [Message | ToolCall]}

`turn` groups the calls that one assistant message issued together (parallel calls); the assistant
message itself is a `Message` event with the same `turn` placed right before its calls (its text may be
empty). Timings are seconds since the Unix epoch, `None` where the log has none.

Validation lives in the `from_dict` constructors: they raise `SchemaError` naming the field path, and
the importers add file and line. Only numpy-free, torch-free stdlib here: the runtime imports it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

RESPOND = "<respond>"
"""Label of a decision point where the LLM answers in text instead of calling a tool."""

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")


class SchemaError(ValueError):
    """A record does not fit the canonical schema. `field` is a dotted path inside the record."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"field '{field}': {message}")


MAX_NESTING = 100
"""Arrays and objects nested deeper than this in a log record, a call's arguments or a request are an error:
every reader after the importer may walk them recursively."""


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_problem(value: Any, path: str = "", max_depth: int = MAX_NESTING) -> tuple[str, str] | None:
    """(field path, reason) of the first thing in parsed JSON that no reader should meet, else None:
    nesting deeper than `max_depth`, or a lone surrogate (a `\\ud800` escape: valid JSON grammar, but
    no Unicode text, so it cannot be written out as UTF-8) in a string or a key. Iterative: any depth."""
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        v, where, depth = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return where or "value", "a lone surrogate in a string (not Unicode text)"
        elif isinstance(v, (dict, list)):
            if depth >= max_depth:
                return where or "value", f"nested deeper than {max_depth} levels"
            if isinstance(v, dict):
                for k, item in v.items():
                    key = str(k)
                    if _SURROGATE.search(key):
                        return f"{where}.{key!a}".lstrip("."), "a lone surrogate in a key (not Unicode text)"
                    stack.append((item, f"{where}.{key}" if where else key, depth + 1))
            else:
                stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(v))
    return None


def canonical_args(args: Any) -> str:
    """The one string two calls' arguments must share to count as the same call."""
    kind = type(args)
    if kind is str:  # what json.dumps writes for a str, without building an encoder per value (the
        return _JSON_STR(args)  # extractors ask for every value of every event they read)
    if kind is int:
        return int.__repr__(args)
    return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_JSON_STR = json.encoder.encode_basestring
"""json's own string encoder (C where available): `json.dumps(s, ensure_ascii=False)` for a str."""


# ---- small typed readers: each names the field it rejects ------------------------------------------


def _get(d: dict, key: str, path: str, types: type | tuple[type, ...], *, required: bool = True,
         default: Any = None, nullable: bool = False) -> Any:
    if key not in d:
        if required:
            raise SchemaError(f"{path}{key}", "is missing")
        return default
    value = d[key]
    if value is None and nullable:
        return None
    # bool is an int subclass; never accept it where a number is meant.
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise SchemaError(f"{path}{key}", f"expected {_type_name(types)}, got bool")
    if not isinstance(value, types):
        raise SchemaError(f"{path}{key}", f"expected {_type_name(types)}, got {type(value).__name__}")
    return value


def _type_name(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def _time(d: dict, key: str, path: str) -> float | None:
    value = _get(d, key, path, (int, float), required=False, nullable=True)
    return None if value is None else float(value)


# ---- the records -----------------------------------------------------------------------------------


@dataclass
class ToolSpec:
    """A tool the agent could call: name, description, JSON-schema parameters, MCP-style annotations."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters,
                "annotations": self.annotations}

    @classmethod
    def from_dict(cls, d: Any, path: str = "") -> ToolSpec:
        if not isinstance(d, dict):
            raise SchemaError(path.rstrip(".") or "tool", f"expected object, got {type(d).__name__}")
        return cls(
            name=_get(d, "name", path, str),
            description=_get(d, "description", path, str, required=False, default="", nullable=True) or "",
            parameters=_get(d, "parameters", path, dict, required=False, default=None, nullable=True) or {},
            annotations=_get(d, "annotations", path, dict, required=False, default=None, nullable=True) or {},
        )

    @property
    def param_names(self) -> list[str]:
        props = self.parameters.get("properties") if isinstance(self.parameters, dict) else None
        return list(props) if isinstance(props, dict) else []


@dataclass
class Message:
    """A text message. Assistant messages that issued calls carry the `turn` of those calls."""

    role: str
    text: str = ""
    t_start: float | None = None
    t_end: float | None = None
    tokens: int | None = None
    turn: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    type: Literal["message"] = "message"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "message", "role": self.role, "text": self.text,
                             "t_start": self.t_start, "t_end": self.t_end, "tokens": self.tokens}
        if self.turn is not None:
            d["turn"] = self.turn
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict, path: str = "") -> Message:
        role = _get(d, "role", path, str)
        if role not in ROLES:
            raise SchemaError(f"{path}role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        tokens = _get(d, "tokens", path, int, required=False, nullable=True)
        return cls(
            role=role,
            text=_get(d, "text", path, str, required=False, default="", nullable=True) or "",
            t_start=_time(d, "t_start", path),
            t_end=_time(d, "t_end", path),
            tokens=tokens,
            turn=_get(d, "turn", path, int, required=False, nullable=True),
            extra=_get(d, "extra", path, dict, required=False, default=None, nullable=True) or {},
        )


@dataclass
class ToolCall:
    """One tool call and its result. `output` is the result as text (JSON results stay JSON text)."""

    call_id: str
    turn: int
    tool: str
    args: dict[str, Any]
    output: str | None = None
    error: bool = False
    t_start: float | None = None
    t_end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    type: Literal["tool_call"] = "tool_call"

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "tool_call", "call_id": self.call_id, "turn": self.turn,
                             "tool": self.tool, "args": self.args, "output": self.output,
                             "error": self.error, "t_start": self.t_start, "t_end": self.t_end}
        if self.extra:
            d["extra"] = self.extra
        return d

    @classmethod
    def from_dict(cls, d: dict, path: str = "") -> ToolCall:
        return cls(
            call_id=_get(d, "call_id", path, str),
            turn=_get(d, "turn", path, int),
            tool=_get(d, "tool", path, str),
            args=_get(d, "args", path, dict),
            output=_get(d, "output", path, str, required=False, nullable=True),
            error=_get(d, "error", path, bool, required=False, default=False),
            t_start=_time(d, "t_start", path),
            t_end=_time(d, "t_end", path),
            extra=_get(d, "extra", path, dict, required=False, default=None, nullable=True) or {},
        )

    @property
    def key(self) -> tuple[str, str]:
        """(tool, canonical args): what a speculative result must match to be served."""
        return self.tool, canonical_args(self.args)

    def output_json(self) -> Any:
        """The output parsed as JSON, or None when it is not JSON."""
        if self.output is None:
            return None
        try:
            return json.loads(self.output)
        except (ValueError, RecursionError):
            return None


Event = Message | ToolCall


def event_from_dict(d: Any, path: str = "") -> Event:
    if not isinstance(d, dict):
        raise SchemaError(path.rstrip(".") or "event", f"expected object, got {type(d).__name__}")
    kind = _get(d, "type", path, str)
    if kind == "message":
        return Message.from_dict(d, path)
    if kind == "tool_call":
        return ToolCall.from_dict(d, path)
    raise SchemaError(f"{path}type", f"expected 'message' or 'tool_call', got {kind!r}")


@dataclass
class Context:
    """What a predictor sees at a decision point: everything that happened before the LLM started."""

    events: list[Event]
    tools: list[ToolSpec]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def calls(self) -> list[ToolCall]:
        return [e for e in self.events if isinstance(e, ToolCall)]


@dataclass
class Label:
    """What the LLM did next: the calls of its next turn (parallel calls: several), or none = respond."""

    calls: list[ToolCall]

    @property
    def is_respond(self) -> bool:
        return not self.calls

    @property
    def tools(self) -> list[str]:
        return [c.tool for c in self.calls] or [RESPOND]


@dataclass
class Trace:
    trace_id: str
    group: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)
    tools: list[ToolSpec] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    # ---- JSON ----
    def to_dict(self) -> dict[str, Any]:
        return {"trace_id": self.trace_id, "group": self.group, "source": self.source,
                "metadata": self.metadata, "tools": [t.to_dict() for t in self.tools],
                "events": [e.to_dict() for e in self.events]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: Any) -> Trace:
        if not isinstance(d, dict):
            raise SchemaError("trace", f"expected object, got {type(d).__name__}")
        tools = _get(d, "tools", "", list, required=False, default=None, nullable=True) or []
        events = _get(d, "events", "", list)
        trace = cls(
            trace_id=_get(d, "trace_id", "", str),
            group=_get(d, "group", "", str),
            source=_get(d, "source", "", str),
            metadata=_get(d, "metadata", "", dict, required=False, default=None, nullable=True) or {},
            tools=[ToolSpec.from_dict(t, f"tools[{i}].") for i, t in enumerate(tools)],
            events=[event_from_dict(e, f"events[{i}].") for i, e in enumerate(events)],
        )
        trace.validate()
        return trace

    def validate(self) -> None:
        """Cross-record checks: unique call ids; every call has a tool name (a string) and arguments (an
        object) that a reader can walk (`json_problem`), whatever the importer let through."""
        seen: set[str] = set()
        for i, e in enumerate(self.events):
            if isinstance(e, ToolCall):
                if e.call_id in seen:
                    raise SchemaError(f"events[{i}].call_id", f"duplicate call id {e.call_id!r}")
                seen.add(e.call_id)
                if not isinstance(e.tool, str) or not e.tool:
                    raise SchemaError(f"events[{i}].tool", f"a tool name must be a non-empty string, got "
                                      f"{e.tool!r}")
                if not isinstance(e.args, dict):
                    raise SchemaError(f"events[{i}].args", f"expected object, got {type(e.args).__name__}")
                problem = json_problem({"tool": e.tool, "args": e.args}, f"events[{i}]")
                if problem:
                    raise SchemaError(*problem)

    # ---- views ----
    @property
    def calls(self) -> list[ToolCall]:
        return [e for e in self.events if isinstance(e, ToolCall)]

    def decision_points(self) -> Iterator[tuple[Context, Label]]:
        """Yield (context, label) at each moment the agent's LLM starts generating.

        Those moments are:
        - before each assistant message: the LLM produced it (a text-only greeting before any user
          message or tool call is left out: harnesses script it);
        - after a user message or a finished tool turn that no assistant message follows, when the
          trace goes on (or ends on a tool result): logs such as BFCL's ground truth keep no assistant
          text, but the agent answered there.
        The label is the calls of the turn the LLM then issued (several for parallel calls), or none:
        `<respond>`. A parallel turn gives one point, after the last result of the turn before it.
        """
        yield from decision_points(self)


# ---- decision points (the rule: `Trace.decision_points`) ---------------------------------------------


def _turn_calls(events: list[Event], start: int, turn: int) -> list[ToolCall]:
    """The calls of `turn` that follow position `start` back to back."""
    calls: list[ToolCall] = []
    for e in events[start:]:
        if isinstance(e, ToolCall) and e.turn == turn:
            calls.append(e)
        elif calls or not (isinstance(e, Message) and e.role == "assistant" and e.turn == turn):
            break
    return calls


def decision_positions(events: list[Event]) -> Iterator[tuple[int, list[ToolCall]]]:
    """Yield (i, calls): a decision point whose context is events[:i] and whose label is `calls`."""
    n = len(events)
    started = False
    for i, e in enumerate(events):
        prev = events[i - 1] if i else None
        if isinstance(e, Message) and e.role == "assistant" and not started and e.turn is None:
            continue  # a greeting before anything happened (tau2 scripts one) is no decision of the LLM
        started = started or isinstance(e, ToolCall) or (isinstance(e, Message) and e.role == "user")
        if isinstance(e, Message) and e.role == "assistant":
            calls = _turn_calls(events, i + 1, e.turn) if e.turn is not None else []
            yield i, calls
        elif isinstance(e, ToolCall):
            # A call no assistant message announced starts a turn of its own (logs without LLM text).
            opened = (isinstance(prev, ToolCall) and prev.turn == e.turn) or (
                isinstance(prev, Message) and prev.role == "assistant" and prev.turn == e.turn)
            if not opened:
                yield i, _turn_calls(events, i, e.turn)
        elif isinstance(e, Message) and e.role == "user" and prev is not None and not e.extra.get(
                "with_tool_results"):
            # (Anthropic's user text sent together with tool results is one input to one generation.)
            # After a tool turn or a user message the LLM generated, even if the log kept no text.
            if isinstance(prev, ToolCall) or (isinstance(prev, Message) and prev.role == "user"):
                yield i, []
    if n and isinstance(events[-1], ToolCall) and (events[-1].output is not None or events[-1].error):
        # The trace ends on a tool result: the agent answered from it. A last call with no result (a run
        # interrupted before the tool ran, as a human-in-the-loop checkpoint is) ends with no answer.
        yield n, []


def decision_points(trace: Trace) -> Iterator[tuple[Context, Label]]:
    """`Trace.decision_points` (the rule is there)."""
    metadata = {"source": trace.source, **trace.metadata}
    for i, calls in decision_positions(trace.events):
        yield Context(events=trace.events[:i], tools=trace.tools, metadata=metadata), Label(calls=calls)
