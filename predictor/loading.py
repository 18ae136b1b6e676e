"""`load(model_dir)`: the one way a trained model directory becomes a `Predictor`.

The CLI (`toolcast eval`, `toolcast simulate`), the server (`toolcast serve`) and the benchmarks all load
models through this function, so they agree on which backend serves a directory:

- `backend="auto"` (default): the ONNX predictor (`onnx.predictor.OnnxPredictor`, onnxruntime, no torch)
  when the directory has an export (`model.onnx`), else the torch predictor
  (`torch.predictor.LearnedPredictor`, needs the `[train]` extra);
- `backend="onnx"` / `backend="torch"`: that one, or a `ModelDirError` saying why not;
- then, when the directory has a pool (`pool.json`, written by `toolcast train`), that model pooled with
  the mined pattern pool saved beside it (`pooling.PooledPredictor`); `pooled=False` gives the model alone.

Every problem is a `ModelDirError` (a `ValueError`) naming the directory. Importing this module imports
neither onnxruntime nor torch; the backend is imported when a model is loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from toolcast.predictor.protocol import Predictor

Backend = Literal["auto", "onnx", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "onnx", "torch")


def load(model_dir: str | os.PathLike, *, backend: Backend = "auto", pooled: bool = True,
         **kwargs: Any) -> Predictor:
    """The predictor of a model directory. kwargs go to the backend's `load`: `calibrated` (both),
    `threads` and `variant` (ONNX only: onnxruntime intra-op threads, "float" or "int8").

    pooled: when the directory has a pool (`pool.json` and the pattern pool beside it, written by
    `toolcast train`), the model pooled with the mined pattern pool (`pooling.PooledPredictor`, what
    the product serves); False: the model alone."""
    model = _load_model(model_dir, backend, **kwargs)
    if not pooled or kwargs.get("calibrated") is False:
        return model
    from toolcast.predictor.modeldir import ModelDirError
    from toolcast.predictor.pooling import load_pooled

    try:
        return load_pooled(model_dir, model)
    except ValueError as e:
        raise ModelDirError(Path(model_dir), str(e)) from None


def _load_model(model_dir: str | os.PathLike, backend: Backend, **kwargs: Any) -> Predictor:
    from toolcast.predictor.modeldir import ONNX_FILE, ModelDirError

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    path = Path(model_dir)
    if not path.is_dir():
        raise ModelDirError(path, "does not exist or is not a directory")
    if backend == "onnx" or (backend == "auto" and (path / ONNX_FILE).exists()):
        from toolcast.predictor.onnx.predictor import OnnxPredictor

        return OnnxPredictor.load(path, **kwargs)
    try:
        from toolcast.predictor.torch.predictor import LearnedPredictor
    except ImportError as e:
        export = f"no {ONNX_FILE} (run `toolcast export {path}`), and " if backend == "auto" else ""
        raise ModelDirError(
            path, f"{export}loading the torch model needs the [train] extra ({e})"
        ) from None
    return LearnedPredictor.load(path, **kwargs)
