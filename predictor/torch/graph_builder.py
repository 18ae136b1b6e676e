"""A small ONNX graph builder for `graphs.py`: named initializers, nodes with generated names, and
the recurring pieces of the hand-written graphs (a sum of categorical embeddings, a bag of tokens, a
per-batch-row gather, Add + LayerNormalization). Torch-free; the export imports it (needs `onnx`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from toolcast.predictor.config import ModelConfig
from toolcast.predictor.features.featurizer import TOOL_FEATURE_SIZES
from toolcast.predictor.features.slots import CAND_FEATURE_SIZES, SLOT_FEATURE_SIZES
from toolcast.predictor.onnx.contract import AXES, ENCODER, OPSET, SLOTS, TOOLS, Graph

MS = "com.microsoft"
EXACT = "_exact"
"""Suffix of the nodes whose arithmetic must stay float32 under int8 quantization (they compute ids)."""
BOOL_INPUTS = {"ev_mask", "tool_mask", "slot_mask", "cand_mask"}


class Builder:
    """Just enough of a graph builder: named initializers, nodes with generated output names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0
        self._consts: set[str] = set()

    def const(self, name: str, a: np.ndarray | Sequence | float, dtype: Any = np.float32) -> str:
        if name not in self._consts:  # a name is one value: asked twice, it is made once
            self._consts.add(name)
            self.inits.append(numpy_helper.from_array(np.asarray(a, dtype), name))
        return name

    def op(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: int | Sequence[str] = 1,
        domain: str = "",
        **attrs: Any,
    ) -> Any:
        if isinstance(outputs, int):
            names = []
            for _ in range(outputs):
                self._n += 1
                names.append(f"{op_type.lower()}_{self._n}")
        else:
            names = list(outputs)
        node = helper.make_node(op_type, list(inputs), names, name=names[0], domain=domain or None, **attrs)
        self.nodes.append(node)
        return names[0] if len(names) == 1 else names

    # ---- the recurring pieces ----
    def categorical_sum(self, table: np.ndarray, sizes: Sequence[int], ids: str, name: str, axis: int) -> str:
        """Sum of one row per categorical column: ids (..., K) -> (..., D). Adjacent columns are grouped
        (`column_groups`) and each group's rows pre-summed into a table over its value combinations, so
        a gather fetches one row per group instead of one per column; the combined ids are the columns
        times their strides, summed (an int multiply-add over K for one group, a float MatMul (K, G)
        for several: exact below 2^24)."""
        starts = np.cumsum([0, *sizes[:-1]])
        d = table.shape[1]
        groups = column_groups(sizes)
        strides = np.zeros((len(sizes), len(groups)))
        tables, offsets = [], []
        for g, cols in enumerate(groups):
            combos = np.zeros([sizes[c] for c in cols] + [d])
            stride = 1
            for j in reversed(range(len(cols))):  # C order: the last column varies fastest
                c = cols[j]
                strides[c, g] = stride
                stride *= sizes[c]
                shape = [1] * len(cols) + [d]
                shape[j] = sizes[c]
                combos = combos + table[starts[c] : starts[c] + sizes[c]].reshape(shape)
            offsets.append(sum(len(t) for t in tables))
            tables.append(combos.reshape(-1, d))
        rows = self.const(f"{name}_table", np.concatenate(tables))
        if len(groups) == 1:
            ix = self.op("Mul", [ids, self.const(f"{name}_strides", strides[:, 0], np.int64)])
            ix = self.op("ReduceSum", [ix, self.const("last_axis", [-1], np.int64)], keepdims=0)
            return self.op("Gather", [rows, ix])
        ix = self.op(
            "MatMul",
            [self.op("Cast", [ids], to=TensorProto.FLOAT), self.const(f"{name}_strides", strides)],
            [f"{name}{EXACT}"],  # ids: int8 would make them wrong (`export` keeps it float)
        )
        ix = self.op("Add", [ix, self.const(f"{name}_offsets", offsets)])
        picked = self.op("Gather", [rows, self.op("Cast", [ix], to=TensorProto.INT64)])
        return self.op("ReduceSum", [picked, self.const(f"{name}_axis", [axis], np.int64)], keepdims=0)

    def bag(self, table: np.ndarray, ids: str, name: str, axis: int) -> str:
        """Mean of table rows over the non-padding ids (..., T) -> (..., D): the rows' sum divided by the
        count of ids > 0 (at least 1), counted on the ids (a count column in the table made every
        gathered row 65 floats wide, which measured slower than 64 plus the count's small nodes)."""
        rows = self.op("Gather", [self.const(f"{name}_table", table), ids])
        total = self.op("ReduceSum", [rows, self.const(f"{name}_axis", [axis], np.int64)], keepdims=0)
        used = self.op(
            "Cast", [self.op("Greater", [ids, self.const("zero_i", 0, np.int64)])], to=TensorProto.FLOAT
        )
        n = self.op("ReduceSum", [used, self.const("last_axis", [-1], np.int64)], keepdims=1)
        return self.op("Div", [total, self.op("Max", [n, self.const("one_f", [1.0])])])

    def add_norm(
        self,
        x: str,
        y: str,
        gamma: np.ndarray,
        beta: np.ndarray,
        eps: float,
        name: str,
        bias: np.ndarray | None = None,
        out: str | None = None,
    ) -> str:
        """LayerNorm(x + y (+ bias)): Add and LayerNormalization (onnxruntime's fused SkipLayerNormalization
        measured 4x slower than the two on these sizes)."""
        s = (
            self.op("Add", [x, y])
            if bias is None
            else self.op("Sum", [x, y, self.const(f"{name}_bias", bias)])
        )
        return self.op(
            "LayerNormalization",
            [s, self.const(f"{name}_w", gamma), self.const(f"{name}_b", beta)],
            [out] if out else 1,
            axis=-1,
            epsilon=eps,
        )

    def gather_rows(self, table: str, ids: str) -> str:
        """table (B, R, D), ids (B, ...) -> (B, ..., D): each batch row's own table."""
        idx = self.op("Unsqueeze", [ids, self.const(f"{ids}_last", [-1], np.int64)])
        return self.op("GatherND", [table, idx], batch_dims=1)

    def model(self, graph: Graph, cfg: ModelConfig) -> onnx.ModelProto:
        g = helper.make_graph(
            self.nodes,
            graph.name,
            [_value_info(n, cfg) for n in graph.inputs],
            [_value_info(n, cfg) for n in graph.outputs],
            self.inits,
        )
        m = helper.make_model(
            g,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
            producer_name="toolcast",
        )
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


