"""Slot rows built in numpy over a session's kept pool are exactly `SlotFeaturizer.build`'s.

`slot_rows.build` (the embedded predictor's path) against `SlotFeaturizer.build` over
`extract_candidates` (the specification): arrays bitwise, rows (values, sources, canonical forms,
source signatures) equal, over growing sample sessions with the tiny fixture model's vocabularies
(constants, value sources), and over generated sessions full of ties, values that coerce to the same
canonical form, enums, constants, earlier uses and matching keys. Torch-free.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import Context, Message, ToolCall, ToolSpec
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.predictor.features.featurizer import SPECIAL_TOOLS, tool_candidates
from toolcast.predictor.features.slots import SlotFeaturizer
from toolcast.predictor.features.text import TextEncoder
from toolcast.predictor.modeldir import read_parts
from toolcast.predictor.session import slot_rows
from toolcast.predictor.session.candidates import SessionCandidates

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"
VOCAB = {"[PAD]": 0, "[UNK]": 1, "order": 2, "id": 3, "user": 4, "name": 5, "status": 6, "count": 7}


def assert_same(sf: SlotFeaturizer, pool, context: Context, wanted, n_rows: int | None = None) -> None:
    got = slot_rows.build(sf, context, pool, wanted, n_rows)
    assert got is not None
    a_got, rows_got = got
    a_want, rows_want = sf.build(context, extract_candidates(context), wanted, n_rows)
    assert rows_got == rows_want
    assert set(a_got) == set(a_want)
    for name, a in a_want.items():
        assert a_got[name].dtype == a.dtype and np.array_equal(a_got[name], a), name


def test_growing_sample_sessions_with_the_fixture_vocabularies():
    sf = read_parts(FIXTURE).featurizer(None).slot_featurizer
    sc = SessionCandidates()
    for path in sample_files():
        for trace in load_traces(path)[:3]:
            for n in range(1, min(len(trace.events), 60) + 1):
                context = Context(trace.events[:n], trace.tools, trace.metadata)
                tools = tool_candidates(context, 48)
                specs = [(i, s) for i, s in enumerate(tools.specs) if i >= len(SPECIAL_TOOLS) and s]
                pool = sc(context)
                assert_same(sf, pool, context, specs[:4], 32)
                assert_same(sf, pool, context, specs[n % 5 : n % 5 + 2])  # other tools, default rows


def test_a_pool_whose_session_went_on_is_not_served():
    trace = load_traces(sample_files()[0])[0]
    sf = read_parts(FIXTURE).featurizer(None).slot_featurizer
    sc = SessionCandidates()
    context = Context(trace.events[:5], trace.tools)
    pool = sc(context)
    spec = next(s for s in tool_candidates(context, 48).specs if s is not None)
    sc(Context(trace.events[:6], trace.tools))  # the same session, one event on
    assert slot_rows.build(sf, context, pool, [(2, spec)]) is None


VALUES = st.sampled_from(
    ["12", 12, "12.0", 12.0, "true", True, "a b", "W123", "x" * 40, 3, "3", "", "status"]
)
KEYS = st.sampled_from(["order_id", "id", "status", "user.name", "items[0].count", "other"])


@st.composite
def sessions(draw):
    """A session of user messages, calls with arguments and JSON outputs over a small value set."""
    events: list = [Message("system", "You help users. Today is 2024-05-01.")]
    for i in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            words = draw(st.lists(VALUES, max_size=4))
            events.append(Message("user", " ".join(json.dumps(w) if not isinstance(w, str) else w
                                                   for w in words) or "hi"))  # fmt: skip
        else:
            args = draw(st.dictionaries(KEYS, VALUES, max_size=3))
            out = draw(st.dictionaries(KEYS, st.one_of(VALUES, st.lists(VALUES, max_size=3)), max_size=4))
            tool = draw(st.sampled_from(["get_order", "set_status", "count"]))
            events.append(ToolCall(f"c{i}", i, tool, args, output=json.dumps(out)))
    return events


TYPES = st.sampled_from([None, "string", "integer", "number", "boolean", ["string", "integer"], "array"])


@settings(max_examples=120, deadline=None)
@given(
    events=sessions(),
    types=st.lists(TYPES, min_size=3, max_size=3),
    enum=st.lists(VALUES, max_size=3),
    constants=st.lists(VALUES, max_size=3),
    max_candidates=st.integers(1, 8),
)
def test_generated_sessions(events, types, enum, constants, max_candidates):
    def prop(t, extra=None):
        p = {} if t is None else {"type": t}
        return {**p, **(extra or {})}

    specs = [
        ToolSpec("get_order", "", {"type": "object", "required": ["order_id"], "properties": {
            "order_id": prop(types[0]), "status": prop(types[1], {"enum": enum}), "count": prop(types[2])}}),
        ToolSpec("set_status", "", {"type": "object", "properties": {"status": prop(types[1]), "id": {}}}),
        ToolSpec("count", "", {"type": "object", "properties": {}}),  # slots from earlier calls' keys
    ]  # fmt: skip
    sf = SlotFeaturizer(
        TextEncoder(VOCAB),
        {"json_leaf:output": 3, "argument:call": 4, "word:user": 5, "number:user": 47, "enum": 2},
        {"get_order": {"order_id": constants, "status": constants[:1]}, "set_status": {"id": constants}},
        4,
        max_candidates,
        8,
        6,
        {"get_order": {"order_id": {"json_leaf:output|get_order|order_id": 3, "constant": 1}}},
    )
    sc = SessionCandidates()
    for n in range(1, len(events) + 1):
        context = Context(events[:n], specs)
        tools = tool_candidates(context, 48)
        wanted = [(tools.index[s.name], s) for s in specs]
        assert_same(sf, sc(context), context, wanted)


def test_no_tools_gives_empty_rows():
    sc = SessionCandidates()
    context = Context([Message("user", "order W123")], [])
    sf = SlotFeaturizer(TextEncoder(VOCAB), {}, {}, 4, 4, 8, 64)
    got = slot_rows.build(sf, context, sc(context), [], 8)
    assert got is not None and got[1] == [] and not got[0]["slot_mask"].any()


def test_tools_without_slots_give_empty_rows():
    sc = SessionCandidates()
    context = Context([Message("user", "order W123")], [ToolSpec("ping", "", {}), ToolSpec("pong", "")])
    sf = SlotFeaturizer(TextEncoder(VOCAB), {}, {}, 4, 4, 8, 64)
    wanted = [(2, context.tools[0]), (3, context.tools[1])]
    assert_same(sf, sc(context), context, wanted, 8)


def test_a_changed_enum_or_type_is_not_served_from_the_kept_rows():
    """Constant and enum rows are kept per slot featurizer, tool, slot and types: another enum (1, 1.0
    and True are equal in Python, not the same member) or type of the same slot gives its own rows."""
    sc = SessionCandidates()
    sf = SlotFeaturizer(TextEncoder(VOCAB), {"enum": 2}, {"t": {"x": ["1", 2]}}, 4, 6, 8, 64)
    context = Context([Message("user", "order W123 and 1 or true")], [])
    pool = sc(context)
    cases = [("integer", [1]), ("integer", [True]), ("integer", [1.0]), ("string", [1]), ("integer", [])]
    for t, enum in cases:
        spec = ToolSpec("t", "", {"properties": {"x": {"type": t, "enum": enum}}})
        assert_same(sf, pool, context, [(2, spec)], 4)


@pytest.mark.parametrize("n", [0, 1, 63, 64, 300])
def test_back_table(n):
    from toolcast.predictor.features.ranking import BACK_BUCKETS
    from toolcast.predictor.features.values import bucket
    from toolcast.predictor.session.tables import _back_table

    table = _back_table(n)
    assert len(table) > n
    want = [BACK_BUCKETS[b] if b < 64 else bucket(b, 10) for b in range(n + 1)]
    assert table[: n + 1].tolist() == want
