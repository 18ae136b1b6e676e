"""The three ONNX graphs, written node by node from a trained `NextCallModel`'s weights (no retraining).

Why by hand: the model is tiny (hidden 64, two BERT layers, <= 65 events), and the traced export of
`torch/model.py` had 213 + 112 nodes after onnxruntime's own optimizations, most of them shape
bookkeeping, casts and one Gather per embedding table. These graphs compute the same function with a
quarter of the nodes and less memory traffic (`export.py` still validates every output against PyTorch
within `onnx/contract.py`'s `TOLERANCE`):

- every "embedding, then a linear layer" is one table: the linear layer is multiplied into the table at
  export (`E @ W.T`), and biases go into a table every row gathers once;
- a sum of K categorical embeddings is one Gather over the K tables stacked (ids shifted by each table's
  offset) and one ReduceSum;
- a bag of tokens (mean of the non-padding ids) gathers from a table with one more column, 1 for every
  id but padding: its sum is the token count, split off and divided by;
- the tool representation depends only on the tool set: its own `tools` graph (run once per tool set,
  cached by the predictor) also precomputes what the other two graphs read of it (a zero row for "no
  tool", the tool head's projection, the slot head's projection);
- BERT layers use onnxruntime's Attention and BiasGelu kernels (com.microsoft), and Add +
  LayerNormalization (its SkipLayerNormalization measured 4x slower than the two at these sizes);
- position and the summary's agent embedding are one (agents, positions, H) table indexed by agent,
  sliced to the context's length;
- several additions are one Sum; a vector-output MatMul takes an (H, 1) matrix (a 1-D right operand
  was 4x slower).

Torch-free: it reads the weights as numpy arrays (`weights_of(model)`, torch tensors' `.numpy()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from toolcast.predictor.config import ModelConfig
from toolcast.predictor.features.featurizer import TOOL_FEATURE_SIZES
from toolcast.predictor.features.slots import CAND_FEATURE_SIZES, SLOT_FEATURE_SIZES
from toolcast.predictor.onnx.contract import ENCODER, SLOTS, TOOLS
from toolcast.predictor.torch.graph_builder import EXACT, MS, Builder

__all__ = ["EXACT", "build", "weights_of"]

MASKED = -1e4
"""`model.MASKED` (the logit of a padded tool or candidate); repeated here so this file needs no torch."""
LN_EPS, BERT_LN_EPS = 1e-5, 1e-12
"""`nn.LayerNorm`'s default epsilon, and BertConfig's `layer_norm_eps`."""


def weights_of(model: Any) -> dict[str, np.ndarray]:
    """Every parameter of a NextCallModel as float64 numpy (tables are folded in float64, then cast)."""
    return {k: v.detach().cpu().double().numpy() for k, v in model.state_dict().items()}


def _t(w: np.ndarray) -> np.ndarray:
    """A torch Linear weight (out, in) as the right operand of MatMul (in, out)."""
    return np.ascontiguousarray(w.T)


# ---- tools: tool_id, name/description/parameter tokens -> the tool representation and its projections ----


def tools_graph(w: dict[str, np.ndarray], cfg: ModelConfig) -> onnx.ModelProto:
    h = cfg.hidden
    b = Builder()
    e, text_w = w["tokens.weight"], w["tools.text.weight"]  # (V, H), (H, 3H)
    ids = w["tools.ids.weight"] + w["tools.text.bias"]  # every tool gathers one id row: the bias rides on it
    pre = b.op("Gather", [b.const("tool_ids_table", ids), "tool_id"])
    for i, name in enumerate(("tool_name", "tool_desc", "tool_params")):
        folded = e @ text_w[:, i * h : (i + 1) * h].T
        pre = b.op("Add", [pre, b.bag(folded, name, name, axis=2)])
    b.op(
        "LayerNormalization",
        [pre, b.const("tool_norm_w", w["tools.norm.weight"]), b.const("tool_norm_b", w["tools.norm.bias"])],
        ["tool_repr"],
        axis=-1,
        epsilon=LN_EPS,
    )
    b.op("Pad", ["tool_repr", b.const("tool_events_pads", [0, 1, 0, 0, 0, 0], np.int64)], ["tool_events"])
    mt = b.op(
        "Add",
        [
            b.op("MatMul", ["tool_repr", b.const("mlp_t_w", _t(w["tool_head.mlp_t.weight"]))]),
            b.const("mlp_t_b", w["tool_head.mlp_t.bias"]),
        ],
    )
    b.op("Concat", ["tool_repr", mt], ["tool_head"], axis=-1)
    slot_in = w["slot_head.slot_in.weight"][:, :h]  # slot_in([slot, state]): the slot half
    b.op("MatMul", ["tool_repr", b.const("slot_in_tool_w", _t(slot_in))], ["tool_slots"])
    return b.model(TOOLS, cfg)


# ---- encoder: events + the tool set's tensors -> tool logits, the summary state, every event's state ----


def encoder_graph(w: dict[str, np.ndarray], cfg: ModelConfig) -> onnx.ModelProto:
    b = Builder()
    e = w["tokens.weight"]
    c = "context."
    parts = [
        b.op("Gather", [b.const("ev_type_table", w[c + "event_type.weight"]), "ev_type"]),
        b.gather_rows("tool_events", "ev_tool"),
        b.categorical_sum(
            np.concatenate([w[f"{c}num.tables.{i}.weight"] for i in range(3)]),
            [w[f"{c}num.tables.{i}.weight"].shape[0] for i in range(3)],
            "ev_num",
            "ev_num",
            axis=2,
        ),
        b.bag(e @ w[c + "keys.weight"].T, "ev_keys", "ev_keys", axis=2),
    ]
    if cfg.use_text:
        parts.append(b.bag(e @ w[c + "text.weight"].T, "ev_text", "ev_text", axis=2))
    # position p (0 = the summary, which also gets the agent): one (agents, positions, H) table
    pos = w[c + "position.weight"]
    agent_pos = np.repeat(pos[None], w[c + "agent.weight"].shape[0], 0)
    agent_pos[:, 0] += w[c + "agent.weight"]
    n = b.op("Shape", ["ev_type"], start=1, end=2)
    by_agent = b.op("Gather", [b.const("agent_pos_table", agent_pos), "agent"])  # (B, P, H)
    parts.append(b.op("Slice", [by_agent, b.const("zero", [0], np.int64), n, b.const("one", [1], np.int64)]))
    x = b.op("Sum", parts[:-1])
    x = b.add_norm(x, parts[-1], w[c + "norm.weight"], w[c + "norm.bias"], LN_EPS, "ctx_norm")
    mask = b.op("Cast", ["ev_mask"], to=TensorProto.INT32)  # the Attention kernel's raw 1/0 mask
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        x = _bert_layer(b, w, f"{c}encoder.layer.{i}.", x, mask, cfg.heads, "states" if last else None)
    if cfg.pooling == "summary":
        b.op("Gather", ["states", b.const("first", 0, np.int64)], ["state"], axis=1)
    else:  # masked mean over the events
        m = b.op(
            "Unsqueeze", [b.op("Cast", ["ev_mask"], to=TensorProto.FLOAT), b.const("m_last", [-1], np.int64)]
        )
        axis1 = b.const("axis1", [1], np.int64)
        total = b.op("ReduceSum", [b.op("Mul", ["states", m]), axis1], keepdims=0)
        count = b.op("Max", [b.op("ReduceSum", [m, axis1], keepdims=0), b.const("m_one", [1.0])])
        b.op("Div", [total, count], ["state"])
    _tool_head(b, w, cfg)
    return b.model(ENCODER, cfg)


def _bert_layer(
    b: Builder, w: dict[str, np.ndarray], p: str, x: str, mask: str, heads: int, out_name: str | None
) -> str:
    """One BERT layer (post-LayerNorm): onnxruntime's Attention kernel with the query, key and value
    weights side by side (one node; plain MatMul/Softmax/Transpose nodes measured 15% slower), then the
    output projection, the feed-forward block, and Add + LayerNormalization around each."""
    a = p + "attention."
    qkv_w = np.concatenate([w[f"{a}self.{n}.weight"].T for n in ("query", "key", "value")], 1)
    qkv_b = np.concatenate([w[f"{a}self.{n}.bias"] for n in ("query", "key", "value")])
    att = b.op(
        "Attention",
        [x, b.const(p + "qkv_w", qkv_w), b.const(p + "qkv_b", qkv_b), mask],
        domain=MS,
        num_heads=heads,
        mask_filter_value=MASKED,  # BERT's additive mask: (1 - mask) * MASKED
    )
    out = b.op("MatMul", [att, b.const(p + "ao_w", _t(w[a + "output.dense.weight"]))])
    x = b.add_norm(
        out,
        x,
        w[a + "output.LayerNorm.weight"],
        w[a + "output.LayerNorm.bias"],
        BERT_LN_EPS,
        p + "ao_ln",
        bias=w[a + "output.dense.bias"],
    )
    mid = b.op("MatMul", [x, b.const(p + "i_w", _t(w[p + "intermediate.dense.weight"]))])
    mid = b.op("BiasGelu", [mid, b.const(p + "i_b", w[p + "intermediate.dense.bias"])], domain=MS)
    out = b.op("MatMul", [mid, b.const(p + "o_w", _t(w[p + "output.dense.weight"]))])
    return b.add_norm(
        out,
        x,
        w[p + "output.LayerNorm.weight"],
        w[p + "output.LayerNorm.bias"],
        BERT_LN_EPS,
        p + "o_ln",
        bias=w[p + "output.dense.bias"],
        out=out_name,
    )


def _tool_head(b: Builder, w: dict[str, np.ndarray], cfg: ModelConfig) -> None:
    """score(t) = <t, W_q h + b_q> / sqrt(H) + w_o . gelu(W_h h + b_h + W_t t + b_t) + b_o,
    t = repr(t) + context(t); [repr, W_t repr + b_t] comes precomputed as `tool_head`."""
    h = cfg.hidden
    th = "tool_head."
    sizes = TOOL_FEATURE_SIZES
    ctx = np.concatenate([w[f"{th}context.tables.{i}.weight"] for i in range(len(sizes))])
    ctx2 = np.concatenate([ctx, ctx @ w[th + "mlp_t.weight"].T], 1)  # (rows, 2H): [t, W_t t]
    both = b.op("Add", [b.categorical_sum(ctx2, sizes, "tool_num", "tool_num", axis=2), "tool_head"])
    t, mt = b.op("Split", [both, b.const("th_split", [h, h], np.int64)], 2, axis=-1)
    scale = 1.0 / h**0.5
    sw = np.concatenate([w[th + "query.weight"].T * scale, w[th + "mlp_h.weight"].T], 1)  # (H, 2H)
    sb = np.concatenate([w[th + "query.bias"] * scale, w[th + "mlp_h.bias"]])
    s = b.op("Gemm", ["state", b.const("th_state_w", sw), b.const("th_state_b", sb)])
    s = b.op("Unsqueeze", [s, b.const("th_axis1", [1], np.int64)])  # (B, 1, 2H)
    q, hs = b.op("Split", [s, b.const("th_split2", [h, h], np.int64)], 2, axis=-1)
    bilinear = b.op("ReduceSum", [b.op("Mul", [t, q]), b.const("th_last", [-1], np.int64)], keepdims=0)
    z = b.op("Gelu", [b.op("Add", [mt, hs])], domain=MS)
    zo = b.op("MatMul", [z, b.const("th_out_w", _t(w[th + "mlp_out.weight"]))])  # (B, C, 1)
    zo = b.op("Squeeze", [zo, b.const("th_last", [-1], np.int64)])
    logits = b.op("Sum", [bilinear, zo, b.const("th_out_b", w[th + "mlp_out.bias"])])
    b.op("Where", ["tool_mask", logits, b.const("masked", MASKED)], ["tool_logits"])


# ---- slots: the states, the chosen tools' slot rows and their value candidates -> slot logits ----------


def slots_graph(w: dict[str, np.ndarray], cfg: ModelConfig) -> onnx.ModelProto:
    h = cfg.hidden
    b = Builder()
    e = w["tokens.weight"]
    sh = "slot_head."
    s_in, c_in = w[sh + "slot_in.weight"], w[sh + "cand_in.weight"]  # (H, 2H): [slot | state], [cand | src]
    s_slot, s_state, c_cand, c_src = s_in[:, :h].T, s_in[:, h:].T, c_in[:, :h].T, c_in[:, h:].T

    def numbers(name: str, sizes: Sequence[int], right: np.ndarray, bias: str, axis: int) -> str:
        """The categorical sum of input `name` (head module `name`), projected by `right`, plus `bias`."""
        t = np.concatenate([w[f"{sh}{name}.tables.{i}.weight"] for i in range(len(sizes))]) @ right
        # every row gathers exactly one row of the first table: the bias rides on it
        t[: sizes[0]] += w[sh + bias]
        return b.categorical_sum(t, sizes, name, name, axis=axis)

    # q = slot_in([tool_vec + slot_name(bag) + slot_num, state])
    q = b.op(
        "Add",
        [
            b.gather_rows("tool_slots", "slot_tool"),
            numbers("slot_num", SLOT_FEATURE_SIZES, s_slot, "slot_in.bias", axis=2),
        ],
    )
    q = b.op("Add", [q, b.bag(e @ w[sh + "slot_name.weight"].T @ s_slot, "slot_name", "slot_name", axis=2)])
    st = b.op("MatMul", ["state", b.const("slot_state_w", s_state)])
    q = b.op("Add", [q, b.op("Unsqueeze", [st, b.const("axis1", [1], np.int64)])])  # (B, S, H)
    # c = cand_in([cand_num + cand_key(bag), state of the source event])
    c = b.op(
        "Add",
        [
            numbers("cand_num", CAND_FEATURE_SIZES, c_cand, "cand_in.bias", axis=3),
            b.bag(e @ w[sh + "cand_key.weight"].T @ c_cand, "cand_key", "cand_key", axis=3),
        ],
    )
    src = b.op("MatMul", ["states", b.const("cand_src_w", c_src)])  # (B, N, H)
    c = b.op("Add", [c, b.gather_rows(src, "cand_event")])  # (B, S, M, H)
    a = b.op("Add", [b.op("Unsqueeze", [q, b.const("axis2", [2], np.int64)]), c])
    g = b.op("Gelu", [a], domain=MS)
    g = b.op(
        "BiasGelu",
        [
            b.op("MatMul", [g, b.const("score1_w", _t(w[sh + "score.2.weight"]))]),
            b.const("score1_b", w[sh + "score.2.bias"]),
        ],
        domain=MS,
    )
    cand = b.op(
        "Add",
        [
            b.op("MatMul", [g, b.const("score2_w", _t(w[sh + "score.4.weight"]))]),
            b.const("score2_b", w[sh + "score.4.bias"]),
        ],
    )  # (B, S, M, 1): a matrix, not a
    cand = b.op("Squeeze", [cand, b.const("last", [-1], np.int64)])  # vector (MatMul by a vector is slow)
    cand = b.op("Where", ["cand_mask", cand, b.const("masked", MASKED)])
    special = b.op(
        "Add",
        [
            b.op(
                "MatMul", [b.op("Gelu", [q], domain=MS), b.const("special_w", _t(w[sh + "special.1.weight"]))]
            ),
            b.const("special_b", w[sh + "special.1.bias"]),
        ],
    )  # (B, S, 2)
    logits = b.op("Concat", [special, cand], axis=-1)
    keep = b.op("Unsqueeze", ["slot_mask", b.const("last", [-1], np.int64)])
    b.op("Where", [keep, logits, b.const("zero_f", 0.0)], ["slot_logits"])
    return b.model(SLOTS, cfg)


def build(model: Any, cfg: ModelConfig) -> dict[str, onnx.ModelProto]:
    """Graph name -> ONNX model, for `contract.GRAPHS`."""
    w = weights_of(model)
    return {
        TOOLS.name: tools_graph(w, cfg),
        ENCODER.name: encoder_graph(w, cfg),
        SLOTS.name: slots_graph(w, cfg),
    }
