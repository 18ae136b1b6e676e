"""The speculative runtime on a virtual clock: hits, joins, misses, invalidation, TTL, failures, priority."""

from __future__ import annotations

import asyncio
import time

import pytest

from toolcast.runtime.contracts import ToolContract, read_only
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime, UnknownToolError
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.tools import Tool


def first_point(fk, *preds):
    """A predictor that proposes `preds` at the first decision point only (after the user's message)."""
    return fk.ScriptedPredictor(lambda ctx: list(preds) if len(ctx.events) == 1 else [])


def runtime(tools, predictor, **kw) -> SpeculativeRuntime:
    planner = kw.pop("planner", PlannerConfig())
    return SpeculativeRuntime(tools, predictor, RuntimeConfig(planner=planner, **kw))


def test_a_finished_speculative_result_is_handed_over(fk):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ)], fk.ScriptedPredictor([fk.pred("get", 0.9, x=1)]))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2.0)  # the LLM thinks longer than the tool takes
        out = await rt.call("s", "get", {"x": 1})
        await rt.aclose()
        return out

    out = run_virtual(agent())
    assert out["args"] == '{"x":1}'
    assert len(tools.runs("get")) == 1  # ran once, ahead of the call
    total = rt.stats.total()
    assert (total.launched, total.hits, total.joins, total.misses) == (1, 1, 0, 0)
    assert total.saved_s == pytest.approx(1.0)


def test_a_call_joins_the_run_in_flight(fk):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ, duration=1.0)], first_point(fk, fk.pred("get", 0.9, x=1)))

    async def agent():
        loop = asyncio.get_running_loop()
        rt.observe_user("s", "hi")
        await asyncio.sleep(0.25)
        await rt.call("s", "get", {"x": 1})
        return loop.time()

    done_at = run_virtual(agent())
    assert done_at == pytest.approx(1.0)  # virtual time: the call waited only for the rest of the run
    assert len(tools.runs("get")) == 1 and rt.stats.total().joins == 1


def test_different_arguments_are_never_served(fk):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ)], fk.ScriptedPredictor([fk.pred("get", 0.9, x=1)]))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2.0)
        out = await rt.call("s", "get", {"x": 2})
        await rt.aclose()
        return out

    assert run_virtual(agent())["args"] == '{"x":2}'
    assert [r.args for r in tools.runs("get")] == [{"x": 1}, {"x": 2}]
    total = rt.stats.total()
    assert total.hits == 0 and total.misses == 1 and total.wasted_s == pytest.approx(1.0)


def test_state_changing_tools_never_run_ahead(fk):
    tools = fk.FakeTools()
    deny_all = [tools.make("put"), tools.make("confirm", ToolContract(
        side_effect_free=True, idempotent=True, stable_for=10, needs_confirmation=True))]
    rt = runtime(deny_all, fk.ScriptedPredictor([fk.pred("put", 1.0, x=1), fk.pred("confirm", 1.0)]))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(5.0)
        assert tools.log == []  # nothing ran while the LLM thought
        await rt.call("s", "put", {"x": 1})

    run_virtual(agent())
    assert [r.tool for r in tools.log] == ["put"]


@pytest.mark.parametrize("mutates, served", [(None, False), (("item:{x}",), False), (("item:9",), True)])
def test_a_state_changing_call_invalidates_overlapping_reads(fk, mutates, served):
    tools = fk.FakeTools()
    reads = read_only(100.0, reads=["item:{x}"])
    writer = ToolContract(mutates=mutates)
    predictor = fk.ScriptedPredictor(lambda ctx: [fk.pred("get", 0.9, x=1)] if len(ctx.events) == 1 else [])
    rt = runtime([tools.make("get", reads), tools.make("put", writer, duration=0.1)], predictor)

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2.0)  # get(x=1) has finished ahead
        await rt.call("s", "put", {"x": 1})
        await asyncio.sleep(1.0)
        await rt.call("s", "get", {"x": 1})

    run_virtual(agent())
    assert (len(tools.runs("get")) == 1) is served
    assert rt.stats.total().hits == int(served)


