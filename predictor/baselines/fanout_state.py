"""What a context offers the fan-out (`fanout.py`), and its replay kept per conversation.

`State` is a context's value index, the records of its JSON outputs, the calls made and the slots of its
tools, built event by event. `Replay` holds a conversation's decision points replayed so far, so that a
session pays for each decision point once, not at every prediction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from toolcast.data import jsonpaths
from toolcast.data.schema import ToolCall, ToolSpec, decision_positions
from toolcast.predictor.baselines.value_maps import ContextIndex
from toolcast.predictor.baselines.value_sources import SourceKey, coerce, describe
from toolcast.predictor.features.extractors import MAX_LEAVES, value_id
from toolcast.predictor.protocol import CallPrediction

if TYPE_CHECKING:
    from toolcast.predictor.baselines.fanout import FanoutPredictor, Rule

_JSON_TYPES = {"string": "str", "integer": "int", "number": "float"}


class ToolSlots:
    """The slots (and their JSON types) of every tool a context lists or has called."""

    def __init__(self, tools: Iterable[ToolSpec] = ()) -> None:
        self.slots: dict[str, tuple[str, ...]] = {}
        self.types: dict[tuple[str, str], str] = {}
        for spec in tools:
            params = spec.parameters if isinstance(spec.parameters, dict) else {}
            props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
            required = params.get("required")
            names = [r for r in required if isinstance(r, str)] if isinstance(required, list) and required \
                else list(props)
            self.slots[spec.name] = tuple(names)
            for name in names:
                kind = props.get(name, {}).get("type") if isinstance(props.get(name), dict) else None
                if isinstance(kind, str) and kind in _JSON_TYPES:
                    self.types[(spec.name, name)] = _JSON_TYPES[kind]

    def add_missing(self, slots: dict[str, tuple[str, ...]]) -> None:
        """Slots for tools the list does not give any (e.g. what the logs' calls always passed)."""
        for tool, names in slots.items():
            if not self.slots.get(tool):
                self.slots[tool] = names

    @staticmethod
    def of_calls(calls: Iterable[ToolCall]) -> dict[str, tuple[str, ...]]:
        """Each tool's slots as its calls show them: the arguments every call of it passed."""
        common: dict[str, set[str]] = {}
        for call in calls:
            common[call.tool] = common[call.tool] & set(call.args) if call.tool in common else set(call.args)
        return {tool: tuple(sorted(names)) for tool, names in common.items() if names}

    def add_call(self, call: ToolCall) -> None:
        """A called tool the list did not have (or listed without parameters): its slots are the call's
        arguments."""
        if not self.slots.get(call.tool) and call.args:
            self.slots[call.tool] = tuple(sorted(call.args))



class State:
    """What a context offers: its value index, the records of its JSON outputs, the calls made."""

    def __init__(self, tools: Iterable[ToolSpec] = ()) -> None:
        self.index = ContextIndex()
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        """(tool, record shape e.g. `flights[*]`, field -> value) of every list element of every output."""
        self.called: set[tuple[str, str]] = set()
        self.called_tools: set[str] = set()
        self.tools = ToolSlots(tools)
        """The slots of the tools the context lists or called (for the rules by name)."""

    def add(self, event: Any) -> None:
        # Only tool calls feed it: offers come from outputs (messages never hold an "output" source),
        # the values slots took and the calls made.
        if isinstance(event, ToolCall):
            self.index.add(event)
            self.called.add(event.key)
            self.called_tools.add(event.tool)
            self.tools.add_call(event)
            self.records.extend((event.tool, shape, rec) for shape, rec in records_of(event))


def slot_offers(index: ContextIndex, src: SourceKey, tool: str, slot: str, type_: str | None,
                limit: int) -> Iterator[CallPrediction]:
    """Calls of a one-slot read with each value `src` lists (newest first, up to `limit`) that the slot has
    not taken yet, converted to the slot's type (`type_`)."""
    used = index.used.get((tool, slot), set())
    for raw in index.values(src, limit=limit, exclude=used):
        v = coerce(raw, type_)
        if v is not None and value_id(v) not in used:
            yield CallPrediction(tool, {slot: v}, sources={slot: describe(src)})


def records_of(call: ToolCall) -> list[tuple[str, dict[str, Any]]]:
    """(shape, fields) of each list element in a call's JSON output (`flights[2].date` -> `flights[*]`)."""
    out = call.output
    if not out or out.lstrip()[:1] not in ("{", "["):
        return []
    try:
        parsed = json.loads(out)
    except (ValueError, RecursionError):
        return []
    recs: dict[str, dict[str, Any]] = {}
    for n, (path, value) in enumerate(jsonpaths.leaves(parsed, with_keys=False)):
        if n >= MAX_LEAVES:
            break
        cut = path.rfind("]")
        if cut < 0 or cut + 2 >= len(path) or path[cut + 1] != ".":
            continue
        recs.setdefault(path[:cut + 1], {})[path[cut + 2:]] = value
    return [(jsonpaths.generalize(prefix), fields) for prefix, fields in recs.items()]


class Replay:
    """A context's decision points replayed so far: the state at its last event, the decision point at
    which each candidate was first offered, and the offers at the last event.

    `advance` extends it to a longer context when that context is this one's continuation (same tool calls
    at the same places, same outputs, same decision points), else starts over: what it returns is always
    what a replay from scratch gives. The decision points of a context before its last event do not change
    when it grows (`decision_positions` looks at an event and the one before it); the context's end is one
    too (its candidates' ages are counted there), but only for this context, so it is not committed."""

    def __init__(self, tools: list[ToolSpec] | tuple = ()) -> None:
        self.state = State(tools)
        self.tool_names = tuple(t.name for t in tools)
        """The context's tool list it was built for (the rules by name read its slots)."""
        self.done = 0
        """Events the state has seen."""
        self.calls: list[tuple[int, ToolCall, Any, bool]] = []
        """(index, call, its output, its error flag) of each call the state has seen."""
        self.positions: list[int] = []
        """Committed decision points (each before the end of the context it came from)."""
        self.first: dict[tuple[str, str], int] = {}
        self.offers: tuple[int, list[tuple[CallPrediction, Rule]]] | None = None
        """(position, offers there) of the last position looked at."""

    def _continues(self, events: list, positions: list[int], tools: list[ToolSpec] | tuple) -> bool:
        if tuple(t.name for t in tools) != self.tool_names:
            return False
        if len(events) < self.done or positions[:len(self.positions)] != self.positions:
            return False
        if any(p < self.done for p in positions[len(self.positions):-1]):
            return False
        calls = [(j, e) for j, e in enumerate(events[:self.done]) if isinstance(e, ToolCall)]
        return len(calls) == len(self.calls) and all(
            j == j0 and (e is e0 or e == e0) and e.output == out and e.error == err
            for (j, e), (j0, e0, out, err) in zip(calls, self.calls, strict=True))

    def advance(self, fanout: FanoutPredictor, events: list, tools: list[ToolSpec] | tuple = (),
                ) -> tuple[list[tuple[CallPrediction, Rule]], int, dict[tuple[str, str], int]]:
        """(offers at the context's end, its decision index, first offer of each candidate)."""
        n = len(events)
        positions = sorted({i for i, _ in decision_positions(events) if i < n} | {n})
        if not self._continues(events, positions, tools):
            self.__init__(tools)
        for i in positions[len(self.positions):]:
            if self.offers is None or self.offers[0] != i:
                while self.done < i:
                    e = events[self.done]
                    self.state.add(e)
                    if isinstance(e, ToolCall):
                        self.calls.append((self.done, e, e.output, e.error))
                    self.done += 1
                self.offers = (i, fanout._offers(self.state))
            if i == n:
                break
            for cand, _ in self.offers[1]:
                self.first.setdefault(cand.key, len(self.positions))
            self.positions.append(i)
        return self.offers[1], len(self.positions), self.first
