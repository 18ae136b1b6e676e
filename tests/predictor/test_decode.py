"""decode: calibrated softmax and the beam over tools x slot values -> ranked calls."""

from __future__ import annotations

import numpy as np
import pytest

from toolcast.data.schema import RESPOND
from toolcast.predictor.features.featurizer import SPECIAL_TOOLS, ToolSet
from toolcast.predictor.features.slots import SlotRow, SlotValue
from toolcast.predictor.onnx.decode import SLOT_FIRST_CANDIDATE, decode


def tool_set(*names: str) -> ToolSet:
    all_names = [*SPECIAL_TOOLS, *names]
    return ToolSet(all_names, [None] * len(all_names), {n: i for i, n in enumerate(all_names)})


def row(tool: str, slot: str, values: list, probs: list[float]) -> tuple[SlotRow, np.ndarray]:
    """A slot row whose candidates get `probs` (free and absent share what is left)."""
    rest = (1.0 - sum(probs)) / SLOT_FIRST_CANDIDATE
    logits = np.log(np.array([rest] * SLOT_FIRST_CANDIDATE + probs))
    return SlotRow(tool, slot, [SlotValue(v, f"text:{v}", repr(v)) for v in values]), logits


def run(rows_and_logits, tools: ToolSet, p_tools: list[float], k: int = 3):
    rows = [r for r, _ in rows_and_logits]
    width = max((len(lg) for _, lg in rows_and_logits), default=SLOT_FIRST_CANDIDATE)
    slot_logits = np.full((len(rows), width), -1e4)
    for i, (_r, lg) in enumerate(rows_and_logits):
        slot_logits[i, : len(lg)] = lg
    return decode(tools, np.log(np.array(p_tools)), rows, slot_logits, k)


def test_p_call_is_p_tool_times_the_chosen_values():
    tools = tool_set("get_order")
    preds = run([row("get_order", "order_id", ["A1", "B2"], [0.7, 0.2])], tools, [0.2, 0.0001, 0.7999])
    best = next(p for p in preds if p.tool == "get_order")
    assert best.args == {"order_id": "A1"}
    assert best.p_call == pytest.approx(0.7999 * 0.7, rel=1e-3)
    assert [p.p_call for p in preds] == sorted((p.p_call for p in preds), reverse=True)
    assert any(p.tool == RESPOND for p in run([], tools, [0.9, 0.0001, 0.0999]))


def test_two_slots_of_one_call_do_not_take_the_same_text_value():
    """origin and destination both like "JFK" most: the beam prefers JFK -> ORD to JFK -> JFK."""
    tools = tool_set("search_direct_flight")
    rows = [
        row("search_direct_flight", "origin", ["JFK", "ORD"], [0.6, 0.3]),
        row("search_direct_flight", "destination", ["JFK", "ORD"], [0.5, 0.4]),
    ]
    preds = run(rows, tools, [0.1, 0.0001, 0.8999])
    calls = [p.args for p in preds if p.tool == "search_direct_flight" and p.p_call > 1e-3]
    assert calls[0] == {"origin": "JFK", "destination": "ORD"}
    assert {"origin": "JFK", "destination": "JFK"} not in calls


def test_short_and_non_text_values_may_repeat():
    """Counts, flags and one-letter options repeat legitimately (two slots both 2, both "a")."""
    tools = tool_set("resize")
    rows = [row("resize", "w", [2, 3], [0.8, 0.1]), row("resize", "h", [2, 3], [0.8, 0.1])]
    best = next(p for p in run(rows, tools, [0.1, 0.0001, 0.8999]) if p.tool == "resize")
    assert best.args == {"w": 2, "h": 2}
    rows = [row("ls", "a", ["x", "y"], [0.8, 0.1]), row("ls", "b", ["x", "y"], [0.8, 0.1])]
    best = next(p for p in run(rows, tool_set("ls"), [0.1, 0.0001, 0.8999]) if p.tool == "ls")
    assert best.args == {"a": "x", "b": "x"}
