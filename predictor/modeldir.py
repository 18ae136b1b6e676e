"""The model directory: what `toolcast train` writes and every predictor loads. JSON, safetensors, ONNX.

    config.json        model + training configuration (`predictor.config.Config`)
    tokenizer.json     the WordPiece tokenizer trained on the logs (Hugging Face `tokenizers` format)
    vocab.json         tool / agent / extractor-kind ids and slot constants (`features/vocab.py`)
    model.safetensors  the weights (torch side; never a pickle)
    calibration.json   temperatures of the tool and slot heads, fitted on validation
    metrics.json       the metrics card: data, splits, figures before and after calibration
    tools.onnx         the tool-set graph (run once per tool set) } written by `toolcast export`
    model.onnx         the context + tool graph                    } (`torch/export.py`; names, axes,
    slots.onnx         the argument-slot graph                     } opset: `onnx/contract.py`)
    onnx.json          the export manifest: variants, sha256 of every file used, validation figures
    tools.int8.onnx, model.int8.onnx, slots.int8.onnx   with `toolcast export --quantize int8`
    pool.json          the pool's weights (`pooling.PoolWeights`), fitted on validation  } written by
    pattern_pool.json.gz  the mined pattern pool (`baselines/pattern_pool.py`)          } `toolcast train`
    text_encoder.npy, .json  the semantic expert's static text encoder              } (`training/pool_fit.py`)

Nothing here imports torch: the embedded (onnxruntime) predictor reads the JSON parts with this module.
Every problem is a `ModelDirError` that names the directory, the file and what is wrong.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from toolcast.predictor.config import Config
from toolcast.predictor.features.featurizer import Extract, Featurizer
from toolcast.predictor.features.text import TextEncoder
from toolcast.predictor.features.vocab import Vocabularies
from toolcast.predictor.versioning import featurizer_digest

CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"
CALIBRATION_FILE = "calibration.json"
METRICS_FILE = "metrics.json"
log = logging.getLogger(__name__)
T = TypeVar("T")
ONNX_FILE = "model.onnx"
JSON_PARTS = (CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE, CALIBRATION_FILE)


class ModelDirError(ValueError):
    """A model directory is missing, incomplete, corrupt or does not match itself."""

    def __init__(self, path: str | os.PathLike, message: str):
        self.path = str(path)
        super().__init__(f"model directory {self.path}: {message}")


@dataclass
class Calibration:
    """Temperatures: probabilities are softmax(logits / T). 1.0 = uncalibrated."""

    tool_temperature: float = 1.0
    slot_temperature: float = 1.0

    def __post_init__(self) -> None:
        for name in ("tool_temperature", "slot_temperature"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not v > 0:
                raise ValueError(f"calibration {name} must be a positive number, got {v!r}")

    def to_dict(self) -> dict[str, float]:
        return {
            "tool_temperature": float(self.tool_temperature),
            "slot_temperature": float(self.slot_temperature),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Calibration:
        if not isinstance(d, dict):
            raise ValueError(f"expected an object, got {type(d).__name__}")
        unknown = sorted(set(d) - {"tool_temperature", "slot_temperature"})
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        return cls(**d)


@dataclass
class ModelParts:
    """The torch-free parts of a model directory."""

    path: Path
    config: Config
    tokenizer_json: str
    vocab: Vocabularies
    calibration: Calibration
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def encoder(self) -> TextEncoder:
        return TextEncoder.from_json(self.tokenizer_json)

    def featurizer(self, extract: Extract | None = None) -> Featurizer:
        return Featurizer(self.config.model, self.encoder, self.vocab, extract)


def _read_json(path: Path, name: str) -> Any:
    f = path / name
    if not f.is_file():
        raise ModelDirError(
            path, f"{name} is missing (expected the files {', '.join(JSON_PARTS)}, {WEIGHTS_FILE})"
        )
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelDirError(path, f"{name} is not valid JSON (corrupt or truncated?): {e}") from None


def _parse(path: Path, name: str, parse: Callable[[Any], T]) -> T:
    """`parse` of a JSON file of the directory; what it rejects is a `ModelDirError` naming the file."""
    try:
        return parse(_read_json(path, name))
    except ModelDirError:
        raise
    except ValueError as e:
        raise ModelDirError(path, f"{name}: {e}") from None


def read_parts(path: str | os.PathLike) -> ModelParts:
    """Read and cross-check config, tokenizer, vocabularies, calibration and the metrics card."""
    p = Path(path)
    if not p.is_dir():
        raise ModelDirError(p, "does not exist or is not a directory")
    config = _parse(p, CONFIG_FILE, Config.from_dict)
    _read_json(p, TOKENIZER_FILE)
    tokenizer_json = (p / TOKENIZER_FILE).read_text(encoding="utf-8")
    try:
        encoder = TextEncoder.from_json(tokenizer_json)
    except ValueError as e:
        raise ModelDirError(p, f"{TOKENIZER_FILE}: {e}") from None
    vocab = _parse(p, VOCAB_FILE, Vocabularies.from_dict)
    calibration = _parse(p, CALIBRATION_FILE, Calibration.from_dict)
    m = config.model
    if encoder.vocab_size != m.text_vocab_size:
        raise ModelDirError(
            p,
            f"{TOKENIZER_FILE} has {encoder.vocab_size} tokens but {CONFIG_FILE} says "
            f"text_vocab_size={m.text_vocab_size} (files from different models?)",
        )
    if vocab.n_tool_ids > m.n_tool_ids or vocab.n_agents > m.n_agents:
        raise ModelDirError(
            p,
            f"{VOCAB_FILE} has {vocab.n_tool_ids} tool ids / {vocab.n_agents} agents but "
            f"{CONFIG_FILE} says {m.n_tool_ids} / {m.n_agents} (files from different models?)",
        )
    metrics = _read_json(p, METRICS_FILE) if (p / METRICS_FILE).exists() else {}
    made_by = metrics.get("featurizer") if isinstance(metrics, dict) else None
    if made_by and made_by != featurizer_digest():
        log.warning(
            "%s was trained with another version of toolcast's featurizer (%s, this one %s): it loads and "
            "runs, but its argument predictions may be worse than a model trained with this version",
            p, made_by, featurizer_digest(),
        )
    return ModelParts(p, config, tokenizer_json, vocab, calibration, metrics)


def write_parts(
    path: str | os.PathLike,
    config: Config,
    tokenizer_json: str,
    vocab: Vocabularies,
    calibration: Calibration,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write the JSON parts (the weights are written by the torch side)."""
    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    (p / CONFIG_FILE).write_text(json.dumps(config.to_dict(), indent=2), encoding="utf-8")
    (p / TOKENIZER_FILE).write_text(tokenizer_json, encoding="utf-8")
    vocab.save(p / VOCAB_FILE)
    (p / CALIBRATION_FILE).write_text(json.dumps(calibration.to_dict(), indent=2), encoding="utf-8")
    if metrics is not None:
        (p / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
    return p
