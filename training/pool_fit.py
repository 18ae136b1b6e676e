"""Fit the pool that `toolcast train` ships beside the model: the mined pattern pool and the pool's weights.

The weights must come from decision points no expert was fitted on, so the pattern pool used to choose
them is mined on the train split only and the experts answer on the validation split (where the model's
temperatures were fitted too). A third expert, the semantic one (a frozen pretrained text encoder,
`baselines/semantic.py`), joins when its weights package is installed. The pattern pool then shipped is
mined again on train + validation, as the baselines are for `toolcast eval`. Writes `pool.json`, the
pattern pool and the encoder's table into the model directory (`predictor/pooling.py` says how they are
combined); returns the fit report for the metrics card.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolcast.data.schema import Trace
from toolcast.data.splits import default_cache_dir
from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor
from toolcast.predictor.baselines.semantic import SemanticPredictor
from toolcast.predictor.features.text_encoder import META_FILE, TABLE_FILE, StaticTextEncoder
from toolcast.predictor.loading import load
from toolcast.predictor.pooling import LEARNED, PATTERN_FILE, POOL_FILE
from toolcast.predictor.pooling_fit import collect, fit_weights
from toolcast.predictor.protocol import Predictor

log = logging.getLogger(__name__)


def _text_encoder(cache_dir: str | Path | None) -> StaticTextEncoder | None:
    """The distilled pretrained text encoder (cached per machine), or None when its weights package is
    not installed (the pool then has no semantic expert; a warning says so)."""
    from toolcast.training.text_encoder_distill import EncoderNotInstalledError, cached_encoder

    try:
        return cached_encoder(Path(cache_dir) if cache_dir else default_cache_dir().parent / "text_encoder")
    except EncoderNotInstalledError as e:
        log.warning("%s", e)
        return None


def fit_pool(model_dir: str | Path, train: Sequence[Trace], validation: Sequence[Trace],
             progress: bool = False, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Mine the pattern pool, choose the pool's weights on `validation`, write both into `model_dir`."""
    started = time.perf_counter()
    path = Path(model_dir)
    # a stale pool must not pool with the new model
    for name in (POOL_FILE, PATTERN_FILE, TABLE_FILE, META_FILE):
        (path / name).unlink(missing_ok=True)
    model = load(path, pooled=False)
    experts: dict[str, Predictor] = {LEARNED: model, "pattern": PatternPoolPredictor().fit(train)}
    encoder = _text_encoder(cache_dir)
    if encoder is not None:
        experts["semantic"] = SemanticPredictor(encoder)
    points = collect(experts, validation, progress=progress)
    if not points:
        log.warning("no validation decision points: the model ships without a pool")
        return {"skipped": "no validation decision points"}
    weights = fit_weights(list(experts), points)
    shipped = PatternPoolPredictor().fit([*train, *validation])
    shipped.save(path / PATTERN_FILE)
    if encoder is not None and "semantic" in weights.used:  # 7.8 MB: only when the pool uses it
        encoder.save(path)
    weights.save(path / POOL_FILE)  # last: its presence is what makes the directory pooled
    report = {**weights.to_dict(), "seconds": round(time.perf_counter() - started, 1)}
    log.info("pool written to %s in %.0f s", path, report["seconds"])
    return report
