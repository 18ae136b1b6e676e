"""toolcast.predictor: next-call predictors over a context (the events so far and the tools available).

    import toolcast.predictor as tp
    predictor = tp.load(model_dir)            # ONNX when exported, else torch; see `loading.py`
    predictor.predict(context, k=3)           # -> list[CallPrediction], best first

Folders, by when each piece runs (docs/architecture.md has the picture):

- `features/`  the reference featurizer: context -> arrays (events, tool candidates, argument slots),
               the argument-value extractors, the text encoder, the tool cues. NumPy only.
- `session/`   the agent process's fast path over a growing session: the same arrays, work kept per
               session (`SessionFeaturizer`). NumPy only; tests check it against `features/` bitwise.
- `onnx/`      `OnnxPredictor` (onnxruntime, no torch), the ONNX contract, the export manifest and
               `decode` (model outputs -> ranked calls).
- `torch/`     the model, the torch predictor, ONNX export and the graph builder ([train] extra).
- `baselines/` the Markov and pattern-pool predictors a learned model must beat.

At the root: the `Predictor` protocol (`protocol.py`), the configuration (`config.py`), the model
directory (`modeldir.py`), the featurizer's digest (`versioning.py`) and `load` (`loading.py`).

`toolcast.predictor.Predictor` is kept as an alias of `OnnxPredictor` (imported on first use, so that
`import toolcast.predictor` stays cheap); the protocol is `toolcast.predictor.protocol.Predictor`.
"""

from __future__ import annotations

from typing import Any

from toolcast.predictor.loading import load

__all__ = ["OnnxPredictor", "Predictor", "load"]


def __getattr__(name: str) -> Any:
    if name in ("OnnxPredictor", "Predictor"):
        from toolcast.predictor.onnx.predictor import OnnxPredictor

        return OnnxPredictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
