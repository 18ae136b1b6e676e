"""Speculating sets: the horizon utility, the cap per real call, the horizon and stream oracles."""

from __future__ import annotations

import pytest

from toolcast.data.schema import ToolCall
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import read_only
from toolcast.runtime.latency import LatencyProfile, LLMTiming
from toolcast.runtime.oracles import horizon_sets
from toolcast.runtime.planner import Occupancy, Planner, PlannerConfig
from toolcast.runtime.replay_contracts import replay_policy
from toolcast.runtime.simulate import SimConfig, simulate
from toolcast.runtime.stream_timing import stream_schedule

SLOW = LatencyProfile.from_dict({"name": "slow", "tools": [{"match": "*", "dist": "fixed", "seconds": 3.0}],
                                 "llm": {"ttft": 0.5, "per_token": 0.01}})


def planner(**kw) -> Planner:
    p = Planner(PlannerConfig(**kw))
    p.estimates.seed_tool("get", 2.0)
    p.estimates.seed_llm(None, 1.0)
    return p


def test_horizon_utility_counts_later_claims_as_whole_service_time():
    p = planner()
    # next-call only: p*min(S, L) - (1-p)*lambda*C
    assert p.utility(0.2, "get", None, 1.0) == pytest.approx(0.2 * 1.0 - 0.8 * 2.0)
    # p_h = 0.8: 0.2*min(S, L) + (0.8-0.2)*S - 0.2*lambda*C
    assert p.utility(0.2, "get", None, 1.0, 0.8) == pytest.approx(0.2 + 0.6 * 2.0 - 0.2 * 2.0)
    # a horizon p below the next-call p is raised to it (the next call is within the horizon)
    assert p.utility(0.5, "get", None, 1.0, 0.1) == p.utility(0.5, "get", None, 1.0)


def test_a_set_launches_within_budgets_and_the_cap_per_real_call():
    p = planner(max_per_session=10, max_in_flight=10, max_per_tool=10)
    preds = [CallPrediction("get", {"x": i}, p_tool=0.1, p_call=0.1, p_horizon=0.9) for i in range(6)]
    contract = read_only(100.0)
    launched = [c for c in p.plan(preds, contract_of=lambda _n: contract) if c.launch]
    assert len(launched) == 6  # a low next-call p but a high horizon p: the whole set is worth it
    capped = p.plan(preds, contract_of=lambda _n: contract, occupancy=Occupancy(allowance=2))
    assert sum(c.launch for c in capped) == 2
    assert {c.reason for c in capped if not c.launch} == {"speculation per real call"}
    with pytest.raises(ValueError, match="spec_per_call"):
        PlannerConfig(spec_per_call=-1)


def test_horizon_sets_stop_at_the_next_write(fk):
    t = fk.shop_trace()
    sets = horizon_sets(t, replay_policy())
    first = min(sets)
    # After the user's message, both reads' values (u1, A1) are in the context; the read after the
    # cancel is not offered before it (the write would invalidate it).
    assert [(c.tool, c.args) for c in sets[first]] == [("get_order", {"order_id": "A1"})]
    assert all(c.tool != "cancel_order" for cs in sets.values() for c in cs)


def test_the_horizon_oracle_beats_the_next_call_oracle_when_tools_are_slow(fk):
    traces = [fk.shop_trace(f"t{i}", f"g{i}", order=f"A{i}") for i in range(3)]
    s = simulate(traces, {}, profile=SLOW).summary()
    assert s["oracle_horizon"]["mean_task_s"] < s["oracle"]["mean_task_s"] < s["serial"]["mean_task_s"]
    assert s["oracle_horizon"]["saving_captured"] > 1.0
    for m in s.values():
        assert m["launched"] >= 0


def test_stream_policies_keep_the_old_keys_and_never_lose_to_serial(fk):
    traces = [fk.shop_trace(f"t{i}", f"g{i}", order=f"A{i}") for i in range(3)]
    s = simulate(traces, {}, profile=SLOW, config=SimConfig(stream=True, sessions=2, workers=2)).summary()
    assert {"serial", "oracle", "oracle_horizon", "oracle_stream"} <= set(s)
    assert s["oracle_stream"]["mean_task_s"] <= s["serial"]["mean_task_s"]
    assert s["oracle_stream"]["launched"] > 0


def test_stream_schedule_places_text_then_calls_inside_the_generation():
    llm = LLMTiming(ttft=0.5, per_token=0.02, chars_per_token=4)
    calls = [ToolCall("c1", 1, "get", {"x": 1}), ToolCall("c2", 1, "get", {"x": 2})]
    plan = stream_schedule("Let me check both.", calls, 5.0, llm)
    times = [t for t, _ in plan.text_chunks] + [t for pair in plan.calls for t in pair]
    assert times == sorted(times) and 0 <= times[0] and times[-1] == pytest.approx(5.0)
    assert "".join(c for _, c in plan.text_chunks) == "Let me check both."
    # a generation too short for its tokens at the profile's rate is spread evenly over it
    short = stream_schedule("x" * 400, calls, 0.1, llm)
    assert short.calls[-1][1] == pytest.approx(0.1) and short.text_chunks[0][0] >= 0
    assert stream_schedule("", [], 1.0, llm).calls == []
