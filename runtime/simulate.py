"""`toolcast simulate`: discrete-event replay of traces, serial vs speculative vs the oracle.

Each policy replays the same traces through the real `SpeculativeRuntime` (`replay.py`) on a virtual
clock (`simclock.py`), so the planner, contracts, cache and worker pool are the live ones, not a model
of them. Policies:

- `serial`: no predictor, every call runs when the agent asks (the baseline every saving is against);
- `oracle`: knows each next turn in advance (p = 1), under the same contracts and budgets: the upper
  bound of what next-turn speculation can save;
- `oracle_horizon`: knows every future call and launches each eligible one at the earliest decision
  point where all its argument values are in the context, since the last write (`oracles.py`): the
  upper bound of speculating sets over a horizon;
- one run per predictor given (Markov and pattern baselines, the fan-out baseline, the learned model);
- with `stream`: `oracle_stream` (no predictor: every call starts the moment the stream timing model has
  its arguments complete, `stream_timing.py`) and a `<name>+stream` run of each predictor (its own
  speculation plus the stream's: text re-predicts, complete calls start).

Timings: LLM time from the log's timestamps where it has them, else the latency profile; tool time from
the latency profile (or the log's, with `tool_time="recorded"`). Eligibility: replay contracts by tool
name (`replay_contracts.py`). With `sessions` > 1, that many traces run at once and share one bounded
tool-worker pool, where speculative work only takes idle workers and yields to real calls.

Per policy: mean and p95 task time (LLM + waiting for tools; user time passes on the clock but is not
counted), tool stall time, saving against serial, share of the oracle's saving captured, wasted
tool-seconds per saved second, and hit rate (share of real calls served by speculation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import Trace
from toolcast.predictor.protocol import Predictor
from toolcast.runtime.contracts import ContractPolicy
from toolcast.runtime.latency import LatencyProfile
from toolcast.runtime.oracles import HorizonOracle
from toolcast.runtime.planner import Estimates, PlannerConfig
from toolcast.runtime.replay import OraclePredictor, PolicyRun, run_policy_async
from toolcast.runtime.replay_contracts import replay_policy
from toolcast.runtime.runtime import RuntimeConfig
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.timing import ToolTime, fit_estimates

SERIAL, ORACLE, ORACLE_HORIZON, ORACLE_STREAM = "serial", "oracle", "oracle_horizon", "oracle_stream"
STREAM_SUFFIX = "+stream"


@dataclass
class SimConfig:
    sessions: int = 1
    """Traces replayed at once, sharing one tool-worker pool."""
    workers: int = 8
    """Tool calls running at once over all sessions."""
    k: int = RuntimeConfig.k
    tool_time: ToolTime = "profile"
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    stream: bool = False
    """Also replay with the LLM's stream fed to the runtime: `oracle_stream` and `<name>+stream`."""
    stream_predictors: tuple[str, ...] | None = None
    """Which predictors get a `+stream` run (None: all)."""

    def __post_init__(self) -> None:
        if self.sessions < 1 or self.workers < 1 or self.k < 1:
            raise ValueError("sessions, workers and k must be >= 1")
        if self.tool_time not in ("profile", "recorded"):
            raise ValueError(f"tool_time must be 'profile' or 'recorded', got {self.tool_time!r}")

    def runtime_config(self) -> RuntimeConfig:
        return RuntimeConfig(k=self.k, workers=self.workers, planner=self.planner)