def test_stale_results_expire(fk):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", read_only(stable_for=1.5))], first_point(fk, fk.pred("get", 0.9, x=1)))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(3.0)  # finished at 1.0, fresh until 1.5
        await rt.call("s", "get", {"x": 1})

    run_virtual(agent())
    assert len(tools.runs("get")) == 2 and rt.stats.total().hits == 0


def test_user_reported_state_change_drops_everything(fk):
    tools = fk.FakeTools()
    script = fk.ScriptedPredictor(lambda ctx: [fk.pred("get", 0.9, x=1)] if len(ctx.events) in (1, 3) else [])
    rt = runtime([tools.make("get", fk.READ)], script)

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2.0)
        rt.observe("s", "assistant", "please toggle it")
        rt.observe("s", "user", "done, I toggled it", changed_state=True)  # launches again, fresh
        await asyncio.sleep(0.5)
        await rt.call("s", "get", {"x": 1})

    run_virtual(agent())
    assert len(tools.runs("get")) == 2 and rt.stats.total().joins == 1
    assert rt.stats.tool("get").dropped["invalidated"] == 1


@pytest.mark.parametrize("mode", ["raise", "hang"])
def test_a_failing_speculative_run_never_touches_the_real_call(fk, mode):
    tools = fk.FakeTools()
    first = {"done": False}

    def behave(inv):
        if first["done"]:
            return "ok"
        first["done"] = True
        return mode

    rt = runtime([tools.make("get", fk.READ, behave=behave)], first_point(fk, fk.pred("get", 0.9, x=1)),
                 hedge_factor=2.0)

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(0.5 if mode == "hang" else 2.0)
        out = await rt.call("s", "get", {"x": 1})
        await rt.aclose()
        return out

    out = run_virtual(agent())
    assert out["args"] == '{"x":1}'
    runs = tools.runs("get")
    assert len(runs) == 2 and runs[1].outcome == "ok"
    assert runs[0].outcome == ("raised" if mode == "raise" else "cancelled")
    assert rt.stats.total().served == 0


def test_real_calls_preempt_speculation_for_workers(fk):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ, duration=5.0), tools.make("other", fk.READ, duration=1.0)],
                 first_point(fk, fk.pred("get", 0.95, x=1)), workers=1)

    async def agent():
        loop = asyncio.get_running_loop()
        rt.observe_user("s", "hi")
        await asyncio.sleep(0.5)
        await rt.call("s", "other", {})
        return loop.time()

    assert run_virtual(agent()) == pytest.approx(1.5)  # the real call did not wait for the speculative get
    assert tools.runs("get")[0].outcome == "cancelled"
    assert rt.stats.tool("get").dropped["preempted"] == 1


def test_a_joined_speculative_run_is_not_preempted_by_another_sessions_real_call(fk):
    """Once the agent waits on a speculative run it is that agent's real call: pre-empting it would make
    the agent wait longer than without speculation."""
    tools = fk.FakeTools()
    def script(ctx):
        return [fk.pred("get", 0.95, x=1)] if ctx.metadata["session"] == "a" and len(ctx.events) == 1 else []

    rt = runtime([tools.make("get", fk.READ, duration=2.0), tools.make("other", fk.READ, duration=1.0)],
                 fk.ScriptedPredictor(script), workers=1)

    async def agent_a():
        loop = asyncio.get_running_loop()
        rt.observe_user("a", "hi")
        await asyncio.sleep(0.5)
        await rt.call("a", "get", {"x": 1})  # joins the run started at 0
        return loop.time()

    async def agent_b():
        loop = asyncio.get_running_loop()
        rt.observe_user("b", "hi")
        await asyncio.sleep(1.0)
        await rt.call("b", "other", {})  # no idle worker: must wait, not pre-empt a's joined run
        return loop.time()

    async def both():
        return await asyncio.gather(agent_a(), agent_b())

    done_a, done_b = run_virtual(both())
    assert done_a == pytest.approx(2.0)  # the speculative run's end, not later
    assert done_b == pytest.approx(3.0)
    assert rt.stats.tool("get").joins == 1 and not rt.stats.tool("get").dropped


