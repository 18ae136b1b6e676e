"""Fan-out by name, for reads the logs never showed: `get_order_details(order_id)` <- an output's `orders[*]`.

The fan-out's mined rules (`fanout.py`) name their tool, so a tool set the logs never had gets no
candidates from them. These rules name no tool. For a read the context lists (its slots from the tool
list's parameters, the required ones when it says which) that the fan-out's training logs never called:

- `("name", "list")`: a one-slot read takes the values of an earlier output's list of scalars whose key
  names the slot (`orders[*]` for `order_id`, `reservation_ids[*]` for `reservation_id`: same `stem`);
- `("name", "field")`: a one-slot read takes a field of an earlier output's list of records named as the
  slot (`items[*].product_id` for `product_id`; `orders[*].id` for `order_id`);
- `("name", "record")`: a read of several slots takes the records of an earlier output's list whose fields
  are named as all of its slots (`flights[*]` holding `flight_number` and `date`).

Their precision, per how long a value has been on offer, is counted on the training logs for every read
there as if its tool were new (`FanoutPredictor.fit`), pooled per kind, in the same `RuleStats` as the
mined rules: the price a new tool's candidates get until its own logs are mined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from toolcast.data.schema import ToolCall, ToolSpec
from toolcast.predictor.baselines.value_sources import coerce, describe
from toolcast.predictor.features.extractors import value_id
from toolcast.predictor.protocol import CallPrediction

NAME_RULES: tuple[tuple[str, str], ...] = (("name", "list"), ("name", "field"), ("name", "record"))
MAX_SLOTS = 4
"""A read with more slots than this is not fanned out by name (few records name them all by chance)."""
_SUFFIXES = ("_ids", "_id", "ids", "id", "_numbers", "_number", "_codes", "_code", "_names", "_name",
             "_list")
_JSON_TYPES = {"string": "str", "integer": "int", "number": "float"}


def stem(name: str) -> str:
    """A slot's or list's name without its id suffix and plural: `order_id`, `orders`, `order_ids` ->
    `order`; `reservation_id` -> `reservation`; "" when nothing of 3 letters or more is left."""
    n = name.lower().strip("_ ")
    for suffix in _SUFFIXES:
        if n.endswith(suffix) and len(n) > len(suffix):
            n = n[: -len(suffix)].rstrip("_")
            break
    if n.endswith("ies") and len(n) > 4:
        n = n[:-3] + "y"
    elif n.endswith("s") and not n.endswith("ss"):
        n = n[:-1]
    return n if len(n) >= 3 else ""


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


def _list_key(shape: str) -> str | None:
    """`user.orders[*]` -> `orders`; None when the shape is not a list of scalars under a key."""
    if not shape.endswith("[*]"):
        return None
    head = shape[:-3]
    key = head.rsplit(".", 1)[-1]
    return key if key and "[" not in key else None


def _field_names(shape: str) -> tuple[str, str] | None:
    """`orders[*].id` -> (`orders`, `id`); None when the shape is not a field of a list's records."""
    cut = shape.rfind("[*].")
    if cut < 0:
        return None
    parent, name = shape[:cut].rsplit(".", 1)[-1], shape[cut + 4:]
    return (parent, name) if "." not in name and "[" not in name else None


def name_offers(state: Any, reads: Callable[[str], bool], max_values: int,
                ) -> Iterator[tuple[CallPrediction, tuple[str, str]]]:
    """Each (candidate call, name rule) for the reads `reads` admits, from `state` (the fan-out's
    `fanout_state.State`: its value index, output records, calls made and `ToolSlots`). A call already made or
    offered earlier in this pass is not offered again."""
    index, seen = state.index, set(state.called)
    outputs = [key for key in index.keys() if key[0] == "output"]
    for tool, slots in state.tools.slots.items():
        if not slots or len(slots) > MAX_SLOTS or not reads(tool):
            continue
        types = state.tools.types
        if len(slots) == 1:
            slot = slots[0]
            want = stem(slot)
            if not want:
                continue
            used = index.used.get((tool, slot), set())
            for src in outputs:
                shape = src[2]
                listed = _list_key(shape)
                if listed is not None:
                    rule = NAME_RULES[0] if stem(listed) == want else None
                else:
                    field = _field_names(shape)
                    rule = NAME_RULES[1] if field is not None and (
                        field[1] == slot or (field[1].lower() == "id" and stem(field[0]) == want)) else None
                if rule is None:
                    continue
                for raw in index.values(src, limit=max_values, exclude=used):
                    v = coerce(raw, types.get((tool, slot)))
                    if v is None or value_id(v) in used:
                        continue
                    pred = CallPrediction(tool, {slot: v}, sources={slot: describe(src)})
                    if pred.key not in seen:
                        seen.add(pred.key)
                        yield pred, rule
            continue
        n = 0
        for rec_tool, rec_shape, fields in reversed(state.records):
            if n >= max_values:
                break
            if not all(s in fields for s in slots):
                continue
            args = {s: coerce(fields[s], types.get((tool, s))) for s in slots}
            if any(v is None or isinstance(v, dict | list) for v in args.values()):
                continue
            where = {s: f"{rec_tool} output {rec_shape}.{s}" for s in slots}
            pred = CallPrediction(tool, args, sources=where)
            if pred.key not in seen:
                seen.add(pred.key)
                n += 1
                yield pred, NAME_RULES[2]
