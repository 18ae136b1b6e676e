"""The fan-out baseline and the horizon view: every listed value a read has not taken, priced by its
mined horizon precision; the scorer is plain JSON and learns which signals say "issued soon"."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from toolcast.data.schema import Context, Message, ToolCall, ToolSpec, Trace
from toolcast.predictor.baselines.fanout import FanoutPredictor
from toolcast.predictor.horizon import (
    FEATURES,
    HorizonPredictor,
    HorizonScorer,
    fit_logistic,
    horizon_labels,
)
from toolcast.predictor.horizon_mlp import fit_mlp, mlp_p
from toolcast.predictor.protocol import CallPrediction


def profile_trace(i: int, reads: int = 3, listed: int = 4) -> Trace:
    """The user's profile lists `listed` reservations; the agent reads `reads` of them, one per turn."""
    ids = [f"R{i}X{j}" for j in range(listed)]
    events = [Message("user", f"I am user u{i}"), Message("assistant", "", turn=1),
              ToolCall(f"c{i}0", 1, "get_user", {"user_id": f"u{i}"}, json.dumps({"reservations": ids}))]
    for j in range(reads):
        events += [Message("assistant", "", turn=2 + j),
                   ToolCall(f"c{i}{j + 1}", 2 + j, "get_reservation", {"reservation_id": ids[j]}, "{}")]
    events += [Message("assistant", "", turn=9),
               ToolCall(f"w{i}", 9, "cancel", {"reservation_id": ids[0]}, "ok"),
               Message("assistant", "done")]
    tools = [ToolSpec("get_user"), ToolSpec("get_reservation"), ToolSpec("cancel")]
    return Trace(f"t{i}", f"g{i}", "test", {}, tools, events)


def is_write(tool: str) -> bool:
    return tool == "cancel"


def fitted() -> FanoutPredictor:
    return FanoutPredictor().fit([profile_trace(i) for i in range(6)], is_read=lambda t: not is_write(t),
                                 is_write=is_write)


def test_fanout_mines_the_list_a_read_takes_its_values_from():
    f = fitted()
    assert {(r[1], r[2]) for r in f.rules} == {("get_reservation", "reservation_id")}
    t = profile_trace(99)
    after_profile = Context(events=t.events[:3], tools=t.tools)
    preds = f.predict(after_profile, k=10)
    assert sorted(p.args["reservation_id"] for p in preds) == [f"R99X{j}" for j in range(4)]
    for p in preds:
        assert 0 < p.p_call <= p.p_horizon < 1
    # 3 of 4 listed values get read before the write: a precision near 3/4, not the next-call rate
    assert preds[0].p_horizon > 0.5 > preds[0].p_call


def test_fanout_never_offers_a_value_the_slot_already_took():
    f = fitted()
    t = profile_trace(99)
    ctx = Context(events=t.events[:7], tools=t.tools)  # two reservations read
    offered = {p.args["reservation_id"] for p in f.predict(ctx, k=10)}
    assert offered == {"R99X2", "R99X3"}


def test_horizon_labels_stop_at_the_write():
    t = profile_trace(1)
    labels = list(horizon_labels(t, is_write))
    first_ctx, first = labels[0]
    assert ("cancel", '{"reservation_id":"R1X0"}') not in first
    assert ("get_reservation", '{"reservation_id":"R1X2"}') in first


def test_logistic_regression_finds_the_signal():
    rng = np.random.default_rng(0)
    x = np.c_[np.ones(400), rng.normal(size=(400, 2))]
    y = (x[:, 1] + 0.1 * rng.normal(size=400) > 0).astype(float)
    w = fit_logistic(x, y)
    assert w[1] > 2 and abs(w[2]) < 1


def test_the_mlp_scorer_learns_what_a_logistic_regression_cannot():
    rng = np.random.default_rng(0)
    x = np.c_[np.ones(2000), rng.normal(size=(2000, 2))]
    y = ((x[:, 1] > 0) != (x[:, 2] > 0)).astype(float)  # either one, not both: no linear boundary
    mlp = fit_mlp(x, y, steps=400)
    p = mlp_p(mlp, x)
    w = fit_logistic(x, y)
    linear = 1 / (1 + np.exp(-(x @ w)))
    assert np.mean((p > 0.5) == (y == 1)) > 0.95 and np.mean((linear > 0.5) == (y == 1)) < 0.7
    assert p.shape == (2000,) and np.all((p > 0) & (p < 1))