@dataclass
class SimReport:
    runs: dict[str, PolicyRun]
    profile: LatencyProfile
    config: SimConfig
    contracts_source: str = "builtin name patterns"

    def summary(self) -> dict[str, dict[str, Any]]:
        """One entry per policy, keyed by its name (serial, oracle, then the predictors)."""
        serial, oracle = self.runs[SERIAL], self.runs.get(ORACLE)
        base = _mean([t.task_s for t in serial.traces])
        best = base - _mean([t.task_s for t in oracle.traces]) if oracle else math.nan
        return {name: self._metrics(run, serial, base, best) for name, run in self.runs.items()}

    def _metrics(self, run: PolicyRun, serial: PolicyRun, base: float, best: float) -> dict[str, Any]:
        task = [t.task_s for t in run.traces]
        total = run.stats.total()
        saved_total = sum(t.task_s for t in serial.traces) - sum(task)
        real = sum(ts.real_calls for ts in run.stats.tools.values())
        mean = _mean(task)
        return {
            "traces": len(task),
            "mean_task_s": _r(mean),
            "p95_task_s": _r(_quantile(task, 0.95)),
            "mean_stall_s": _r(_mean([t.stall_s for t in run.traces])),
            "mean_llm_s": _r(_mean([t.llm_s for t in run.traces])),
            "saving_s": _r(base - mean),
            "saving_pct": _r(100 * (base - mean) / base) if base > 0 else None,
            "saving_captured": _r((base - mean) / best) if best > 0 else None,
            "wasted_tool_s": _r(total.wasted_s),
            "waste_per_saved_s": _r(total.wasted_s / saved_total) if saved_total > 0 else None,
            "hit_rate": _r(total.served / real) if real else None,
            "launched": total.launched,
            "served": total.served,
            "joined": total.joins,
            "precision": _r(total.served / total.launched) if total.launched else None,
            "dropped": dict(total.dropped),
            "llm_time_recorded_share": _r(run.llm_recorded_share),
            "profile": self.profile.label,
            "sessions": self.config.sessions,
            "workers": self.config.workers,
        }

    def table(self) -> str:
        s = self.summary()
        cols = [("mean_task_s", "mean s", "{:.2f}"), ("p95_task_s", "p95 s", "{:.2f}"),
                ("mean_stall_s", "stall s", "{:.2f}"), ("saving_pct", "saved %", "{:.1f}"),
                ("saving_captured", "of oracle", "{:.0%}"), ("waste_per_saved_s", "waste/saved", "{:.2f}"),
                ("hit_rate", "hit rate", "{:.0%}"), ("launched", "launched", "{}")]
        w = max(12, *(len(n) + 1 for n in s))
        head = f"{'policy':<{w}}" + "".join(f"{label:>12}" for _, label, _ in cols)
        lines = [head, "-" * len(head)]
        for name, m in s.items():
            cells = "".join(f"{('-' if m[k] is None else fmt.format(m[k])):>12}" for k, _, fmt in cols)
            lines.append(f"{name:<{w}}{cells}")
        first = next(iter(s.values()))
        lines.append("")
        lines.append(f"{first['traces']} traces, {self.config.sessions} concurrent session(s), "
                     f"{self.config.workers} tool workers; tool times: {self.config.tool_time} "
                     f"{self.profile.label}; LLM times recorded at "
                     f"{first['llm_time_recorded_share']:.0%} of decision points, else the profile; "
                     f"eligibility: replay contracts ({self.contracts_source}); "
                     "user time passes but is not counted in task time.")
        return "\n".join(lines)


def simulate(traces: Sequence[Trace], predictors: Mapping[str, Predictor], *,
             train: Sequence[Trace] | None = None, profile: LatencyProfile | None = None,
             contracts: ContractPolicy | None = None, config: SimConfig | None = None,
             contracts_source: str = "builtin name patterns") -> SimReport:
    """Replay `traces` as serial, oracle and once per predictor; S and L priors fitted on `train`."""
    if not traces:
        raise ValueError("no traces to simulate")
    for reserved in (SERIAL, ORACLE, ORACLE_HORIZON, ORACLE_STREAM):
        if reserved in predictors:
            raise ValueError(f"{reserved!r} is a built-in policy name; give the predictor another name")
    profile = profile or LatencyProfile.default()
    contracts = contracts or replay_policy()
    config = config or SimConfig()
    rc = config.runtime_config()
    prior = fit_estimates(train if train else traces, Estimates(), profile, config.tool_time)
    policies: list[tuple[str, Predictor | None, bool]] = [
        (SERIAL, None, False), (ORACLE, OraclePredictor(), False),
        (ORACLE_HORIZON, HorizonOracle(contracts), False),
        *((n, p, False) for n, p in predictors.items())]
    if config.stream:
        policies.append((ORACLE_STREAM, None, True))
        policies.extend((n + STREAM_SUFFIX, p, True) for n, p in predictors.items()
                        if config.stream_predictors is None or n in config.stream_predictors)
    runs = {}
    for name, predictor, stream in policies:
        runs[name] = run_virtual(run_policy_async(
            name, list(traces), predictor, contracts=contracts, profile=profile, config=rc, prior=prior,
            sessions=config.sessions, tool_time=config.tool_time, stream=stream))
    return SimReport(runs, profile, config, contracts_source)


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _quantile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank quantile."""
    if not xs:
        return math.nan
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _r(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(x, 4)
