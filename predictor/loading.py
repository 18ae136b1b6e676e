"""`load(model_dir)`: the one way a trained model directory becomes a `Predictor`.

The CLI (`toolcast eval`, `toolcast simulate`), the server (`toolcast serve`) and the benchmarks all load
models through this function, so they agree on which backend serves a directory:

- `backend="auto"` (default): the ONNX predictor (`onnx.predictor.OnnxPredictor`, onnxruntime, no torch)
  when the directory has an export (`model.onnx`), else the torch predictor
  (`torch.predictor.LearnedPredictor`, needs the `[train]` extra);
- `backend="onnx"` / `backend="torch"`: that one, or a `ModelDirError` saying why not;
- then, when the directory has a pool (`pool.json`, written by `toolcast train`), that model pooled with
  the mined pattern pool saved beside it (`pooling.PooledPredictor`); `pooled=False` gives the model alone;
- `view="horizon"`: that predictor's horizon view (`horizon.HorizonPredictor`: its candidates pooled with
  the directory's fan-out and pattern pool, ranked by p(issued before the next write), `horizon.json`),
  what a runtime speculates sets of calls with; `view="next"` (default) ranks the next call, what
  `toolcast eval` measures and the endpoint serves; `view="auto"`: the horizon view when the directory
  has its files, else the next-call one (what `toolcast mcp-proxy` runs).

Every problem is a `ModelDirError` (a `ValueError`) naming the directory. Importing this module imports
neither onnxruntime nor torch; the backend is imported when a model is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from toolcast.predictor.protocol import Predictor

Backend = Literal["auto", "onnx", "torch"]
BACKENDS: tuple[str, ...] = ("auto", "onnx", "torch")
View = Literal["next", "horizon", "auto"]
VIEWS: tuple[str, ...] = ("next", "horizon", "auto")


def load(model_dir: str | os.PathLike, *, backend: Backend = "auto", pooled: bool = True,
         view: View = "next", is_read: Callable[[str], bool] | None = None,
         is_write: Callable[[str], bool] | None = None, **kwargs: Any) -> Predictor:
    """The predictor of a model directory. kwargs go to the backend's `load`: `calibrated` (both),
    `threads` and `variant` (ONNX only: onnxruntime intra-op threads, "float" or "int8").

    pooled: when the directory has a pool (`pool.json` and the pattern pool beside it, written by
    `toolcast train`), the model pooled with the mined pattern pool (`pooling.PooledPredictor`, what
    the product serves); False: the model alone.

    view: "next" ranks the next call; "horizon" gives the horizon view, which saves more when a runtime
    launches its candidates (BENCHMARKS "Speculating sets"). It needs the directory's `horizon.json` and
    `fanout.json.gz` (`toolcast train` writes them) and which tools are reads (`is_read`: the fan-out
    proposes those) and which change state (`is_write`); a `SpeculativeRuntime` gives both from its
    tools' contracts when they are left out here. "auto": "horizon" when the directory has those files,
    else "next"."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    model = _load_model(model_dir, backend, **kwargs)
    from toolcast.predictor.modeldir import ModelDirError

    if pooled and kwargs.get("calibrated") is not False:
        from toolcast.predictor.pooling import load_pooled

        try:
            model = load_pooled(model_dir, model)
        except ValueError as e:
            raise ModelDirError(Path(model_dir), str(e)) from None
    if view == "auto":
        view = "horizon" if has_horizon_view(model_dir) else "next"
    if view == "next":
        return model
    return horizon_view(model_dir, model, is_read=is_read, is_write=is_write)


def has_horizon_view(model_dir: str | os.PathLike) -> bool:
    """Whether the directory has what its horizon view needs (`toolcast train` writes it)."""
    return all((Path(model_dir) / f).exists() for f in _horizon_files())


def _horizon_files() -> tuple[str, str]:
    from toolcast.predictor.baselines.fanout import FANOUT_FILE
    from toolcast.predictor.horizon import HORIZON_FILE

    return HORIZON_FILE, FANOUT_FILE


def horizon_view(model_dir: str | os.PathLike, model: Predictor, *,
                 is_read: Callable[[str], bool] | None = None,
                 is_write: Callable[[str], bool] | None = None) -> Predictor:
    """The horizon view of `model`, a predictor already loaded from `model_dir` (`load(view="horizon")`
    without loading the model twice: the server answers both views from one model). A `ModelDirError`
    names what the directory lacks or what is wrong in it."""
    from toolcast.predictor.baselines.fanout import FanoutPredictor
    from toolcast.predictor.horizon import HORIZON_FILE, HorizonPredictor, HorizonScorer
    from toolcast.predictor.modeldir import ModelDirError

    path = Path(model_dir)
    missing = [f for f in _horizon_files() if not (path / f).exists()]
    if missing:
        raise ModelDirError(path, f"no {' or '.join(missing)} for the horizon view (`toolcast train` "
                                  "writes them unless given --no-horizon, or when the logs have no "
                                  "validation split)")
    try:
        scorer = HorizonScorer.load(path / HORIZON_FILE)
        fanout = FanoutPredictor.load(path, is_read=is_read)
        pattern = None
        if any(f.startswith("pat") for f in scorer.features):
            pattern = getattr(model, "experts", {}).get("pattern")  # the pool's: loaded once
            if pattern is None:
                from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor

                pattern = PatternPoolPredictor.load(path)
    except ValueError as e:
        raise ModelDirError(path, str(e)) from None
    return HorizonPredictor(model, fanout, scorer, name=f"{getattr(model, 'name', 'learned')}_horizon",
                            pattern=pattern, is_write=is_write)


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
