"""Next-call metrics over decision points: what `toolcast eval` reports. NumPy only (no torch).

Each decision point becomes a `PointOutcome`: the label (the tools and exact calls of the turn the agent
issued, or `<respond>`) and the predictor's ranked answer. The rules, once:

- **tool top-k**, **call top-k** are measured over the points whose label is a tool call (`n_points`,
  as published results count them). A point counts as correct when any of the predictor's first k tools
  (resp. calls) matches *any* call of the labelled turn: after a parallel turn the agent issued several
  calls at once, and speculating any of them saves time. A call matches on tool + canonical arguments.
- Tools are ranked by p_tool (distinct tools, `<respond>` included); calls in the predictor's order
  (by p_call). A call with a free slot never matches: it cannot be run ahead.
- **`<respond>` precision / recall** over all points: predicted when `<respond>` is the top tool.
- **ECE** over all points, `ECE_BINS` equal-width bins, of the top tool's probability against "the top
  tool is right" (it is one of the turn's tools, or `<respond>` at a respond point).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolcast.data.schema import RESPOND, Label
from toolcast.predictor.protocol import CallPrediction

ECE_BINS = 15


@dataclass(frozen=True)
class PointOutcome:
    """One decision point: what happened and what was predicted."""

    label_tools: tuple[str, ...]
    """The tools of the labelled turn, or (`<respond>`,)."""
    label_calls: frozenset[tuple[str, str]]
    """(tool, canonical args) of the labelled turn's calls; empty at a respond point."""
    tools: tuple[str, ...]
    """Predicted distinct tools, by p_tool, best first."""
    tool_probs: tuple[float, ...]
    calls: tuple[tuple[str, str] | None, ...]
    """Predicted calls in the predictor's order; None for a candidate that cannot match (free slots,
    `<respond>`)."""
    source: str = ""
    group: str = ""
    """The trace's task group: the unit `group_bootstrap` resamples."""

    @property
    def is_respond(self) -> bool:
        return not self.label_calls

    @property
    def confidence(self) -> float:
        return self.tool_probs[0] if self.tool_probs else 0.0

    @property
    def top1_correct(self) -> bool:
        return bool(self.tools) and self.tools[0] in self.label_tools

    def tool_hit(self, k: int) -> bool:
        """One of the first k predicted tools, `<respond>` left out, is one of the turn's tools."""
        return any(t in self.label_tools for t in [t for t in self.tools if t != RESPOND][:k])

    def call_hit(self, k: int) -> bool:
        """One of the first k predicted calls, `<respond>` left out, is one of the turn's calls."""
        return any(c is not None and c in self.label_calls for c in self.calls[:k])


def outcome(
    predictions: Sequence[CallPrediction], label: Label, source: str = "", group: str = ""
) -> PointOutcome:
    best: dict[str, float] = {}
    for p in predictions:
        best[p.tool] = max(best.get(p.tool, 0.0), p.p_tool)
    ranked = sorted(best.items(), key=lambda kv: -kv[1])  # stable: ties keep the predictor's order
    calls = tuple(None if p.free else p.key for p in predictions if not p.is_respond)
    return PointOutcome(
        label_tools=tuple(label.tools),
        label_calls=frozenset(c.key for c in label.calls),
        tools=tuple(t for t, _ in ranked),
        tool_probs=tuple(p for _, p in ranked),
        calls=calls,
        source=source,
        group=group,
    )


def _rate(hits: Iterable[bool | float]) -> float:
    h = list(hits)
    return float(np.mean(h)) if h else float("nan")


def expected_calibration_error(confidence: Sequence[float], correct: Sequence[bool],
                               bins: int = ECE_BINS) -> float:
    """sum over bins of (share of points in bin) x |accuracy - mean confidence|; bins are equal-width on
    [0, 1], the last one closed."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    if conf.size == 0:
        return float("nan")
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(ok[m].mean() - conf[m].mean())
    return float(ece)


def reliability_bins(confidence: Sequence[float], correct: Sequence[bool],
                     bins: int = ECE_BINS) -> list[dict[str, float]]:
    """Per bin: its edges, point count, mean confidence, accuracy (the reliability diagram's data)."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    idx = np.minimum((conf * bins).astype(int), bins - 1) if conf.size else conf.astype(int)
    out = []
    for b in range(bins):
        m = idx == b
        n = int(m.sum())
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "count": n,
                    "confidence": float(conf[m].mean()) if n else float("nan"),
                    "accuracy": float(ok[m].mean()) if n else float("nan")})
    return out


