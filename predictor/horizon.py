"""Horizon probabilities for any next-call predictor: p(this call is issued before the next write).

The learned model scores the *next* call. Speculating a set needs, per candidate call, the probability
that the agent issues it before the session's next state change within `HORIZON` decision points (the
result is claimable until then). `HorizonPredictor` gets it without touching the model: it pools the
model's top-k calls with the fan-out candidates (`fanout.py`: every listed value a read has not taken
yet) and scores each from what both know about it, with three small one-layer networks averaged (`fit_mlp`;
the default since it captured 1.4-2.7 points more of the next-call oracle's saving at the same waste,
BENCHMARKS "Speculating sets") or a logistic regression (`kind="logistic"`), over:

- the fan-out rule's mined horizon precision (per rule and offer age), when the fan-out proposes it;
- the model's p(call) for it and its rank, when the model proposes it;
- the model's p(tool) for its tool (the model may be sure of the tool but not of the value), and the
  model's p(`<respond>`) (an agent about to answer reads less);
- how many fan-out candidates there are (one of ten listed values is less likely than one of two);
- with a third source (the pattern pool, `pattern`): its p(call) for the candidate and its rank, when it
  proposes it (its mined value maps fill some calls the model leaves incomplete);
- whether the candidate's tool is the context's last call's tool (`last_tool`: an agent reading one
  reservation after another) or any call's of the last turn (`turn_tool`);
- the share of its argument values the user wrote (`user_said`: of a profile's four reservations, the one
  the user named) and whether the last call's output holds them all (`last_output`);
- with `is_write` (which tools change state): the model's p(tool) of a state-changing tool next (`write_p`:
  a write invalidates what was read ahead) and how many calls since the last write (`since_write`).

The scorer is fitted on held-out traces (the validation split: neither the model nor the fan-out
rules nor the pattern pool were fitted on it) with the same label the fan-out mines, and stored as JSON
(`HorizonScorer.to_dict`; never pickle). `predict` is the `horizon` view: candidates best first by
p_horizon, each with p_call = the model's next-call p where it has one (else the fan-out's, else the
pattern pool's). numpy only: no torch.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from toolcast.data.schema import Context, Message, ToolCall, Trace, decision_positions
from toolcast.predictor.baselines.fanout import HORIZON, FanoutPredictor
from toolcast.predictor.baselines.io import read_state, write_state
from toolcast.predictor.horizon_mlp import check_mlp, fit_mlp, mlp_arrays, mlp_forward
from toolcast.predictor.protocol import CallPrediction, Predictor

log = logging.getLogger(__name__)

FEATURES: tuple[str, ...] = ("bias", "fan", "fan_logit", "model", "model_logit", "model_rank",
                             "tool_p", "respond_p", "log_fan_n", "pat", "pat_logit", "pat_rank", "last_tool",
                             "turn_tool", "user_said", "last_output", "write_p",
                             "since_write")
"""Every feature a candidate has; a scorer uses those it was fitted with (`HorizonScorer.features`)."""
FORMAT = "toolcast.horizon_scorer"
HORIZON_FILE = "horizon.json"
"""A model directory's horizon scorer (`training.horizon_fit`), which `toolcast simulate --model` uses."""
BASE_K = 8
FAN_K = 32
PATTERN_K = 8
EPS = 1e-4


