"""Symbolic argument extractors, as the runtime and users reach them: `toolcast.runtime.extractors`.

The implementation lives in `toolcast.predictor.features.extractors`, because predictors (the pattern pool,
the learned model's argument head) consume the candidates and the predictor package may not import the
runtime (dependencies point one way: runtime -> predictor -> data). This module is the public name.
"""

from toolcast.predictor.features.extractors import (
    EXTRACTORS,
    KINDS,
    Candidate,
    Extractor,
    Mention,
    extract_candidates,
    extract_event,
    mentions,
    path_shape,
    value_id,
)

__all__ = [
    "EXTRACTORS", "KINDS", "Candidate", "Extractor", "Mention", "extract_candidates", "extract_event",
    "mentions", "path_shape", "value_id",
]