class ToolOnly:
    """A next-call model that knows the tool but never the value."""

    name = "toolonly"

    def predict(self, context, k=3):
        return [CallPrediction("get_reservation", {}, free=["reservation_id"], p_tool=0.8, p_call=0.0)]


def test_horizon_view_scores_fanout_candidates_and_round_trips_as_json(tmp_path):
    f = fitted()
    h = HorizonPredictor(ToolOnly(), f)
    scorer = h.fit([profile_trace(i) for i in range(10, 14)], is_write=is_write)
    assert len(scorer.weights) == len(scorer.features) and scorer.fitted_on > 0
    assert set(scorer.features) == {f for f in FEATURES if not f.startswith("pat")}  # no pattern source
    assert sum(b.get("n", 0) for b in scorer.reliability) == scorer.fitted_on
    assert 0 <= scorer.reliability[-1]["ece"] < 0.2
    path = tmp_path / "horizon.json"
    scorer.save(path)
    assert json.loads(path.read_text())["format"] == "toolcast.horizon_scorer"
    assert list(tmp_path.iterdir()) == [path]  # written through a temporary file, renamed
    again = HorizonScorer.load(path)
    assert again.weights == pytest.approx(scorer.weights)
    t = profile_trace(99)
    view = h.horizon(Context(events=t.events[:3], tools=t.tools), k=8)
    assert len(view) == 4 and all(c.complete and 0 < c.p_horizon <= 1 for c in view)
    assert view == sorted(view, key=lambda c: -c.p_horizon)


def test_an_mlp_horizon_scorer_fits_and_round_trips_as_json(tmp_path):
    h = HorizonPredictor(ToolOnly(), fitted())
    with pytest.raises(ValueError, match="kind"):
        h.fit([profile_trace(10)], is_write=is_write, kind="forest")
    scorer = h.fit([profile_trace(i) for i in range(10, 14)], is_write=is_write, kind="mlp")
    assert scorer.mlp is not None and len(scorer.mlp["nets"]) == 3
    path = tmp_path / "horizon.json"
    scorer.save(path)
    again = HorizonScorer.load(path)
    t = profile_trace(99)
    x = np.stack([x for _c, x in h.candidates(Context(events=t.events[:3], tools=t.tools))])
    assert again.p(x) == pytest.approx(scorer.p(x)) and not np.allclose(scorer.p(x), again.weights[0])
    view = h.horizon(Context(events=t.events[:3], tools=t.tools), k=8)
    assert len(view) == 4 and view == sorted(view, key=lambda c: -c.p_horizon)


@pytest.mark.parametrize("bad", [{"features": ["bias", "nope"], "weights": [1.0, 2.0]},
                                 {"features": ["fan", "bias"], "weights": [1.0, 2.0]},
                                 {"features": ["bias", "fan"], "weights": [1.0, float("nan")]},
                                 {"features": list(FEATURES), "weights": ["a"] * len(FEATURES)}, [],
                                 {"format": "toolcast.pool", "version": 1, "features": ["bias"],
                                  "weights": [1.0]},
                                 {"features": ["bias", "fan"], "weights": [1.0, 2.0], "mlp": {
                                     "mean": [0, 0], "scale": [1, 1],  # w1 is 1 x 1, not 2 x hidden
                                     "nets": [{"w1": [[1.0]], "b1": [0.0], "w2": [1.0], "b2": 0.0}]}},
                                 {"features": ["bias"], "weights": [1.0],
                                  "mlp": {"mean": [0], "scale": [1]}}])  # no nets
def test_a_bad_scorer_file_is_a_clear_error(tmp_path, bad):
    path = tmp_path / "horizon.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="horizon.json"):
        HorizonScorer.load(path)


