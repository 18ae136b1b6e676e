"""Issue 16, property-tested: the runtime's promises under generated attacks.

Whatever the predictor proposes and however the speculative runs end:
1. BaseExceptions (SystemExit, KeyboardInterrupt, custom ones) from speculative runs never reach the agent,
   and no failed run keeps holding budget;
2. hanging sync and async speculative runs never hold up the agent's own calls;
3. a write in any session invalidates every session's speculative reads of the resource it names;
4. arguments match, and name resources, by their JSON value (1 == 1.0, True != 1, {1: ..} != {"1": ..});
5. sessions that are never ended leave nothing behind once idle, however many there were;
6. slow, raising and garbage predictors (NaN p, non-dict args, non-predictions) launch nothing ill-formed,
   leak no worker, and never stall or fail the agent's calls.
"""

from __future__ import annotations

import asyncio
import math
import random
import threading
from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.canonical import canonical
from toolcast.runtime.contracts import ToolContract, read_only
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.runtime import SWEEP_BATCH, RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.tools import Tool

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))


class CustomFatal(BaseException):
    pass


class CustomInterrupt(KeyboardInterrupt):
    pass


class CustomExit(SystemExit):
    pass


EXCEPTIONS = st.sampled_from([SystemExit, KeyboardInterrupt, CustomFatal, CustomInterrupt, CustomExit,
                              RuntimeError, GeneratorExit])


class Guesser:
    """Proposes `read(x)` for x drawn from `xs` (the agent's real calls are always x = 0)."""

    name = "guesser"

    def __init__(self, xs: list[int], seed: int):
        self.xs, self.rng = xs, random.Random(seed)

    def predict(self, context, k=3):
        return [CallPrediction("read", {"x": self.rng.choice(self.xs)}, p_tool=0.9, p_call=0.9)
                for _ in range(k)]


def _config(workers: int, **kw) -> RuntimeConfig:
    kw.setdefault("predict_timeout_s", 5.0)
    return RuntimeConfig(k=3, workers=workers, hedge_factor=1.5,
                         planner=PlannerConfig(threshold=-5.0, max_per_session=3, max_in_flight=6), **kw)


# ---- 1. BaseExceptions ----------------------------------------------------------------------------


@FAST
@given(exc=EXCEPTIONS, sync=st.booleans(), seed=st.integers(0, 2**16), steps=st.integers(1, 5),
       workers=st.integers(1, 3))
def test_base_exceptions_from_speculative_runs_never_reach_the_agent(exc, sync, seed, steps, workers):
    def body(x):
        if x != 0:
            raise exc("made-up arguments")
        return {"x": x}

    async def async_body(x):
        await asyncio.sleep(0.001)
        return body(x)

    rt = SpeculativeRuntime([Tool("read", body if sync else async_body, contract=read_only(50.0))],
                            Guesser([0, 1, 2, 3], seed), _config(workers))

    async def agent():
        out = []
        for _ in range(steps):
            rt.observe_user("s", "hi")
            await asyncio.sleep(0.01)
            out.append(await asyncio.wait_for(rt.call("s", "read", {"x": 0}), 10))
        await asyncio.sleep(0.01)
        held = [e for e in rt.cache.running() if e.state.value != "running"]
        await rt.aclose()
        return out, held

    out, held = asyncio.run(agent())
    assert out == [{"x": 0}] * steps
    assert held == []
    assert rt.pool.busy == 0


# ---- 2. hanging sync and async tools --------------------------------------------------------------


@SLOW
@given(sync=st.booleans(), seed=st.integers(0, 2**16), steps=st.integers(2, 6), workers=st.integers(1, 3))
def test_hanging_speculative_runs_never_hold_up_the_agents_calls(sync, seed, steps, workers):
    release = threading.Event()

    def read(x):
        if x != 0:
            release.wait(20)
        return x

    async def async_read(x):
        if x != 0:
            await asyncio.Event().wait()
        return x

    rt = SpeculativeRuntime([Tool("read", read if sync else async_read, contract=read_only(50.0))],
                            Guesser([0, 1, 2, 3, 4, 5], seed), _config(workers))

    async def agent():
        try:
            out = []
            for _ in range(steps):
                rt.observe_user("s", "hi")
                await asyncio.sleep(0.01)
                out.append(await asyncio.wait_for(rt.call("s", "read", {"x": 0}), 10))
            return out
        finally:
            release.set()
            await rt.aclose()

    assert asyncio.run(agent()) == [0] * steps


# ---- 3. cross-session writes on shared resource keys -----------------------------------------------

KEYS = [f"k:{i}" for i in range(3)]


