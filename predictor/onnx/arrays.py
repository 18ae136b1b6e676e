"""The ONNX predictor's arrays: cut to what a context uses, padded to a batch, and the tool set's tensors
kept. Every padded axis of the graphs is dynamic (`contract.AXES`), so a context runs at its own sizes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence

import numpy as np

from toolcast.predictor.onnx.contract import AXES, LENGTH_OF, TOOL_SET_INPUTS

TOOL_SETS_KEPT = 64
"""Distinct tool sets whose `tools` graph outputs a predictor keeps (least recently used goes first)."""


# ---- arrays: cut to the used size, pad to a batch ------------------------------------------------------


def _extent(a: np.ndarray, axis: int) -> int:
    """1 + the last index along `axis` holding anything non-zero (padding is zeros at the end)."""
    if a.ndim > 1:
        a = a.any(axis=tuple(i for i in range(a.ndim) if i != axis))
    idx = np.flatnonzero(a)
    return int(idx[-1]) + 1 if idx.size else 0


def _cut(axes: tuple[str | None, ...], lengths: dict[str, int]) -> tuple[slice, ...]:
    return tuple(slice(0, lengths[ax]) if ax in lengths else slice(None) for ax in axes)


def trim(arrays: dict[str, np.ndarray], keep: Collection[str] = ()) -> dict[str, np.ndarray]:
    """One example's arrays (no batch axis) cut on every dynamic axis to the length it uses (>= 1), but
    the axes in `keep`. A token axis's length is found on its array already cut to the used events,
    tools, slots and candidates (`LENGTH_OF` lists those first): a third of the work on slot rows."""
    lengths: dict[str, int] = {}
    for axis, source in LENGTH_OF.items():
        if source in arrays and axis not in keep:
            axes = AXES[source][1:]
            lengths[axis] = max(1, _extent(arrays[source][_cut(axes, lengths)], axes.index(axis)))
    return {name: a[_cut(AXES[name][1:], lengths)] if a.ndim else a for name, a in arrays.items()}


def stack(examples: Sequence[dict[str, np.ndarray]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """A batch: each array zero-padded to the largest example on every axis, then stacked."""
    if len(examples) == 1:
        return {n: np.ascontiguousarray(examples[0][n][None]) for n in names}
    out = {}
    for n in names:
        parts = [e[n] for e in examples]
        shape = tuple(max(s) for s in zip(*(p.shape for p in parts), strict=True))
        batch = np.zeros((len(parts), *shape), parts[0].dtype)
        for i, p in enumerate(parts):
            batch[(i, *(slice(0, s) for s in p.shape))] = p
        out[n] = batch
    return out


class ToolSetCache:
    """The `tools` graph's outputs per distinct tool set (its arrays' shapes and bytes), least recently
    used dropped beyond `size`. Thread-safe; two threads missing the same tool set both compute it
    (same result), which is cheaper than holding a lock across a graph run."""

    def __init__(self, size: int = TOOL_SETS_KEPT):
        self.size = size
        self._kept: OrderedDict[tuple, dict[str, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(arrays: dict[str, np.ndarray]) -> tuple:
        return tuple((arrays[n].shape, arrays[n].dtype.str, arrays[n].tobytes()) for n in TOOL_SET_INPUTS)

    def get(self, key: tuple) -> dict[str, np.ndarray] | None:
        with self._lock:
            out = self._kept.get(key)
            if out is not None:
                self._kept.move_to_end(key)
            return out

    def put(self, key: tuple, value: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._kept[key] = value
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)
