"""Replaying a trace through the real `SpeculativeRuntime`: an agent that repeats what the log did.

For each decision point of the trace (`Trace.decision_points`) the replayed agent "thinks" for the
LLM time of that point (`timing.py`), then issues the turn's calls (parallel calls together) through
`runtime.call`, and reports every other event (user and system messages) with `runtime.observe`. The
tools are stand-ins that sleep their service time and return the output the log recorded for the same
(tool, canonical args), so the runtime, its predictor and its speculative runs see what the agent saw.

User time is replayed on the clock but not counted in task time: a user message arrives after the
user's recorded time (0 where the log has no timestamps), so the time gaps the predictor sees are the
log's, and task time is the agent's own (LLM plus waiting for tools). Speculation gains nothing from the
user's time (nothing is predicted between the agent's reply and the user's message). A user
message that came with the user's own state-changing tool calls (tau2 telecom) invalidates the session's
speculative results, as a real user acting on shared state would.

The same code runs on the virtual clock (`simulate.py`: discrete-event, exact) and on the real clock with
time scaled down (`benchmarks/live_check.py`), which is what makes the two comparable.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from toolcast.data.schema import (
    RESPOND,
    Context,
    Message,
    ToolCall,
    ToolSpec,
    Trace,
    canonical_args,
    decision_positions,
)
from toolcast.predictor.protocol import CallPrediction, Predictor
from toolcast.runtime.canonical import canonical
from toolcast.runtime.contracts import ContractPolicy
from toolcast.runtime.latency import LatencyProfile, LLMTiming
from toolcast.runtime.planner import Estimates
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.stats import RuntimeStats
from toolcast.runtime.timing import ToolTime, TraceTiming, llm_timing, model_of, recorded_tool_s, tool_seconds
from toolcast.runtime.tools import Tool


class OraclePredictor:
    """Knows every call in advance: at each decision point it returns the turn the agent will issue."""

    name = "oracle"

    def __init__(self) -> None:
        self._labels: dict[str, dict[int, list[ToolCall]]] = {}

    def register(self, session: str, trace: Trace) -> None:
        self._labels[session] = dict(decision_positions(trace.events))

    def forget(self, session: str) -> None:
        self._labels.pop(session, None)

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        calls = self._labels.get(context.metadata.get("session"), {}).get(len(context.events))
        if not calls:
            return [CallPrediction(RESPOND, p_tool=1.0, p_call=1.0)]
        return [CallPrediction(c.tool, dict(c.args), p_tool=1.0, p_call=1.0) for c in calls]


@dataclass
class TraceResult:
    trace_id: str
    task_s: float
    """Agent time: LLM time plus waiting for tools (user time passes on the clock but is not counted)."""
    llm_s: float
    stall_s: float
    """Time the agent waited for its tool calls."""
    calls: int
    user_s: float = 0.0
    """User time replayed on the clock, left out of task_s."""


@dataclass
class PolicyRun:
    name: str
    traces: list[TraceResult]
    stats: RuntimeStats
    llm_recorded_share: float = 0.0


@dataclass
class _Replaying:
    trace: Trace
    timing: TraceTiming
    cursor: int = 0
    """Index of the next event the replayed agent reaches; tool stand-ins answer from here on."""
    outputs: dict[tuple[str, str], list[tuple[int, ToolCall]]] = field(default_factory=dict)
    user_s: float = 0.0
    scale: float = 1.0


_CURRENT: contextvars.ContextVar[_Replaying] = contextvars.ContextVar("toolcast_replaying")
"""The trace a task is replaying. Tasks copy the context they were created in, so the speculative runs a
session's calls set off see that session's trace too."""


def _stand_in(name: str, profile: LatencyProfile, tool_time: ToolTime, scale: float):
    """A tool that sleeps its service time and returns the log's output for the same call."""

    async def run(**args):
        r = _CURRENT.get()
        seen = r.outputs.get((name, _match_key(args)), [])
        call = next((c for j, c in seen if j >= r.cursor), seen[-1][1] if seen else None)
        recorded = recorded_tool_s(call) if call is not None else None
        # The logged call's own args seed its time: a speculative run (given the canonical value, 7 for
        # 7.0) takes as long as the agent's real call of it would.
        cargs = canonical_args(call.args if call is not None else args)
        await asyncio.sleep(tool_seconds(r.trace.trace_id, name, cargs, profile, tool_time, recorded) * scale)
        return (call.output or "") if call is not None else ""

    run.__name__ = name
    return run


