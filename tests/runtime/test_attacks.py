"""Issue 16: the runtime's promises attacked with chosen predictions, one test per class of attack.

Each test failed before its fix. The property tests in test_attack_properties.py attack the same
promises with generated sessions, tools, contracts, predictors and faults.
"""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import ToolContract, read_only
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.tools import Tool

ORDER_READ = read_only(100.0, reads=["order:{order_id}"])
ORDER_WRITE = ToolContract(mutates=("order:{order_id}",))


def at_first_point(fk, *preds):
    return fk.ScriptedPredictor(lambda ctx: list(preds) if len(ctx.events) == 1 else [])


def runtime(tools, predictor, **kw) -> SpeculativeRuntime:
    planner = kw.pop("planner", PlannerConfig())
    return SpeculativeRuntime(tools, predictor, RuntimeConfig(planner=planner, **kw))


class Fatal(BaseException):
    """What a tool's own code may raise that is no Exception (like SystemExit or KeyboardInterrupt)."""


@pytest.mark.parametrize("exc", [SystemExit(2), KeyboardInterrupt(), Fatal("boom")],
                         ids=["SystemExit", "KeyboardInterrupt", "custom"])
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_a_speculative_base_exception_never_reaches_the_agent(fk, exc, sync):
    def body(x):
        if x != 1:  # only the predictor's made-up arguments make it raise (argparse does: SystemExit)
            raise exc
        return {"x": x}

    async def async_body(x):
        await asyncio.sleep(0.1)
        return body(x)

    predictor = fk.ScriptedPredictor(lambda ctx: [fk.pred("get", 0.9, x=len(ctx.events) + 1)])
    rt = runtime([Tool("get", body if sync else async_body, contract=fk.READ)], predictor,
                 planner=PlannerConfig(max_per_session=1))

    async def agent():
        for _ in range(3):
            rt.observe_user("s", "hi")
            await asyncio.sleep(0.5)
        out = await rt.call("s", "get", {"x": 1})
        await asyncio.sleep(0.5)
        running = [e for e in rt.cache.entries() if e.state.value == "running"]
        await rt.aclose()
        return out, running

    out, running = asyncio.run(agent())
    assert out == {"x": 1}
    assert running == []  # no failed run holds the session's budget
    assert rt.stats.total().launched >= 3  # each decision point could launch again


def test_hanging_sync_speculative_runs_never_hold_up_the_agents_sync_call(fk):
    release = threading.Event()

    def read(x):
        if x != 0:
            release.wait(10)  # a read that hangs (on a lock, a dead socket)
        return x

    predictor = fk.ScriptedPredictor(lambda ctx: [fk.pred("read", 0.9, x=len(ctx.events) * 10 + i)
                                                  for i in range(2)])
    rt = runtime([Tool("read", read, contract=fk.READ)], predictor, workers=2, k=2)

    async def agent():
        try:
            for _ in range(6):  # each decision point cancels the last ones (losers) and launches two
                rt.observe_user("s", "hi")
                await asyncio.sleep(0.05)
            return await asyncio.wait_for(rt.call("s", "read", {"x": 0}), 5)
        finally:
            release.set()
            await rt.aclose()

    assert asyncio.run(agent()) == 0


def test_a_write_in_one_session_invalidates_another_sessions_read_of_the_same_resource(fk):
    tools = fk.FakeTools()
    predictor = fk.ScriptedPredictor(
        lambda ctx: [fk.pred("get_order", 0.9, order_id="A1")] if ctx.metadata["session"] == "a" else [])
    rt = runtime([tools.make("get_order", ORDER_READ), tools.make("cancel_order", ORDER_WRITE)], predictor)

    async def agent():
        rt.observe_user("a", "where is order A1?")
        rt.observe_user("b", "cancel order A1")
        await asyncio.sleep(2)  # a's read of A1 has finished, speculatively
        await rt.call("b", "cancel_order", {"order_id": "A1"})  # shared data: order A1 changes
        out = await rt.call("a", "get_order", {"order_id": "A1"})
        await rt.aclose()
        return out

    out = run_virtual(agent())
    get_runs = tools.runs("get_order")
    assert len(get_runs) == 2 and out["n"] == 3  # a's call ran after the write; never the stale result
    assert rt.stats.total().hits == 0


@pytest.mark.parametrize(("read_id", "write_id"), [(1, 1.0), (1.0, 1), (2, 2.0)])
def test_numerically_equal_arguments_name_one_resource(fk, read_id, write_id):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get_order", ORDER_READ), tools.make("cancel_order", ORDER_WRITE)],
                 at_first_point(fk, fk.pred("get_order", 0.9, order_id=read_id)))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2)
        rt.observe_external_call("s", "cancel_order", {"order_id": write_id})
        await rt.call("s", "get_order", {"order_id": read_id})
        await rt.aclose()

    run_virtual(agent())
    assert rt.stats.total().hits == 0 and len(tools.runs("get_order")) == 2


