"""Where a timed session's time went: the agent's LLM, its tools, and the user (idle, approvals).

Read from the events' own timestamps (Claude Code and Codex write one per line), in order:

- tool time: each call's own start and result times (`t_start`, `t_end`); parallel calls of one turn
  count once, from the first start to the last result. Where a tool reported how long it ran (Codex's
  `metadata.duration_seconds` or "Wall time: S seconds"; Claude Code's `toolUseResult.durationMs`) and
  the interval is longer by more than `APPROVAL_SLACK_S`, the surplus is a wait for the user's approval
  (the call was written before the user allowed it to run); a call written with its result (an interval
  of zero, or an older Codex call whose start the importer put at the end of the model's reply) takes the
  reported duration;
- user time: the time before each user message, calls that ask the user (`USER_TOOLS`: their whole
  interval is a wait), and approval waits, all kept out of active time;
- LLM time: the gaps before the agent's messages and calls; a gap over `MAX_GAP_S` is the user's idle
  time (a paused session, a machine asleep), not generation;
- a timestamp more than `CLOCK_JUMP_S` earlier than the one before it is a clock jump: reported, its
  gap counted nowhere, and the clock restarts from it.

Active time = LLM + tool time; `toolcast stats` prints the tool share of it.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import Message, ToolCall, Trace

USER_TOOLS = frozenset(("AskUserQuestion", "ExitPlanMode", "request_user_input", "ask_user"))
"""Tools whose call waits for a person: their interval is user time, not tool time."""
MAX_GAP_S = 600.0
"""A gap before an LLM turn longer than this is user idle time (the replay's cap on recorded LLM time)."""
APPROVAL_SLACK_S = 1.0
CLOCK_JUMP_S = 1.0
_WALL = re.compile(r"^Wall time: ([0-9.]+) seconds?$", re.MULTILINE)


def reported_duration(call: ToolCall) -> float | None:
    """How long the tool itself said it ran, if it did (see the module docstring)."""
    result = call.extra.get("toolUseResult")
    if isinstance(result, dict):
        for key in ("durationMs", "totalDurationMs", "duration_ms"):
            ms = result.get(key)
            if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms >= 0:
                return ms / 1000.0
    out = call.output or ""
    if out.startswith('{"output"') or out.startswith('{"metadata"'):
        try:
            meta = json.loads(out).get("metadata")
        except (ValueError, AttributeError):
            meta = None
        seconds = meta.get("duration_seconds") if isinstance(meta, dict) else None
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
            return float(seconds)
    elif "Wall time:" in out[:300]:
        m = _WALL.search(out[:300])
        if m:
            return float(m.group(1))
    return None


def tool_active_s(call: ToolCall) -> float | None:
    """Seconds the tool ran: its own interval, less any approval wait; 0 for a call asking the user;
    None where the log has neither an interval nor a reported duration."""
    if call.tool in USER_TOOLS:
        return 0.0
    interval = None
    if call.t_start is not None and call.t_end is not None and call.t_end >= call.t_start:
        interval = call.t_end - call.t_start
    own = reported_duration(call)
    if interval is None:
        return own
    if own is not None and (interval < 0.001 or interval > own + APPROVAL_SLACK_S
                            or call.extra.get("t_start_from") == "reply_end"):
        return own
    return interval


@dataclass
class ActiveTime:
    traces: int = 0
    timed_traces: int = 0
    llm_s: float = 0.0
    tool_s: float = 0.0
    user_s: float = 0.0
    """Before user messages, idle gaps over MAX_GAP_S."""
    wait_s: float = 0.0
    """Approval waits and calls asking the user."""
    idle_gaps: int = 0
    clock_jumps: list[dict[str, Any]] = field(default_factory=list)
    untimed_calls: int = 0
    """Calls with neither an interval nor a reported duration: counted here, in no time."""
    reported_durations: int = 0
    """Calls timed by the duration the tool reported (same-instant writes, approval waits)."""
    call_s: list[float] = field(default_factory=list)
    by_tool: dict[str, float] = field(default_factory=dict)

    @property
    def active_s(self) -> float:
        return self.llm_s + self.tool_s

    @property
    def tool_share(self) -> float | None:
        return self.tool_s / self.active_s if self.active_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        q = statistics.quantiles(self.call_s, n=10) if len(self.call_s) >= 2 else []
        return {"traces": self.traces, "timed_traces": self.timed_traces, "active_s": round(self.active_s, 3),
                "llm_s": round(self.llm_s, 3), "tool_s": round(self.tool_s, 3),
                "tool_share": None if self.tool_share is None else round(self.tool_share, 4),
                "user_s": round(self.user_s, 3), "approval_wait_s": round(self.wait_s, 3),
                "idle_gaps": self.idle_gaps, "clock_jumps": self.clock_jumps,
                "reported_durations": self.reported_durations, "untimed_calls": self.untimed_calls,
                "call_median_s": round(statistics.median(self.call_s), 3) if self.call_s else None,
                "call_p90_s": round(q[-1], 3) if q else None,
                "tool_s_by_tool": {k: round(v, 3) for k, v in sorted(self.by_tool.items(),
                                                                      key=lambda kv: -kv[1])}}


def active_time(traces: Iterable[Trace]) -> ActiveTime:
    out = ActiveTime()
    by_tool: dict[str, float] = defaultdict(float)
    for trace in traces:
        out.traces += 1
        if _trace(trace, out, by_tool):
            out.timed_traces += 1
    out.by_tool = dict(by_tool)
    return out


def _trace(trace: Trace, out: ActiveTime, by_tool: dict[str, float]) -> bool:
    prev: float | None = None
    timed = False
    events = trace.events
    i = 0
    while i < len(events):
        e = events[i]
        if isinstance(e, ToolCall):
            turn = [e]
            while i + 1 < len(events) and isinstance(nxt := events[i + 1], ToolCall) and nxt.turn == e.turn:
                i += 1
                turn.append(events[i])
            prev = _turn(trace, i, turn, prev, out, by_tool)
            timed |= prev is not None
        elif isinstance(e, Message):
            when = e.t_end if e.t_end is not None else e.t_start
            if when is not None:
                timed = True
                gap = _gap(trace, i, prev, when, out)
                if gap is not None and e.role == "user" and not e.extra.get("with_tool_results"):
                    out.user_s += gap
                elif gap is not None and e.role == "assistant":
                    _llm(gap, out)
                prev = when  # after a clock jump too: the clock restarts from here
        i += 1
    return timed


def _gap(trace: Trace, i: int, prev: float | None, when: float, out: ActiveTime) -> float | None:
    if prev is None:
        return None
    gap = when - prev
    if gap < -CLOCK_JUMP_S:
        out.clock_jumps.append({"trace_id": trace.trace_id, "event": i, "seconds": round(gap, 3)})
        return None
    return max(gap, 0.0)


def _llm(gap: float, out: ActiveTime) -> None:
    if gap > MAX_GAP_S:
        out.idle_gaps += 1
        out.user_s += gap
    else:
        out.llm_s += gap


def _turn(trace: Trace, i: int, calls: list[ToolCall], prev: float | None, out: ActiveTime,
          by_tool: dict[str, float]) -> float | None:
    starts = [c.t_start for c in calls if c.t_start is not None]
    ends = [c.t_end for c in calls if c.t_end is not None]
    if not starts:
        out.untimed_calls += len(calls)
        return prev
    start = min(starts)
    gap = _gap(trace, i, prev, start, out)
    active = []
    for c in calls:
        s = tool_active_s(c)
        if s is None:
            out.untimed_calls += 1
            continue
        active.append(s)
        out.call_s.append(s)
        by_tool[c.tool] += s
        if c.tool not in USER_TOOLS and reported_duration(c) is not None and c.t_end is not None \
                and c.t_start is not None and s != c.t_end - c.t_start:
            out.reported_durations += 1
    end = max(ends) if ends else start
    span = max(0.0, end - start)
    tool = min(span, max(active)) if active and span > 0 else max(active, default=0.0)
    if all(c.tool in USER_TOOLS for c in calls):
        tool = 0.0
    if gap is not None:  # a call written with its result: its run sits in the gap before it, not the LLM's
        _llm(max(0.0, gap - max(0.0, tool - span)), out)
    out.tool_s += tool
    out.wait_s += max(0.0, span - tool)
    return end if end >= start else start