def _match_key(args: dict) -> str:
    """Calls are the same call by the runtime's canonical form (`canonical.py`: 7 and 7.0 are one), the
    form a served call is matched by; args with none (not JSON) by their text."""
    return canonical(args) or canonical_args(args)


def replay_tools(traces: Iterable[Trace], contracts: ContractPolicy, profile: LatencyProfile,
                 tool_time: ToolTime = "profile", scale: float = 1.0) -> list[Tool]:
    """One stand-in per tool name over all traces, with its replay contract and its schema: the one a
    trace listed, else inferred from the calls' arguments (logs such as coding agents' transcripts list
    no tools; without a schema a predictor has no argument slots to fill)."""
    from toolcast.predictor.features.catalog import build_catalog

    traces = list(traces)
    schemas = {d["name"]: d.get("parameters") or {} for d in build_catalog(traces).get("", [])}
    return [Tool(n, _stand_in(n, profile, tool_time, scale), schema, contract=contracts.for_tool(n))
            for n, schema in schemas.items()]


def _session_specs(trace: Trace) -> list[ToolSpec | str]:
    """The tools the trace lists, and by name (the stand-in's inferred schema) those it calls unlisted."""
    specs: dict[str, ToolSpec | str] = {s.name: s for s in trace.tools}
    for c in trace.calls:
        specs.setdefault(c.tool, c.tool)
    return list(specs.values())


async def replay_trace(rt: SpeculativeRuntime, trace: Trace, session: str, contracts: ContractPolicy,
                       timing: TraceTiming, *, scale: float = 1.0,
                       oracle: OraclePredictor | None = None, stream: LLMTiming | None = None) -> TraceResult:
    loop = asyncio.get_running_loop()
    outputs: dict[tuple[str, str], list[tuple[int, ToolCall]]] = defaultdict(list)
    for j, e in enumerate(trace.events):
        if isinstance(e, ToolCall):
            outputs[e.tool, _match_key(e.args)].append((j, e))
    state = _Replaying(trace, timing, 0, dict(outputs), scale=scale)
    token = _CURRENT.set(state)
    metadata = {"source": trace.source, **trace.metadata}
    rt.start_session(session, tools=_session_specs(trace), metadata=metadata, model=model_of(trace))
    if oracle is not None:
        oracle.register(session, trace)
    events, n = trace.events, len(trace.events)
    t0 = loop.time()
    llm = stall = 0.0
    i = 0
    try:
        for p, calls in decision_positions(events):
            i = await _report(rt, session, contracts, events, i, p, state)
            think = timing.llm_s[p] * scale
            if stream is not None:
                msg = events[p] if p < n and isinstance(events[p], Message) else None
                text = msg.text if msg is not None and msg.role == "assistant" else ""
                await _stream_message(rt, session, text, calls, think, stream, scale)
            else:
                await asyncio.sleep(think)
            llm += think
            if p < n and isinstance(events[p], Message) and events[p].role == "assistant":
                rt.observe(session, "assistant", events[p].text, tokens=events[p].tokens)
                i = p + 1
            if calls:
                state.cursor = i
                start = loop.time()
                await asyncio.gather(*(rt.call(session, c.tool, c.args) for c in calls),
                                     return_exceptions=True)
                stall += loop.time() - start
                i += len(calls)
        await _report(rt, session, contracts, events, i, n, state)
        return TraceResult(trace.trace_id, loop.time() - t0 - state.user_s, llm, stall, len(trace.calls),
                           state.user_s)
    finally:
        _CURRENT.reset(token)
        if oracle is not None:
            oracle.forget(session)
        await rt.end_session(session)


