"""The Markov and pattern-pool baselines on a tiny hand-built world, and the value maps they mine."""

from __future__ import annotations

import itertools
import json

import pytest

from toolcast.data import RESPOND, Context, Message, ToolCall, ToolSpec, Trace
from toolcast.predictor.baselines import BASELINES, fit_baseline
from toolcast.predictor.baselines.calls import k_best
from toolcast.predictor.baselines.ngram import InterpolatedNGram, cued_tools
from toolcast.predictor.baselines.value_maps import ConstantTable, ContextIndex, coerce, describe
from toolcast.predictor.protocol import CallPrediction, Predictor

TOOLS = [ToolSpec("get_user", parameters={"type": "object", "properties": {"user_id": {"type": "string"}}}),
         ToolSpec("get_order", parameters={"type": "object", "properties": {
             "order_id": {"type": "string"}, "verbose": {"type": "boolean"}}})]


def world(i: int, run: int = 0) -> Trace:
    """Task i: the user gives an id; the agent looks the user up, then the first order, then answers."""
    user, orders = f"user_{i}", [f"#W{i}0", f"#W{i}1"]
    return Trace(
        trace_id=f"t{i}-{run}", group=f"g{i}", source="test", tools=TOOLS,
        events=[
            Message("user", f"Hi, I am {user} and I want my order status."),
            Message("assistant", "", turn=0),
            ToolCall(f"a{i}{run}", 0, "get_user", {"user_id": user},
                     json.dumps({"name": "N", "orders": orders})),
            Message("assistant", "", turn=1),
            ToolCall(f"b{i}{run}", 1, "get_order", {"order_id": orders[0], "verbose": True},
                     json.dumps({"status": "pending"})),
            Message("assistant", "It is pending."),
        ])


TRAIN = [world(i, run) for i in range(8) for run in range(2)]
TEST = world(99)


def point(trace: Trace, n: int) -> tuple[Context, list[ToolCall]]:
    ctx, label = list(trace.decision_points())[n]
    return ctx, label.calls


@pytest.fixture(scope="module", params=BASELINES)
def fitted(request) -> Predictor:
    return fit_baseline(request.param, TRAIN)


def test_baselines_implement_the_predictor_protocol(fitted):
    assert isinstance(fitted, Predictor) and fitted.name in BASELINES


def test_probabilities_are_honest(fitted):
    for n in range(3):
        ctx, _ = point(TEST, n)
        preds = fitted.predict(ctx, k=50)
        p_tool = {p.tool: p.p_tool for p in preds}
        assert set(p_tool) == {"get_user", "get_order", RESPOND}  # every allowed tool, and <respond>
        assert sum(p_tool.values()) == pytest.approx(1.0, abs=1e-4)  # (tools under 1e-6 are left out)
        for p in preds:
            assert 0.0 <= p.p_call <= p.p_tool + 1e-12
            if p.is_respond:
                assert p.p_call == p.p_tool
            else:
                assert p.p_call == 0.0 or p.complete
        keys = [(-p.p_call, -p.p_tool) for p in preds]
        assert keys == sorted(keys)
        assert len(fitted.predict(ctx, k=2)) == 2


def test_respond_is_predicted_at_the_end(fitted):
    ctx, calls = point(TEST, 2)
    assert calls == []
    best = max(fitted.predict(ctx, k=10), key=lambda p: p.p_tool)
    assert best.tool == RESPOND and best.p_tool > 0.5


def test_pattern_pool_fills_arguments_from_earlier_outputs_on_an_unseen_task():
    pool = fit_baseline("pattern", TRAIN)
    ctx, calls = point(TEST, 1)
    top = pool.predict(ctx, k=3)[0]
    assert (top.tool, top.args) == ("get_order", {"order_id": "#W990", "verbose": True})
    assert top.key == calls[0].key and top.p_call > 0.5
    assert "get_user output orders[*]" in top.sources["order_id"]
    ctx, calls = point(TEST, 0)  # the user's id comes from the user's text
    assert pool.predict(ctx, k=1)[0].key == calls[0].key


