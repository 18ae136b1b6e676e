"""The horizon scorer's small networks (`HorizonScorer.mlp`): fitted in numpy, stored as plain JSON.

Three one-hidden-layer tanh networks over the scorer's standardised features, trained by full-batch Adam
on the log loss and averaged: on the development logs they separate the calls an agent issues before its
next write better than the logistic regression over the same features (BENCHMARKS "Speculating sets").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def check_mlp(mlp: Any, n: int, where: str) -> None:
    """ValueError naming `where` unless `mlp` is a network over `n` features as `fit_mlp` writes it."""
    def shape(v: Any) -> tuple[int, ...] | None:
        try:
            a = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            return None
        return a.shape if np.all(np.isfinite(a)) else None

    ok = isinstance(mlp, dict) and shape(mlp.get("mean")) == (n,) and shape(mlp.get("scale")) == (n,)
    nets = mlp.get("nets") if isinstance(mlp, dict) else None
    ok = ok and isinstance(nets, list) and bool(nets)
    for net in nets if ok else []:
        w1 = shape(net.get("w1")) if isinstance(net, dict) else None
        ok = ok and w1 is not None and len(w1) == 2 and w1[0] == n and shape(net.get("b1")) == (w1[1],) \
            and shape(net.get("w2")) == (w1[1],) and shape(net.get("b2")) == ()
    if not ok:
        raise ValueError(f"{where}: field 'mlp' must hold 'mean' and 'scale' ({n} numbers each) and 'nets', "
                         f"each with 'w1' ({n} x hidden), 'b1' and 'w2' (hidden numbers) and 'b2' (a number)")


def mlp_p(mlp: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """An `HorizonScorer.mlp`'s probabilities for feature rows `x` (its features, in its order)."""
    return mlp_forward(mlp_arrays(mlp), x)


def mlp_arrays(mlp: dict[str, Any]) -> tuple:
    """`mlp` as numpy arrays, for `mlp_forward` (convert once, score many times)."""
    nets = [(np.asarray(n["w1"]), np.asarray(n["b1"]), np.asarray(n["w2"]), float(n["b2"]))
            for n in mlp["nets"]]
    return np.asarray(mlp["mean"]), np.asarray(mlp["scale"]), nets


def mlp_forward(arrays: tuple, x: np.ndarray) -> np.ndarray:
    """The averaged probabilities of `mlp_arrays`' networks for feature rows `x`."""
    mean, scale, nets = arrays
    z = (x - mean) / scale
    ps = [1.0 / (1.0 + np.exp(-(np.tanh(z @ w1 + b1) @ w2 + b2))) for w1, b1, w2, b2 in nets]
    return np.mean(ps, axis=0)


MLP_HIDDEN = 32
MLP_NETS = 3
MLP_STEPS = 200


def fit_mlp(x: np.ndarray, y: np.ndarray, hidden: int = MLP_HIDDEN, nets: int = MLP_NETS,
            steps: int = MLP_STEPS, l2: float = 1e-4, lr: float = 1e-2, seed: int = 0) -> dict[str, Any]:
    """`nets` one-hidden-layer tanh networks (full-batch Adam on the log loss, L2 `l2` on every weight),
    each from its own seed, for `HorizonScorer.mlp`. Column 0 (the bias feature) is not standardised."""
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    mean[0], scale[0] = 0.0, 1.0
    z = (x - mean) / scale
    out = []
    for k in range(nets):
        rng = np.random.default_rng(seed + k)
        params = [rng.normal(0, 1 / math.sqrt(z.shape[1]), (z.shape[1], hidden)), np.zeros(hidden),
                  rng.normal(0, 1 / math.sqrt(hidden), hidden), np.zeros(())]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        for t in range(1, steps + 1):
            w1, b1, w2, b2 = params
            h = np.tanh(z @ w1 + b1)
            p = 1.0 / (1.0 + np.exp(-(h @ w2 + b2)))
            d = (p - y) / len(y)  # d loss / d logit
            dh = np.outer(d, w2) * (1 - h * h)
            grads = [z.T @ dh + l2 * w1, dh.sum(0) + l2 * b1, h.T @ d + l2 * w2, d.sum() + l2 * b2]
            for i, g in enumerate(grads):  # Adam
                m[i] = 0.9 * m[i] + 0.1 * g
                v[i] = 0.999 * v[i] + 0.001 * g * g
                step = (m[i] / (1 - 0.9**t)) / (np.sqrt(v[i] / (1 - 0.999**t)) + 1e-8)
                params[i] = params[i] - lr * step
        w1, b1, w2, b2 = params
        out.append({"w1": w1.tolist(), "b1": b1.tolist(), "w2": w2.tolist(), "b2": float(b2)})
    return {"mean": mean.tolist(), "scale": scale.tolist(), "nets": out}