async def _stream_message(rt: SpeculativeRuntime, session: str, text: str, calls: list[ToolCall],
                          think: float, llm: LLMTiming, scale: float) -> None:
    """Think for `think` seconds while feeding the message's stream, as the stream timing model places
    its text and calls, through the `StreamFeeder` an agent would use (`stream.py`)."""
    from toolcast.runtime.stream import StreamFeeder
    from toolcast.runtime.stream_timing import stream_schedule

    plan = stream_schedule(text, calls, think / scale if scale else think, llm)
    feed: list[tuple[float, int, object]] = [(t * scale, 0, chunk) for t, chunk in plan.text_chunks]
    for j, (first, complete) in enumerate(plan.calls):
        feed.append((first * scale, 1, (j, calls[j].tool, "")))
        feed.append((complete * scale, 2, (j, None, canonical_args(calls[j].args))))
    feed.sort(key=lambda x: (x[0], x[1]))
    feeder = StreamFeeder(rt, session)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for at, kind, item in feed:
        wait = t0 + at - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if kind == 0:
            feeder.text_delta(item)
        else:
            j, name, arguments = item
            feeder.call_delta(j, name=name, arguments=arguments)
    rest = t0 + think - loop.time()
    if rest > 0:
        await asyncio.sleep(rest)
    feeder.finish()


async def _report(rt: SpeculativeRuntime, session: str, contracts: ContractPolicy, events: list, i: int,
                  end: int, state: _Replaying) -> int:
    """Report events[i:end], which no decision point covers (messages; a stray call runs as it is)."""
    for j in range(i, end):
        e = events[j]
        state.cursor = j
        if isinstance(e, Message):
            wait = state.timing.user_s.get(j, 0.0) * state.scale if e.role == "user" else 0.0
            if wait > 0:
                await asyncio.sleep(wait)
                state.user_s += wait
            user_calls = e.extra.get("user_tool_calls") or []
            changed = any(contracts.for_tool(str(c.get("name"))).state_changing for c in user_calls
                          if isinstance(c, dict))
            rt.observe(session, e.role, e.text, tokens=e.tokens, changed_state=changed)
        else:
            try:
                await rt.call(session, e.tool, e.args)
            except Exception:  # noqa: BLE001 - a stand-in never raises; a replay must not stop on one call
                pass
    return end


async def run_policy_async(name: str, traces: list[Trace], predictor: Predictor | None, *,
                           contracts: ContractPolicy, profile: LatencyProfile, config: RuntimeConfig,
                           prior: Estimates | None = None, sessions: int = 1,
                           tool_time: ToolTime = "profile", scale: float = 1.0,
                           stream: bool = False) -> PolicyRun:
    """Replay `traces` with `sessions` of them in flight at once, all through one runtime and pool.

    `scale` multiplies every replayed duration (and the prior estimates): 1 on the virtual clock, small
    on the real clock so a live run finishes in seconds. Each run starts from a copy of `prior`. With
    `stream`, each message streams to the runtime while the LLM thinks (`stream_timing.py`).
    """
    oracle = predictor if isinstance(predictor, OraclePredictor) else None
    config = replace(config, shared_state=False)  # each replayed trace acts on a world of its own
    pc = config.planner
    estimates = Estimates(pc.ewma_alpha, pc.default_tool_s, pc.default_llm_s)
    if prior is not None:
        estimates.tool.update({k: v * scale for k, v in prior.tool.items()})
        estimates.llm.update({k: v * scale for k, v in prior.llm.items()})
    rt = SpeculativeRuntime(replay_tools(traces, contracts, profile, tool_time, scale), predictor, config,
                            estimates=estimates)
    timings = [llm_timing(t, profile) for t in traces]
    results: list[TraceResult | None] = [None] * len(traces)
    queue = iter(range(len(traces)))

    async def worker(slot: int) -> None:
        for idx in queue:
            sid = f"{slot}:{idx}:{traces[idx].trace_id}"
            results[idx] = await replay_trace(rt, traces[idx], sid, contracts, timings[idx], scale=scale,
                                              oracle=oracle, stream=profile.llm if stream else None)

    try:
        await asyncio.gather(*(worker(s) for s in range(max(1, sessions))))
    finally:
        await rt.aclose()
    shares = [tm.share_recorded for tm in timings]
    return PolicyRun(name, [r for r in results if r is not None], rt.stats,
                     sum(shares) / len(shares) if shares else 0.0)
