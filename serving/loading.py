"""Where the served predictor comes from, and what the server can say about it.

`load_predictor(model_dir)` is the default loader `create_app` calls inside the lifespan (never at import).
It uses `toolcast.predictor.load(model_dir)`, the loader the CLI and the benchmarks use too (the ONNX
predictor when the directory has an export, else the torch one); an install without it gets a
`ModelLoadError` saying so, never an AttributeError from deep inside.

What GET /v1/model reports comes from an optional part of the predictor (not in the `Predictor`
protocol, so baselines and fakes need not implement it):

- `info() -> dict` with any of `version` (str), `tools` (list of tool names the model was trained on),
  `card` (the metrics card: a JSON-able dict), or
- attributes of the same names (`version`, `tools`, `card`).

`info()` wins over the attributes; whatever is missing is reported as absent (null / empty).
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolcast.predictor.protocol import Predictor

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The model directory cannot be served: missing, unreadable, or no loader installed."""


def find_loader() -> Any:
    """The installed model-directory loader, `toolcast.predictor.load` (a callable taking a Path), or
    raise ModelLoadError."""
    try:
        module = importlib.import_module("toolcast.predictor")
    except ImportError as e:  # pragma: no cover - the package is part of this install
        raise ModelLoadError(f"cannot import toolcast.predictor: {e}") from e
    load = getattr(module, "load", None)
    if callable(load):
        return load
    raise ModelLoadError("this install has no model loader: expected toolcast.predictor.load(model_dir)")


def load_predictor(model_dir: Path) -> Predictor:
    """Load the model directory with the installed loader; errors name the directory."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {str(model_dir)!r} does not exist or is not a directory")
    loader = find_loader()
    try:
        predictor = loader(model_dir)
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"cannot load model directory {str(model_dir)!r}: {e}") from e
    if not callable(getattr(predictor, "predict", None)):
        raise ModelLoadError(f"loader returned {type(predictor).__name__}, which has no predict()")
    return predictor


def load_horizon(model_dir: Path | None, predictor: Predictor, contracts: str | None = None
                 ) -> Predictor | None:
    """The directory's horizon view around the served predictor (`toolcast.predictor.loading.horizon_view`:
    one model answers both views), or None when the directory has none. Which tools are reads and which
    change state: `contracts` (a file, as `toolcast train --contracts`), else the builtin name patterns
    and the shipped coding contracts, train's default (the agent's runtime still launches only what its
    own contracts allow)."""
    if model_dir is None:
        return None
    from toolcast.predictor.loading import has_horizon_view, horizon_view
    from toolcast.runtime.coding_contracts import naming_policy

    if not has_horizon_view(model_dir):
        return None
    policy = naming_policy(contracts)
    return horizon_view(model_dir, predictor, is_read=policy.is_read, is_write=policy.is_write)


@dataclass
class ModelInfo:
    """What GET /v1/model reports about the loaded predictor."""

    name: str
    version: str | None = None
    tools: list[str] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    batched: bool = False
    """The predictor has `predict_batch` (one run for many contexts)."""
    views: list[str] = field(default_factory=lambda: ["next"])
    """What `view` a request may ask for: "next", and "horizon" when the directory has one."""


def describe(predictor: Predictor, default_version: str | None = None) -> ModelInfo:
    """Gather the optional `info()` / attributes into a ModelInfo that is safe to serialise."""
    info: dict[str, Any] = {}
    info_fn = getattr(predictor, "info", None)
    if callable(info_fn):
        try:
            got = info_fn()
            info = dict(got) if isinstance(got, dict) else {}
        except Exception:
            log.exception("predictor.info() failed; reporting the attributes only")
    for key in ("version", "tools", "card"):
        if key not in info and hasattr(predictor, key):
            info[key] = getattr(predictor, key)
    version = info.get("version")
    tools = info.get("tools") or []
    card = info.get("card") or {}
    return ModelInfo(
        name=str(getattr(predictor, "name", type(predictor).__name__)),
        version=str(version) if version is not None else default_version,
        tools=[str(getattr(t, "name", t)) for t in tools] if isinstance(tools, list | tuple) else [],
        card=_jsonable(card) if isinstance(card, dict) else {},
        batched=callable(getattr(predictor, "predict_batch", None)),
    )


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """A card may hold numpy numbers or paths; render anything unusual as text, drop nothing.

    NaN survives here and is written as null by the response serialiser.
    """
    return json.loads(json.dumps(value, default=str)) if value else {}
