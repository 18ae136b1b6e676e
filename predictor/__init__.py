"""toolcast.predictor.

`toolcast.predictor.Predictor` is the embedded predictor (onnxruntime + numpy, no torch), imported on
first use so that `import toolcast.predictor` stays cheap for code that needs only the baselines or the
extractors: `Predictor.load(model_dir, threads=1).predict(context, k=3)`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Predictor"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from toolcast.predictor.onnx.predictor import Predictor

        return Predictor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