class SharedWorld:
    """One version per resource, shared by every session; each read returns the versions it saw."""

    def __init__(self):
        self.version = dict.fromkeys(KEYS, 0)

    def tools(self) -> list[Tool]:
        async def read(x):
            seen = self.version[f"k:{x}"]
            await asyncio.sleep(0.5)
            return {"x": x, "version": seen}

        async def write(x):
            self.version[f"k:{x}"] += 1
            await asyncio.sleep(0.2)
            self.version[f"k:{x}"] += 1
            return {"ok": True}

        return [Tool("read", read, contract=read_only(100.0, reads=["k:{x}"])),
                Tool("write", write, contract=ToolContract(mutates=("k:{x}",)))]


class ReadEverything:
    name = "reads"

    def predict(self, context, k=3):
        return [CallPrediction("read", {"x": x}, p_tool=0.9, p_call=0.9) for x in range(k)]


session_plan = st.lists(st.tuples(st.sampled_from(["read", "write"]), st.integers(0, 2),
                                  st.floats(0, 2)), min_size=1, max_size=6)


@FAST
@given(plans=st.lists(session_plan, min_size=2, max_size=4), workers=st.integers(2, 6))
def test_a_write_in_any_session_invalidates_every_sessions_reads(plans, workers):
    world = SharedWorld()
    rt = SpeculativeRuntime(world.tools(), ReadEverything(), _config(workers))
    problems: list[str] = []

    async def agent(sid: str, plan):
        rt.observe_user(sid, "hi")
        for tool, x, think in plan:
            await asyncio.sleep(think)
            before = world.version[f"k:{x}"]
            out = await rt.call(sid, tool, {"x": x})
            if tool == "read" and out["version"] < before:
                problems.append(f"{sid} read k:{x} v{out['version']} after seeing v{before}")

    async def main():
        await asyncio.gather(*(agent(f"s{i}", p) for i, p in enumerate(plans)))
        await rt.aclose()

    run_virtual(main())
    assert not problems, problems


# ---- 4. numerically equal arguments of different types ---------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.5, -1.5, 2.0, 1e3])
    | st.text(max_size=3),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3),
    max_leaves=6)


def alias(v):
    """The same JSON value in other Python types: ints as floats, lists as tuples."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return float(v)
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, list):
        return tuple(alias(x) for x in v)
    return {k: alias(x) for k, x in v.items()}


def impostor(v):
    """A different value Python or json.dumps may confuse with it: True for 1, "1" for 1, {1:} for {"1":}."""
    if v is True or v is False:
        return int(v)
    if isinstance(v, (int, float)):
        return v == 1 if v in (0, 1) else str(v)
    if isinstance(v, str):
        return {v: 1} if v else 0
    if isinstance(v, dict) and v:
        k = next(iter(v))
        return {(int(k) if k.isdigit() else 1): v[k], **{x: y for x, y in v.items() if x != k}}
    return [v]


@FAST
@given(value=json_values, same=st.booleans())
def test_arguments_match_and_name_resources_by_json_value(value, same):
    called = alias(value) if same else impostor(value)
    equal = canonical({"x": value}) == canonical({"x": called}) and canonical({"x": value}) is not None
    runs: list = []

    async def read(x):
        runs.append(x)
        await asyncio.sleep(0.1)
        return canonical(x)

    async def write(x):
        await asyncio.sleep(0.1)

    class Once:
        name = "once"

        def predict(self, context, k=3):
            first = len(context.events) == 1
            return [CallPrediction("read", {"x": value}, p_tool=0.9, p_call=0.9)] if first else []

    tools = [Tool("read", read, contract=read_only(100.0, reads=["item:{x}"])),
             Tool("write", write, contract=ToolContract(mutates=("item:{x}",)))]

    async def served_after(write_first: bool) -> tuple[int, object]:
        rt = SpeculativeRuntime(tools, Once(), _config(4))
        rt.observe_user("s", "hi")
        await asyncio.sleep(1)
        if write_first:  # a write naming the same resource in the other form
            await rt.call("s", "write", {"x": called})
        out = await rt.call("s", "read", {"x": called})
        await rt.aclose()
        return rt.stats.total().hits, out

    hits, out = run_virtual(served_after(False))
    assert hits == int(equal)
    assert out == canonical(called)  # served or not, the result is the one of the call's own value
    hits, _ = run_virtual(served_after(True))
    assert hits == 0 or not equal  # the write invalidated the read of the equal resource


# ---- 5. abandoned sessions at scale ----------------------------------------------------------------


@SLOW
@given(n=st.integers(50, 1_500), ttl=st.sampled_from([1.0, 10.0, 100.0]), idle=st.sampled_from([5.0, 60.0]),
       gap=st.sampled_from([0.01, 0.1]))
def test_sessions_never_ended_leave_nothing_behind(n, ttl, idle, gap):
    async def read(x):
        await asyncio.sleep(0.05)
        return x

    class One:
        name = "one"

        def predict(self, context, k=3):
            return [CallPrediction("read", {"x": 1}, p_tool=0.9, p_call=0.9)]

    rt = SpeculativeRuntime([Tool("read", read, contract=read_only(ttl))], One(),
                            RuntimeConfig(workers=8, session_idle_s=idle,
                                          planner=PlannerConfig(max_in_flight=8, max_per_tool=8)))

    async def main():
        peak = 0
        for i in range(n):
            rt.observe_user(f"s{i}", "hi")
            await asyncio.sleep(gap)
            peak = max(peak, len(rt.cache.entries()), len(rt.session_ids()))
        await asyncio.sleep(max(ttl, idle) + 1)
        for _ in range(n // SWEEP_BATCH + 1):  # each decision point ends a bounded batch of idle sessions
            rt.observe_user("last", "hi")
            await asyncio.sleep(0.1)
        return peak, len(rt.cache.entries()), rt.session_ids()

    peak, entries, sessions = run_virtual(main())
    bound = (max(ttl, idle) / gap) + 2  # what the freshness window and the idle limit let live at once
    assert peak <= bound
    assert entries <= 1 and sessions == ["last"]


# ---- 6. slow and garbage predictors ----------------------------------------------------------------

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.integers(-2, 2),
                    st.just("0.9"), st.none())
ARGS = st.one_of(st.dictionaries(st.sampled_from(["x", "y"]), json_values, max_size=2),
                 st.just({"x": {1, 2}}), st.just({"x": math.nan}), st.just({1: 2}), st.just(["x", 1]),
                 st.just("x=1"), st.none(), st.just({"x": object()}))
GARBAGE = st.one_of(
    st.builds(CallPrediction, tool=st.sampled_from(["read", "write", "nope", 7, None, ""]), args=ARGS,
              free=st.one_of(st.just([]), st.just("x"), st.just([1]), st.none()), p_tool=NUMBERS,
              p_call=NUMBERS),
    st.builds(CallPrediction, tool=st.just("read"), args=ARGS, p_tool=st.just(0.9),
              p_call=st.sampled_from([0.9, math.nan, math.inf, -math.inf])),
    st.just({"tool": "read", "args": {"x": 1}}), st.none(), st.integers(), st.text(max_size=3))


def acceptable(p) -> bool:
    """The oracle: a prediction the runtime may act on (a read with JSON arguments and a finite p)."""
    return (isinstance(p, CallPrediction) and p.tool == "read" and isinstance(p.args, dict)
            and canonical(p.args) is not None and isinstance(p.free, list) and p.free == []
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in (p.p_call, p.p_tool)))


class Garbage:
    """Answers `answers`; every other call raises `failure`; with `block`, each prediction waits until
    the agent's next call has returned (or 1 s, noted as a stall: the predictor held up the agent)."""

    name = "garbage"

    def __init__(self, answers, failure, block):
        self.answers, self.failure, self.block, self.i = answers, failure, block, 0
        self.released = threading.Event()
        self.stalled = False

    def predict(self, context, k=3):
        self.i += 1
        if self.block:
            self.stalled |= not self.released.wait(1.0)
        if self.failure is not None and self.i % 2 == 0:
            raise self.failure("predictor broke")
        return self.answers


