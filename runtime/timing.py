"""Timings of a trace for replay: how long the LLM took at each decision point, and each tool call.

LLM time comes from the log where it has timestamps (tau2 messages carry them; an assistant message
with both `t_start` and `t_end` gives its generation time directly, otherwise the gap from the last
timed event before it), else from the latency profile: time-to-first-token plus per-token time times
the tokens produced (the log's count, else the length of the text and calls it produced).

Tool time comes from the latency profile by default: the logs' own tool timings describe their test
harnesses (tau2 answers from an in-memory database in under a millisecond), not production tools.
`tool_time="recorded"` uses a call's recorded duration where it has one instead.

`fit_estimates` seeds the planner's S (per tool) and L (per model) from training traces the same way.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from toolcast.data.active_time import tool_active_s
from toolcast.data.schema import Message, ToolCall, Trace, canonical_args, decision_positions
from toolcast.runtime.latency import LatencyProfile
from toolcast.runtime.planner import Estimates

ToolTime = Literal["profile", "recorded"]
MAX_RECORDED_LLM_S = 600.0
"""A gap longer than this is not generation time (a paused run, a clock jump): use the profile."""
MIN_RECORDED_TOOL_S = 0.001


def model_of(trace: Trace) -> str | None:
    """The agent's model, from the metadata keys the importers write."""
    for key in ("agent_model", "model", "agent_llm", "llm"):
        value = trace.metadata.get(key)
        if isinstance(value, str) and value:
            return value
    return None


@dataclass
class TraceTiming:
    """Seconds of LLM generation at each decision position, and where each number came from."""

    llm_s: dict[int, float]
    recorded: dict[int, bool]
    user_s: dict[int, float] = field(default_factory=dict)
    """Position of a user message -> the user's recorded time before it (0 where the log has none).
    Replay advances the clock by it so the time gaps a predictor sees are the log's; it is not agent
    time, and speculation cannot use it (nothing is predicted between the agent's reply and the user)."""

    @property
    def share_recorded(self) -> float:
        return sum(self.recorded.values()) / len(self.recorded) if self.recorded else 0.0


def _time_of(e: Message | ToolCall) -> float | None:
    return e.t_end if e.t_end is not None else e.t_start


def llm_timing(trace: Trace, profile: LatencyProfile) -> TraceTiming:
    events = trace.events
    n = len(events)
    llm_s: dict[int, float] = {}
    recorded: dict[int, bool] = {}
    for i, calls in decision_positions(events):
        seconds = _recorded_llm(events, i, calls)
        recorded[i] = seconds is not None
        if seconds is None:
            seconds = _profile_llm(events[i] if i < n else None, calls, profile)
        llm_s[i] = seconds
    user_s = {}
    for j, e in enumerate(events):
        if isinstance(e, Message) and e.role == "user" and j > 0:
            gap = _gap_before(events, j, _time_of(e))
            if gap is not None:
                user_s[j] = gap
    return TraceTiming(llm_s, recorded, user_s)


def _gap_before(events: list, i: int, end: float | None) -> float | None:
    """Seconds from the last timed event before events[i] to `end`, if both are known and plausible."""
    if end is None:
        return None
    prev = next((t for t in (_time_of(p) for p in reversed(events[:i])) if t is not None), None)
    if prev is None:
        return None
    gap = end - prev
    return gap if 0 <= gap <= MAX_RECORDED_LLM_S else None


def _recorded_llm(events: list, i: int, calls: list[ToolCall]) -> float | None:
    if i >= len(events):
        return None
    e = events[i]
    if isinstance(e, Message) and e.role != "assistant":
        return None  # the agent answered here but the log kept no message: nothing timed it
    if isinstance(e, Message) and e.t_start is not None and e.t_end is not None and e.t_end >= e.t_start:
        return e.t_end - e.t_start
    return _gap_before(events, i, _time_of(e) if isinstance(e, Message) else e.t_start)


def _profile_llm(e, calls: list[ToolCall], profile: LatencyProfile) -> float:
    if isinstance(e, Message) and e.role == "assistant" and e.tokens:
        return profile.llm.seconds(e.tokens)
    chars = len(e.text) if isinstance(e, Message) and e.role == "assistant" else 0
    chars += sum(len(c.tool) + len(canonical_args(c.args)) for c in calls)
    return profile.llm.seconds(profile.llm.tokens_for(chars))


def tool_seconds(trace_id: str, tool: str, cargs: str, profile: LatencyProfile,
                 tool_time: ToolTime = "profile", recorded: float | None = None) -> float:
    """Service time of a call: the same (trace, tool, args) always gets the same time."""
    if tool_time == "recorded" and recorded is not None and recorded >= MIN_RECORDED_TOOL_S:
        return recorded
    return profile.tool_seconds(tool, trace_id, cargs)


def recorded_tool_s(call: ToolCall) -> float | None:
    """The call's own recorded run time: its interval, less an approval wait, 0 for a call that asks
    the user (its time is the user's), or the duration the tool reported (`data/active_time.py`)."""
    seconds = tool_active_s(call)
    if seconds is not None and seconds < MIN_RECORDED_TOOL_S:
        # Under the log's resolution (a read timed to the millisecond), or the user's time (a question to
        # the user): replayed as instant, not as the profile's guess.
        return MIN_RECORDED_TOOL_S
    return seconds


def fit_estimates(traces: Iterable[Trace], estimates: Estimates, profile: LatencyProfile,
                  tool_time: ToolTime = "profile") -> Estimates:
    """Seed S per tool and L per model (medians) from training traces, as replay would time them."""
    tool_obs: dict[str, list[float]] = defaultdict(list)
    llm_obs: dict[str | None, list[float]] = defaultdict(list)
    for trace in traces:
        model = model_of(trace)
        timing = llm_timing(trace, profile)
        for i, calls in decision_positions(trace.events):
            if calls:
                llm_obs[model].append(timing.llm_s[i])
        for c in trace.calls:
            tool_obs[c.tool].append(tool_seconds(trace.trace_id, c.tool, canonical_args(c.args), profile,
                                                 tool_time, recorded_tool_s(c)))
    for tool, xs in tool_obs.items():
        estimates.seed_tool(tool, statistics.median(xs))
    everything = [x for xs in llm_obs.values() for x in xs]
    if everything:
        estimates.seed_llm(None, statistics.median(everything))
    for model, xs in llm_obs.items():
        if model is not None:
            estimates.seed_llm(model, statistics.median(xs))
    return estimates