@pytest.mark.parametrize(("predicted", "called", "served"), [
    ({"x": 1}, {"x": 1.0}, True),              # one JSON number
    ({"x": [1, 2]}, {"x": (1, 2)}, True),      # one JSON array
    ({"x": 1}, {"x": True}, False),            # a boolean is not a number
    ({"x": 0}, {"x": False}, False),
    ({"x": {"1": "a"}}, {"x": {1: "a"}}, False),  # {1: ..} is not JSON: never conflated with {"1": ..}
    ({"x": "1"}, {"x": 1}, False),
])
def test_arguments_match_by_their_json_value(fk, predicted, called, served):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ)], at_first_point(fk, fk.pred("get", 0.9, **predicted)))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2)
        await rt.call("s", "get", called)
        await rt.aclose()

    run_virtual(agent())
    assert rt.stats.total().hits == int(served)
    assert len(tools.runs("get")) == (1 if served else 2)


def test_arguments_that_are_not_json_still_run(fk):
    seen = []

    def tool(x):
        seen.append(x)
        return "ok"

    async def agent():
        rt = SpeculativeRuntime([Tool("t", tool), Tool("r", tool, contract=fk.READ)])
        a = await rt.call("s", "t", {"x": {1, 2}})
        b = await rt.call("s", "r", {"x": b"bytes"})
        c = await rt.call("s", "r", {"x": math.nan})
        await rt.aclose()
        return a, b, c

    assert asyncio.run(agent()) == ("ok", "ok", "ok")
    assert len(seen) == 3


def test_abandoned_sessions_are_swept(fk):
    tools = fk.FakeTools()
    predictor = fk.ScriptedPredictor(lambda ctx: [fk.pred("get", 0.9, x=1)])
    rt = runtime([tools.make("get", read_only(10.0), duration=0.1)], predictor, session_idle_s=60.0)

    async def agent():
        for i in range(300):  # never ended
            rt.observe_user(f"s{i}", "hi")
            await asyncio.sleep(0.5)
        before = len(rt.cache.entries())
        await asyncio.sleep(120)
        rt.observe_user("late", "hi")  # any decision point sweeps what has expired
        await asyncio.sleep(0.5)
        return before, len(rt.cache.entries()), len(rt.session_ids())

    before, after, sessions = run_virtual(agent())
    assert before <= 25  # entries past their 10 s window went at each decision point: ~20 live
    assert after <= 1 and sessions == 1


def test_restarting_a_live_session_id_never_serves_the_previous_users_results(fk):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ)], at_first_point(fk, fk.pred("get", 0.9, x=1)))

    async def agent():
        rt.start_session("s", metadata={"user": "alice"})
        rt.observe_user("s", "hi")
        await asyncio.sleep(2)
        rt.start_session("s", metadata={"user": "bob"})  # the id is reused for someone else
        await rt.call("s", "get", {"x": 1})
        await rt.aclose()

    run_virtual(agent())
    assert rt.stats.total().hits == 0 and len(tools.runs("get")) == 2


def test_a_slow_predictor_never_stalls_the_agents_loop(fk):
    released = threading.Event()

    class Slow:
        name = "slow"
        stalled = False

        def predict(self, context, k=3):
            Slow.stalled = not released.wait(3)  # the HTTP client waiting on a slow server
            return []

    async def get(x):
        return x

    async def agent():
        rt = SpeculativeRuntime([Tool("get", get, contract=fk.READ)], Slow())
        rt.observe_user("s", "hi")
        await asyncio.sleep(0.01)
        out = await rt.call("s", "get", {"x": 1})
        released.set()
        await rt.aclose()
        return out

    assert asyncio.run(agent()) == 1
    assert not Slow.stalled