@SLOW
@given(answers=st.one_of(st.lists(GARBAGE, max_size=5), GARBAGE), failure=st.none() | EXCEPTIONS,
       block=st.booleans(), workers=st.integers(1, 3), steps=st.integers(1, 4))
def test_slow_and_garbage_predictors_never_touch_the_agent(answers, failure, block, workers, steps):
    runs: dict[str, list] = defaultdict(list)

    async def read(x=None, y=None):
        runs["read"].append({"x": x, "y": y})
        await asyncio.sleep(0.005)
        return "read"

    async def write(x=None, y=None):
        runs["write"].append({"x": x, "y": y})
        return "write"

    tools = [Tool("read", read, contract=read_only(50.0)), Tool("write", write)]
    predictor = Garbage(answers, failure, block)
    rt = SpeculativeRuntime(tools, predictor, _config(workers, predict_timeout_s=2.0))

    async def agent():
        out = []
        for _ in range(steps):
            predictor.released.clear()
            rt.observe_user("s", "hi")
            await asyncio.sleep(0.01)
            out.append(await asyncio.wait_for(rt.call("s", "read", {"x": 0}), 10))
            predictor.released.set()
            await asyncio.sleep(0.01)
            out.append(await asyncio.wait_for(rt.call("s", "write", {"x": 0}), 10))
        await asyncio.sleep(0.05)
        busy = rt.pool.busy
        await rt.aclose()
        return out, busy

    out, busy = asyncio.run(agent())
    assert out == ["read", "write"] * steps
    assert busy == 0  # no leaked worker
    assert not predictor.stalled  # the agent's loop went on while the predictor took its time
    assert runs["write"] == [{"x": 0, "y": None}] * steps  # a write ran only when the agent called it
    ahead = [r for r in runs["read"] if r != {"x": 0, "y": None}]
    allowed = [canonical({"y": None, **p.args}) for p in (answers if isinstance(answers, list) else [answers])
               if acceptable(p)]
    assert all(canonical(r) in allowed for r in ahead), (ahead, allowed)