def flights_trace(i: int) -> Trace:
    """A reservation lists two flights; the agent checks the status of each (two slots from one record)."""
    flights = [{"flight_number": f"HAT{i}{j}", "date": f"2024-05-1{j}", "origin": "JFK"} for j in range(2)]
    events = [Message("user", f"reservation Q{i}"), Message("assistant", "", turn=1),
              ToolCall(f"a{i}", 1, "get_reservation", {"reservation_id": f"Q{i}"},
                       json.dumps({"flights": flights}))]
    for j, f in enumerate(flights):
        events += [Message("assistant", "", turn=2 + j),
                   ToolCall(f"b{i}{j}", 2 + j, "get_flight_status",
                            {"flight_number": f["flight_number"], "date": f["date"]}, "{}")]
    return Trace(f"f{i}", f"h{i}", "test", {}, [], events)


def test_fanout_pairs_the_slots_of_one_record():
    f = FanoutPredictor().fit([flights_trace(i) for i in range(4)])
    t = flights_trace(99)
    preds = f.predict(Context(events=t.events[:3], tools=t.tools), k=10)
    assert sorted(p.args["flight_number"] + p.args["date"] for p in preds) == [
        "HAT9902024-05-10", "HAT9912024-05-11"]


def shop_trace(i: int, orders: int = 3, shape: str = "list") -> Trace:
    """A tool set the fan-out never saw: a customer record lists orders (ids, or records with an `id`);
    the listed `get_order(order_id)` and `get_shipment(order_id, carrier)` are new reads."""
    ids = [f"#O{i}{j}" for j in range(orders)]
    listed = ids if shape == "list" else [{"id": o, "carrier": "UPS"} for o in ids]
    key = "orders" if shape != "shipments" else "shipments"
    if shape == "shipments":
        listed = [{"order_id": o, "carrier": "UPS"} for o in ids]
    events = [Message("user", f"customer c{i}"), Message("assistant", "", turn=1),
              ToolCall(f"s{i}", 1, "get_customer", {"customer_id": f"c{i}"}, json.dumps({key: listed}))]
    tools = [ToolSpec("get_customer", parameters={"properties": {"customer_id": {"type": "string"}}}),
             ToolSpec("get_order", parameters={"properties": {"order_id": {"type": "string"}, "verbose": {}},
                                               "required": ["order_id"]}),
             ToolSpec("get_shipment", parameters={"properties": {"order_id": {}, "carrier": {}}}),
             ToolSpec("cancel_order", parameters={"properties": {"order_id": {"type": "string"}}})]
    return Trace(f"s{i}", f"sg{i}", "test", {}, tools, events)


def test_reads_the_logs_never_had_are_fanned_out_by_their_slot_names():
    """Fitted on the reservations logs only, a shop's new tools: `get_order(order_id)` takes each id of
    `orders[*]` (or the `id` of each order record), `get_shipment(order_id, carrier)` each shipment record;
    a write is never offered (is_read); the price is the rules by name's, counted on the fitting logs."""
    f = FanoutPredictor().fit([profile_trace(i) for i in range(6)], is_read=lambda t: not is_write(t)
                              and t != "cancel_order", is_write=is_write)
    assert f.name_rules[("name", "list")].offered[0] > 0  # get_reservation <- reservations[*], counted
    for shape in ("list", "records"):
        t = shop_trace(1, shape=shape)
        preds = f.predict(Context(events=t.events, tools=t.tools), k=10)
        got = sorted((p.tool, p.args["order_id"]) for p in preds)
        assert got == [("get_order", f"#O1{j}") for j in range(3)]
        assert all(0 < p.p_horizon < 1 for p in preds)
    t = shop_trace(2, shape="shipments")
    preds = f.predict(Context(events=t.events, tools=t.tools), k=10)
    assert {(p.tool, tuple(sorted(p.args.items()))) for p in preds} >= {
        ("get_shipment", (("carrier", "UPS"), ("order_id", f"#O2{j}"))) for j in range(3)}
    assert not any(p.tool == "cancel_order" for p in preds)


def test_rules_by_name_leave_the_tools_the_logs_had_to_the_mined_rules():
    f = fitted()
    t = profile_trace(99)
    preds = f.predict(Context(events=t.events[:3], tools=t.tools), k=10)
    rules = {p.sources["reservation_id"] for p in preds}
    assert rules == {"get_user output reservations[*]"}
    f.name_rules.clear()  # an older fan-out file: no rules by name, nothing for new tools
    t = shop_trace(1)
    assert f.predict(Context(events=t.events, tools=t.tools), k=10) == []


