"""The hand-written graphs (`export_graphs`) compute what the torch model computes: every output, on
random weights and random arrays of a padded batch, for both poolings and with the event text off."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from toolcast.predictor.config import tiny_config
from toolcast.predictor.features.featurizer import N_EVENT_TYPES, TOOL_FEATURE_SIZES
from toolcast.predictor.features.slots import CAND_FEATURE_SIZES, SLOT_FEATURE_SIZES
from toolcast.predictor.onnx.contract import ENCODER, FEATURE_INPUTS, SLOT_INPUTS, SLOTS, TOOLS
from toolcast.predictor.torch.graphs import build
from toolcast.predictor.torch.model import NextCallModel

B, N, C, S, M = 2, 7, 6, 4, 5


def random_arrays(cfg, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A batch of two: the second context shorter, with fewer tools, slots and candidates (padding)."""
    v = cfg.text_vocab_size

    def tokens(*shape):
        t = rng.integers(1, v, shape)
        t[rng.random(shape) < 0.4] = 0
        return t

    def columns(sizes, *shape):
        return np.stack([rng.integers(0, n, shape) for n in sizes], -1)

    a = {
        "ev_type": rng.integers(1, N_EVENT_TYPES, (B, N)),
        "ev_tool": rng.integers(0, C + 1, (B, N)),
        "ev_num": columns((12, 6, 12), B, N),
        "ev_keys": tokens(B, N, 3),
        "ev_text": tokens(B, N, 5),
        "agent": rng.integers(0, cfg.n_agents, (B,)),
        "tool_id": rng.integers(0, cfg.n_tool_ids, (B, C)),
        "tool_num": columns(TOOL_FEATURE_SIZES, B, C),
        "tool_name": tokens(B, C, 3),
        "tool_desc": tokens(B, C, 4),
        "tool_params": tokens(B, C, 2),
        "slot_tool": rng.integers(0, C, (B, S)),
        "slot_num": columns(SLOT_FEATURE_SIZES, B, S),
        "slot_name": tokens(B, S, 2),
        "cand_num": columns(CAND_FEATURE_SIZES, B, S, M),
        "cand_key": tokens(B, S, M, 3),
        "cand_event": rng.integers(0, N, (B, S, M)),
    }
    for name, shape, used in (
        ("ev_mask", (B, N), (N, N - 3)),
        ("tool_mask", (B, C), (C, C - 2)),
        ("slot_mask", (B, S), (S, S - 1)),
    ):
        a[name] = np.zeros(shape, bool)
        for i, u in enumerate(used):
            a[name][i, :u] = True
    a["cand_mask"] = rng.random((B, S, M)) < 0.7
    a["cand_mask"][..., 0] = True
    a["cand_event"][1] %= N - 3  # candidates come from the context's own events
    return {k: (x if x.dtype == np.bool_ else x.astype(np.int64)) for k, x in a.items()}


@pytest.mark.parametrize("overrides", [{}, {"pooling": "mean"}, {"use_text": False, "layers": 2, "heads": 4}])
def test_the_graphs_compute_the_models_outputs(overrides):
    torch.manual_seed(0)
    cfg = tiny_config(text_vocab_size=50, n_tool_ids=12, n_agents=3, **overrides)
    model = NextCallModel(cfg).eval()
    with torch.no_grad():  # nonzero biases everywhere, so a bias folded into the wrong place shows
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.1)
    a = random_arrays(cfg, np.random.default_rng(0))
    with torch.inference_mode():
        t = [torch.from_numpy(a[n]) for n in FEATURE_INPUTS]
        logits, state, states, tool_repr = model.encode(*t)
        slot_logits = model.score_slots(
            state, states, tool_repr, *(torch.from_numpy(a[n]) for n in SLOT_INPUTS)
        )
    want = {"tool_logits": logits, "state": state, "states": states, "tool_repr": tool_repr}
    want["slot_logits"] = slot_logits
    got: dict[str, np.ndarray] = {}
    for graph in (TOOLS, ENCODER, SLOTS):  # each fed the arrays and the graphs before it
        proto = build(model, cfg)[graph.name]
        session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {n: a[n] if n in a else got[n] for n in graph.inputs}
        got.update(zip(graph.outputs, session.run(list(graph.outputs), feeds), strict=True))
    for name, w in want.items():
        assert np.abs(got[name] - w.numpy()).max() < 1e-5, name
    assert (got["tool_events"][:, 0] == 0).all() and np.allclose(got["tool_events"][:, 1:], got["tool_repr"])