def _logit(p: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return math.log(p / (1 - p))


@dataclass
class HorizonScorer:
    weights: list[float]
    """One weight per name in `features` (the logistic scorer; an `mlp` scorer's are unused)."""
    features: tuple[str, ...] = FEATURES[:9]
    """The names of `FEATURES` it uses, in order (the first 9: scorers fitted before the pattern pool and
    the last-tool features)."""
    fitted_on: int = 0
    """Candidates the regression saw."""
    reliability: list[dict[str, Any]] | None = None
    """Per p bin on the fitting candidates: count, mean p, hit rate (9 weights on thousands of candidates:
    in-sample is close to out-of-sample), and `ece`, their expected calibration error."""
    mlp: dict[str, Any] | None = None
    """A small network instead of the regression (`fit_mlp`): the features standardised (`mean`,
    `scale`), then each of `nets` (`w1` features x hidden, `b1`, `w2` hidden, `b2`: one tanh layer), their
    probabilities averaged."""

    def p(self, x: np.ndarray) -> np.ndarray:
        """p_horizon of candidates whose full feature rows (order of `FEATURES`) are `x`."""
        cols, weights, nets = self._arrays
        if nets is not None:
            return mlp_forward(nets, x[:, cols])
        return 1.0 / (1.0 + np.exp(-(x[:, cols] @ weights)))

    @cached_property
    def _arrays(self) -> tuple[list[int], np.ndarray, tuple | None]:
        """Its columns of `FEATURES` and its weights as arrays, converted once (`p` runs at every
        prediction of the horizon view); a scorer is not changed after it is made."""
        nets = mlp_arrays(self.mlp) if self.mlp is not None else None
        return [FEATURES.index(f) for f in self.features], np.asarray(self.weights), nets

    def to_dict(self) -> dict[str, Any]:
        d = {"features": list(self.features), "weights": self.weights, "fitted_on": self.fitted_on,
             "horizon": HORIZON, "reliability": self.reliability}
        if self.mlp is not None:
            d["mlp"] = self.mlp
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "horizon scorer") -> HorizonScorer:
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(d).__name__}")
        names = d.get("features")
        if not isinstance(names, list) or not names or names[0] != "bias" or not all(
                isinstance(n, str) and n in FEATURES for n in names) or len(set(names)) != len(names):
            raise ValueError(f"{where}: field 'features' must list names of {list(FEATURES)}, 'bias' first, "
                             f"got {names!r}")
        w = d.get("weights")
        numbers = isinstance(w, list) and all(isinstance(v, int | float) and math.isfinite(v) for v in w)
        if not numbers or len(w) != len(names):
            raise ValueError(f"{where}: field 'weights' must be {len(names)} numbers (one per feature)")
        mlp = d.get("mlp")
        if mlp is not None:
            check_mlp(mlp, len(names), where)
        return cls([float(v) for v in w], tuple(names), int(d.get("fitted_on", 0)), d.get("reliability"), mlp)

    def save(self, path: str | Path) -> None:
        """One JSON file with its format and version, written atomically (`baselines.io.write_state`)."""
        write_state(Path(path), FORMAT, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> HorizonScorer:
        """A saved scorer; a file saved before scorers had a format field loads too."""
        return cls.from_dict(read_state(Path(path), FORMAT, unversioned=True), str(path))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 30) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method (IRLS); the bias (column 0) unpenalised."""
    w = np.zeros(x.shape[1])
    reg = np.full(x.shape[1], l2)
    reg[0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + reg * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-6:
            break
    return w


class HorizonPredictor:
    """A next-call predictor's top-k pooled with the fan-out candidates, scored by p_horizon."""

    def __init__(self, base: Predictor, fanout: FanoutPredictor, scorer: HorizonScorer | None = None,
                 name: str | None = None, base_k: int = BASE_K, fan_k: int = FAN_K,
                 pattern: Predictor | None = None, pattern_k: int = PATTERN_K,
                 is_write: Callable[[str], bool] | None = None):
        self.base = base
        self.is_write = is_write
        """Which tools change state (for `write_p` and `since_write`); `fit` sets it from its own."""
        self.fanout = fanout
        self.pattern = pattern
        """A third source of candidates (the pattern pool), or None."""
        self.scorer = scorer
        self.name = name or f"{getattr(base, 'name', 'model')}_horizon"
        self.base_k = base_k
        self.fan_k = fan_k
        self.pattern_k = pattern_k

    def for_runtime(self, is_read: Callable[[str], bool],
                    is_write: Callable[[str], bool]) -> HorizonPredictor:
        """This view for the runtime it is handed to (`SpeculativeRuntime` calls it with its tools'
        contracts): which tools may run ahead (the fan-out's rules by name propose those, new tools
        included) and which change state, where this view was not given them. A copy sharing the model,
        the scorer and the mined rules, so one loaded view serves several runtimes, each with its own
        contracts; this one when it has both already."""
        if self.is_write is not None and self.fanout.is_read is not None:
            return self
        other = copy.copy(self)
        other.is_write = self.is_write or is_write
        if self.fanout.is_read is None:
            other.fanout = self.fanout.with_reads(is_read)
        return other

    def candidates(self, context: Context) -> list[tuple[CallPrediction, np.ndarray]]:
        """Each complete candidate call with its feature vector (order of `FEATURES`)."""
        model, pat = self._base_and_pattern(context)
        fan = self.fanout.predict(context, self.fan_k)
        tool_p: dict[str, float] = {}
        respond = 0.0
        for p in model:
            if p.is_respond:
                respond = max(respond, p.p_tool)
            else:
                tool_p[p.tool] = max(tool_p.get(p.tool, 0.0), p.p_tool)
        is_write = self.is_write or (lambda _t: False)
        write_p = min(1.0, sum(p for t, p in tool_p.items() if is_write(t)))
        since_write = 0
        for e in reversed(context.events):
            if isinstance(e, ToolCall):
                if is_write(e.tool):
                    break
                since_write += 1
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for rank, p in enumerate(model):
            if p.complete and p.key not in by_key:
                by_key[p.key] = {"pred": p, "model": p.p_call, "rank": rank}
        for f in fan:
            slot = by_key.setdefault(f.key, {"pred": f})
            slot["fan"] = f.p_horizon or 0.0
            slot["fan_next"] = f.p_call
        for rank, p in enumerate(pat):
            if p.complete and "pat" not in by_key.get(p.key, {}):
                slot = by_key.setdefault(p.key, {"pred": p})
                slot["pat"], slot["pat_rank"] = p.p_call, rank
        log_n = math.log1p(len(fan))
        last_tool, turn_tools, last_output = _last_tools(context)
        said = " ".join(e.text for e in context.events if isinstance(e, Message) and e.role == "user").lower()
        out = []
        for c in by_key.values():
            has_fan, has_model, has_pat = "fan" in c, "model" in c, "pat" in c
            tool, args = c["pred"].tool, c["pred"].args
            x = np.array([1.0, float(has_fan), _logit(c["fan"]) if has_fan else 0.0, float(has_model),
                          _logit(c["model"]) if has_model else 0.0,
                          math.log1p(c["rank"]) if has_model else 0.0,
                          tool_p.get(tool, 0.0), respond, log_n, float(has_pat),
                          _logit(c["pat"]) if has_pat else 0.0, math.log1p(c["pat_rank"]) if has_pat else 0.0,
                          float(tool == last_tool), float(tool in turn_tools),
                          _share_in(args, said), float(_share_in(args, last_output) == 1), write_p,
                          math.log1p(since_write)])
            out.append((c, x))
        return [(self._merged(c), x) for c, x in out]

    def _base_and_pattern(self, context: Context) -> tuple[list[CallPrediction], list[CallPrediction]]:
        """The base's top `base_k` and the pattern pool's top `pattern_k`. When the base is a pool whose
        expert is this pattern pool, its answer there is taken when it holds at least `pattern_k` calls
        (the pattern pool's top k is a prefix of its top K: `rank_calls` ranks, then cuts); asking again
        cost a third of a step."""
        with_answers = getattr(self.base, "predict_with_answers", None)
        if self.pattern is None or not callable(with_answers):
            model = self.base.predict(context, self.base_k)
            return model, self.pattern.predict(context, self.pattern_k) if self.pattern is not None else []
        model, answers = with_answers(context, self.base_k)
        experts = getattr(self.base, "experts", {})
        given = next((answers[n] for n, e in experts.items() if e is self.pattern and n in answers), None)
        if given is None or len(given) < self.pattern_k:
            return model, self.pattern.predict(context, self.pattern_k)
        return model, given[:self.pattern_k]

    @staticmethod
    def _merged(c: dict[str, Any]) -> CallPrediction:
        p: CallPrediction = c["pred"]
        p_call = c["model"] if "model" in c else c["fan_next"] if "fan" in c else c.get("pat", 0.0)
        return CallPrediction(p.tool, dict(p.args), list(p.free), p.p_tool, p_call, dict(p.sources),
                              p_horizon=c.get("fan"))

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        """The `horizon` view: candidates best first by p_horizon (calibrated on held-out traces)."""
        return self.horizon(context, k)

    def horizon(self, context: Context, k: int = 3) -> list[CallPrediction]:
        if self.scorer is not None and self.is_write is None and (
                {"write_p", "since_write"} & set(self.scorer.features)):
            raise ValueError("this horizon scorer uses write_p / since_write: give the HorizonPredictor "
                             "is_write (which tools change state), or use the view a SpeculativeRuntime "
                             "made of it (runtime.predictor), which has its tools' contracts")
        cands = self.candidates(context)
        if not cands:
            return []
        if self.scorer is not None:
            ps = self.scorer.p(np.stack([x for _, x in cands]))
            for (c, _), p in zip(cands, ps, strict=True):
                c.p_horizon = float(max(p, c.p_call))
        for c, _ in cands:
            if c.p_horizon is None:
                c.p_horizon = c.p_call
        out = sorted((c for c, _ in cands), key=lambda c: (-(c.p_horizon or 0.0), c.tool))
        return out[:k]

    # ---- fitting on held-out traces ---------------------------------------------------------------
    def fit(self, traces: Iterable[Trace], *, is_write: Callable[[str], bool] | None = None,
            l2: float = 1.0, features: Iterable[str] | None = None, kind: str = "mlp") -> HorizonScorer:
        """Fit the scorer on held-out traces, on `features` (default: all of `FEATURES` this predictor
        has sources for: the pattern pool's only with `pattern`). `kind`: "logistic" (the regression,
        `l2` its penalty) or "mlp" (the default: `fit_mlp`, small networks over the same features, averaged;
        the regression's weights are fitted too, for the log)."""
        if kind not in ("logistic", "mlp"):
            raise ValueError(f"kind must be 'logistic' or 'mlp', got {kind!r}")
        names = tuple(features) if features is not None else tuple(
            f for f in FEATURES if self.pattern is not None or not f.startswith("pat"))
        self.is_write = is_write or self.is_write
        if self.is_write is None:
            names = tuple(f for f in names if f not in ("write_p", "since_write"))
        unknown = [f for f in names if f not in FEATURES]
        if unknown or not names or names[0] != "bias":
            raise ValueError(f"features must be names of {list(FEATURES)}, 'bias' first; got {list(names)}")
        xs, ys = [], []
        for trace in traces:
            for context, future in horizon_labels(trace, is_write):
                for c, x in self.candidates(context):
                    xs.append(x)
                    ys.append(1.0 if c.key in future else 0.0)
        if not xs:
            raise ValueError("no candidates to fit the horizon scorer on")
        x, y = np.stack(xs), np.asarray(ys)
        cols = x[:, [FEATURES.index(f) for f in names]]
        w = fit_logistic(cols, y, l2=l2)
        self.scorer = HorizonScorer([float(v) for v in w], names, len(xs),
                                    mlp=fit_mlp(cols, y) if kind == "mlp" else None)
        self.scorer.reliability = reliability(self.scorer.p(x), y)
        log.info("horizon scorer (%s): %d candidates, %.1f%% positive, logistic weights %s", kind, len(xs),
                 100 * np.mean(ys), dict(zip(names, np.round(w, 3).tolist(), strict=True)))
        return self.scorer


