"""The slot featurizer's ranking is the plain per-candidate loop it replaced, only faster.

`reference_rank` below is that loop, kept as the specification: every candidate of the pool (context
values, then the slot's constants, then its enum) scored for the slot, equal values keeping their best
score, best first with ties in pool order. `ranking.rank` scores only what a slot boosts and
merges it into a per-type ranking; these tests check both give the same rows, on the bundled sample and
on generated pools full of ties, duplicates, constants, enums and earlier uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import Context, Message, ToolCall, ToolSpec, canonical_args
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.predictor.features.featurizer import SPECIAL_TOOLS, tool_candidates
from toolcast.predictor.features.ranking import Pool, key_match, rank
from toolcast.predictor.features.slots import CAND_FEATURE_SIZES, SlotFeaturizer, slot_names
from toolcast.predictor.features.text import TextEncoder
from toolcast.predictor.features.values import (
    KIND_CONSTANT,
    KIND_ENUM,
    Fixed,
    bucket,
    coerce,
    earlier_uses,
    fits,
    key_text,
    kind_of,
    last_key,
    schema_types,
    value_type,
)

VOCAB = {"[PAD]": 0, "[UNK]": 1, "order": 2, "id": 3, "user": 4, "name": 5, "reason": 6, "status": 7}


def reference_rank(sf: SlotFeaturizer, tool, slot, types, enum, candidates, used):
    pool: list[Any] = list(candidates)
    pool += [Fixed(v, KIND_CONSTANT, i) for i, v in enumerate(sf.constants.get(tool, {}).get(slot, []))]
    pool += [Fixed(v, KIND_ENUM, i) for i, v in enumerate(enum) if isinstance(v, str | int | float)]
    same_slot = used.get((tool, slot), set())
    any_tool = used.get(("", slot), set())
    any_slot = used.get(("", ""), set())
    const = {canonical_args(v) for v in sf.constants.get(tool, {}).get(slot, [])}
    best: dict[str, tuple] = {}
    in_context: set[str] = set()
    for cand in pool:
        value = coerce(cand.value, types)
        canon = canonical_args(value)
        if isinstance(cand, Fixed) and canon in in_context:
            continue  # a constant the context also shows keeps the context's mention
        if not isinstance(cand, Fixed):
            in_context.add(canon)
        earlier = 1 if canon in same_slot else 2 if canon in any_tool else 3 if canon in any_slot else 0
        key = key_match(last_key(cand.source_path), slot)
        fit = fits(value, types)
        kind = kind_of(cand)
        is_const = 1 if canon in const or kind == KIND_ENUM else 0
        prio = (
            {1: 8, 2: 3, 3: 1}.get(earlier, 0)
            + {3: 6, 2: 3}.get(key, 0)
            + 4 * is_const
            + (-6 if fit == 2 else 0)
            - 0.05 * min(cand.rank, 40)
        )
        text = value if isinstance(value, str) else canon
        kid = sf.kinds.get(kind, 0)
        feats = (
            kid if kid < CAND_FEATURE_SIZES[0] else 0,
            bucket(cand.rank + 1, CAND_FEATURE_SIZES[1]),
            0,
            value_type(value),
            bucket(len(text), CAND_FEATURE_SIZES[4]),
            key,
            earlier,
            is_const,
            0 if cand.source_tool is None else 2 if cand.source_tool == tool else 1,
            fit,
        )
        hit = best.get(canon)
        if hit is None or prio > hit[0]:
            best[canon] = (prio, feats, cand, value)
    ranked = sorted(best.items(), key=lambda kv: -kv[1][0])[: sf.max_candidates]
    return [(feats, cand, value, canon) for canon, (_p, feats, cand, value) in ranked]


def assert_same_ranking(
    sf: SlotFeaturizer, context: Context, candidates: Sequence, specs: Sequence[ToolSpec]
):
    used = earlier_uses(context)
    pool = Pool.of(candidates)
    for spec in specs:
        props = (spec.parameters or {}).get("properties", {})
        for slot in slot_names(spec, context, sf.max_slots):
            prop = props.get(slot, {})
            enum = prop.get("enum") if isinstance(prop, dict) and isinstance(prop.get("enum"), list) else []
            types = schema_types(prop)
            want = reference_rank(sf, spec.name, slot, types, enum, candidates, used)
            got = rank(sf, spec.name, slot, types, enum, pool, used)
            assert [(f, v, c) for f, _cand, v, c in got] == [(f, v, c) for f, _cand, v, c in want]
            assert [cand for _f, cand, _v, _c in got] == [cand for _f, cand, _v, _c in want]


def test_same_ranking_on_the_bundled_sample():
    sf = SlotFeaturizer(TextEncoder(VOCAB), {"json_leaf:output": 3}, {}, 8, 24, 8, 64)
    for path in sample_files()[:3]:
        for trace in load_traces(path)[:6]:
            for context, _label in trace.decision_points():
                tools = tool_candidates(context, 48)
                specs = [s for s in tools.specs[len(SPECIAL_TOOLS) :] if s is not None][:4]
                assert_same_ranking(sf, context, extract_candidates(context), specs)


SCALARS = st.one_of(
    st.sampled_from(["12", "a", "b", "order 7", "True", "3.0", "x" * 40]),
    st.integers(-3, 20),
    st.sampled_from([1.0, 2.5, True, False]),
)


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(SCALARS, min_size=0, max_size=30),
    ranks=st.lists(st.integers(0, 60), min_size=30, max_size=30),
    keys=st.lists(
        st.sampled_from(["", "order_id", "id", "user.name", "status", "x[0].reason"]),
        min_size=30,
        max_size=30,
    ),
    constants=st.lists(SCALARS, max_size=4),
    enum=st.lists(SCALARS, max_size=4),
    earlier=st.lists(SCALARS, max_size=4),
    types=st.sampled_from([[], ["string"], ["integer"], ["number"], ["boolean"], ["string", "integer"]]),
    max_candidates=st.integers(1, 8),
)
def test_same_ranking_on_generated_pools(
    values, ranks, keys, constants, enum, earlier, types, max_candidates
):
    class Cand:
        def __init__(self, value, rank, path, tool):
            self.value, self.rank, self.source_path, self.source_tool = value, rank, path, tool
            self.source_event, self.kind = 0, "json_leaf:output" if rank % 3 else "word:user"

    cands = [Cand(v, ranks[i], keys[i] or None, "get_order" if i % 2 else None) for i, v in enumerate(values)]
    spec = ToolSpec(
        "get_order",
        "",
        {
            "type": "object",
            "properties": {
                "order_id": {"type": types[0]} if len(types) == 1 else {"type": types} if types else {},
                "reason": {"enum": enum},
            },
        },
    )
    calls = [
        ToolCall(f"c{i}", i, "get_order" if i % 2 else "other", {"order_id": v})
        for i, v in enumerate(earlier)
    ]
    context = Context(events=[Message("user", "hi"), *calls], tools=[spec])
    sf = SlotFeaturizer(
        TextEncoder(VOCAB),
        {"json_leaf:output": 3, KIND_ENUM: 4},
        {"get_order": {"order_id": constants, "reason": constants[:1]}},
        4,
        max_candidates,
        8,
        64,
    )
    assert_same_ranking(sf, context, cands, [spec])
    arrays, rows = sf.build(context, cands, [(2, spec)])
    assert arrays["cand_mask"].sum() == sum(len(r.values) for r in rows)
    assert np.all(arrays["cand_num"][..., 0] < CAND_FEATURE_SIZES[0])


def test_equal_values_keep_their_first_best_mention():
    class Cand:
        def __init__(self, value, rank, tool):
            self.value, self.rank, self.source_tool = value, rank, tool
            self.source_path, self.source_event, self.kind = None, 0, "word:user"

    first, second = Cand("a", 45, "t1"), Cand("a", 50, "t2")  # the same score: rank is capped at 40
    spec = ToolSpec("f", "", {"type": "object", "properties": {"q": {"type": "string"}}})
    context = Context(events=[Message("user", "a")], tools=[spec])
    sf = SlotFeaturizer(TextEncoder(VOCAB), {}, {}, 4, 4, 8, 64)
    assert_same_ranking(sf, context, [Cand("b", 1, None), first, second], [spec])
    got = rank(sf, "f", "q", ["string"], [], Pool.of([first, second]), {})
    assert len(got) == 1 and got[0][1] is first


def test_a_list_key_matches_the_singular_slot_that_takes_its_elements():
    assert key_text("orders") == key_text("order") == "order"
    assert key_text("file_names") == "file name" and key_text("categories") == "category"
    assert key_text("status") == "status" and key_text("analysis") == "analysis"
    assert key_text("address") == "address"  # "ss", "us", "is" are not plurals
    assert key_match("orders", "order_id") == 2


def test_a_malformed_required_list_is_read_as_its_strings_only():
    """A tool schema whose `required` holds a list or an object (hand-written MCP schemas do) gave a
    TypeError deep in the slot ranking: a 500 from the server."""
    from toolcast.data.schema import Context, ToolSpec
    from toolcast.predictor.features.slots import slot_names

    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "required": [["a"], {"b": 1}, "b"]}
    spec = ToolSpec("t", "", schema)
    assert slot_names(spec, Context([], [spec], {}), 3) == ["b", "a"]