@pytest.mark.parametrize("name, want", [("order_id", "order"), ("orders", "order"), ("order_ids", "order"),
                                        ("reservation_id", "reservation"), ("flight_number", "flight"),
                                        ("categories", "category"), ("address", "address"), ("id", ""),
                                        ("ids", "")])
def test_stems_of_slot_and_list_names(name, want):
    from toolcast.predictor.baselines.fanout_names import stem

    assert stem(name) == want


def _replayed_from_scratch(f: FanoutPredictor, context: Context, k: int) -> list[CallPrediction]:
    """The fan-out's prediction as it was computed before the replay was kept per conversation: every
    decision point of the context replayed at each call (the reference the incremental one must equal)."""
    from toolcast.data.schema import decision_positions
    from toolcast.predictor.baselines.fanout import _age_bucket
    from toolcast.predictor.baselines.fanout_state import State as _State

    state, first, d, done, offers = _State(context.tools), {}, 0, 0, []
    for i in sorted({i for i, _ in decision_positions(context.events)} | {len(context.events)}):
        while done < i:
            e = context.events[done]
            state.add(e) if isinstance(e, ToolCall) else state.index.add(e)  # messages indexed, as before
            done += 1
        offers = f._offers(state)
        for cand, _ in offers:
            first.setdefault(cand.key, d)
        d += 1
    out = []
    for cand, rule in offers:
        p_h, p_next = f.stats(rule).p(_age_bucket(d - 1 - first[cand.key]))
        cand.p_tool, cand.p_call, cand.p_horizon = p_next, p_next, p_h
        out.append(cand)
    out.sort(key=lambda c: (-c.p_horizon, c.tool, str(c.args)))
    return out[:k]


def _as_tuples(preds):
    return [(p.tool, p.args, p.p_call, p.p_horizon, p.sources) for p in preds]


def test_incremental_fanout_predicts_what_a_replay_from_scratch_does():
    """Growing contexts of real logs (each session's decision points in order, the stream's partial text,
    a context seen again, an unrelated one between, a shorter one after a longer one): identical
    predictions to the reference replay, at every call."""
    from toolcast.data import load_traces
    from toolcast.data.samples import sample_files
    from toolcast.data.schema import decision_points

    traces = [t for t in load_traces(*sample_files("tau2")) if t.calls][:40]
    f = FanoutPredictor().fit(traces[:30])
    assert f.rules
    checked = offered = 0
    for trace, other in zip(traces[30:], reversed(traces[30:]), strict=True):
        contexts = [c for c, _ in decision_points(trace)]
        streamed = [Context(events=[*c.events, Message("assistant", "Let me look", turn=99)], tools=c.tools)
                    for c in contexts[:3]]
        others = [c for c, _ in decision_points(other)][:2]
        order = [contexts[0], *contexts[:4], streamed[0], *streamed, *others, *contexts[2:], contexts[1]]
        for ctx in order:
            got = f.predict(ctx, k=32)
            assert _as_tuples(got) == _as_tuples(_replayed_from_scratch(f, ctx, 32))
            checked += 1
            offered += len(got)
    assert checked > 50 and offered > 20


def test_a_scorer_of_the_first_nine_features_still_loads_and_scores(tmp_path):
    """horizon.json files written before the pattern-pool and last-tool features keep working."""
    old = {"features": list(FEATURES[:9]), "weights": [-3.0, 2.0, 0.8, 2.5, 0.4, -0.5, 0.7, 0.5, -0.1]}
    path = tmp_path / "horizon.json"
    path.write_text(json.dumps(old))
    scorer = HorizonScorer.load(path)
    h = HorizonPredictor(ToolOnly(), fitted(), scorer)
    t = profile_trace(99)
    view = h.horizon(Context(events=t.events[:3], tools=t.tools), k=8)
    assert len(view) == 4 and all(0 < c.p_horizon < 1 for c in view)


class Pattern:
    """A pattern pool that knows the call the fan-out cannot offer (a value no output lists)."""

    name = "pattern"

    def predict(self, context, k=3):
        return [CallPrediction("get_reservation", {"reservation_id": "FROM_TEXT"}, p_tool=0.6, p_call=0.5)]