def test_markov_replays_frequent_values_and_cannot_know_a_new_task():
    markov = fit_baseline("markov", TRAIN)
    ctx, calls = point(TEST, 1)
    preds = markov.predict(ctx, k=10)
    assert max(preds, key=lambda p: p.p_tool).tool == "get_order"
    assert all(p.key != calls[0].key for p in preds)
    assert all(p.args.get("verbose") is True for p in preds if p.tool == "get_order" and "verbose" in p.args)


def test_tools_never_seen_are_candidates_with_their_slots_free():
    new = ToolSpec("refund", parameters={"type": "object", "properties": {"order_id": {}},
                                         "required": ["order_id"]})
    ctx, _ = point(TEST, 1)
    ctx = Context(events=ctx.events, tools=[*TOOLS, new], metadata=ctx.metadata)
    for name in BASELINES:
        preds = fit_baseline(name, TRAIN).predict(ctx, k=50)
        refund = [p for p in preds if p.tool == "refund"]
        assert refund and refund[0].free == ["order_id"] and refund[0].p_call == 0.0 and refund[0].p_tool > 0


def test_unknown_baseline_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown baseline"):
        fit_baseline("lstm", TRAIN)  # type: ignore[arg-type]


def test_constants_must_recur_across_other_tasks():
    table = ConstantTable.fit([*TRAIN, world(50), world(51)])
    assert table.values("get_order", "verbose") == [True]
    assert table.values("get_user", "user_id") == []  # one task's user id is its data, not a constant
    two = ConstantTable.fit([world(1), world(2)])
    assert two.values("get_order", "verbose") == [True]
    assert two.values("get_order", "verbose", leave_out="g1") == []  # only g2 left: not across tasks


def test_mined_sources_name_where_values_come_from():
    pool = fit_baseline("pattern", TRAIN)
    ranked = pool.value_maps.ranked("get_order", "order_id")
    assert describe(ranked[0][0]).startswith("get_user output orders[*]")
    ctx, _ = point(TEST, 1)
    cands = pool.value_maps.candidates(ContextIndex.of(ctx), "get_order", "order_id")
    assert cands[0][0] == "#W990" and sum(p for _, p, _ in cands) <= 1.0 + 1e-9


@pytest.mark.parametrize(("value", "type_", "out"), [
    ("12", "int", 12), (12, "str", "12"), (60.0, "str", "60"), (2, "float", 2.0), ("abc", "int", None),
    ("true", "bool", True), ([1], "str", None), ("x", None, "x"), (True, "int", None)])
def test_coerce_to_the_slot_type(value, type_, out):
    assert coerce(value, type_) == out and type(coerce(value, type_)) is type(out)


def test_k_best_matches_brute_force():
    options = [[("a", 0.5, ""), ("b", 0.3, ""), ("c", 0.2, "")], [("x", 0.6, ""), ("y", 0.4, "")],
               [("u", 0.9, ""), ("v", 0.1, "")]]
    brute = sorted((a[1] * b[1] * c[1] for a, b, c in itertools.product(*options)), reverse=True)
    assert [s for s, _ in k_best(options, 5)] == pytest.approx(brute[:5])
    assert k_best([], 3) == [(1.0, ())]


def test_witten_bell_backs_off_and_normalises():
    m = InterpolatedNGram(levels=2, beta=1.0)
    for prev, nxt in [("a", "b"), ("a", "b"), ("a", "c"), ("b", "a")]:
        m.add(((), (prev,)), nxt)
    p = m.distribution(((), ("a",)), ["a", "b", "c", "d"])
    assert sum(p.values()) == pytest.approx(1.0) and p["b"] > p["c"] > p["d"] > 0
    unseen = m.distribution(((), ("zzz",)), ["a", "b", "c", "d"])  # unknown context: the unigram level
    assert unseen["b"] > unseen["d"]


def test_cued_tools_read_the_users_words():
    ctx = Context(events=[Message("user", "Please sort the file and cancel my reservation")], tools=[])
    assert cued_tools(ctx, ["sort", "cancel_reservation", "get_user_details", RESPOND]) == {
        "sort", "cancel_reservation"}


def test_call_prediction_key_is_canonical():
    assert CallPrediction("t", {"b": 1, "a": 2}).key == ("t", '{"a":2,"b":1}')


