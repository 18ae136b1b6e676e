"""Which featurizer made a model: a digest of the code that turns traces into arrays.

A model is only as good as the agreement between the featurizer that trained it and the one that feeds
it. Shape changes are caught at load (`onnx_predictor._check_shapes`); a change of meaning with the same
shapes (how candidates are ranked, which values count as constants) is not. Training records this digest
in the metrics card, `read_parts` warns when a model was made by other code, and training's example
cache is keyed by it. Read from the source files without importing them (the torch-free install has the
files but not training's dependencies), once per process.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util

FEATURIZER_MODULES: tuple[str, ...] = tuple(
    f"toolcast.{m}"
    for m in (
        "predictor.featurize", "predictor.slots", "predictor.extractors", "predictor.value_maps",
        "predictor.cues", "predictor.text", "predictor.catalog", "data.jsonpaths", "data.quality",
        "data.decisions", "data.schema", "data.splits", "training.examples",
    )
)


@functools.cache
def featurizer_digest() -> str:
    """16 hex digits over the source of `FEATURIZER_MODULES` (a module that cannot be found counts by
    name)."""
    h = hashlib.sha256()
    for name in FEATURIZER_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin and origin.endswith(".py"):
            with open(origin, "rb") as f:
                h.update(f.read())
        else:
            h.update(name.encode())
    return h.hexdigest()[:16]
