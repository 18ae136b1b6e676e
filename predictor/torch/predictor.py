"""The learned predictor on torch: model directory in, ranked next calls out (for `toolcast eval`).

The embedded predictor (onnxruntime) does the same with the exported graph; both share the featurizer
and `decode`, so they rank identically. Weights are read from `model.safetensors` (never a pickle); the
model is built from `config.json` and must match it exactly (a missing or unexpected tensor is an error).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

from toolcast.data.schema import Context
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.predictor.features.featurizer import Extract, collate
from toolcast.predictor.modeldir import WEIGHTS_FILE, ModelDirError, ModelParts, read_parts, write_parts
from toolcast.predictor.onnx.decode import DecodeSettings, decode, top_tools
from toolcast.predictor.protocol import CallPrediction
from toolcast.predictor.torch.model import EVENT_INPUTS, SLOT_INPUTS, TOOL_INPUTS, NextCallModel


def save_pretrained(model: NextCallModel, parts: ModelParts, path: str | os.PathLike) -> Path:
    """Write a complete model directory: the JSON parts and `model.safetensors`."""
    out = write_parts(path, parts.config, parts.tokenizer_json, parts.vocab, parts.calibration, parts.metrics)
    save_model(model, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    return out


def load_pretrained(path: str | os.PathLike) -> tuple[NextCallModel, ModelParts]:
    """The model (eval mode) and its parts; a clear `ModelDirError` when anything is wrong."""
    parts = read_parts(path)
    weights = parts.path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelDirError(parts.path, f"{WEIGHTS_FILE} is missing")
    model = NextCallModel(parts.config.model)
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError) as e:
        raise ModelDirError(
            parts.path, f"{WEIGHTS_FILE} cannot be read or does not fit config.json: {e}"
        ) from None
    if missing or unexpected:
        raise ModelDirError(
            parts.path,
            f"{WEIGHTS_FILE} does not match config.json: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}",
        )
    return model.eval(), parts


def to_tensors(arrays: dict[str, np.ndarray], names: tuple[str, ...]) -> list[torch.Tensor]:
    return [torch.from_numpy(np.ascontiguousarray(arrays[n])) for n in names]


class LearnedPredictor:
    """`Predictor` over a trained model directory, on torch (CPU)."""

    name = "learned"

    def __init__(
        self,
        model: NextCallModel,
        parts: ModelParts,
        extract: Extract | None = extract_candidates,
        calibrated: bool = True,
        settings: DecodeSettings | None = None,
    ):
        self.model, self.parts, self.settings = model.eval(), parts, settings or DecodeSettings()
        self.featurizer = parts.featurizer(extract)
        cal = parts.calibration
        self.tool_t = cal.tool_temperature if calibrated else 1.0
        self.slot_t = cal.slot_temperature if calibrated else 1.0
        if not calibrated:
            self.name = "learned-uncalibrated"

    @classmethod
    def load(cls, path: str | os.PathLike, calibrated: bool = True, **kwargs: Any) -> LearnedPredictor:
        model, parts = load_pretrained(path)
        return cls(model, parts, calibrated=calibrated, **kwargs)

    @torch.inference_mode()
    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        context = self.featurizer.fill_tools(context)
        feats = self.featurizer.featurize(context)
        batch = collate([feats.arrays])
        tool_logits, state, states, tool_repr = self.model.encode(
            *to_tensors(batch, EVENT_INPUTS + TOOL_INPUTS)
        )
        logits = tool_logits[0].numpy()
        n = len(feats.tools.names)
        p = np.exp(logits[:n] / self.tool_t - (logits[:n] / self.tool_t).max())
        chosen = top_tools(feats.tools, p, self.settings.beam_tools)
        slot_arrays, rows = self.featurizer.slot_features(context, feats.tools, chosen)
        slot_logits = self.model.score_slots(
            state, states, tool_repr, *to_tensors(collate([slot_arrays]), SLOT_INPUTS)
        )[0].numpy()
        return decode(feats.tools, logits, rows, slot_logits, k, self.tool_t, self.slot_t, self.settings)
