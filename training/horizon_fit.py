"""A model directory's horizon scorer (`horizon.json`), fitted at the end of training.

`toolcast train` calls it with the replay contracts (which tools are reads the fan-out may propose, which
change state); `toolcast simulate --model DIR` then adds the `learned_horizon` policy, the horizon view
(`predictor/horizon.py`) that `benchmarks/spec_sets.py` measures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from toolcast.data.schema import Trace
from toolcast.predictor.baselines.fanout import FANOUT_FILE, fit_fanout
from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor
from toolcast.predictor.horizon import HORIZON_FILE, HorizonPredictor
from toolcast.predictor.loading import load

log = logging.getLogger(__name__)


def drop_horizon_files(model_dir: Path) -> None:
    """Remove a directory's horizon scorer and fan-out: an earlier model's must not score a new one."""
    for name in (HORIZON_FILE, FANOUT_FILE):
        (model_dir / name).unlink(missing_ok=True)


def fit_horizon_file(model_dir: str | Path, train: Sequence[Trace], validation: Sequence[Trace], *,
                     is_read: Callable[[str], bool], is_write: Callable[[str], bool]) -> dict[str, Any]:
    """Fit a model directory's horizon scorer and write it there with its fan-out (`HORIZON_FILE`,
    `FANOUT_FILE`: what an agent process needs for the horizon view beside the model): the directory's
    predictor (pooled when it has a pool) with the fan-out and a pattern pool mined on `train`, scored on
    `validation`, as `benchmarks/spec_sets.py` measures it (the model and these two never saw
    validation; the pool's own pattern pool, fitted on train + validation, did). `is_read` / `is_write`:
    which tools the fan-out may propose and which invalidate what was read. No candidates on validation:
    no scorer, and the report says why."""
    started = time.perf_counter()
    path = Path(model_dir)
    drop_horizon_files(path)
    fanout = fit_fanout(train, is_read=is_read, is_write=is_write)
    pattern = PatternPoolPredictor().fit(train)
    horizon = HorizonPredictor(load(path), fanout, pattern=pattern, is_write=is_write)
    try:
        scorer = horizon.fit(validation, is_write=is_write)
    except ValueError as e:  # no candidate call on the validation split
        log.warning("no horizon scorer: %s", e)
        return {"skipped": str(e)}
    fanout.save(path / FANOUT_FILE)
    scorer.save(path / HORIZON_FILE)
    ece = (scorer.reliability or [{}])[-1].get("ece")
    ece = None if ece is None else float(ece)
    report = {"candidates": scorer.fitted_on, "features": len(scorer.features), "ece_in_sample": ece,
              "seconds": round(time.perf_counter() - started, 1)}
    log.info("horizon scorer written to %s: %s", path / HORIZON_FILE, report)
    return report
