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
from toolcast.predictor.features.featurizer import SPECIAL_TOOLS, ToolSet
from toolcast.predictor.features.slots import SlotRow
from toolcast.predictor.protocol import CallPrediction

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
    the same airport code. Agents almost never do: 3 of the 3,632 training calls of the development
    logs (tau2-bench and BFCL runs) with two or more such values (0.08%); on its test split 147 of a
    model's top-3 calls did, none right."""


def top_tools(tools: ToolSet, p_tool: np.ndarray, n: int) -> list[str]:
    """The `n` likeliest real tools (no specials), best first (ties in tool order)."""
    first = len(SPECIAL_TOOLS)
    order = np.argsort(-p_tool[first : len(tools.names)], kind="stable")
    names = tools.names
    return [names[i + first] for i in order.tolist()][:n]


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
    settings = settings or DecodeSettings()
    p_list = p_tool.tolist()
    decoded = set(top_tools(tools, p_tool, settings.beam_tools))
    # Sorted by (-p_call, -p_tool), ties in this order: <respond>, then each tool's calls at its place.
    # A tool outside the beam has p_call 0, so only the k likeliest of them (ties: tool order) can be
    # among the top k: the others are not made.
    first = len(SPECIAL_TOOLS)
    rest = [i for i in range(first, n) if tools.names[i] not in decoded]
    if 0 <= k < len(rest):
        rest = sorted(rest, key=lambda i: -p_list[i])[:k]
    choices = _choices(rows, p_slots, settings.values_per_slot)
    ranked: list[tuple] = [(-p_list[0], -p_list[0], 0, 0, RESPOND, None)]
    for i in rest:
        ranked.append((-0.0, -p_list[i], i, 0, tools.names[i], None))
    for i in range(first, n):
        name = tools.names[i]
        if name in decoded:
            rs = by_tool.get(name, [])
            pt = p_list[i]
            for j, (q, args, free, sources) in enumerate(
                _beam([rows[r] for r in rs], [choices[r] for r in rs], settings)
            ):
                p_call = 0.0 if free else pt * q
                ranked.append((-p_call, -pt, i, j, name, (args, free, p_call, sources)))
    ranked.sort(key=lambda t: t[:4])
    out = []
    for _pc, _pt, i, _j, name, call in ranked[:k]:  # made only for the top k
        if call is None:
            if i == 0:
                out.append(CallPrediction(RESPOND, p_tool=p_list[0], p_call=p_list[0]))
            else:
                out.append(CallPrediction(name, free=[UNKNOWN_SLOTS], p_tool=p_list[i], p_call=0.0))
        else:
            args, free, p_call, sources = call
            out.append(CallPrediction(name, args=args, free=free, p_tool=p_list[i], p_call=p_call,
                                      sources=sources))  # fmt: skip
    return out


def _choices(rows: Sequence[SlotRow], p_slots: np.ndarray, n: int) -> list[list[tuple[int, float]]]:
    """Per row, its `n` likeliest outcomes as (outcome, p), best first (ties: outcome order): a stable
    sort of -p over the row's outcomes (`<free>`, `<absent>`, its values), all rows in one call (the
    columns past a row's values sort last and are cut)."""
    if not len(rows):
        return []
    widths = [SLOT_FIRST_CANDIDATE + len(row.values) for row in rows]
    w = p_slots.shape[1]
    neg = np.where(np.arange(w) < np.array(widths)[:, None], -p_slots, np.inf)
    options = np.argsort(neg, axis=1, kind="stable")[:, :n]
    opts, ps = options.tolist(), np.take_along_axis(p_slots, options, 1).tolist()
    return [
        list(zip(o[:width], p[:width], strict=True)) for o, p, width in zip(opts, ps, widths, strict=True)
    ]


def _beam(
    rows: list[SlotRow], choices: list[list[tuple[int, float]]], s: DecodeSettings
) -> list[tuple[float, dict, list[str], dict[str, str]]]:
    """A tool's calls: (p of its slot outcomes, args, free slots, sources), best first. A step grows
    each kept partial call by each slot's likeliest outcomes (`_choices`) and keeps the best `s.beam`
    (ties in the order grown); only those are made."""
    partial: list[tuple[float, dict, list[str], dict[str, str]]] = [(1.0, {}, [], {})]
    for row, row_choices in zip(rows, choices, strict=True):
        options = []  # (outcome, p, its text value when it may repeat one: 3+ characters)
        for o, po in row_choices:
            v = row.values[o - SLOT_FIRST_CANDIDATE].value if o >= SLOT_FIRST_CANDIDATE else None
            options.append((o, po, v if isinstance(v, str) and len(v) >= 3 else None))
        # (-p, order grown, partial, outcome): sorted, the stable sort by -p of the calls grown
        grown: list[tuple[float, int, int, int]] = []
        for k, (q, args, _free, _sources) in enumerate(partial):
            for o, po, text in options:
                if text is not None and text in args.values():
                    po *= s.repeat_factor
                grown.append((-(q * po), len(grown), k, o))
        grown.sort()
        kept = []
        for neg_q, _n, k, o in grown[: s.beam]:
            q = -neg_q
            _q, args, free, sources = partial[k]
            if o == SLOT_FREE:
                kept.append((q, args, [*free, row.slot], sources))
            elif o == SLOT_ABSENT:
                kept.append((q, args, free, sources))
            else:
                v = row.values[o - SLOT_FIRST_CANDIDATE]
                kept.append((q, {**args, row.slot: v.value}, free, {**sources, row.slot: v.source}))
        partial = kept
    return partial
