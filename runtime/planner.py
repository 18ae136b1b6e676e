"""The cost-aware speculation planner: which predicted calls are worth running ahead, now.

PASTE's net utility (arXiv 2603.18897), per candidate call:

    U = p * min(S, L) - (1 - p) * lambda * C

p: the predictor's p(call); S: expected service time of the tool; L: expected time until the LLM issues
its call (so min(S, L) is what a hit takes off the critical path); C: what a wasted run costs (by default
its tool-seconds, S); lambda: the price of waste, raised under load as lambda0 / (1 - utilisation) of the
tool-worker pool, and infinite while authoritative calls wait for a worker. Candidates with U above the
threshold launch, best first, within budgets: in flight per session, per tool and in total.

S (per tool) and L (per model) start from priors (the logs' timings or a latency profile) and follow the
observed times online as exponentially weighted moving averages. With `online_calibration`, p itself is
corrected by what the runtime has seen come true (`OnlineCalibration`). Pure and clock-free: the live
runtime and the replay simulator share this code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import ToolContract

ANY_MODEL = "*"


@dataclass
class PlannerConfig:
    lambda0: float = 0.7
    """Price of one wasted tool-second relative to one saved second, on an idle pool. 0.7 (1.0 until
    session 11): the planner launches candidates whose p clears the price by a margin, so at 1.0 the
    learned model wasted only ~0.65 tool-s per saved s; at 0.7 its next-call and horizon views wasted
    0.47-0.91 on every split measured (in distribution, two held-out harnesses, a held-out tool set, 16
    sessions) and saved 5-6 points more of the next-call oracle's saving in distribution (BENCHMARKS
    "Defaults")."""
    threshold: float = 0.0
    """Launch only candidates with U above this many seconds."""
    max_per_session: int = 4
    """Speculative runs in flight per session."""
    max_per_tool: int = 4
    """Speculative runs in flight per tool, over all sessions."""
    max_in_flight: int = 8
    """Speculative runs in flight in total."""
    ewma_alpha: float = 0.2
    """Weight of a new observation in the S and L estimates."""
    default_tool_s: float = 1.0
    """S for a tool with no prior and no observation yet."""
    default_llm_s: float = 3.0
    """L for a model with no prior and no observation yet."""
    tool_cost: dict[str, float] = field(default_factory=dict)
    """Tool name -> C override (e.g. a paid API); else C = S."""
    online_calibration: bool = True
    """Price candidates with p corrected by the outcomes seen so far (`OnlineCalibration`). On by default:
    on the test split of ../shared/data it took the pooled model from 7% to 27% of the next-call oracle's
    saving at 0.82 wasted tool-s per saved s (BENCHMARKS "Generalization"); its warm-up is
    `calibration_weight` pseudo-observations per p bin (with no outcomes, p is the predictor's own)."""
    calibrate_horizon: bool = True
    """With `online_calibration`: a candidate that has a horizon p is priced by its own p(call) as given
    and its horizon p corrected online (`Planner.p_horizon_of`; its outcomes fill the horizon table, not
    the p(call) one). False: its p(call) is corrected as a next-call candidate's is and its horizon p
    used as given (the behaviour before session 10). On the test split of ../shared/data the horizon view
    went from ~41% to ~46% of the next-call oracle's saving at 1.0 wasted tool-s per saved s; on two
    held-out harnesses it was -2.5 and +-0 points against no online calibration at all, where correcting
    its p(call) too lost 2-6 points (BENCHMARKS "Online calibration per tool")."""
    calibration_weight: float = 5.0
    """How many observations the predictor's own p counts as, per reliability bin."""
    spec_per_call: float | None = None
    """Cap on speculative launches per real call in a session (the first decision point gets as many as
    one call does); None: no cap beyond the in-flight budgets."""

    def __post_init__(self) -> None:
        if self.lambda0 < 0:
            raise ValueError(f"lambda0 must be >= 0, got {self.lambda0}")
        if not 0 < self.ewma_alpha <= 1:
            raise ValueError(f"ewma_alpha must be in (0, 1], got {self.ewma_alpha}")
        if self.spec_per_call is not None and self.spec_per_call < 0:
            raise ValueError(f"spec_per_call must be >= 0, got {self.spec_per_call}")
        if self.calibration_weight <= 0:
            raise ValueError(f"calibration_weight must be > 0, got {self.calibration_weight}")
        for name in ("max_per_session", "max_per_tool", "max_in_flight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class Estimates:
    """S per tool and L per model: priors, then EWMA of what is observed."""

    def __init__(self, alpha: float = 0.2, default_tool_s: float = 1.0, default_llm_s: float = 3.0):
        self.alpha = alpha
        self.default_tool_s = default_tool_s
        self.default_llm_s = default_llm_s
        self.tool: dict[str, float] = {}
        self.llm: dict[str, float] = {}

    @classmethod
    def from_config(cls, config: PlannerConfig) -> Estimates:
        return cls(config.ewma_alpha, config.default_tool_s, config.default_llm_s)

    def service_time(self, tool: str) -> float:
        return self.tool.get(tool, self.default_tool_s)

    def llm_time(self, model: str | None) -> float:
        if model is not None and model in self.llm:
            return self.llm[model]
        return self.llm.get(ANY_MODEL, self.default_llm_s)

    def seed_tool(self, tool: str, seconds: float) -> None:
        """Set a prior (from logs or a profile); later observations move it."""
        self.tool[tool] = float(seconds)

    def seed_llm(self, model: str | None, seconds: float) -> None:
        self.llm[model or ANY_MODEL] = float(seconds)

    def observe_tool(self, tool: str, seconds: float) -> None:
        self.tool[tool] = self._ewma(self.tool.get(tool), seconds)

    def observe_llm(self, model: str | None, seconds: float) -> None:
        if model is not None:
            self.llm[model] = self._ewma(self.llm.get(model), seconds)
        self.llm[ANY_MODEL] = self._ewma(self.llm.get(ANY_MODEL), seconds)

    def _ewma(self, old: float | None, x: float) -> float:
        x = max(0.0, float(x))
        return x if old is None else (1 - self.alpha) * old + self.alpha * x

    def to_dict(self) -> dict[str, Any]:
        return {"tool": dict(self.tool), "llm": dict(self.llm)}


class OnlineCalibration:
    """p(call) as it comes true in this deployment: a reliability table filled online.

    Every complete, eligible candidate the predictor gives is an observation, launched or not (so learning
    costs no tool time and does not depend on what the planner chose), scored the way a speculative result
    of it would have fared: a hit when the agent makes that exact call while the result would still be
    servable (in this turn or a later one), a miss when a state change would have invalidated it, its
    freshness window ran out or the session ended. That is the p the utility needs: the chance a launched
    result is claimed, which the predictor's next-turn p(call) understates for calls the agent makes a
    few turns later (reading each of a user's orders in turn). The corrected p of a candidate is the hit
    rate of its p bin, shrunk toward p itself with `weight` pseudo-observations: with no outcomes yet it
    is the predictor's p, and a predictor whose p runs high or low for this agent is corrected after a
    few dozen candidates. Only past outcomes are used.

    Given the candidate's tool, each tool's own table is kept too, shrunk toward the shared one with the
    same `weight`: a tool whose candidates this agent never takes (a harness that looks a user up another
    way) is priced down after a few of them, without pricing down the others in its p bin.
    """

    def __init__(self, bins: int = 10, weight: float = 5.0):
        self.bins = bins
        self.weight = weight
        self.hits = [0.0] * bins
        self.seen = [0.0] * bins
        self.by_tool: dict[str, tuple[list[float], list[float]]] = {}
        """tool -> (hits, seen) per p bin."""

    def _bin(self, p: float) -> int:
        return min(self.bins - 1, max(0, int(p * self.bins)))

    def adjust(self, p: float, tool: str | None = None) -> float:
        b = self._bin(p)
        shared = (self.hits[b] + self.weight * p) / (self.seen[b] + self.weight)
        own = self.by_tool.get(tool) if tool is not None else None
        if own is None:
            return shared
        return (own[0][b] + self.weight * shared) / (own[1][b] + self.weight)

    def observe(self, p: float, hit: bool, tool: str | None = None) -> None:
        b = self._bin(p)
        self.seen[b] += 1
        self.hits[b] += 1.0 if hit else 0.0
        if tool is not None:
            hits, seen = self.by_tool.setdefault(tool, ([0.0] * self.bins, [0.0] * self.bins))
            seen[b] += 1
            hits[b] += 1.0 if hit else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"bins": [{"p": f"{i / self.bins:.1f}-{(i + 1) / self.bins:.1f}", "seen": int(n),
                          "hit_rate": round(h / n, 4) if n else None}
                         for i, (h, n) in enumerate(zip(self.hits, self.seen, strict=True))]}


@dataclass
class Occupancy:
    """What is running now: the planner's view of the budgets and of the load."""

    session: int = 0
    """Speculative runs in flight for the session being planned."""
    per_tool: dict[str, int] = field(default_factory=dict)
    total: int = 0
    """Speculative runs in flight over all sessions."""
    utilisation: float = 0.0
    """Busy workers / workers in the tool pool (authoritative and speculative), in [0, 1]."""
    queued: int = 0
    """Authoritative calls waiting for a worker."""
    free_workers: int = 1_000_000
    allowance: int | None = None
    """Launches the session may still make under `spec_per_call` (None: no cap)."""


@dataclass
class Choice:
    """The planner's verdict on one candidate: launch, or why not."""

    prediction: CallPrediction
    utility: float
    launch: bool
    reason: str = ""
    eligible: bool = True
    """Complete, of a tool the session has, allowed by its contract and schema (launched or not)."""


class Planner:
    def __init__(self, config: PlannerConfig | None = None, estimates: Estimates | None = None):
        self.config = config or PlannerConfig()
        self.estimates = estimates or Estimates.from_config(self.config)
        self.calibration = OnlineCalibration(weight=self.config.calibration_weight)
        self.horizon_calibration = OnlineCalibration(weight=self.config.calibration_weight)
        """The same for the candidates' horizon p (`CallPrediction.p_horizon`), scored the same way."""

    def p_of(self, pred: CallPrediction) -> float:
        """The p the planner prices a candidate with: the predictor's, or its online-corrected value.
        A p that is not a finite number (NaN from a broken model) is 0, never clipped to certainty."""
        p = max(0.0, min(1.0, pred.p_call)) if math.isfinite(pred.p_call) else 0.0
        if not self.config.online_calibration or self._by_horizon(pred.p_horizon):
            return p  # a horizon candidate's later claims are its horizon p's to price, corrected there
        return self.calibration.adjust(p, pred.tool)

    def p_horizon_of(self, pred: CallPrediction) -> float | None:
        """A candidate's horizon p (None without one), online-corrected like `p_of`."""
        if pred.p_horizon is None:
            return None
        p = max(0.0, min(1.0, pred.p_horizon)) if math.isfinite(pred.p_horizon) else 0.0
        on = self.config.online_calibration and self._by_horizon(p)
        return self.horizon_calibration.adjust(p, pred.tool) if on else p

    def observe(self, p: float, p_horizon: float | None, tool: str, hit: bool) -> None:
        """A candidate's outcome (`OnlineCalibration`), in the table that corrects the p it is priced by:
        its horizon p when it has one (and `calibrate_horizon`), else its p(call)."""
        if self._by_horizon(p_horizon):
            self.horizon_calibration.observe(p_horizon, hit, tool)
        else:
            self.calibration.observe(p, hit, tool)

    def _by_horizon(self, p_horizon: float | None) -> bool:
        return p_horizon is not None and self.config.calibrate_horizon

    def price_of_waste(self, occ: Occupancy) -> float:
        """lambda: lambda0 on an idle pool, growing as it fills, infinite while real calls wait."""
        if occ.queued > 0 or occ.utilisation >= 1.0:
            return math.inf
        return self.config.lambda0 / (1.0 - occ.utilisation)

    def utility(self, p: float, tool: str, model: str | None, lam: float,
                p_horizon: float | None = None) -> float:
        """U = p * min(S, L) - (1 - p) * lambda * C; with a horizon probability p_h >= p (the call comes
        before the next state change, maybe turns later, when the run is long done):
        U = p * min(S, L) + (p_h - p) * S - (1 - p_h) * lambda * C."""
        s = self.estimates.service_time(tool)
        ll = self.estimates.llm_time(model)
        c = self.config.tool_cost.get(tool, s)
        p_h = p if p_horizon is None else max(p, min(1.0, p_horizon))
        waste = (1.0 - p_h) * c
        return p * min(s, ll) + (p_h - p) * s - (lam * waste if waste > 0 else 0.0)

    def plan(self, predictions: Iterable[CallPrediction], *,
             contract_of: Callable[[str], ToolContract | None], model: str | None = None,
             covered: set[tuple[str, str]] | frozenset = frozenset(),
             occupancy: Occupancy | None = None,
             schemas: Mapping[str, dict] | None = None) -> list[Choice]:
        """Judge each candidate; `launch` is set on those to run now, best utility first.

        `contract_of(tool)` returns None for a tool the runtime does not have. `covered` holds the
        (tool, canonical args) keys already running or finished in the session's cache.
        """
        occ = occupancy or Occupancy()
        lam = self.price_of_waste(occ)
        choices: list[Choice] = []
        seen: set[tuple[str, str]] = set()
        for pred in predictions:
            reason = self._ineligible(pred, contract_of, schemas)
            eligible = reason is None
            if reason is None and pred.key in seen:
                reason = "duplicate candidate"
            if reason is None and pred.key in covered:
                reason = "already running or finished"
            seen.add(pred.key)
            u = -math.inf if reason else self.utility(self.p_of(pred), pred.tool, model, lam,
                                                       self.p_horizon_of(pred))
            choices.append(Choice(pred, u, False, reason or "", eligible))

        per_session, total, free = occ.session, occ.total, occ.free_workers
        per_tool = dict(occ.per_tool)
        allowance = occ.allowance
        cfg = self.config
        for ch in sorted((c for c in choices if not c.reason), key=lambda c: -c.utility):
            tool = ch.prediction.tool
            if not ch.utility > cfg.threshold:
                ch.reason = "utility below threshold" if lam < math.inf else "pool busy with real calls"
            elif per_session >= cfg.max_per_session:
                ch.reason = "session budget"
            elif per_tool.get(tool, 0) >= cfg.max_per_tool:
                ch.reason = "tool budget"
            elif total >= cfg.max_in_flight:
                ch.reason = "global budget"
            elif free <= 0:
                ch.reason = "no idle worker"
            elif allowance is not None and allowance <= 0:
                ch.reason = "speculation per real call"
            else:
                ch.launch = True
                allowance = None if allowance is None else allowance - 1
                per_session += 1
                total += 1
                free -= 1
                per_tool[tool] = per_tool.get(tool, 0) + 1
        return sorted(choices, key=lambda c: (not c.launch, -c.utility))

    @staticmethod
    def _ineligible(pred: CallPrediction, contract_of: Callable[[str], ToolContract | None],
                    schemas: Mapping[str, dict] | None) -> str | None:
        if pred.is_respond:
            return "respond"
        if not pred.complete:
            return "arguments not all known"
        contract = contract_of(pred.tool)
        if contract is None:
            return "unknown tool"
        why = contract.for_call(pred.args).why_not()
        if why:
            return why
        schema = (schemas or {}).get(pred.tool)
        if schema:
            return _schema_mismatch(pred.args, schema)
        return None


def _schema_mismatch(args: Mapping[str, Any], schema: Mapping[str, Any]) -> str | None:
    """A cheap check against the tool's JSON schema: required slots present, no unknown slots."""
    props = schema.get("properties")
    required = schema.get("required") or []
    missing = [r for r in required if r not in args]
    if missing:
        return f"missing required argument(s) {', '.join(map(str, missing))}"
    if isinstance(props, dict) and schema.get("additionalProperties") is False:
        extra = [k for k in args if k not in props]
        if extra:
            return f"unknown argument(s) {', '.join(extra)}"
    return None
