"""Pooling experts: the learned model and the mined pattern pool, combined by weights fitted on held-out logs.

The learned model knows the sequence (which tool follows which text and result); the pattern pool's mined
value maps know where arguments come from, and both make different mistakes, most of all on logs unlike
their training logs. `PooledPredictor` combines them per decision point:

- **tools**: a log-linear pool, p(t) ∝ Π_e p_e(t)^w_e over the tools any expert lists (`<respond>`
  included); a tool an expert leaves out gets that expert's unlisted mass spread evenly (at least
  `FLOOR`). The weights `w_e` both weight the experts and set the temperature: they are fitted by maximum
  likelihood on decision points none of the experts was fitted on, so p(tool) comes out calibrated there.
- **arguments**: given the tool, a mixture of the experts' argument distributions, q(args | t) =
  Σ_e b_e q_e(args | t) / Σ_e b_e over the experts that offer a complete call of t, with q_e(args | t) =
  p_call / p_tool of that expert's call. `b` is chosen on the same points (grid, log-likelihood).
- p(call) = p(t) · q(args | t); calls are ranked by p(call) then p(tool), as every predictor ranks.

NumPy only (no torch): the embedded side can pool an ONNX model with a pattern pool. The weights are
stored as JSON (`PoolWeights.to_dict`, never pickle).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from toolcast.data.schema import RESPOND, Context
from toolcast.predictor.baselines.io import read_state, write_state
from toolcast.predictor.protocol import CallPrediction, Predictor

log = logging.getLogger(__name__)

FLOOR = 1e-4
"""Least p an expert gives a tool it does not list (log-linear pooling needs a floor)."""
KEEP_TOOLS = 3
"""Places of a pooled top k (at most k // 4) kept for the likeliest tools that no complete call names."""
EXPERT_K = 16
"""Candidates asked of each expert per decision point."""
READER_K = 64
"""Candidates asked of an expert that reads any tool (the model): enough that its answer names each tool
of the context with its own p. With 16, a few tools' several calls filled the answer and the other tools
shared the leftover mass evenly, which reordered the model's near-tied guesses on a new tool set (tool
top-3 on never-seen tools 0.41 pooled against 0.46 for the model alone)."""
WEIGHT_GRID = np.round(np.arange(0.0, 2.01, 0.1), 2)
MIX_GRID = np.round(np.arange(0.0, 1.001, 0.1), 2)
FORMAT = "toolcast.pool"
LEARNED = "learned"
"""The model's name among the experts."""
POOL_FILE = "pool.json"
"""The pool's weights in a model directory (`toolcast train` writes it beside the model)."""
PATTERN_FILE = "pattern_pool.json.gz"
"""The mined pattern pool in a model directory, fitted on the model's train + validation traces."""


@dataclass
class PoolWeights:
    experts: list[str]
    """Expert names, in the order of `tool_weights` and `arg_weights`."""
    tool_weights: list[float]
    arg_weights: list[float]
    fitted_on: int = 0
    """Decision points the weights were chosen on."""
    fit_report: dict[str, Any] = field(default_factory=dict)
    call_map: list[float] = field(default_factory=lambda: [1.0, 0.0])
    """(a, c): a complete call's p is σ(a · logit(p) + c), at most its tool's p (Platt scaling, fitted on
    the same points). [1, 0] leaves p as pooled."""

    @property
    def used(self) -> list[str]:
        """The experts with a weight on tools or arguments (the others need not be loaded)."""
        weights = zip(self.experts, self.tool_weights, self.arg_weights, strict=True)
        return [e for e, w, b in weights if w or b]

    def to_dict(self) -> dict[str, Any]:
        return {"experts": self.experts, "tool_weights": self.tool_weights, "arg_weights": self.arg_weights,
                "fitted_on": self.fitted_on, "fit_report": self.fit_report, "call_map": self.call_map}

    @classmethod
    def from_dict(cls, d: Any, where: str = "pool weights") -> PoolWeights:
        if not isinstance(d, dict):
            raise ValueError(f"{where}: expected a JSON object, got {type(d).__name__}")
        experts = d.get("experts")
        if not isinstance(experts, list) or not experts or not all(isinstance(e, str) for e in experts):
            raise ValueError(f"{where}: field 'experts' must be a non-empty list of names")
        out = []
        for key in ("tool_weights", "arg_weights"):
            w = d.get(key)
            if not (isinstance(w, list) and len(w) == len(experts)
                    and all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in w)):
                raise ValueError(f"{where}: field {key!r} must be {len(experts)} numbers >= 0")
            out.append([float(v) for v in w])
        call_map = d.get("call_map", [1.0, 0.0])
        if not (isinstance(call_map, list) and len(call_map) == 2
                and all(isinstance(v, int | float) and math.isfinite(v) for v in call_map)):
            raise ValueError(f"{where}: field 'call_map' must be 2 numbers")
        return cls(list(experts), out[0], out[1], int(d.get("fitted_on", 0) or 0), d.get("fit_report") or {},
                   [float(v) for v in call_map])

    def save(self, path: str | Path) -> None:
        """One JSON file with its format and version, written atomically (`baselines.io.write_state`)."""
        write_state(Path(path), FORMAT, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> PoolWeights:
        return cls.from_dict(read_state(Path(path), FORMAT), str(path))


@dataclass
class _View:
    """One expert's answer at one decision point: p per tool, and per tool its complete calls."""

    tools: dict[str, float]
    unlisted: float
    """The p per tool it does not list (its leftover mass spread evenly, at least FLOOR)."""
    calls: dict[str, list[tuple[float, CallPrediction]]]
    """tool -> (q(args | tool), the call), complete calls only."""
    free: dict[str, list[str]] = field(default_factory=dict)
    """tool -> the free slots of its first listed call that is not complete."""
    coverage: float = 1.0
    """The share of the context's tools (`<respond>` aside) the expert has evidence on: 1 for an expert
    that reads any tool (the model), the share it counted for a counting expert (the pattern pool)."""


def _view(predictions: Sequence[CallPrediction], names: frozenset[str],
          known: frozenset[str] | set[str] | None = None, seen: set[str] | None = None) -> _View:
    """One expert's answer. `known`: the tools the expert was fitted on, when it cannot say anything
    about others (the pattern pool's counts); a candidate outside them gets the geometric mean of the
    expert's p over the candidates it knows: neither pushed up nor down by an expert that never saw it.
    `seen`: the tools its training logs had at all, listed or called (default `known`): the share of
    the context's tools among them is the view's `coverage`."""
    tools: dict[str, float] = {}
    for p in predictions:
        tools[p.tool] = max(tools.get(p.tool, 0.0), p.p_tool)
    left = max(0.0, 1.0 - sum(tools.values()))
    unlisted = max(FLOOR, left / max(1, len(names) - len(tools)))
    coverage = 1.0
    if known is not None:
        unseen = [t for t in names if t not in known and t != RESPOND]
        had = known if seen is None else seen
        new = sum(1 for t in names if t not in had and t != RESPOND)
        coverage = 1.0 - new / max(1, len(names) - (RESPOND in names))
        counted = [max(FLOOR, tools.get(t, unlisted)) for t in names if t in known or t == RESPOND]
        if unseen and counted:
            neutral = math.exp(sum(math.log(v) for v in counted) / len(counted))
            tools.update(dict.fromkeys(unseen, neutral))
    calls: dict[str, list[tuple[float, CallPrediction]]] = {}
    free: dict[str, list[str]] = {}
    for p in predictions:
        if p.complete and p.p_tool > 0 and p.p_call > 0:
            calls.setdefault(p.tool, []).append((min(1.0, p.p_call / p.p_tool), p))
        elif not p.is_respond:
            free.setdefault(p.tool, list(p.free) or ["*"])
    return _View(tools, unlisted, calls, free, coverage)


def fallback_weights(experts: Sequence[str]) -> list[float]:
    """The tool weights of a pool whose counting experts know none of the context's tools: the model
    alone, at its own (calibrated) temperature."""
    return [1.0 if e == LEARNED else 0.0 for e in experts]


def effective_weights(views: Sequence[_View], w: Sequence[float],
                      alone: Sequence[float] | None) -> Sequence[float]:
    """The tool weights at one decision point. Weights are fitted where the counting experts know the
    tools; where they know only a share c of the context's tools (a new tool set, tools added since),
    the weights move to the model alone in proportion: c · w + (1 - c) · alone, so on a tool set none
    of the training logs had, the pattern pool's beliefs about the few tools it shares with other
    set-ups (and its weight, fitted as a temperature with the model's) count for little. (On held-out
    retail it moved tool top-3 little by itself: the pool's cost there was `READER_K`'s.)"""
    if alone is None:
        return w
    c = min((v.coverage for v, wi in zip(views, w, strict=True) if wi), default=1.0)
    if c >= 1.0:
        return w
    return [c * wi + (1.0 - c) * ai for wi, ai in zip(w, alone, strict=True)]


def _known(expert: Predictor) -> set[str] | None:
    """The tools a counting expert was fitted on (the pattern pool's vocabulary); None for the others
    (the model reads tool names and descriptions, so it has a view on tools it never saw)."""
    toolsets = getattr(expert, "toolsets", None)
    return getattr(toolsets, "vocabulary", None)


def _seen(expert: Predictor) -> set[str] | None:
    """The tools a counting expert's training logs had, listed or called (its `coverage` counts them)."""
    toolsets = getattr(expert, "toolsets", None)
    return getattr(toolsets, "seen", None)


def expert_view(expert: Predictor, answer: Sequence[CallPrediction], names: frozenset[str]) -> _View:
    """`_view` of one expert's answer, with what it knows of the tools."""
    return _view(answer, names, _known(expert), _seen(expert))


def asked_k(expert: Predictor, k: int = EXPERT_K) -> int:
    """How many candidates the pool asks of `expert`: k, at least `READER_K` for one that reads any tool."""
    return k if _known(expert) is not None else max(k, READER_K)


def expert_views(experts: Iterable[Predictor], context: Context,
                 k: int = EXPERT_K) -> tuple[list[_View], frozenset[str]]:
    """Each expert's answer at `context` (its top `asked_k`), and the tools the pool ranks there
    (`universe`)."""
    names = universe(context)
    return [expert_view(e, e.predict(context, k=asked_k(e, k)), names) for e in experts], names


def universe(context: Context) -> frozenset[str]:
    """Every tool the context may call next: its listed tools, the tools called so far, `<respond>`.
    Each is a candidate of the pool, listed by an expert or not (an expert's top k may miss the right one
    that another ranks lower)."""
    return frozenset({t.name for t in context.tools} | {c.tool for c in context.calls} | {RESPOND})


class PooledPredictor:
    """Experts' tool probabilities pooled log-linearly, their argument distributions mixed."""

    def __init__(self, experts: Mapping[str, Predictor], weights: PoolWeights, name: str = "pooled",
                 expert_k: int = EXPERT_K):
        # an expert with no weight on tools or arguments changes nothing: it is not asked (nor needed)
        w = weights
        used = [i for i in range(len(w.experts)) if w.tool_weights[i] or w.arg_weights[i]]
        missing = [w.experts[i] for i in used if w.experts[i] not in experts]
        if missing:
            raise ValueError(f"pool weights name experts {missing} that were not given")
        self.experts = {w.experts[i]: experts[w.experts[i]] for i in used}
        self.weights = PoolWeights([w.experts[i] for i in used], [w.tool_weights[i] for i in used],
                                   [w.arg_weights[i] for i in used], w.fitted_on, w.fit_report, w.call_map)
        self.fitted = weights
        self.name = name
        self.expert_k = expert_k
        self.alone = fallback_weights(self.weights.experts)

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        return self.predict_with_answers(context, k)[0]

    def predict_with_answers(self, context: Context, k: int = 3
                             ) -> tuple[list[CallPrediction], dict[str, list[CallPrediction]]]:
        """`predict`, and each expert's own answer it pooled (by expert name; its top `asked_k`): the
        horizon view takes the pattern pool's candidates from here rather than asking it again."""
        names = universe(context)
        answers = {n: e.predict(context, k=asked_k(e, self.expert_k)) for n, e in self.experts.items()}
        views = [expert_view(e, answers[n], names) for n, e in self.experts.items()]
        return combine(views, self.weights.tool_weights, self.weights.arg_weights, k, names,
                       self.weights.call_map, self.alone), answers

    def predict_batch(self, contexts: Sequence[Context], k: int = 3) -> list[list[CallPrediction]]:
        """One batched run per expert that has `predict_batch` (the ONNX model), `predict` otherwise."""
        answers = []
        for e in self.experts.values():
            batch = getattr(e, "predict_batch", None)
            asked = asked_k(e, self.expert_k)
            if batch is not None:
                answers.append(batch(contexts, k=asked))
            else:
                answers.append([e.predict(c, k=asked) for c in contexts])
        out = []
        for i, c in enumerate(contexts):
            names = universe(c)
            experts = self.experts.values()
            views = [expert_view(e, a[i], names) for a, e in zip(answers, experts, strict=True)]
            out.append(combine(views, self.weights.tool_weights, self.weights.arg_weights, k, names,
                               self.weights.call_map, self.alone))
        return out

    def info(self) -> dict[str, Any]:
        """What `GET /v1/model` reports: the learned expert's info, plus the pool."""
        first = next(iter(self.experts.values()))
        info = dict(first.info()) if callable(getattr(first, "info", None)) else {}
        info["pool"] = self.fitted.to_dict()
        return info


def pooled_tools(views: Sequence[_View], w: Sequence[float], names: Iterable[str] = (),
                 alone: Sequence[float] | None = None) -> dict[str, float]:
    """p(tool) over `names` and every tool an expert lists. `alone`: `fallback_weights`, the weights
    where the counting experts know none of the context's tools (`effective_weights`)."""
    names = sorted({t for v in views for t in v.tools} | set(names))
    if not names:
        return {}
    w = effective_weights(views, w, alone)
    s = np.zeros(len(names))
    for v, wi in zip(views, w, strict=True):
        if wi:
            s += wi * np.log([max(FLOOR, v.tools.get(t, v.unlisted)) for t in names])
    s -= s.max()
    p = np.exp(s)
    p /= p.sum()
    return dict(zip(names, p.tolist(), strict=True))


def mixed_args(views: Sequence[_View], b: Sequence[float], tool: str) -> list[tuple[float, CallPrediction]]:
    """(q(args | tool), a call) over the experts' complete calls of `tool`, best first."""
    offering = [(v, bi) for v, bi in zip(views, b, strict=True) if tool in v.calls and bi > 0]
    total = sum(bi for _, bi in offering)
    if not total:
        return []
    merged: dict[tuple[str, str], list] = {}
    for v, bi in offering:
        for q, call in v.calls[tool]:
            entry = merged.setdefault(call.key, [0.0, call])
            entry[0] += bi * q / total
    return sorted(((q, c) for q, c in merged.values()), key=lambda qc: -qc[0])


def mapped(p: float, call_map: Sequence[float]) -> float:
    """σ(a · logit(p) + c): the Platt map of a complete call's pooled p."""
    a, c = call_map
    if a == 1.0 and c == 0.0:
        return p
    q = min(1 - 1e-6, max(1e-6, p))
    return 1.0 / (1.0 + math.exp(-(a * math.log(q / (1 - q)) + c)))


def combine(views: Sequence[_View], w: Sequence[float], b: Sequence[float], k: int,
            names: Iterable[str] = (), call_map: Sequence[float] = (1.0, 0.0),
            alone: Sequence[float] | None = None) -> list[CallPrediction]:
    p_tool = pooled_tools(views, w, names, alone)
    ranked: list[tuple[float, float, int, CallPrediction]] = []
    for tool, pt in p_tool.items():
        if tool == RESPOND:
            ranked.append((-pt, -pt, len(ranked), CallPrediction(RESPOND, p_tool=pt, p_call=pt)))
            continue
        calls = mixed_args(views, b, tool)
        if not calls:  # named, not runnable ahead: keeps the tool in the ranking
            free = next((v.free[tool] for v in views if tool in v.free), ["*"])
            ranked.append((0.0, -pt, len(ranked), CallPrediction(tool, free=list(free), p_tool=pt)))
        for q, c in calls[:4]:
            pc = min(pt, mapped(pt * q, call_map))
            ranked.append((-pc, -pt, len(ranked),
                           CallPrediction(tool, dict(c.args), [], pt, pc, dict(c.sources))))
    ranked.sort(key=lambda r: r[:3])
    top = ranked[:k]
    # The likeliest tools stay named when complete calls of likelier-to-be-filled tools fill the k places:
    # a tool whose arguments no expert can fill (a new tool, most often) has p(call) 0 and ranks after
    # every complete call, so other tools' calls can push it out of the list. Up to k // 4 places (at
    # most `KEEP_TOOLS`) go to them. (The pool's measured cost on never-seen tools was `READER_K`'s.)
    keep = min(KEEP_TOOLS, k // 4)
    if keep and len(ranked) > k:
        named = {r[3].tool for r in top}
        likeliest = sorted(p_tool, key=lambda t: -p_tool[t])[:keep]
        missing = [t for t in likeliest if t not in named]
        if missing:
            extra = [next(r for r in ranked[k:] if r[3].tool == t) for t in missing]
            top = sorted(top[:k - len(extra)] + extra, key=lambda r: r[:3])
    return [r[3] for r in top]


def load_pooled(model_dir: str | Path, model: Predictor) -> Predictor:
    """`model` pooled with the pattern pool saved beside it, when the directory has a pool (`POOL_FILE`);
    else `model` itself. A pool file that cannot be read is an error naming it, never a silent fallback."""
    from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor

    path = Path(model_dir)
    if not (path / POOL_FILE).exists():
        return model
    weights = PoolWeights.load(path / POOL_FILE)
    experts: dict[str, Predictor] = {LEARNED: model}
    if "pattern" in weights.used:
        experts["pattern"] = PatternPoolPredictor.load(path / PATTERN_FILE)
    if "semantic" in weights.used:
        from toolcast.predictor.baselines.semantic import SemanticPredictor
        from toolcast.predictor.features.text_encoder import StaticTextEncoder

        experts["semantic"] = SemanticPredictor(StaticTextEncoder.load(path))
    return PooledPredictor(experts, weights, name=getattr(model, "name", "learned"))
