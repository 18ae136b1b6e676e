"""`decode` is the plain loop it replaced, only faster: every tool's prediction made, all sorted.

`reference_decode` below is that loop (as of 3e24d9f), kept as the specification: a CallPrediction for
every tool outside the beam, each beam tool's calls, one stable sort by (-p_call, -p_tool), the first
k. `decode` makes only the outside tools that can reach the top k; the outputs must be equal, objects
and probabilities, on generated tool sets full of ties, repeated values, free and absent slots.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from toolcast.data.schema import RESPOND
from toolcast.predictor.features.featurizer import SPECIAL_TOOLS, ToolSet
from toolcast.predictor.features.slots import SlotRow, SlotValue
from toolcast.predictor.onnx.decode import (
    SLOT_ABSENT,
    SLOT_FIRST_CANDIDATE,
    SLOT_FREE,
    UNKNOWN_SLOTS,
    DecodeSettings,
    decode,
    softmax,
    top_tools,
)
from toolcast.predictor.protocol import CallPrediction


def reference_top_tools(tools, p_tool, n):
    order = np.argsort(-p_tool[: len(tools.names)], kind="stable")
    return [tools.names[i] for i in order if i >= len(SPECIAL_TOOLS)][:n]


def reference_decode(tools, tool_logits, rows, slot_logits, k, tool_t, slot_t, s):
    n = len(tools.names)
    p_tool = softmax(tool_logits[:n], tool_t)
    p_slots = softmax(slot_logits[: len(rows)], slot_t) if len(rows) else np.zeros((0, 2))
    by_tool: dict[str, list[int]] = {}
    for r, row in enumerate(rows):
        by_tool.setdefault(row.tool, []).append(r)
    out = [CallPrediction(RESPOND, p_tool=float(p_tool[0]), p_call=float(p_tool[0]))]
    decoded = set(reference_top_tools(tools, p_tool, s.beam_tools))
    for i in range(len(SPECIAL_TOOLS), n):
        name, pt = tools.names[i], float(p_tool[i])
        if name not in decoded:
            out.append(CallPrediction(name, free=[UNKNOWN_SLOTS], p_tool=pt, p_call=0.0))
            continue
        partial: list = [(1.0, {}, [], {})]
        for r in by_tool.get(name, []):
            row, p = rows[r], p_slots[r]
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
                        grown.append(
                            (q * po, {**args, row.slot: v.value}, free, {**sources, row.slot: v.source})
                        )
            grown.sort(key=lambda x: -x[0])
            partial = grown[: s.beam]
        out.extend(
            CallPrediction(name, args=a, free=f, p_tool=pt, p_call=0.0 if f else pt * q, sources=src)
            for q, a, f, src in partial
        )
    out.sort(key=lambda c: (-c.p_call, -c.p_tool))
    return out[:k]


LOGITS = st.sampled_from([-2.0, 0.0, 0.0, 0.5, 1.0, 1.0, 3.0])  # ties on purpose


@settings(max_examples=300, deadline=None)
@given(
    n_tools=st.integers(0, 12),
    data=st.data(),
    k=st.integers(-2, 8),
    beam_tools=st.integers(0, 5),
    values_per_slot=st.integers(1, 4),
    beam=st.integers(1, 8),
    temps=st.tuples(st.sampled_from([0.5, 1.0, 1.7]), st.sampled_from([0.8, 1.0])),
)
def test_decode_is_the_reference_loop(n_tools, data, k, beam_tools, values_per_slot, beam, temps):
    names = [*SPECIAL_TOOLS, *(f"t{i}" for i in range(n_tools))]
    tools = ToolSet(names, [None] * len(names), {n: i for i, n in enumerate(names)})
    tool_logits = np.array(data.draw(st.lists(LOGITS, min_size=len(names) + 3, max_size=len(names) + 3)),
                           np.float32)  # fmt: skip
    rows = []
    for name in names[len(SPECIAL_TOOLS) :]:
        for slot in data.draw(st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3)):
            values = data.draw(st.lists(st.sampled_from(["LAX", "JFK", "x", 7, "LAX"]), max_size=4))
            rows.append(SlotRow(name, slot, [SlotValue(v, f"src{j}", str(v)) for j, v in enumerate(values)]))
    slot_logits = np.array(
        data.draw(st.lists(LOGITS, min_size=(len(rows) + 1) * 8, max_size=(len(rows) + 1) * 8)), np.float32
    ).reshape(len(rows) + 1, 8)
    s = DecodeSettings(beam_tools=beam_tools, values_per_slot=values_per_slot, beam=beam)
    got = decode(tools, tool_logits, rows, slot_logits, k, *temps, s)
    want = reference_decode(tools, tool_logits, rows, slot_logits, k, *temps, s)
    assert got == want
    assert [(c.p_tool, c.p_call) for c in got] == [(c.p_tool, c.p_call) for c in want]  # exactly
    p = softmax(tool_logits[: len(names)], temps[0])
    for n in (-1, 0, 2, 20):
        assert top_tools(tools, p, n) == reference_top_tools(tools, p, n)