def _share_in(args: dict[str, Any], text: str) -> float:
    """The share of the argument values (as lower-case text, 3 characters or more) found in `text`."""
    values = [str(v).lower() for v in args.values() if isinstance(v, str | int | float) and len(str(v)) >= 3]
    return sum(v in text for v in values) / len(values) if values else 0.0


def _last_tools(context: Context) -> tuple[str | None, set[str], str]:
    """The tool of the context's last call, the tools of its last turn's calls, its output (lower case)."""
    last: ToolCall | None = None
    tools: set[str] = set()
    for e in reversed(context.events):
        if isinstance(e, ToolCall):
            if last is None:
                last = e
            elif e.turn != last.turn:
                break
            tools.add(e.tool)
        elif last is not None and isinstance(e, Message) and e.role == "user":
            break
    if last is None:
        return None, tools, ""
    return last.tool, tools, (last.output or "").lower()


def reliability(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Reliability bins (n, mean p, hit rate) and, last, the expected calibration error."""
    out: list[dict[str, Any]] = []
    which = np.minimum((p * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            out.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": int(m.sum()),
                        "mean_p": round(float(p[m].mean()), 4), "hit_rate": round(float(y[m].mean()), 4)})
            ece += m.sum() / len(p) * abs(float(p[m].mean()) - float(y[m].mean()))
    out.append({"ece": round(ece, 4)})
    return out


def horizon_labels(trace: Trace, is_write: Callable[[str], bool] | None = None,
                   horizon: int = HORIZON) -> Iterable[tuple[Context, set[tuple[str, str]]]]:
    """(context, the call keys issued from it within `horizon` decision points, before the next write)."""
    is_write = is_write or (lambda _t: False)
    points = list(decision_positions(trace.events))
    meta = {"source": trace.source, **trace.metadata}
    for d, (i, _) in enumerate(points):
        future: set[tuple[str, str]] = set()
        stop = False
        for _, calls in points[d:d + horizon]:
            for c in calls:
                if is_write(c.tool):
                    stop = True
                    break
                future.add(c.key)
            if stop:
                break
        yield Context(events=trace.events[:i], tools=trace.tools, metadata=meta), future
