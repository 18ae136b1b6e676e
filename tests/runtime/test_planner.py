"""The planner: net utility, threshold, the price of waste under load, budgets, eligibility reasons."""

from __future__ import annotations

import math

import pytest

from toolcast.data.schema import RESPOND
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import DENY, read_only
from toolcast.runtime.planner import Estimates, Occupancy, Planner, PlannerConfig


def planner(**kw) -> Planner:
    p = Planner(PlannerConfig(**kw))
    p.estimates.seed_tool("get", 2.0)
    p.estimates.seed_llm(None, 3.0)
    return p


READ = read_only(100.0)


def pred(tool, p=0.9, free=None, **args):
    return CallPrediction(tool, dict(args), free=list(free or []), p_tool=p, p_call=p)


def contracts(name):
    return {"get": READ, "other": READ, "put": DENY}.get(name)


def test_utility_is_pastes_formula():
    p = planner(lambda0=1.0)
    # U = p*min(S, L) - (1-p)*lambda*C with S=2, L=3, C=S=2
    assert p.utility(0.7, "get", None, 1.0) == pytest.approx(0.7 * 2 - 0.3 * 1.0 * 2)
    assert p.utility(1.0, "get", None, math.inf) == pytest.approx(2.0)  # a sure call costs nothing
    p.estimates.seed_llm("fast-model", 0.5)
    assert p.utility(1.0, "get", "fast-model", 1.0) == pytest.approx(0.5)  # min(S, L)
    p.config.tool_cost["get"] = 10.0
    assert p.utility(0.5, "get", None, 1.0) == pytest.approx(0.5 * 2 - 0.5 * 10)


def test_price_of_waste_rises_with_load_and_is_infinite_when_real_calls_wait():
    p = planner(lambda0=1.0)
    assert p.price_of_waste(Occupancy(utilisation=0.0)) == 1.0
    assert p.price_of_waste(Occupancy(utilisation=0.5)) == 2.0
    assert p.price_of_waste(Occupancy(utilisation=1.0)) == math.inf
    assert p.price_of_waste(Occupancy(utilisation=0.1, queued=1)) == math.inf


def test_threshold_decides():
    p = planner(lambda0=1.0, threshold=0.0)
    choices = p.plan([pred("get", 0.6, x=1), pred("get", 0.4, x=2)], contract_of=contracts)
    by_x = {c.prediction.args["x"]: c for c in choices}
    assert by_x[1].launch and not by_x[2].launch
    assert by_x[2].reason == "utility below threshold"
    # Under load the same 0.6 candidate no longer pays.
    busy = p.plan([pred("get", 0.6, x=1)], contract_of=contracts, occupancy=Occupancy(utilisation=0.75))
    assert not busy[0].launch


@pytest.mark.parametrize("occupancy, reason", [
    (Occupancy(session=2), "session budget"),
    (Occupancy(per_tool={"get": 1}), "tool budget"),
    (Occupancy(total=3), "global budget"),
    (Occupancy(free_workers=0), "no idle worker"),
])
def test_budgets(occupancy, reason):
    p = planner(max_per_session=2, max_per_tool=1, max_in_flight=3)
    choices = p.plan([pred("get", 0.99, x=1)], contract_of=contracts, occupancy=occupancy)
    assert not choices[0].launch and choices[0].reason == reason


def test_budgets_count_the_launches_of_this_plan():
    p = planner(max_per_session=2)
    choices = p.plan([pred("get", 0.99, x=i) for i in range(4)], contract_of=contracts)
    assert sum(c.launch for c in choices) == 2
    assert [c.launch for c in choices][:2] == [True, True]  # best first


@pytest.mark.parametrize("candidate, reason", [
    (CallPrediction(RESPOND, p_tool=0.9, p_call=0.9), "respond"),
    (pred("get", 0.9, free=["x"]), "arguments not all known"),
    (pred("nope", 0.9), "unknown tool"),
    (pred("put", 0.99, x=1), "not side-effect-free"),
])
def test_ineligible_candidates_never_launch(candidate, reason):
    (choice,) = planner().plan([candidate], contract_of=contracts)
    assert not choice.launch and choice.reason == reason


def test_schema_check_and_dedup():
    p = planner()
    schema = {"get": {"type": "object", "properties": {"x": {}}, "required": ["x"],
                      "additionalProperties": False}}
    (c1,) = p.plan([pred("get", 0.9)], contract_of=contracts, schemas=schema)
    assert c1.reason == "missing required argument(s) x"
    (c2,) = p.plan([pred("get", 0.9, x=1, y=2)], contract_of=contracts, schemas=schema)
    assert c2.reason == "unknown argument(s) y"
    cs = p.plan([pred("get", 0.9, x=1), pred("get", 0.8, x=1)], contract_of=contracts)
    assert [c.reason for c in cs] == ["", "duplicate candidate"]
    (c3,) = p.plan([pred("get", 0.9, x=1)], contract_of=contracts, covered={("get", '{"x":1}')})
    assert c3.reason == "already running or finished"


def test_estimates_follow_observations():
    e = Estimates(alpha=0.5, default_tool_s=1.0, default_llm_s=3.0)
    assert e.service_time("t") == 1.0 and e.llm_time("m") == 3.0
    e.observe_tool("t", 4.0)
    assert e.service_time("t") == 4.0  # the first observation replaces the default
    e.observe_tool("t", 2.0)
    assert e.service_time("t") == 3.0
    e.seed_llm(None, 2.0)
    e.observe_llm("m", 4.0)
    assert e.llm_time("m") == 4.0 and e.llm_time("other") == 3.0  # other models use the pooled estimate


def test_config_validates():
    with pytest.raises(ValueError):
        PlannerConfig(lambda0=-1)
    with pytest.raises(ValueError):
        PlannerConfig(ewma_alpha=0)


def test_online_calibration_starts_at_the_predictors_p_and_follows_outcomes():
    from toolcast.runtime.planner import OnlineCalibration

    cal = OnlineCalibration(weight=5.0)
    assert cal.adjust(0.45) == pytest.approx(0.45)
    for i in range(100):
        cal.observe(0.45, hit=i % 10 != 0)  # p = 0.45 came true 90% of the time
    assert cal.adjust(0.45) == pytest.approx((90 + 5 * 0.45) / 105)
    assert cal.adjust(0.95) == pytest.approx(0.95)  # other bins untouched


def test_online_calibration_keeps_each_tools_table_shrunk_toward_the_shared_one():
    from toolcast.runtime.planner import OnlineCalibration

    cal = OnlineCalibration(weight=5.0)
    for _ in range(40):
        cal.observe(0.45, hit=True, tool="a")
        cal.observe(0.45, hit=False, tool="b")
    shared = cal.adjust(0.45)
    assert shared == pytest.approx((40 + 5 * 0.45) / 85)
    assert cal.adjust(0.45, "a") == pytest.approx((40 + 5 * shared) / 45)
    assert cal.adjust(0.45, "b") == pytest.approx((0 + 5 * shared) / 45)
    assert cal.adjust(0.45, "never seen") == shared


def test_online_calibration_changes_what_launches_only_when_enabled():
    for enabled in (False, True):
        p = planner(lambda0=1.0, online_calibration=enabled)
        for _ in range(50):
            p.calibration.observe(0.45, hit=True)
        choice = p.plan([pred("get", 0.45, x=1)], contract_of=contracts)[0]
        assert choice.launch is enabled
    # A state-changing tool stays ineligible whatever the calibration says.
    assert not p.plan([pred("put", 0.45, x=1)], contract_of=contracts)[0].eligible