def test_the_pattern_pool_is_a_third_source_with_features_of_its_own():
    h = HorizonPredictor(ToolOnly(), fitted(), pattern=Pattern())
    t = profile_trace(99)
    ctx = Context(events=t.events[:3], tools=t.tools)
    cands = dict((c.key, x) for c, x in h.candidates(ctx))
    x = cands[("get_reservation", '{"reservation_id":"FROM_TEXT"}')]
    assert x[FEATURES.index("pat")] == 1.0 and x[FEATURES.index("fan")] == 0.0
    assert x[FEATURES.index("last_tool")] == 0.0  # the last call was get_user
    listed = cands[("get_reservation", '{"reservation_id":"R99X0"}')]
    assert listed[FEATURES.index("pat")] == 0.0 and listed[FEATURES.index("fan")] == 1.0
    scorer = h.fit([profile_trace(i) for i in range(10, 14)], is_write=is_write)
    assert scorer.features == FEATURES
    after_read = Context(events=t.events[:5], tools=t.tools)  # one reservation read: the same tool next
    assert all(x[FEATURES.index("last_tool")] == 1.0 for c, x in h.candidates(after_read)
               if c.tool == "get_reservation")


def test_a_saved_fanout_loads_back_and_offers_the_same_calls(tmp_path):
    from toolcast.data.load import load_traces
    from toolcast.data.samples import sample_files
    from toolcast.runtime.replay_contracts import replay_policy

    policy = replay_policy()
    traces = [t for t in load_traces(*sample_files()) if t.calls][:80]
    f = FanoutPredictor().fit(traces[10:], is_read=lambda t: policy.for_tool(t).speculable,
                              is_write=lambda t: policy.for_tool(t).state_changing)
    assert f.rules, "the sample should mine some fan-out rules"
    path = f.save(tmp_path)
    assert path.name == "fanout.json.gz" and list(tmp_path.iterdir()) == [path]
    again = FanoutPredictor.load(tmp_path)
    assert again.rules == f.rules and again.types == f.types and again.horizon == f.horizon
    assert again.name_rules == f.name_rules and f.name_rules
    again = FanoutPredictor.load(tmp_path, is_read=f.is_read)  # not saved: the contracts say what reads are
    for t in traces[:10]:
        for n in range(1, len(t.events), 3):
            ctx = Context(events=t.events[:n], tools=t.tools)
            assert again.predict(ctx, k=32) == f.predict(ctx, k=32)


@pytest.mark.parametrize("bad, field", [
    ({"horizon": 8, "min_groups": 2, "types": [], "rules": [{"rule": ["nope", "t", "s", "x"]}]},
     "rules[0].rule"),
    ({"horizon": 8, "min_groups": 2, "types": [["t", "s"]], "rules": []}, "types"),
    ({"horizon": -1, "min_groups": 2, "types": [], "rules": []}, "horizon"),
    ({"horizon": 8, "min_groups": 2, "types": [], "rules": [], "name_rules": [{"rule": ["name", "x"]}]},
     "name_rules[0].rule"),
    ({"horizon": 8, "min_groups": 2, "types": [], "rules": [
        {"rule": ["value", "t", "s", ["output", "u", "a"]], "offered": [1], "hits": [0], "next_hits": [0]}]},
     "rules[0].offered"),
])
def test_a_bad_fanout_file_names_the_file_and_field(tmp_path, bad, field):
    path = tmp_path / "fanout.json"
    path.write_text(json.dumps({"format": "toolcast.fanout", "version": 1, **bad}))
    with pytest.raises(ValueError, match=rf"fanout.json: field '{re.escape(field)}'"):
        FanoutPredictor.load(path)