def _search_session(i: int) -> Trace:
    """After a search result the agent opens a hit; after the user asks again it searches again."""
    return Trace(f"s{i}", f"g{i}", "test", {}, [], [
        Message("user", "find it"), ToolCall(f"a{i}", 0, "search", {"q": "x"}, "[1]"),
        ToolCall(f"b{i}", 1, "open", {"id": 1}, "{}"), Message("assistant", "here"),
        Message("user", "and another"), ToolCall(f"c{i}", 2, "search", {"q": "y"}, "[2]"),
        ToolCall(f"d{i}", 3, "open", {"id": 2}, "{}"), Message("assistant", "here"),
        Message("user", "once more"), ToolCall(f"e{i}", 4, "search", {"q": "z"}, "[3]"),
    ])


@pytest.mark.parametrize("state, user_turn_best", [("call+reacting", "search"), ("call", RESPOND)])
def test_markov_state_says_what_the_llm_reacts_to(state, user_turn_best):
    """After `open`'s result the agent answers; after the user's next message it searches: the default
    state tells those apart, the classic last-tool table (open -> mostly <respond>) cannot."""
    from toolcast.predictor.baselines import MarkovPredictor

    markov = MarkovPredictor(state=state).fit([_search_session(i) for i in range(6)])
    t = _search_session(99)
    after_user = Context(events=t.events[:5], tools=[])  # ... open, "here", "and another"
    best = max(markov.predict(after_user, k=10), key=lambda p: p.p_tool)
    assert best.tool == user_turn_best


def test_pattern_pool_keeps_each_conversations_index_and_predicts_as_from_scratch():
    """The context index is kept per conversation and extended by new events; growing, revisited,
    branched and changed contexts all predict exactly what a pool with nothing kept predicts."""
    from toolcast.data.load import load_traces
    from toolcast.data.samples import sample_files
    from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor

    traces = [t for t in load_traces(sample_files()[0]) if len(t.events) >= 12][:8]
    pool = PatternPoolPredictor().fit(traces[2:])

    def fresh(ctx):
        pool._indexes.clear()
        return pool.predict(ctx, k=8)

    t = traces[0]
    events = list(t.events)
    kept = [pool.predict(Context(events[:n], t.tools, t.metadata), k=8) for n in range(1, len(events) + 1)]
    assert len(pool._indexes) == 1
    assert kept == [fresh(Context(events[:n], t.tools, t.metadata)) for n in range(1, len(events) + 1)]
    # revisited shorter, then longer again; another conversation interleaved
    other = traces[1]
    for ctx in (Context(events[:5], t.tools, t.metadata), Context(other.events, other.tools, other.metadata),
                Context(events, t.tools, t.metadata)):
        assert pool.predict(ctx, k=8) == fresh(ctx)
        pool.predict(Context(events[:3], t.tools, t.metadata), k=8)  # leave a short index kept
    # an output changed in place after it was indexed: not a continuation, rebuilt
    pool.predict(Context(events, t.tools, t.metadata), k=8)
    call = next(e for e in events if isinstance(e, ToolCall) and e.output)
    call.output = json.dumps({"note": "changed", "id": "ZZZ999"})
    ctx = Context(events, t.tools, t.metadata)
    assert pool.predict(ctx, k=8) == fresh(ctx)



def test_a_slots_ranked_sources_are_made_once_and_again_when_its_sources_change(shop_traces):
    from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor

    pool = PatternPoolPredictor().fit(shop_traces(12))
    maps = pool.value_maps
    slot_map = maps.slots[("get_order", "order_id")]
    fresh = sorted(slot_map.sources.items(), key=lambda kv: (-maps.p_hit(kv[0], kv[1], 0), kv[0]))
    assert maps.ranked("get_order", "order_id") == fresh
    assert maps._ranked_slot("get_order", "order_id") is maps._ranked_slot("get_order", "order_id")
    kept = dict(list(slot_map.sources.items())[:1])
    slot_map.sources = kept  # a slot whose sources were replaced is ranked again
    assert maps.ranked("get_order", "order_id") == list(kept.items())
