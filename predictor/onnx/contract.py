"""The ONNX contract, declared once: graphs, input/output names, dynamic axes, opset, tolerance, files.

Torch-free, so both sides read the same declaration: the exporter (`torch/export.py`) builds
the graphs from it, and the embedded predictor (`onnx/predictor.py`, onnxruntime) trims and
pads its arrays by it. The predictor still takes the names it feeds and fetches from the session itself
(`session.get_inputs()`), and checks them against what the featurizer produces.

Three graphs (written node by node from the trained weights by `torch/graphs.py`):
- `tools`: the tool set -> `tool_repr` and what the other two graphs read of it (`tool_events`,
  `tool_head`, `tool_slots`); it depends on the tool set only, so the predictor runs it once per tool
  set and keeps the result;
- `encoder`: the context, the tools' per-step features and the tools graph's tensors -> `tool_logits`
  and the states the slot head reads;
- `slots`: those states plus the slot rows of the chosen tools -> `slot_logits`. A graph of its own
  because the argument slots to score depend on the tools the encoder ranks highest (the featurizer
  builds slot rows only for the top tools, as the torch predictor does).

Every padded axis is dynamic, so a context is run at its own size (a history of 16 events costs a
history of 16, not the configured maximum) and a batch is padded only to its longest context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from toolcast.predictor.features.featurizer import EVENT_INPUTS, SLOT_INPUTS, TOOL_INPUTS
from toolcast.predictor.modeldir import ONNX_FILE

OPSET = 17
"""ONNX opset of the exported graphs (onnxruntime >= 1.17, the base install's floor, runs it)."""
TOLERANCE = 1e-4
"""Largest absolute difference allowed between onnxruntime and PyTorch on any output (logits, states)."""
MANIFEST_FILE = "onnx.json"
"""What the export wrote, from which model files (sha256), how it validated; the predictor checks it."""

Variant = Literal["float", "int8"]

# Axis names per dimension of every tensor that crosses a graph boundary; None = fixed size.
AXES: dict[str, tuple[str | None, ...]] = {
    # encoder inputs: events (position 0 = the summary), then the tool candidates
    "ev_type": ("batch", "events"),
    "ev_tool": ("batch", "events"),
    "ev_num": ("batch", "events", None),
    "ev_keys": ("batch", "events", "key_tokens"),
    "ev_text": ("batch", "events", "text_tokens"),
    "ev_mask": ("batch", "events"),
    "agent": ("batch",),
    "tool_id": ("batch", "tools"),
    "tool_num": ("batch", "tools", None),
    "tool_name": ("batch", "tools", "name_tokens"),
    "tool_desc": ("batch", "tools", "desc_tokens"),
    "tool_params": ("batch", "tools", "param_tokens"),
    "tool_mask": ("batch", "tools"),
    # tools graph outputs: the representation (torch's `tool_repr`), a zero row ("no tool") before it
    # for the events' tools, [repr, mlp_t(repr)] for the tool head, the slot head's projection of it
    "tool_repr": ("batch", "tools", None),
    "tool_events": ("batch", "tool_rows", None),
    "tool_head": ("batch", "tools", None),
    "tool_slots": ("batch", "tools", None),
    # encoder outputs; all but tool_logits are slot inputs too
    "tool_logits": ("batch", "tools"),
    "state": ("batch", None),
    "states": ("batch", "events", None),
    # slot inputs: rows of (chosen tool, slot), each with value candidates
    "slot_tool": ("batch", "slots"),
    "slot_num": ("batch", "slots", None),
    "slot_name": ("batch", "slots", "slot_name_tokens"),
    "slot_mask": ("batch", "slots"),
    "cand_num": ("batch", "slots", "candidates", None),
    "cand_key": ("batch", "slots", "candidates", "cand_key_tokens"),
    "cand_event": ("batch", "slots", "candidates"),
    "cand_mask": ("batch", "slots", "candidates"),
    # slot output: <free>, <absent>, then the candidates
    "slot_logits": ("batch", "slots", "outcomes"),
}

LENGTH_OF: dict[str, str] = {
    "events": "ev_mask",
    "tools": "tool_mask",
    "key_tokens": "ev_keys",
    "text_tokens": "ev_text",
    "name_tokens": "tool_name",
    "desc_tokens": "tool_desc",
    "param_tokens": "tool_params",
    "slots": "slot_mask",
    "candidates": "cand_mask",
    "slot_name_tokens": "slot_name",
    "cand_key_tokens": "cand_key",
}
"""Which featurizer array tells an axis's used length (padding is zeros / False at the end of it)."""


@dataclass(frozen=True)
class Graph:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    files: dict[str, str]
    """Variant -> file name in the model directory."""


TOOL_SET_INPUTS: tuple[str, ...] = ("tool_id", "tool_name", "tool_desc", "tool_params")
"""The featurizer's tool arrays that depend on the tool set only (the rest, tool_num and tool_mask, on
the step too)."""
TOOLS = Graph(
    "tools",
    inputs=TOOL_SET_INPUTS,
    outputs=("tool_repr", "tool_events", "tool_head", "tool_slots"),
    files={"float": "tools.onnx", "int8": "tools.int8.onnx"},
)
ENCODER = Graph(
    "encoder",
    inputs=(*EVENT_INPUTS, *(n for n in TOOL_INPUTS if n not in TOOL_SET_INPUTS), "tool_events", "tool_head"),
    outputs=("tool_logits", "state", "states"),
    files={"float": ONNX_FILE, "int8": "model.int8.onnx"},
)
SLOTS = Graph(
    "slots",
    inputs=("state", "states", "tool_slots", *SLOT_INPUTS),
    outputs=("slot_logits",),
    files={"float": "slots.onnx", "int8": "slots.int8.onnx"},
)
GRAPHS: tuple[Graph, ...] = (TOOLS, ENCODER, SLOTS)
FEATURE_INPUTS: tuple[str, ...] = EVENT_INPUTS + TOOL_INPUTS
"""What the featurizer makes for the tools and encoder graphs (and the torch model's `encode` takes)."""
