"""The learned predictor's configuration: one typed, self-validating dataclass that builds every layer.

`ModelConfig` fixes the shapes the featurizer pads to (events, tool candidates, slots, value candidates)
and the sizes of the transformer; `TrainConfig` holds the optimisation settings. Both round-trip through
JSON (`to_dict` / `from_dict`) so a model directory's `config.json` rebuilds the same model; unknown keys
are an error, not silently dropped (a typo must not train a different model than the one asked for).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Pooling = Literal["summary", "mean"]


def _check_keys(cls: type, d: Any) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ValueError(f"{cls.__name__}: expected an object, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    return d


@dataclass
class ModelConfig:
    """Sizes of the model and of the padded arrays the featurizer produces."""

    hidden: int = 64
    """Width of every vector (event, tool, slot, candidate); the transformer's hidden size."""
    layers: int = 2
    """Transformer layers over the event sequence."""
    heads: int = 4
    """Attention heads; must divide `hidden`."""
    intermediate: int = 128
    """Feed-forward width inside each transformer layer."""
    dropout: float = 0.1
    """Dropout in the transformer and the heads (training only)."""
    max_events: int = 64
    """Most recent events kept; older ones are cut (the summary position always stays)."""
    max_text_tokens: int = 32
    """Message / output text tokens kept per event (mean-pooled)."""
    max_key_tokens: int = 12
    """Tokens of an event's argument-key signature."""
    max_tools: int = 48
    """Tool candidates per context, the two specials (`<respond>`, `<unknown>`) included."""
    max_name_tokens: int = 8
    """Sub-word tokens of a tool's (split) name, and of a slot's name."""
    max_desc_tokens: int = 32
    """Tokens of a tool's description."""
    max_param_tokens: int = 16
    """Tokens of a tool's parameter names."""
    max_slots: int = 8
    """Argument slots scored per tool."""
    max_candidates: int = 24
    """Value candidates per slot (the extractors' best), `<free>` not included."""
    text_vocab_size: int = 4000
    """Size of the text tokenizer's vocabulary (set from the trained tokenizer)."""
    n_tool_ids: int = 3
    """Learned tool embeddings: 0 = unseen, 1 = `<respond>`, 2 = `<unknown>`, then training tools."""
    n_agents: int = 1
    """Agent (source + model) embeddings: 0 = unseen, then the agents of the training logs."""
    tool_id_dropout: float = 0.3
    """Training only: share of tool ids hidden (set to unseen) so the text representation must carry
    the tool too; it is what lets an unseen tool rank sensibly."""
    use_text: bool = True
    """Message text enters the event vectors (ablation switch)."""
    pooling: Pooling = "summary"
    """Context state h: the summary position (`summary`) or the mean over events."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("int",) and (not isinstance(v, int) or isinstance(v, bool)):
                raise ValueError(f"ModelConfig.{f.name}: expected int, got {v!r}")
        positive = (
            "hidden",
            "layers",
            "heads",
            "intermediate",
            "max_events",
            "max_text_tokens",
            "max_key_tokens",
            "max_name_tokens",
            "max_desc_tokens",
            "max_param_tokens",
            "max_slots",
            "max_candidates",
            "text_vocab_size",
            "n_tool_ids",
            "n_agents",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"ModelConfig: heads ({self.heads}) must divide hidden ({self.hidden})")
        if self.max_tools < 3:
            raise ValueError(
                f"ModelConfig.max_tools must be >= 3 (two specials + a tool), got {self.max_tools}"
            )
        if self.n_tool_ids < 3:
            raise ValueError(
                f"ModelConfig.n_tool_ids must be >= 3 (unseen + two specials), got {self.n_tool_ids}"
            )
        for name in ("dropout", "tool_id_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.pooling not in ("summary", "mean"):
            raise ValueError(f"ModelConfig.pooling must be 'summary' or 'mean', got {self.pooling!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> ModelConfig:
        return cls(**_check_keys(cls, d))


def tiny_config(**overrides: Any) -> ModelConfig:
    """A model small enough to train in seconds, for tests and fixtures (`scripts/make_tiny_model.py`),
    with dropout off so two runs of it agree; `overrides` change any field."""
    base: dict[str, Any] = dict(
        hidden=16, layers=1, heads=2, intermediate=32, max_events=8, max_text_tokens=6, max_key_tokens=4,
        max_tools=8, max_name_tokens=4, max_desc_tokens=6, max_param_tokens=4, max_slots=3,
        max_candidates=5, dropout=0.0, tool_id_dropout=0.0,
    )
    return ModelConfig(**{**base, **overrides})


@dataclass
class TrainConfig:
    """How the model is fitted."""

    lr: float = 1e-3
    """AdamW peak learning rate (linear warm-up, cosine decay)."""
    weight_decay: float = 0.01
    batch_size: int = 64
    max_epochs: int = 12
    patience: int = 4
    """Early stopping: epochs without a better validation loss before stopping."""
    slot_loss_weight: float = 0.5
    """Weight of the argument-slot loss beside the next-tool loss."""
    warmup_steps: int = 100
    seed: int = 0
    drop_looping: bool = True
    """Leave out traces flagged `metadata["looping"]` (agents repeating one call): they teach loops."""
    num_workers: int = 0
    ema_epochs: float = 1.0
    """Validate, keep and ship an exponential moving average of the weights over about the last this
    many epochs (Lightning's `WeightAveraging`, decay 1 - 1 / (ema_epochs x steps per epoch), updated
    every step after warm-up); 0 keeps the raw weights. In epochs, not a decay, so a small log set gets
    as much averaging as a large one."""

    def __post_init__(self) -> None:
        if self.ema_epochs < 0:
            raise ValueError(f"TrainConfig.ema_epochs must be >= 0, got {self.ema_epochs}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(
                f"TrainConfig: lr must be > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )
        for name in ("batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.slot_loss_weight < 0 or self.warmup_steps < 0 or self.num_workers < 0:
            raise ValueError("TrainConfig: slot_loss_weight, warmup_steps and num_workers must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> TrainConfig:
        return cls(**_check_keys(cls, d))


@dataclass
class Config:
    """Everything `config.json` holds: the model and how it was trained."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    format_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Config:
        d = _check_keys(cls, d)
        version = d.get("format_version", 1)
        if version != 1:
            raise ValueError(f"config format_version {version} is not supported (expected 1)")
        return cls(
            model=ModelConfig.from_dict(d.get("model", {})),
            train=TrainConfig.from_dict(d.get("train", {})),
            format_version=version,
        )
