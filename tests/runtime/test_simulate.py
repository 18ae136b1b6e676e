"""The replay simulator: serial vs oracle vs predictors on the virtual clock, with the live runtime inside."""

from __future__ import annotations

import asyncio
import json

import pytest

from toolcast.data.schema import Context
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.latency import LatencyProfile
from toolcast.runtime.replay import OraclePredictor
from toolcast.runtime.simclock import SimulationStalled, run_virtual
from toolcast.runtime.simulate import SimConfig, simulate

FIXED = LatencyProfile.from_dict({"name": "fixed", "tools": [{"match": "*", "dist": "fixed", "seconds": 1.0}],
                                  "llm": {"ttft": 0.5, "per_token": 0.01}})


class Perfect(OraclePredictor):
    """The oracle under another name: a predictor that is always right."""

    name = "perfect"


class WrongArgs:
    """Right tools, wrong arguments: every launch is waste."""

    name = "wrong"

    def __init__(self):
        self.oracle = OraclePredictor()

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        return [CallPrediction("get_order", {"order_id": "nope"}, p_tool=0.9, p_call=0.9),
                CallPrediction("get_user", {"user_id": "nope"}, p_tool=0.9, p_call=0.9)]


def traces(fk, n=6, **kw):
    return [fk.shop_trace(f"t{i}", f"g{i}", order=f"A{i}", **kw) for i in range(n)]


def test_oracle_bounds_and_a_perfect_predictor_captures_it_all(fk):
    report = simulate(traces(fk), {"perfect": Perfect(), "wrong": WrongArgs()}, profile=FIXED)
    s = report.summary()
    assert set(s) == {"serial", "oracle", "oracle_horizon", "perfect", "wrong"}
    # Serial: 6 decision points x 2 s of LLM + 4 calls x 1 s of tools.
    assert s["serial"]["mean_task_s"] == pytest.approx(16.0)
    assert s["serial"]["mean_stall_s"] == pytest.approx(4.0)
    # Three reads run ahead and finish while the LLM thinks; the write (cancel_order) cannot.
    assert s["oracle"]["mean_task_s"] == pytest.approx(13.0)
    assert s["oracle"]["saving_captured"] == 1.0 and s["oracle"]["hit_rate"] == 0.75
    assert s["perfect"]["saving_captured"] == 1.0
    assert s["wrong"]["saving_captured"] == 0.0 and s["wrong"]["hit_rate"] == 0.0
    assert s["wrong"]["wasted_tool_s"] > 0 and s["wrong"]["waste_per_saved_s"] is None
    for name in s:
        assert report.runs[name].stats.tool("cancel_order").launched == 0  # a write never runs ahead
    assert s["serial"]["llm_time_recorded_share"] == 1.0
    assert "oracle" in report.table() and "fixed" in report.table()


def test_untimed_logs_take_llm_time_from_the_profile(fk):
    s = simulate(traces(fk, 2, timed=False), {}, profile=FIXED).summary()
    assert s["serial"]["llm_time_recorded_share"] == 0.0
    assert s["serial"]["mean_llm_s"] < 6 * 2.0  # profile LLM time for these short turns, not 2 s each


class AlwaysGetOrder:
    name = "always"

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        order = context.events[0].text.split()[3].rstrip(",")
        return [CallPrediction("get_order", {"order_id": order}, p_tool=0.9, p_call=0.9)]


def test_a_user_acting_on_shared_state_invalidates_replayed_reads(fk):
    """tau2 telecom: the user's own calls arrive with the user's message; state-changing ones invalidate."""
    acting = simulate(traces(fk, 2, user_calls=[{"name": "toggle_data", "arguments": {}}]),
                      {"always": AlwaysGetOrder()}, profile=FIXED)
    reading = simulate(traces(fk, 2, user_calls=[{"name": "check_status", "arguments": {}}]),
                       {"always": AlwaysGetOrder()}, profile=FIXED)
    dropped = {name: r.runs["always"].stats.tool("get_order").dropped["invalidated"]
               for name, r in (("acting", acting), ("reading", reading))}
    assert dropped["acting"] > dropped["reading"]