def test_losers_are_cancelled_at_the_next_decision_point(fk):
    tools = fk.FakeTools()
    script = lambda ctx: [fk.pred("get", 0.9, x=len(ctx.events))]  # noqa: E731
    rt = runtime([tools.make("get", fk.READ, duration=10.0), tools.make("other", fk.READ, duration=0.1)],
                 fk.ScriptedPredictor(script))

    async def agent():
        rt.observe_user("s", "hi")  # predicts get(x=1)
        await asyncio.sleep(0.5)
        await rt.call("s", "other", {})  # the LLM did something else: next point predicts get(x=2)
        await asyncio.sleep(0.5)
        await rt.aclose()

    run_virtual(agent())
    assert [r.outcome for r in tools.runs("get")] == ["cancelled", "cancelled"]
    assert rt.stats.tool("get").dropped["loser"] == 1


def test_predictor_sees_the_session_and_a_broken_predictor_changes_nothing(fk):
    tools = fk.FakeTools()
    seen = fk.ScriptedPredictor([])
    rt = runtime([tools.make("get", fk.READ)], seen)

    async def agent():
        rt.start_session("s", metadata={"domain": "d"}, model="m1")
        rt.observe_user("s", "hello")
        await asyncio.sleep(1)
        await rt.call("s", "get", {"x": 1})
        await asyncio.sleep(0)

    run_virtual(agent())
    last = seen.contexts[-1]
    assert [e.type for e in last.events] == ["message", "tool_call"]
    assert last.events[1].output is not None and last.metadata["session"] == "s"
    assert last.metadata["model"] == "m1" and [t.name for t in last.tools] == ["get"]

    rt2 = runtime([tools.make("get", fk.READ)], fk.FailingPredictor())

    async def agent2():
        rt2.observe_user("s", "hello")
        await asyncio.sleep(1)
        return await rt2.call("s", "get", {"x": 1})

    assert run_virtual(agent2())["args"] == '{"x":1}'


def test_unknown_tools_and_sync_tools():
    def add(a, b):
        time.sleep(0.001)
        return a + b

    async def agent():
        rt = SpeculativeRuntime([Tool("add", add)])
        with pytest.raises(UnknownToolError):
            await rt.call("s", "nope", {})
        out = await rt.call("s", "add", {"a": 1, "b": 2})
        await rt.aclose()
        return out, rt.stats.table()

    out, table = asyncio.run(agent())
    assert out == 3 and "add" in table and "total" in table


def test_mcp_tools_and_external_calls(fk):
    async def lookup(q):
        await asyncio.sleep(1)
        return q

    trusted = Tool.from_mcp("lookup", lookup, annotations={"readOnlyHint": True}, trusted=True)
    untrusted = Tool.from_mcp("lookup2", lookup, annotations={"readOnlyHint": True}, trusted=False)
    assert trusted.contract.speculable and not untrusted.contract.speculable
    assert trusted.spec.annotations == {"readOnlyHint": True}

    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ)], first_point(fk, fk.pred("get", 0.9, x=1)))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2.0)
        rt.observe_external_call("s", "toggle", {})  # someone else changed the state: unknown tool, deny
        await rt.call("s", "get", {"x": 1})

    run_virtual(agent())
    assert len(tools.runs("get")) == 2 and rt.stats.total().hits == 0


def test_predict_in_a_thread(fk):
    calls = []

    async def get(x):
        calls.append(x)
        await asyncio.sleep(0.01)
        return x

    async def agent():
        predictor = first_point(fk, fk.pred("get", 0.9, x=1))
        config = RuntimeConfig(predict_in_thread=True)
        rt = SpeculativeRuntime([Tool("get", get, contract=fk.READ)], predictor, config)
        rt.observe_user("s", "hi")
        for _ in range(200):  # wait (briefly, on the real clock) until the speculative run has finished
            if rt.cache.entries("s") and all(e.state.value == "done" for e in rt.cache.entries("s")):
                break
            await asyncio.sleep(0.005)
        out = await rt.call("s", "get", {"x": 1})
        await rt.aclose()
        return out, rt.stats.total()

    out, total = asyncio.run(agent())
    assert out == 1 and calls == [1] and total.hits == 1


