"""The product promise for sets and streams, property-tested over randomized sessions (virtual clock).

Random agents stream each turn's calls through a `StreamFeeder` (OpenAI chunk shape) and sometimes the
stream is cut (truncated, cancelled) or a call's JSON is broken; a random predictor proposes whole sets
of candidates (with horizon probabilities) over reads, writes, confirm-only and non-idempotent tools;
speculative runs randomly raise or hang. Whatever happens:

1. nothing ineligible runs ahead: a state-changing, confirm-only or non-idempotent tool runs only inside
   the agent's own call of it;
2. every real call gets the result of a successful run of exactly its (tool, canonical args), never older
   than the last state change the agent had seen;
3. a stream that ended without its call (truncated, cancelled, invalid JSON) leaves nothing served: no
   run that existed for that call when its stream ended is ever handed to a later call.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import random
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolcast.data.schema import RESPOND
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import DENY, ToolContract, read_only
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.stream import StreamFeeder
from toolcast.runtime.tools import Tool

KEYS = ("k:0", "k:1", "k:2")
CONTRACTS = {
    "r0": read_only(50.0),
    "r1": read_only(50.0, reads=["k:{x}"]),
    "w0": DENY,
    "w1": ToolContract(mutates=("k:{x}",)),
    "c0": ToolContract(side_effect_free=True, idempotent=True, stable_for=50, needs_confirmation=True),
    "n0": ToolContract(side_effect_free=True, idempotent=False, stable_for=50),
}
NAMES = tuple(CONTRACTS)
SESSION: contextvars.ContextVar[str] = contextvars.ContextVar("session")

calls = st.lists(st.tuples(st.sampled_from(NAMES), st.integers(0, 2)), min_size=1, max_size=3)
outcome = st.sampled_from(["complete", "complete", "truncated", "cancelled", "invalid"])
turn = st.tuples(st.floats(0.2, 3), calls, outcome)
plans = st.lists(st.lists(turn, min_size=1, max_size=8), min_size=1, max_size=3)


class World:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.version: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KEYS, 0))
        self.active: dict[tuple, int] = defaultdict(int)
        self.runs: list[dict] = []
        self.violations: list[str] = []

    def keys_of(self, tool: str, x: int) -> tuple[str, ...]:
        return (f"k:{x}",) if tool in ("r1", "w1") else KEYS

    def tool(self, name: str) -> Tool:
        async def fn(x: int):
            session = SESSION.get()
            real = self.active[(session, name, x)] > 0
            if not real and not CONTRACTS[name].speculable:
                self.violations.append(f"{name}({x}) ran ahead in {session}")
            run = {"n": len(self.runs), "session": session, "key": (name, x), "ok": False, "real": real,
                   "version": {k: self.version[session][k] for k in self.keys_of(name, x)}}
            self.runs.append(run)
            mode = "ok" if real else self.rng.choice(["ok", "ok", "ok", "raise", "hang"])
            if mode == "hang":
                await asyncio.Event().wait()
            await asyncio.sleep(self.rng.uniform(0.05, 2.0))
            if mode == "raise":
                raise RuntimeError("speculative run failed")
            run["ok"] = True
            return run

        schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
        return Tool(name, fn, schema, contract=CONTRACTS[name])


class SetPredictor:
    """Whole sets of candidates, any tool, with random next-call and horizon probabilities."""

    name = "sets"

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def predict(self, context, k=3):
        out = []
        for _ in range(self.rng.randint(0, 8)):
            tool = self.rng.choice((*NAMES, RESPOND))
            p = self.rng.random()
            out.append(CallPrediction(tool, {} if tool == RESPOND else {"x": self.rng.randint(0, 2)},
                                      p_tool=p, p_call=p * self.rng.random(), p_horizon=p))
        return out


def chunks(tool_calls: list[tuple[str, int]], outcome: str) -> list[dict]:
    out = [{"choices": [{"index": 0, "delta": {"content": "Let me check."}}]}]
    for j, (tool, x) in enumerate(tool_calls):
        args = json.dumps({"x": x})
        if outcome == "invalid" and j == 0:
            args = args[:-1]  # the closing brace never comes
        out.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": j, "id": f"c{j}", "function": {"name": tool, "arguments": args[:3]}}]}}]})
        out.append({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": j, "function": {"arguments": args[3:]}}]}}]})
    finish = "length" if outcome == "truncated" else "tool_calls"
    if outcome != "cancelled":
        out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return out


async def agent(rt: SpeculativeRuntime, world: World, session: str, plan: list) -> list[str]:
    SESSION.set(session)
    problems: list[str] = []
    forbidden: dict[tuple[str, int], set[int]] = defaultdict(set)

    async def real_call(tool: str, x: int) -> None:
        writes = CONTRACTS[tool].state_changing
        keys = world.keys_of(tool, x)
        if writes:
            for k in keys:
                world.version[session][k] += 1
        seen = {k: world.version[session][k] for k in keys}
        world.active[(session, tool, x)] += 1
        try:
            result = await rt.call(session, tool, {"x": x})
        except Exception as e:  # noqa: BLE001 - a real call must never fail here
            problems.append(f"{tool}({x}) raised {e!r}")
            return
        finally:
            world.active[(session, tool, x)] -= 1
        if writes:
            for k in keys:
                world.version[session][k] += 1
        if result["key"] != (tool, x) or not world.runs[result["n"]]["ok"]:
            problems.append(f"{tool}({x}) got run {result['n']} of {result['key']}")
        if result["n"] in forbidden[(tool, x)]:
            problems.append(f"{tool}({x}) was served run {result['n']}, left by a stream that ended")
        if any(v < seen.get(k, v) for k, v in result["version"].items()):
            problems.append(f"{tool}({x}) got a result older than a state change it had seen")

    rt.observe_user(session, "...")
    for think, turn_calls, how in plan:
        feeder = StreamFeeder(rt, session, throttle_s=0.1, min_chars=4)
        events = chunks(turn_calls, how)
        for ev in events:
            await asyncio.sleep(think / len(events))
            feeder.openai_chunk(ev)
        if how == "cancelled":
            feeder.abort()
        done = feeder.finish()
        issued = [(t, a["x"]) for t, a in done]
        for tool, x in set(turn_calls) - set(issued) if how in ("truncated", "cancelled") else ():
            # This call's stream ended without it: whatever ran for it so far must never be served. (A
            # call whose JSON never parsed was never started from the stream: test_stream.py.)
            forbidden[(tool, x)].update(r["n"] for r in world.runs if r["session"] == session
                                        and r["key"] == (tool, x) and not r["real"])
        if issued:
            await asyncio.gather(*(real_call(t, x) for t, x in issued))
        else:
            rt.observe(session, "assistant", "(the message was cut; the agent tries again)")
            rt.observe_user(session, "...")
    return problems


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=plans, seed=st.integers(0, 2**32 - 1), workers=st.integers(1, 4),
       cap=st.sampled_from([None, 0.5, 2.0]))
def test_sets_and_streams_are_safe(plans, seed, workers, cap):
    world = World(seed)
    config = RuntimeConfig(k=8, workers=workers, hedge_factor=1.5,
                           planner=PlannerConfig(threshold=-5.0, max_per_session=6, max_in_flight=8,
                                                 spec_per_call=cap))
    rt = SpeculativeRuntime([world.tool(n) for n in NAMES], SetPredictor(seed), config)

    async def main():
        results = await asyncio.gather(*(agent(rt, world, f"s{i}", p) for i, p in enumerate(plans)))
        await rt.aclose()
        return [p for r in results for p in r]

    problems = run_virtual(main())
    assert not world.violations, world.violations
    assert not problems, problems