FIXED = {
    "ev_num": 3,
    "tool_num": len(TOOL_FEATURE_SIZES),
    "slot_num": len(SLOT_FEATURE_SIZES),
    "cand_num": len(CAND_FEATURE_SIZES),
}


GROUP_ROWS = 1024
"""Largest table of value combinations `categorical_sum` makes for one group of columns."""


def column_groups(sizes: Sequence[int]) -> list[list[int]]:
    """Adjacent columns whose value combinations number at most `GROUP_ROWS` (a column alone may be
    larger)."""
    groups: list[list[int]] = [[]]
    rows = 1
    for i, n in enumerate(sizes):
        if groups[-1] and rows * n > GROUP_ROWS:
            groups.append([])
            rows = 1
        groups[-1].append(i)
        rows *= n
    return groups


def _value_info(name: str, cfg: ModelConfig) -> onnx.ValueInfoProto:
    h = cfg.hidden
    width = {"tool_head": 2 * h}.get(name, FIXED.get(name, h))
    dims = [axis if axis is not None else width for axis in AXES[name]]
    if name in BOOL_INPUTS:
        dtype = TensorProto.BOOL
    elif name in (*ENCODER.outputs, *TOOLS.outputs, *SLOTS.outputs):
        dtype = TensorProto.FLOAT
    else:
        dtype = TensorProto.INT64
    return helper.make_tensor_value_info(name, dtype, dims)
