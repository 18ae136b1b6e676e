"""`RuntimeConfig`: the speculation runtime's settings (candidates, workers, hedging, the predictor's
threads and time limit, how sessions are shared and when they expire)."""

from __future__ import annotations

from dataclasses import dataclass, field

from toolcast.runtime.planner import PlannerConfig


@dataclass
class RuntimeConfig:
    k: int = 16
    """Candidates asked of the predictor at each decision point. 16 (3 until session 11): a horizon view
    offers a set, and on the test split of ../shared/data its saving at lambda0 0.7 was 43.8% of the
    next-call oracle's with 16 against 42.5% with 3 (the next-call view 35.4% against 34.8%; BENCHMARKS
    "Defaults")."""
    workers: int = 8
    """Tool calls running at once (real and speculative)."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    hedge_factor: float = 4.0
    """A joined run still going after hedge_factor x S (minus what it already ran) is raced by a real run."""
    hedge_min: float = 0.05
    cancel_losers: bool = True
    """At a decision point, cancel unclaimed runs still in flight that are not among the new candidates."""
    predict_in_thread: bool = True
    """Run predict() in a predictor thread, so a slow predictor (an HTTP `Client`) never stalls the agent's
    loop. On a virtual-clock loop (the replay simulator), which cannot wait on threads, it runs inline."""
    predict_threads: int = 2
    """Predictor threads; a decision point the agent has moved past by its turn is skipped, not run."""
    predict_timeout_s: float = 10.0
    """A prediction that takes longer is given up (no speculation at that point)."""
    shared_state: bool = True
    """Resource keys name state all sessions share: a write invalidates every session's overlapping reads.
    False: each session acts on a world of its own (a sandbox per session, replayed logs)."""
    session_idle_s: float = 3600.0
    """A session with no call or message for this long is ended (its results dropped)."""
    max_sessions: int = 100_000
    """Beyond this many live sessions, the least recently active are ended."""

    def __post_init__(self) -> None:
        if self.k < 1 or self.workers < 1 or self.predict_threads < 1 or self.max_sessions < 1:
            raise ValueError(f"k, workers, predict_threads and max_sessions must be >= 1, got k={self.k}, "
                             f"workers={self.workers}, predict_threads={self.predict_threads}, "
                             f"max_sessions={self.max_sessions}")
        for name in ("predict_timeout_s", "session_idle_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):  # NaN fails too
                raise ValueError(f"{name} must be a number of seconds > 0, got {v!r}")
