"""What one `toolcast serve` process is configured with: the model, the limits, batching, the token.

A typed dataclass that validates itself, so a bad flag fails at start-up rather than on the first request.
`from_env` exists because `uvicorn --workers N` starts each worker from an import string and the
settings have to reach the workers through the environment (see `toolcast.serving.app.app_from_env`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from toolcast.predictor.protocol import Predictor

K_CEILING = 64
"""The largest k any server accepts: the request schema's hard bound (settings may lower it)."""

ENV_PREFIX = "TOOLCAST_SERVE_"
"""Environment variables read by `ServeSettings.from_env`: TOOLCAST_SERVE_MODEL_DIR, ..._TOKEN, ..."""

Loader = Callable[[Path], Predictor]
HorizonLoader = Callable[[Path | None, Predictor], Predictor | None]
"""(model_dir, the loaded predictor) -> its horizon view, or None when there is none."""
_NOT_IN_ENV = ("loader", "horizon_loader")


@dataclass
class ServeSettings:
    """Everything `create_app` needs. Only `model_dir` is required."""

    model_dir: Path | None = None
    """The model directory handed to the loader (may be None when a custom `loader` needs none)."""
    loader: Loader | None = field(default=None, repr=False)
    """Builds the predictor from `model_dir` inside the lifespan; None = `loading.load_predictor`."""
    contracts: str | None = None
    """A contracts file (`toolcast train --contracts`): which tools the horizon view may propose and which
    change state; None: the builtin name patterns and the shipped coding contracts (train's default)."""
    horizon_loader: HorizonLoader | None = field(default=None, repr=False)
    """Builds the horizon view around the loaded predictor; None = `loading.load_horizon` (the model
    directory's, when it has one)."""
    token: str | None = field(default=None, repr=False)
    """When set, every /v1 request needs `Authorization: Bearer <token>`."""
    max_body_bytes: int = 1_000_000
    """Largest request body accepted (413 beyond it)."""
    max_events: int = 512
    """Longest history (events in one context) accepted (413 beyond it)."""
    max_k: int = 16
    """Largest k accepted (422 beyond it); at most K_CEILING."""
    max_batch_items: int = 256
    """Most contexts in one POST /v1/predict/batch (413 beyond it)."""
    batching: bool = True
    """Micro-batch concurrent requests into one predictor run (off: one run per request)."""
    max_batch_size: int = 64
    """Most contexts in one predictor run."""
    max_wait_ms: float = 0.5
    """How long the first request of a batch waits for others to join it."""
    max_queue: int = 4096
    """Contexts waiting for the predictor before new requests get 503 (back-pressure)."""
    intern_events: int = 16_384
    """Recently seen events kept so that the same event JSON in a later request is the same object and the
    predictor's per-event caches hit (`interning.EventInterner`; ~4x less predictor CPU on a session's
    growing history). An LRU of this many events (with their JSON text: ~2x their size); 0 disables."""
    version: str | None = None
    """Reported by GET /v1/model when the predictor does not say its own version."""
    load_in_background: bool = True
    """Accept connections while the model loads (/readyz says 503 until it is in). Off: start-up waits for
    the model and fails when it cannot load."""

    def __post_init__(self) -> None:
        if self.model_dir is not None:
            self.model_dir = Path(self.model_dir)
        if self.model_dir is None and self.loader is None:
            raise ValueError("ServeSettings: give model_dir (or a loader that needs none)")
        for name in ("max_body_bytes", "max_events", "max_k", "max_batch_items", "max_batch_size",
                     "max_queue"):
            if getattr(self, name) < 1:
                raise ValueError(f"ServeSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.intern_events < 0:
            raise ValueError(f"ServeSettings.intern_events must be >= 0 (0 off), got {self.intern_events}")
        if self.max_queue < self.max_batch_items:
            raise ValueError(f"ServeSettings.max_queue ({self.max_queue}) must be >= max_batch_items "
                             f"({self.max_batch_items}), or a full batch request could never be served")
        if self.max_k > K_CEILING:
            raise ValueError(f"ServeSettings.max_k must be <= {K_CEILING}, got {self.max_k}")
        if self.max_wait_ms < 0:
            raise ValueError(f"ServeSettings.max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.token is not None and not self.token.strip():
            raise ValueError("ServeSettings.token must not be empty (leave it unset for no auth)")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        """Read TOOLCAST_SERVE_<FIELD> variables (booleans: 1/0, true/false)."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or f.name in _NOT_IN_ENV:
                continue
            kwargs[f.name] = _parse(f.name, raw, cls.__dataclass_fields__[f.name].default)
        return cls(**kwargs)

    def to_env(self) -> dict[str, str]:
        """The inverse of `from_env` (a custom loader cannot travel through the environment)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NOT_IN_ENV or value is None:
                continue
            out[ENV_PREFIX + f.name.upper()] = str(int(value)) if isinstance(value, bool) else str(value)
        return out


def _parse(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        if raw.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if raw.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{ENV_PREFIX}{name.upper()}: expected a boolean, got {raw!r}")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}: expected a number, got {raw!r}") from None
    return raw