@pytest.mark.parametrize("garbage", [
    CallPrediction("get", {"x": 1}, p_tool=math.nan, p_call=math.nan),
    CallPrediction("get", ["x", 1], p_tool=0.9, p_call=0.9),  # type: ignore[arg-type]
    CallPrediction("get", {"x": 1}, free="x", p_tool=0.9, p_call=0.9),  # type: ignore[arg-type]
    CallPrediction(7, {"x": 1}, p_tool=0.9, p_call=0.9),  # type: ignore[arg-type]
    CallPrediction("get", {"x": {1, 2}}, p_tool=0.9, p_call=0.9),
    {"tool": "get", "args": {"x": 1}},
    None,
    CallPrediction("get", {"x": 1}, p_tool=0.9, p_call=0.9, p_horizon="0.9"),  # type: ignore[arg-type]
    CallPrediction("get", {"x": 1}, p_tool=0.9, p_call=0.9, p_horizon=math.nan),
], ids=["nan", "list-args", "str-free", "int-tool", "set-arg", "dict", "none", "str-horizon", "nan-horizon"])
def test_garbage_predictions_never_launch_nor_leak_workers(fk, garbage):
    tools = fk.FakeTools()
    good = fk.pred("get", 0.9, x=2)
    predictor = fk.ScriptedPredictor(lambda ctx: [garbage] if len(ctx.events) == 1 else [good])
    rt = runtime([tools.make("get", fk.READ)], predictor, workers=1)

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2)
        launched_on_garbage = rt.stats.total().launched
        rt.observe_user("s", "and?")
        await asyncio.sleep(2)
        await rt.aclose()
        return launched_on_garbage

    assert run_virtual(agent()) == 0
    assert [r.args for r in tools.runs("get")] == [{"x": 2}]  # the worker was free for the good one


def test_a_predictor_returning_no_list_is_no_speculation(fk):
    rt = runtime([fk.FakeTools().make("get", fk.READ)], fk.ScriptedPredictor(lambda ctx: 42))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(1)
        await rt.aclose()

    run_virtual(agent())
    assert rt.stats.total().launched == 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"stable_for": math.nan}, "stable_for"),
    ({"stable_for": math.inf}, "stable_for"),
    ({"stable_for": -1.0}, "stable_for"),
    ({"stable_for": "10"}, "stable_for"),
    ({"side_effect_free": True, "idempotent": True, "stable_for": 5, "mutates": ("order:*",)}, "mutates"),
])
def test_contradictory_contracts_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ToolContract(**kwargs)


def test_two_tools_with_one_name_are_refused():
    with pytest.raises(ValueError, match="'get'.*registered"):
        SpeculativeRuntime([Tool("get", lambda: 1), Tool("get", lambda: 2)])


@pytest.mark.parametrize("p", [math.nan, math.inf, -math.inf])
def test_the_planner_never_prices_a_non_finite_p_as_certain(p):
    from toolcast.runtime.planner import Planner

    planner = Planner()
    assert planner.p_of(CallPrediction("get", {}, p_tool=p, p_call=p)) == 0.0


def test_a_thread_lane_counts_cancelled_runs_until_their_thread_ends():
    from toolcast.runtime.tools import ThreadLane

    lane = ThreadLane(1, "test")
    started, release = threading.Event(), threading.Event()
    running = lane.submit(lambda: started.set() or release.wait(10))
    queued = lane.submit(lambda: None)
    assert (lane.busy, lane.free) == (2, -1)
    assert started.wait(5)
    assert not running.cancel()  # a hung thread cannot be cancelled: it stays busy
    assert queued.cancel()  # one that never started gives its place back at once
    assert lane.busy == 1
    release.set()
    running.result(5)
    deadline = threading.Event()
    for _ in range(100):
        if lane.busy == 0:
            break
        deadline.wait(0.01)
    assert lane.busy == 0
    lane.shutdown()


@pytest.mark.parametrize("end", ["aclose", "invalidated"])
def test_a_run_cancelled_before_its_first_step_gives_its_worker_back(end):
    """A speculative run retired in the tick it was launched never starts its coroutine; its worker must
    still come back (the flaky `pool.busy == 1` of test_base_exceptions_from_speculative_runs...)."""

    class Reads1:
        name = "reads1"

        def predict(self, context, k=3):
            return [CallPrediction("read", {"x": 1}, p_tool=0.9, p_call=0.9)]

    async def read(x):
        await asyncio.sleep(0.01)
        return x

    async def write():
        return "ok"

    async def agent():
        tools = [Tool("read", read, contract=read_only(50.0)), Tool("write", write)]
        rt = SpeculativeRuntime(tools, Reads1(), RuntimeConfig(workers=2, predict_in_thread=False,
                                                               planner=PlannerConfig(threshold=-5.0)))
        rt.observe_user("s", "hi")
        for _ in range(50):
            await asyncio.sleep(0)
            if list(rt.cache.running()):
                break  # launched this tick, not started yet
        assert rt.pool.busy == 1
        if end == "invalidated":
            await rt.call("t", "write", {})  # undeclared mutates: every read is invalidated
            await asyncio.sleep(0.05)
            busy = rt.pool.busy
        await rt.aclose()
        return busy if end == "invalidated" else rt.pool.busy

    assert run_virtual(agent()) == 0
