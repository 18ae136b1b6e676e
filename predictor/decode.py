"""Model outputs -> ranked `CallPrediction`s: calibrated softmax, then a small beam over tools x slot values.

NumPy only; the torch predictor and the onnxruntime one share it, so both rank identically.
p(call) = p(tool) x the product over its slots of p(chosen outcome), where a slot's outcome is a value
candidate or `<absent>` (the call leaves the slot out). A call with a `<free>` slot (a value the LLM will
invent) is returned with that slot in `free` and p(call) = 0: it cannot be run ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from toolcast.data.schema import RESPOND
from toolcast.predictor.base import CallPrediction
from toolcast.predictor.featurize import SPECIAL_TOOLS, ToolSet
from toolcast.predictor.slots import SlotRow

SLOT_FREE, SLOT_ABSENT, SLOT_FIRST_CANDIDATE = 0, 1, 2
UNKNOWN_SLOTS = "*"
"""`free` of a tool whose slots were not decoded (outside the beam): it cannot be run ahead."""


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


@dataclass(frozen=True)
class DecodeSettings:
    beam_tools: int = 4
    """Tools whose slots are decoded (the likeliest ones); the rest are listed with p(call) = 0."""
    values_per_slot: int = 3
    """Outcomes kept per slot before the beam."""
    beam: int = 8
    """Partial calls kept per tool while slots are added."""
    repeat_factor: float = 0.002
    """p(call) multiplier when two slots of one call would take the same text value (3+ characters):
    the slots are scored independently, and both sides of a flight search (origin, destination) like
    the same airport code. Agents almost never do: 3 of the 3,632 training calls of ../shared/data with
    two or more such values (0.08%); on its test split 147 of a model's top-3 calls did, none right."""


def top_tools(tools: ToolSet, p_tool: np.ndarray, n: int) -> list[str]:
    """The `n` likeliest real tools (no specials), best first."""
    order = np.argsort(-p_tool[: len(tools.names)], kind="stable")
    return [tools.names[i] for i in order if i >= len(SPECIAL_TOOLS)][:n]


def decode(
    tools: ToolSet,
    tool_logits: np.ndarray,
    rows: Sequence[SlotRow],
    slot_logits: np.ndarray,
    k: int,
    tool_temperature: float = 1.0,
    slot_temperature: float = 1.0,
    settings: DecodeSettings | None = None,
) -> list[CallPrediction]:
    """Top-k predictions of one context. `rows[i]` are the slot rows behind `slot_logits[i]`."""
    n = len(tools.names)
    p_tool = softmax(tool_logits[:n], tool_temperature)
    p_slots = softmax(slot_logits[: len(rows)], slot_temperature) if len(rows) else np.zeros((0, 2))
    by_tool: dict[str, list[int]] = {}
    for r, row in enumerate(rows):
        by_tool.setdefault(row.tool, []).append(r)
    out: list[CallPrediction] = [CallPrediction(RESPOND, p_tool=float(p_tool[0]), p_call=float(p_tool[0]))]
    settings = settings or DecodeSettings()
    decoded = set(top_tools(tools, p_tool, settings.beam_tools))
    for i in range(len(SPECIAL_TOOLS), n):
        name, pt = tools.names[i], float(p_tool[i])
        if name not in decoded:
            out.append(CallPrediction(name, free=[UNKNOWN_SLOTS], p_tool=pt, p_call=0.0))
            continue
        out.extend(
            _beam(
                name,
                pt,
                [rows[r] for r in by_tool.get(name, [])],
                [p_slots[r] for r in by_tool.get(name, [])],
                settings,
            )
        )
    out.sort(key=lambda c: (-c.p_call, -c.p_tool))
    return out[:k]


def _beam(
    tool: str, p_tool: float, rows: list[SlotRow], probs: list[np.ndarray], s: DecodeSettings
) -> list[CallPrediction]:
    # partial: (p, args, free, sources)
    partial: list[tuple[float, dict, list[str], dict[str, str]]] = [(1.0, {}, [], {})]
    for row, p in zip(rows, probs, strict=True):
        width = SLOT_FIRST_CANDIDATE + len(row.values)
        options = np.argsort(-p[:width], kind="stable")[: s.values_per_slot]
        grown = []
        for q, args, free, sources in partial:
            for o in options:
                po = float(p[o])
                if o == SLOT_FREE:
                    grown.append((q * po, args, [*free, row.slot], sources))
                elif o == SLOT_ABSENT:
                    grown.append((q * po, args, free, sources))
                else:
                    v = row.values[o - SLOT_FIRST_CANDIDATE]
                    if isinstance(v.value, str) and len(v.value) >= 3 and v.value in args.values():
                        po *= s.repeat_factor
                    grown.append((q * po, {**args, row.slot: v.value}, free, {**sources, row.slot: v.source}))
        grown.sort(key=lambda x: -x[0])
        partial = grown[: s.beam]
    return [
        CallPrediction(
            tool, args=args, free=free, p_tool=p_tool, p_call=0.0 if free else p_tool * q, sources=sources
        )
        for q, args, free, sources in partial
    ]