def respond_precision_recall(outcomes: Sequence[PointOutcome]) -> tuple[float, float]:
    predicted = [bool(o.tools) and o.tools[0] == RESPOND for o in outcomes]
    actual = [o.is_respond for o in outcomes]
    tp = sum(p and a for p, a in zip(predicted, actual, strict=True))
    n_pred, n_act = sum(predicted), sum(actual)
    return (tp / n_pred if n_pred else float("nan"), tp / n_act if n_act else float("nan"))


def summarize(outcomes: Sequence[PointOutcome]) -> dict[str, Any]:
    """The headline numbers of a set of decision points."""
    calls = [o for o in outcomes if not o.is_respond]
    precision, recall = respond_precision_recall(outcomes)
    return {
        "tool_top1": _rate(o.tool_hit(1) for o in calls),
        "tool_top3": _rate(o.tool_hit(3) for o in calls),
        "call_top1": _rate(o.call_hit(1) for o in calls),
        "call_top3": _rate(o.call_hit(3) for o in calls),
        "respond_precision": precision,
        "respond_recall": recall,
        "ece": expected_calibration_error([o.confidence for o in outcomes],
                                          [o.top1_correct for o in outcomes]),
        "top1_accuracy": _rate(o.top1_correct for o in outcomes),
        "mean_confidence": _rate(o.confidence for o in outcomes),
        "n_points": len(calls),
        "n_decision_points": len(outcomes),
        "n_respond_points": len(outcomes) - len(calls),
    }


def by_source(outcomes: Sequence[PointOutcome]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[PointOutcome]] = defaultdict(list)
    for o in outcomes:
        groups[o.source].append(o)
    return {s: summarize(g) for s, g in sorted(groups.items())}


def per_tool(outcomes: Sequence[PointOutcome]) -> list[dict[str, Any]]:
    """One row per labelled tool (a parallel turn counts for each of its tools), most frequent first:
    points, tool top-1/top-3, call top-1/top-3. For `<respond>`: how often it was the top tool (its
    recall) and among the top three, no call columns."""
    groups: dict[str, list[PointOutcome]] = defaultdict(list)
    for o in outcomes:
        for t in dict.fromkeys(o.label_tools):
            groups[t].append(o)
    rows = []
    for tool, g in groups.items():
        is_respond = tool == RESPOND
        if is_respond:
            top1, top3 = _rate(o.top1_correct for o in g), _rate(RESPOND in o.tools[:3] for o in g)
        else:
            top1, top3 = _rate(o.tool_hit(1) for o in g), _rate(o.tool_hit(3) for o in g)
        rows.append({
            "tool": tool, "n": len(g), "tool_top1": top1, "tool_top3": top3,
            "call_top1": float("nan") if is_respond else _rate(o.call_hit(1) for o in g),
            "call_top3": float("nan") if is_respond else _rate(o.call_hit(3) for o in g),
        })
    rows.sort(key=lambda r: (-r["n"], r["tool"]))
    return rows


CI_METRICS = ("tool_top1", "tool_top3", "call_top1", "call_top3", "ece")


def group_bootstrap(
    outcomes: Sequence[PointOutcome],
    others: Sequence[Sequence[PointOutcome]] = (),
    n: int = 400,
    seed: int = 0,
    metrics: Sequence[str] = CI_METRICS,
) -> dict[str, Any]:
    """95% intervals of the headline metrics, resampling whole task groups (points of one task are not
    independent: a test split of 20 tasks per source moves accuracy by several points from one split seed
    to the next). With `others` (other predictors' outcomes on the same points, in the same order) also
    the interval of each difference `outcomes - other`, paired: the same resampled groups for both."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, o in enumerate(outcomes):
        groups[o.group].append(i)
    keys = sorted(groups)
    if len(keys) < 2:
        return {}
    rng = np.random.default_rng(seed)
    runs: list[list[dict[str, Any]]] = [[] for _ in range(1 + len(others))]
    for _ in range(n):
        pick = rng.integers(0, len(keys), len(keys))
        idx = [i for g in pick for i in groups[keys[g]]]
        for r, outs in enumerate((outcomes, *others)):
            runs[r].append(summarize([outs[i] for i in idx]))

    def interval(values: list[float]) -> list[float]:
        v = np.asarray([x for x in values if x == x], float)
        return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if v.size else []

    out: dict[str, Any] = {"groups": len(keys), "resamples": n}
    out.update({m: interval([s[m] for s in runs[0]]) for m in metrics})
    out["differences"] = [
        {m: interval([a[m] - b[m] for a, b in zip(runs[0], runs[r], strict=True)]) for m in metrics}
        for r in range(1, len(runs))
    ]
    return out
