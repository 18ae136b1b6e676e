"""Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks"), fitted on validation.

One temperature for the tool head and one for the slot heads: logits / T before the softmax. T is the
minimiser of the validation negative log-likelihood (a 1-D convex problem in log T, solved by golden-
section search: deterministic, no optimiser state). Reported: NLL and expected calibration error (ECE,
15 equal-width confidence bins over the top-1 prediction) before and after, with the reliability bins.
NumPy only; the arrays are the model's raw outputs on the validation examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolcast.predictor.modeldir import Calibration

N_BINS = 15


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def multi_nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean -log of the probability on the true classes; `targets` is a boolean mask (N, K)."""
    lp = log_softmax(logits, temperature)
    lp_true = np.where(targets, lp, -np.inf)
    m = lp_true.max(-1, keepdims=True)
    return float(-(m[:, 0] + np.log(np.exp(lp_true - m).sum(-1))).mean())


def fit_temperature(
    logits: np.ndarray, targets: np.ndarray, lo: float = 0.05, hi: float = 20.0, iters: int = 60
) -> float:
    """argmin_T multi_nll(logits / T) by golden-section search on log T."""
    if len(logits) == 0:
        return 1.0
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = multi_nll(logits, targets, math.exp(c)), multi_nll(logits, targets, math.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = multi_nll(logits, targets, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = multi_nll(logits, targets, math.exp(d))
    return float(math.exp((a + b) / 2))


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = N_BINS) -> dict[str, Any]:
    """ECE and the per-bin (count, mean confidence, accuracy) of top-1 predictions."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    table = []
    ece = 0.0
    n = max(1, len(confidence))
    for k in range(bins):
        sel = which == k
        if not sel.any():
            continue
        conf, acc = float(confidence[sel].mean()), float(correct[sel].mean())
        ece += sel.sum() / n * abs(conf - acc)
        table.append(
            {
                "lo": float(edges[k]),
                "hi": float(edges[k + 1]),
                "count": int(sel.sum()),
                "confidence": conf,
                "accuracy": acc,
            }
        )
    return {"ece": float(ece), "bins": table}


def top1(logits: np.ndarray, targets: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    lp = log_softmax(logits, temperature)
    best = lp.argmax(-1)
    return np.exp(lp[np.arange(len(lp)), best]), targets[np.arange(len(lp)), best]


@dataclass
class HeadReport:
    temperature: float
    nll_before: float
    nll_after: float
    ece_before: float
    ece_after: float
    bins_after: list[dict[str, Any]]


def calibrate_head(logits: np.ndarray, targets: np.ndarray) -> HeadReport:
    t = fit_temperature(logits, targets)
    before = reliability(*top1(logits, targets, 1.0))
    after = reliability(*top1(logits, targets, t))
    return HeadReport(
        t,
        multi_nll(logits, targets),
        multi_nll(logits, targets, t),
        before["ece"],
        after["ece"],
        after["bins"],
    )


def slot_rows(slot_logits: np.ndarray, slot_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows' logits, one-hot targets) of the slot rows that have a target."""
    flat = slot_logits.reshape(-1, slot_logits.shape[-1])
    t = slot_target.reshape(-1)
    keep = t >= 0
    onehot = np.zeros((int(keep.sum()), flat.shape[-1]), bool)
    onehot[np.arange(len(onehot)), t[keep]] = True
    return flat[keep], onehot


def fit_calibration(
    tool_logits: np.ndarray, tool_multi: np.ndarray, slot_logits: np.ndarray, slot_target: np.ndarray
) -> tuple[Calibration, dict[str, Any]]:
    """Temperatures for both heads, and the before/after report that goes into the metrics card."""
    tool = calibrate_head(tool_logits, tool_multi)
    s_logits, s_targets = slot_rows(slot_logits, slot_target)
    slot = calibrate_head(s_logits, s_targets) if len(s_logits) else HeadReport(1.0, 0, 0, 0, 0, [])
    report = {
        "tool": tool.__dict__,
        "slot": slot.__dict__,
        "n_tool": int(len(tool_logits)),
        "n_slot_rows": int(len(s_logits)),
    }
    return Calibration(tool_temperature=tool.temperature, slot_temperature=slot.temperature), report