def test_a_runtime_gives_a_horizon_view_its_tools_contracts(tmp_path):
    """A view loaded from files knows neither reads nor writes; the runtime it is handed to gives both from
    its tools' contracts, so the rules by name offer the runtime's reads (a new tool set's) and never a
    tool whose contract keeps it from running ahead."""
    from toolcast.runtime import SpeculativeRuntime, Tool, ToolContract, read_only

    f = fitted()
    h = HorizonPredictor(ToolOnly(), f)
    h.fit([profile_trace(i) for i in range(10, 14)], is_write=is_write).save(tmp_path / "horizon.json")
    f.save(tmp_path)
    view = HorizonPredictor(ToolOnly(), FanoutPredictor.load(tmp_path),
                            HorizonScorer.load(tmp_path / "horizon.json"))
    t = shop_trace(1)
    with pytest.raises(ValueError, match="SpeculativeRuntime"):
        view.horizon(Context(events=t.events, tools=t.tools))

    def fn(**_kw):
        return "{}"

    tools = [Tool("get_customer", fn, contract=read_only(60.0)),
             Tool("get_order", fn, contract=read_only(60.0)), Tool("get_shipment", fn),  # no contract
             Tool("cancel_order", fn, contract=ToolContract(mutates=["order:{order_id}"]))]
    runtime = SpeculativeRuntime(tools, view)
    bound = runtime.predictor  # the view made for this runtime; the loaded one is left as it was
    assert bound is not view and view.is_write is None and view.fanout.is_read is None
    assert all(bound.is_write(tool) for tool in ("cancel_order", "get_shipment", "unregistered"))
    assert not bound.is_write("get_order")
    preds = bound.horizon(Context(events=t.events, tools=t.tools), k=10)
    assert sorted((p.tool, p.args["order_id"]) for p in preds) == [("get_order", f"#O1{j}") for j in range(3)]
    runtime.add_tool(Tool("get_shipment_v2", fn, contract=read_only(60.0)))  # contracts are looked up live
    assert bound.fanout.is_read("get_shipment_v2") and not bound.fanout.is_read("cancel_order")
    # the same loaded view handed to a second runtime, whose contracts differ: each proposes its own reads
    other = SpeculativeRuntime([Tool("get_customer", fn, contract=read_only(60.0)), Tool("get_order", fn),
                                Tool("get_shipment", fn, contract=read_only(60.0))], view).predictor
    assert other.fanout.is_read("get_shipment") and not other.fanout.is_read("get_order")
    assert not bound.fanout.is_read("get_shipment") and bound.fanout.is_read("get_order")
    ctx = Context(events=t.events, tools=t.tools)
    assert {p.tool for p in bound.horizon(ctx, k=10)} == {"get_order"}
    assert "get_order" not in {p.tool for p in other.horizon(ctx, k=10)}
    given = HorizonPredictor(ToolOnly(), fitted(), is_write=is_write)
    assert SpeculativeRuntime(tools, given).predictor is given  # what was given stays as given


def test_a_pooled_base_hands_the_horizon_view_its_pattern_pools_answer():
    """The horizon view's third source is the pool's own pattern pool: its answer inside the pooled
    prediction is taken, not asked for again, and the view is what asking again gives."""
    from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor
    from toolcast.predictor.pooling import PooledPredictor, PoolWeights

    traces = [profile_trace(i) for i in range(8)]
    pattern = PatternPoolPredictor().fit(traces)
    asked = []

    class Counting(PatternPoolPredictor):
        def predict(self, context, k=3):
            asked.append(k)
            return pattern.predict(context, k)

    counting = Counting()
    counting.value_maps, counting.ngram = pattern.value_maps, pattern.ngram  # the same pool, counted
    counting.signatures, counting.toolsets = pattern.signatures, pattern.toolsets
    pool = PooledPredictor({"learned": ToolOnly(), "pattern": counting},
                           PoolWeights(["learned", "pattern"], [1.0, 1.0], [0.5, 0.5]))
    f = fitted()
    t = profile_trace(99)
    ctx = Context(events=t.events[:5], tools=t.tools)
    view = HorizonPredictor(pool, f, pattern=counting, is_write=is_write)
    got = view.candidates(ctx)
    assert len(asked) == 1  # once, by the pool
    alone = HorizonPredictor(pool, f, pattern=pattern, is_write=is_write)  # a pattern pool apart: asked again
    want = alone.candidates(ctx)
    assert [(c.key, x.tolist()) for c, x in got] == [(c.key, x.tolist()) for c, x in want]
    assert any(x[FEATURES.index("pat")] for _, x in got)  # the pattern pool did offer candidates
