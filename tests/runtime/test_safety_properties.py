"""The product promise, property-tested over randomized sessions on the virtual clock.

Random agents (user messages, thinking, parallel turns over read, write, confirm-only and non-idempotent
tools), a random predictor that also proposes state-changing and confirm-only calls, random tool times,
and speculative runs that randomly raise or hang. Whatever happens:

1. a state-changing or otherwise not-allowed tool runs only inside the agent's own call of it;
2. every real call gets the result of a successful run of exactly its (tool, canonical args);
3. no result is older than the last state change the agent had seen when it made the call;
4. speculative runs that raise or hang never reach the agent: its calls all return normally.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolcast.data.schema import RESPOND, canonical_args
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import DENY, ToolContract, read_only
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.tools import Tool

KEYS = ("k:0", "k:1", "k:2")


def contracts(stable_for: float) -> dict[str, ToolContract]:
    return {
        "r0": read_only(stable_for),                        # reads everything (undeclared)
        "r1": read_only(stable_for, reads=["k:{x}"]),      # reads one key
        "w0": DENY,                                         # writes everything (undeclared)
        "w1": ToolContract(mutates=("k:{x}",)),             # writes one key
        "c0": ToolContract(side_effect_free=True, idempotent=True, stable_for=50, needs_confirmation=True),
        "n0": ToolContract(side_effect_free=True, idempotent=False, stable_for=50),
    }


TOOL_NAMES = ("r0", "r1", "w0", "w1", "c0", "n0")
SESSION: contextvars.ContextVar[str] = contextvars.ContextVar("session")

calls = st.lists(st.tuples(st.sampled_from(TOOL_NAMES), st.integers(0, 2)), min_size=1, max_size=3)
# A turn: the LLM thinks for a while, then issues its calls together (a parallel turn).
turn = st.tuples(st.just("turn"), st.floats(0, 3), calls)
steps = st.lists(st.one_of(st.just(("user",)), turn, turn, turn), min_size=1, max_size=12)


class World:
    """Per-session resource versions, the agent's in-flight calls, and every tool invocation."""

    def __init__(self, seed: int, contract: dict[str, ToolContract]):
        self.rng = random.Random(seed)
        self.contract = contract
        self.version: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KEYS, 0))
        self.active: dict[tuple, int] = defaultdict(int)
        self.runs: list[dict] = []
        self.turns: dict[str, list[list[tuple[str, int]]]] = {}
        """Each session's planned turns, for the predictor to peek at."""
        self.violations: list[str] = []

    def keys_of(self, tool: str, x: int) -> tuple[str, ...]:
        return (f"k:{x}",) if tool in ("r1", "w1") else KEYS

    def tool(self, name: str) -> Tool:
        async def fn(x: int):
            session = SESSION.get()
            real = self.active[(session, name, x)] > 0
            if not real and not self.contract[name].speculable:
                self.violations.append(f"{name}({x}) ran ahead in {session}")
            run = {"n": len(self.runs), "tool": name, "args": canonical_args({"x": x}), "ok": False,
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

        return Tool(name, fn, {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
                    contract=self.contract[name])


class RandomPredictor:
    """Proposes the session's next calls (often: it peeks) or any call, with random probabilities."""

    name = "random"

    def __init__(self, seed: int, world: World):
        self.rng = random.Random(seed)
        self.world = world

    def predict(self, context, k=3):
        out = []
        turns = self.world.turns.get(context.metadata["session"], [])
        done = len({e.turn for e in context.events if e.type == "tool_call"})
        upcoming = turns[done] if done < len(turns) else []
        for _ in range(self.rng.randint(0, 4)):
            p = self.rng.random()
            if upcoming and self.rng.random() < 0.7:
                tool, x = self.rng.choice(upcoming)
            else:
                tool, x = self.rng.choice((*TOOL_NAMES, RESPOND)), self.rng.randint(0, 2)
            out.append(CallPrediction(tool, {} if tool == RESPOND else {"x": x}, p_tool=p, p_call=p))
        return sorted(out, key=lambda c: -c.p_call)


async def agent(rt: SpeculativeRuntime, world: World, session: str, plan: list) -> list[str]:
    SESSION.set(session)
    problems: list[str] = []

    async def real_call(tool: str, x: int) -> None:
        writes = world.contract[tool].state_changing
        keys = world.keys_of(tool, x)
        if writes:
            for k in keys:
                world.version[session][k] += 1
        seen = {k: world.version[session][k] for k in keys}
        world.active[(session, tool, x)] += 1
        try:
            result = await rt.call(session, tool, {"x": x})
        except Exception as e:  # noqa: BLE001 - property 4: a real call must never fail here
            problems.append(f"{tool}({x}) raised {e!r}")
            return
        finally:
            world.active[(session, tool, x)] -= 1
        if writes:
            for k in keys:
                world.version[session][k] += 1
        if (result["tool"], result["args"]) != (tool, canonical_args({"x": x})):
            problems.append(f"{tool}({x}) got the result of {result['tool']}{result['args']}")
        if not world.runs[result["n"]]["ok"]:
            problems.append(f"{tool}({x}) got the result of a failed run")
        stale = {k: v for k, v in result["version"].items() if v < seen.get(k, v)}
        if stale:
            problems.append(f"{tool}({x}) got a result older than a state change it had seen: {stale}")

    world.turns[session] = [step[2] for step in plan if step[0] == "turn"]
    for step in plan:
        if step[0] == "user":
            rt.observe_user(session, "...")
        else:
            await asyncio.sleep(step[1])
            await asyncio.gather(*(real_call(t, x) for t, x in step[2]))
    return problems


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=st.lists(steps, min_size=1, max_size=2), seed=st.integers(0, 2**32 - 1),
       stable_for=st.sampled_from([0.5, 3.0, 50.0]), workers=st.integers(1, 4),
       threshold=st.sampled_from([-5.0, 0.0]))
def test_speculation_is_safe(plans, seed, stable_for, workers, threshold):
    world = World(seed, contracts(stable_for))
    config = RuntimeConfig(k=4, workers=workers, hedge_factor=1.5,
                           planner=PlannerConfig(threshold=threshold, max_per_session=3, max_in_flight=4))
    rt = SpeculativeRuntime([world.tool(n) for n in TOOL_NAMES], RandomPredictor(seed, world), config)

    async def main():
        results = await asyncio.gather(*(agent(rt, world, f"s{i}", plan) for i, plan in enumerate(plans)))
        await rt.aclose()
        return [p for r in results for p in r]

    problems = run_virtual(main())
    assert not world.violations, world.violations
    assert not problems, problems