def test_concurrent_sessions_on_a_small_pool_never_lose_to_serial(fk):
    """16 sessions, 2 workers: speculation only takes idle workers, so it cannot slow real calls down."""
    many = traces(fk, 32)
    config = SimConfig(sessions=16, workers=2)
    s = simulate(many, {"wrong": WrongArgs(), "perfect": Perfect()}, profile=FIXED, config=config).summary()
    assert s["serial"]["mean_stall_s"] > 4.0  # the pool is contended
    assert s["wrong"]["mean_task_s"] <= s["serial"]["mean_task_s"]
    assert s["perfect"]["mean_task_s"] <= s["serial"]["mean_task_s"]


def test_recorded_tool_times_can_be_used(fk):
    t = fk.shop_trace()
    for c in t.calls:
        c.t_end = c.t_start + 0.5
    s = simulate([t], {}, profile=FIXED, config=SimConfig(tool_time="recorded")).summary()
    assert s["serial"]["mean_stall_s"] == pytest.approx(2.0)


def test_summary_is_plain_json(fk):
    s = simulate(traces(fk, 2), {"perfect": Perfect()}, profile=FIXED).summary()
    again = json.loads(json.dumps(s))
    for m in again.values():
        assert {"mean_task_s", "saving_captured", "waste_per_saved_s", "p95_task_s", "hit_rate"} <= set(m)


def test_simulate_rejects_reserved_names_and_no_traces(fk):
    with pytest.raises(ValueError, match="built-in policy"):
        simulate(traces(fk, 1), {"oracle": Perfect()})
    with pytest.raises(ValueError, match="no traces"):
        simulate([], {})


def test_virtual_clock_jumps_and_detects_a_stall():
    async def sleeper():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        done, _ = await asyncio.wait({asyncio.ensure_future(asyncio.sleep(10))}, timeout=2)
        return loop.time(), bool(done)

    assert run_virtual(sleeper()) == (3602.0, False)

    async def stuck():
        await asyncio.Event().wait()

    with pytest.raises(SimulationStalled):
        run_virtual(stuck())


def test_user_time_is_replayed_on_the_clock_but_not_counted_as_task_time(fk):
    """The predictor sees the log's gap before a user message (a feature), task time stays the agent's."""
    seen: list[Context] = []

    class Recorder:
        name = "recorder"

        def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
            seen.append(context)
            return []

    report = simulate(traces(fk, 1), {"recorder": Recorder()}, profile=FIXED)
    assert report.summary()["serial"]["mean_task_s"] == pytest.approx(16.0)  # as without user time
    assert report.runs["recorder"].traces[0].user_s == pytest.approx(1.0)  # "yes" came 1 s after the ask
    after_yes = next(c for c in seen if getattr(c.events[-1], "text", None) == "yes")
    gap = after_yes.events[-1].t_end - after_yes.events[-2].t_end
    assert gap == pytest.approx(1.0)


def test_a_call_served_from_speculation_returns_the_logged_output_when_its_args_are_integral_floats(fk):
    """The runtime hands speculative runs the arguments' canonical JSON value (`order_id` 7.0 runs as 7);
    the replayed tool must still find the log's output for that call, or the agent sees "" instead."""
    t = fk.shop_trace()
    for c in t.calls:
        c.args = {k: 7.0 for k in c.args}
    seen: list[Context] = []

    class RecordingPerfect(Perfect):
        def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
            seen.append(context)
            return super().predict(context, k)

    report = simulate([t], {"perfect": RecordingPerfect()}, profile=FIXED)
    assert report.runs["perfect"].stats.tool("get_order").hits >= 1
    served = [e.output for e in seen[-1].events if hasattr(e, "output")]
    assert served == [c.output for c in t.calls]