def test_candidates_are_scored_as_their_speculative_results_would_have_fared(fk):
    """Every eligible candidate, launched or not, is one outcome for the online calibration: a hit when
    the agent makes that call while its result would still be servable (here: any later turn)."""
    tools = fk.FakeTools()
    preds = [fk.pred("get", 0.35, x=1), fk.pred("get", 0.15, x=2), fk.pred("put", 0.9, x=1)]
    rt = runtime([tools.make("get", fk.READ), tools.make("put")], fk.ScriptedPredictor(preds))

    async def agent():
        for _ in range(3):
            rt.observe_user("s", "hi")
            await asyncio.sleep(2.0)
            await rt.call("s", "get", {"x": 1})
            await asyncio.sleep(1.0)  # the LLM writes its answer
            rt.observe("s", "assistant", "done")
        await rt.aclose()

    run_virtual(agent())
    cal = rt.planner.calibration
    # 6 decision points (each user message, each call's result); the x=1 candidate came true after each
    # but the last, which the session's end scores as a miss. The state-changing candidate is no outcome.
    assert (cal.seen[3], cal.hits[3]) == (6, 5)
    assert (cal.seen[1], cal.hits[1]) == (6, 0)
    assert sum(cal.seen) == 12


def test_horizon_candidates_are_scored_per_tool_and_by_their_horizon_p_too(fk):
    """A candidate with a horizon p is an outcome for the horizon table (not the p(call) one: its horizon p
    prices its later claims), filed under its tool: a read this agent never makes is priced down for that
    tool alone."""
    from toolcast.predictor.protocol import CallPrediction

    tools = fk.FakeTools()
    preds = [CallPrediction("get", {"x": 1}, p_tool=0.2, p_call=0.2, p_horizon=0.85),
             CallPrediction("look", {"x": 1}, p_tool=0.2, p_call=0.2, p_horizon=0.85)]
    rt = runtime([tools.make("get", fk.READ), tools.make("look", fk.READ)], fk.ScriptedPredictor(preds))

    async def agent():
        for _ in range(4):
            rt.observe_user("s", "hi")
            await asyncio.sleep(2.0)
            await rt.call("s", "get", {"x": 1})
            rt.observe("s", "assistant", "done")
        await rt.aclose()

    run_virtual(agent())
    h = rt.planner.horizon_calibration
    assert sum(h.seen) > 0 and sum(rt.planner.calibration.seen) == 0
    get_seen, look_seen = sum(h.by_tool["get"][1]), sum(h.by_tool["look"][1])
    assert get_seen == look_seen and sum(h.by_tool["look"][0]) == 0 < sum(h.by_tool["get"][0])
    assert h.adjust(0.85, "look") < h.adjust(0.85) < h.adjust(0.85, "get")
    # the planner prices with the corrected horizon p (online calibration is on by default), and the
    # candidate's own p(call) as it is
    assert rt.planner.p_horizon_of(preds[1]) == h.adjust(0.85, "look")
    assert rt.planner.p_of(preds[1]) == 0.2


def test_a_state_change_scores_the_candidates_it_would_have_invalidated_as_misses(fk):
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", fk.READ), tools.make("put")], first_point(fk, fk.pred("get", 0.35, x=1)))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(2.0)
        await rt.call("s", "put", {"x": 1})  # undeclared effects: a result of get(x=1) would be gone
        await rt.call("s", "get", {"x": 1})
        await rt.aclose()

    run_virtual(agent())
    cal = rt.planner.calibration
    assert (cal.seen[3], cal.hits[3]) == (1, 0)


def test_a_candidate_called_after_its_freshness_window_is_a_miss(fk):
    """Expiry is scored at the call too, not only at the next decision point: a long LLM turn can outlast
    a result's window, and a result that expired before the agent asked for it would not have served."""
    tools = fk.FakeTools()
    rt = runtime([tools.make("get", read_only(stable_for=5.0))], first_point(fk, fk.pred("get", 0.35, x=1)))

    async def agent():
        rt.observe_user("s", "hi")
        await asyncio.sleep(10.0)  # the LLM thinks past the 5 s window
        await rt.call("s", "get", {"x": 1})
        await rt.aclose()

    run_virtual(agent())
    cal = rt.planner.calibration
    assert (cal.seen[3], cal.hits[3]) == (1, 0)
