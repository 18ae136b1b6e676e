"""A session's state in the runtime (what its agent did, its decision points, the candidates awaiting
their outcome for the online calibration), and which sessions a sweep ends (idle or surplus)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import Event, ToolSpec


@dataclass
class Candidate:
    """A candidate the predictor gave, scored the way a speculative result of it would have fared: a hit
    when the agent makes that call while such a result would still be servable, a miss when the result
    would have been invalidated (a state change overlapping what it reads), expired or left unclaimed."""

    key: tuple[str, str]
    p: float
    reads: frozenset[str] | None
    expires_at: float
    p_horizon: float | None = None


MAX_PENDING = 512
"""Candidates kept per session awaiting their outcome; the oldest are scored as misses beyond it. A
horizon view offers 16 candidates a decision point, and a call it was right about can come 8 points
later: at 64 (before session 10) such outcomes were scored as misses."""
SWEEP_BATCH = 64
"""Sessions looked at per sweep at most (each touch adds at most one: sweeping keeps up, in O(1))."""


@dataclass(eq=False)
class Session:
    id: str
    specs: dict[str, ToolSpec] | None
    """The session's tools as its agent sees them; None = every registered tool."""
    metadata: dict[str, Any]
    model: str | None
    events: list[Event] = field(default_factory=list)
    inflight: int = 0
    decision: int = 0
    decision_at: float | None = None
    awaiting_llm: bool = False
    turn: int = 0
    calls: int = 0
    closed: bool = False
    launched: int = 0
    """Speculative runs launched for the session (for `PlannerConfig.spec_per_call`)."""
    pending: list[Candidate] = field(default_factory=list)
    """Eligible candidates not yet scored for the online calibration (see `Candidate`)."""
    last_seen: float | None = None
    """Loop time of the session's last call or message (None: started outside the loop, not yet)."""


def stale_sessions(sessions: OrderedDict[str, Session], now: float, idle: float,
                   cap: int) -> Iterator[Session]:
    """The sessions a sweep ends, least recently active first: idle for `idle` seconds, or beyond `cap`
    live ones. Looks at SWEEP_BATCH sessions at most; the caller ends each before the next is looked at."""
    for _ in range(SWEEP_BATCH):
        if not sessions:
            return
        s = next(iter(sessions.values()))
        if s.last_seen is None or s.inflight:  # not seen on the loop yet, or the agent waits in a call
            s.last_seen = now
            sessions.move_to_end(s.id)
            continue
        if len(sessions) <= cap and now - s.last_seen < idle:
            return
        yield s
