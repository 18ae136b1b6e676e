"""Run a predictor over the decision points of held-out traces; the reliability diagram. NumPy only.

`toolcast eval` calls these for the learned model and the baselines alike, so every predictor is measured
the same way. Nothing here imports torch: `toolcast eval --baseline` works without the [train] extra's
torch (the default task-grouped split uses `toolcast.data.splits`, which needs `datasets`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from toolcast.data.quality import is_looping
from toolcast.data.schema import Trace
from toolcast.predictor.protocol import Predictor
from toolcast.training.metrics import (
    ECE_BINS,
    PointOutcome,
    by_source,
    group_bootstrap,
    outcome,
    per_tool,
    reliability_bins,
    summarize,
)

log = logging.getLogger(__name__)

K_EVAL = 32
"""Candidates asked of the predictor at each point: call top-k reads the first k, tool top-k the best k
distinct tools among all of them (a tool whose calls are incomplete still ranks by its p_tool)."""


def trace_source(trace: Trace) -> str:
    """A short name for where a trace came from ("tau2", "bfcl-v4"), for per-source figures."""
    src = trace.metadata.get("source")
    return src if isinstance(src, str) and src else trace.source


def evaluate(predictor: Predictor, traces: Iterable[Trace], k: int = K_EVAL,
             progress: bool = False) -> list[PointOutcome]:
    """One outcome per decision point of every trace."""
    traces = list(traces)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(traces), desc=f"eval {predictor.name}", unit="trace", leave=False)
    out: list[PointOutcome] = []
    for trace in traces:
        source = trace_source(trace)
        for context, label in trace.decision_points():
            out.append(outcome(predictor.predict(context, k=k), label, source, trace.group))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def split_for_eval(
    traces: Sequence[Trace], seed: int, keep_looping: bool = False
) -> tuple[list[Trace], list[Trace]]:
    """(fit, test): train + validation vs. test of the task-grouped split (`data.splits.split_of`).
    Traces sharing a trace id are kept once, as the cached splits do. Looping traces
    (`data.quality.is_looping`) are left out of both unless `keep_looping`: training leaves them out too,
    and one stuck session would otherwise weigh as much as dozens of healthy ones."""
    from toolcast.data.splits import split_of

    fit, test, seen = [], [], set()
    for t in traces:
        if t.trace_id in seen or (not keep_looping and is_looping(t)):
            continue
        seen.add(t.trace_id)
        (test if split_of(t.group, seed) == "test" else fit).append(t)
    return fit, test


def looping_left_out(traces: Sequence[Trace], seed: int) -> dict[str, int]:
    """What `split_for_eval` leaves out of the test split: looping traces and their decision points."""
    from toolcast.data.splits import split_of

    unique: dict[str, Trace] = {}
    for t in traces:  # the first of a duplicated id, as split_for_eval keeps
        unique.setdefault(t.trace_id, t)
    out = [t for t in unique.values() if is_looping(t) and split_of(t.group, seed) == "test"]
    return {"traces": len(out), "points": sum(1 for t in out for _ in t.decision_points())}


@dataclass
class EvalReport:
    predictor: str
    outcomes: list[PointOutcome]
    setup: dict[str, Any] = field(default_factory=dict)
    """How the run was set up: data, fitting traces, split, seed."""

    def to_dict(self) -> dict[str, Any]:
        return {"predictor": self.predictor, **summarize(self.outcomes), "setup": self.setup,
                "ci95": group_bootstrap(self.outcomes),
                "by_source": by_source(self.outcomes), "per_tool": per_tool(self.outcomes),
                "reliability": reliability_bins([o.confidence for o in self.outcomes],
                                                [o.top1_correct for o in self.outcomes])}


def plot_reliability(outcomes: Sequence[PointOutcome], path: str | os.PathLike | IO[bytes], title: str = "",
                     bins: int = ECE_BINS) -> None:
    """A reliability diagram (accuracy vs. confidence of the top tool, with the point count per bin)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = reliability_bins([o.confidence for o in outcomes], [o.top1_correct for o in outcomes], bins)
    s = summarize(outcomes)
    fig, (ax, ax_n) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=(3, 1), sharex=True)
    width = 1.0 / bins
    filled = [r for r in rows if r["count"]]
    ax.bar([r["lo"] for r in filled], [r["accuracy"] for r in filled], width=width, align="edge",
           edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.plot([r["lo"] + width / 2 for r in filled], [r["confidence"] for r in filled], "o", color="crimson",
            markersize=4, label="mean confidence in the bin")
    ax.set_ylabel("top-1 accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"{title or 'reliability'}  (ECE {s['ece']:.3f}, {s['n_decision_points']} points)")
    ax.legend(loc="upper left", fontsize=8)
    ax_n.bar([r["lo"] for r in rows], [r["count"] for r in rows], width=width, align="edge", color="gray")
    ax_n.set_xlabel("top-1 probability")
    ax_n.set_ylabel("points")
    ax_n.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path if hasattr(path, "write") else os.fspath(path), dpi=120, format="png")
    plt.close(fig)
