"""Fan-out by name, for reads the logs never showed: `get_order_details(order_id)` <- an output's `orders[*]`.

The fan-out's mined rules (`fanout.py`) name their tool, so a tool set the logs never had gets no
candidates from them. These rules name no tool. For a read the context lists (its slots from the tool
list's parameters, the required ones when it says which) that no mined rule speaks for in the context
(`FanoutPredictor._offers`: none of its mined rules' source tools was called there):

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

from collections.abc import Callable, Iterator

from toolcast.predictor.baselines.fanout_state import State, slot_offers
from toolcast.predictor.baselines.value_sources import coerce
from toolcast.predictor.protocol import CallPrediction

NAME_RULES: tuple[tuple[str, str], ...] = (("name", "list"), ("name", "field"), ("name", "record"))
MAX_SLOTS = 4
"""A read with more slots than this is not fanned out by name (few records name them all by chance)."""
_SUFFIXES = ("_ids", "_id", "ids", "id", "_numbers", "_number", "_codes", "_code", "_names", "_name",
             "_list")


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


def name_offers(state: State, reads: Callable[[str], bool], max_values: int,
                ) -> Iterator[tuple[CallPrediction, tuple[str, str]]]:
    """Each (candidate call, name rule) for the reads `reads` admits, from `state` (its value index, output
    records, calls made and tools' slots). A call already made or offered earlier in this pass is not
    offered again."""
    index, seen, types = state.index, set(state.called), state.tools.types
    outputs = [key for key in index.keys() if key[0] == "output"]
    for tool, slots in state.tools.slots.items():
        if not slots or len(slots) > MAX_SLOTS or not reads(tool):
            continue
        if len(slots) == 1:
            slot = slots[0]
            want = stem(slot)
            if not want:
                continue
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
                for pred in slot_offers(index, src, tool, slot, types.get((tool, slot)), max_values):
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
