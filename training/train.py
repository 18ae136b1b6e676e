"""`train`: logs in, a calibrated model directory out. One typed function; `toolcast train` maps onto it.

Steps: featurize the task-grouped splits (cached; one process), fit with Lightning (early stopping on the
validation loss, best weights kept in memory: no pickled checkpoints), fit the temperatures on
validation, evaluate on test, write the model directory (config, tokenizer, vocabularies, safetensors,
calibration, metrics card). The same call runs on one CPU, on several processes (`strategy="ddp"`,
gloo on CPU) and on GPUs / nodes: Lightning launches the ranks; only rank 0 calibrates and writes.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, WeightAveraging
from torch.optim.swa_utils import get_ema_avg_fn

from toolcast.data.schema import Trace
from toolcast.data.splits import default_cache_dir
from toolcast.predictor.config import Config, ModelConfig, TrainConfig
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.predictor.modeldir import Calibration, ModelParts
from toolcast.predictor.torch.model import INPUT_NAMES, MASKED, NextCallModel
from toolcast.predictor.torch.predictor import LearnedPredictor, save_pretrained
from toolcast.predictor.versioning import featurizer_digest
from toolcast.training.calibrate import fit_calibration
from toolcast.training.datamodule import NextCallDataModule
from toolcast.training.module import NextCallModule, warmup_steps
from toolcast.training.trained_on import RECORD_KEY, record

log = logging.getLogger(__name__)


class KeepBest(Callback):
    """Keeps a copy of the weights of the epoch with the lowest validation loss (in memory).

    The weights are taken at the end of the validation epoch, i.e. the weights that were validated: with
    `Ema` after it in the callback list, the averaged ones (it swaps them back only in its own hook).
    The epoch's loss is known only later (`on_validation_end`), when the copy is kept or dropped.
    """

    def __init__(self, monitor: str = "val_loss"):
        self.monitor, self.best, self.state, self.epoch = monitor, float("inf"), None, -1
        self._validated: dict[str, Any] | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validated = copy.deepcopy(pl_module.state_dict())

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best, self.epoch, self.state = float(value), trainer.current_epoch, self._validated
        self._validated = None


class Ema(WeightAveraging):
    """An exponential moving average of the weights, updated every step after `start` steps (the
    warm-up, where the weights move fastest). Validation sees the average; so does the shipped model."""

    def __init__(self, decay: float, start: int):
        super().__init__(avg_fn=get_ema_avg_fn(decay))
        self.start = start

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and step_idx >= self.start


class EpochLog(Callback):
    """One log line per epoch with the validation figures (the progress bar is off in logs and CI)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
        log.info(
            "epoch %d (%.0f s): %s",
            trainer.current_epoch,
            time.perf_counter() - self.started,
            ", ".join(f"{k} {v:.4f}" for k, v in sorted(m.items())),
        )


def _pad_cat(arrays: list[np.ndarray], fill: float | int | bool) -> np.ndarray:
    """Concatenate batches that were trimmed to different lengths, padding every axis but the first."""
    shape = [max(a.shape[d] for a in arrays) for d in range(1, arrays[0].ndim)]
    out = []
    for a in arrays:
        pad = [(0, 0)] + [(0, m - s) for s, m in zip(a.shape[1:], shape, strict=True)]
        out.append(np.pad(a, pad, constant_values=fill))
    return np.concatenate(out)


@torch.inference_mode()
def predict_logits(model: NextCallModel, loader) -> dict[str, np.ndarray]:
    """Raw outputs over a loader, with the targets beside them, padded to one shape."""
    model.eval()
    fills = {"tool_logits": MASKED, "slot_logits": MASKED, "tool_multi": False, "slot_target": -100}
    out: dict[str, list[np.ndarray]] = {k: [] for k in fills}
    for batch in loader:
        tool_logits, slot_logits = model(*(batch[n] for n in INPUT_NAMES))
        out["tool_logits"].append(tool_logits.numpy())
        out["slot_logits"].append(slot_logits.numpy())
        out["tool_multi"].append(batch["tool_multi"].numpy())
        out["slot_target"].append(batch["slot_target"].numpy())
    return {k: _pad_cat(v, fills[k]) for k, v in out.items()}


def _one_log_stream() -> None:
    """When the application has configured logging (the CLI does), Lightning's messages go through its
    handlers only: Lightning adds a stderr handler of its own at import, so each line came out twice."""
    if not logging.getLogger().handlers:
        return
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True


def train(
    data: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    max_epochs: int = 12,
    seed: int = 0,
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    accelerator: str = "cpu",
    model: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    holdout: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    evaluate_test: bool = True,
    threads: int | None = 1,
    grow_tools: bool = True,
    featurize_procs: int | None = None,
    pool: bool = True,
    horizon: tuple[Callable[[str], bool], Callable[[str], bool]] | None = None,
) -> Path | None:
    """Train on the logs at `data` and write a model directory to `out`.

    data: log files or folders (any supported format). out: the model directory to write.
    max_epochs: upper bound (early stopping on the validation loss usually ends sooner). seed: fixes the
    split, the initialisation and the batch order. devices / strategy / accelerator: Lightning's (e.g.
    devices=2, strategy="ddp" for two CPU processes; accelerator="gpu" on GPUs; num_nodes=N with a
    launcher that starts each node, see README "Training on many machines"). holdout: `key=value` on
    trace metadata (e.g. `domain=retail`) moves those traces to the test split (unseen tool sets).
    threads: torch threads per process on CPU (None: torch's default). 1 by default: at this model's
    size intra-op parallelism buys little, and on a shared CPU two spinning threads per process made a
    training step 15x slower here (5.4 s vs 0.36 s). grow_tools: raise `model.max_tools` to the logs'
    largest tool set (up to `datamodule.MAX_TOOLS_AUTO`) so that no listed tool is cut from the candidates.
    featurize_procs: processes that featurize the examples (None: one per core).
    pool: also mine the pattern pool and fit the pool's weights on validation (`training/pool_fit.py`),
    so that the directory serves the model pooled with it (`toolcast.predictor.pooling`).
    horizon: (is_read, is_write), which tools are reads the fan-out may propose and which change state:
    also fit the directory's horizon scorer on validation (`training/horizon_fit.py`,
    `horizon.json`, which `toolcast simulate --model` uses for the `learned_horizon` view).
    Returns `out` on rank 0, None on the other ranks.
    """
    started = time.perf_counter()
    _one_log_stream()
    if threads is not None and accelerator == "cpu":
        torch.set_num_threads(threads)
    L.seed_everything(seed, workers=True)
    tc = replace(train_config or TrainConfig(), max_epochs=max_epochs, seed=seed)
    config = Config(model=model or ModelConfig(), train=tc)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir().parent / "examples"
    dm = NextCallDataModule(data, config, cache, extract_candidates, seed=seed, holdout=holdout,
                            grow_tools=grow_tools, featurize_procs=featurize_procs)
    # Every process: the first featurizes, the ranks that Lightning starts later (at `fit`, or on other
    # nodes, each with its own cache folder or a shared one) find the cache.
    dm.prepare_data()
    dm.setup("fit")
    config = dm.config
    featurized = time.perf_counter() - started
    module = NextCallModule(config)
    keep = KeepBest()
    callbacks: list[Callback] = [EarlyStopping("val_loss", patience=tc.patience), keep, EpochLog()]
    if tc.ema_epochs > 0:
        processes = (devices if isinstance(devices, int) and devices > 0 else 1) * num_nodes
        steps = max(1, math.ceil(len(dm.examples["train"]) / tc.batch_size / processes))
        decay = 1.0 - 1.0 / max(1.0, tc.ema_epochs * steps)
        log.info("weights averaged (EMA) over ~%.1f epochs: decay %.5f", tc.ema_epochs, decay)
        start = warmup_steps(tc, steps * tc.max_epochs)  # after the learning-rate warm-up
        callbacks.append(Ema(decay, start=start))  # after KeepBest: see its docstring
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        max_epochs=tc.max_epochs,
        deterministic=True,
        callbacks=callbacks,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        num_sanity_val_steps=0,
        log_every_n_steps=20,
        default_root_dir=str(out),
    )
    with warnings.catch_warnings():
        # Lightning's own use of torch.utils._pytree.LeafSpec, deprecated in torch 2.13: not the user's.
        warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated")
        trainer.fit(module, datamodule=dm)
    if not trainer.is_global_zero:
        return None
    if keep.state is not None:
        module.load_state_dict(keep.state)
    fitted = time.perf_counter() - started
    val = predict_logits(module.model, dm.val_dataloader())
    calibration, cal_report = fit_calibration(
        val["tool_logits"], val["tool_multi"], val["slot_logits"], val["slot_target"]
    )
    log.info(
        "calibration: tool T=%.3f (ECE %.4f -> %.4f), slot T=%.3f (ECE %.4f -> %.4f)",
        calibration.tool_temperature,
        cal_report["tool"]["ece_before"],
        cal_report["tool"]["ece_after"],
        calibration.slot_temperature,
        cal_report["slot"]["ece_before"],
        cal_report["slot"]["ece_after"],
    )
    metrics: dict[str, Any] = {
        "data": [str(p) for p in data],
        "seed": seed,
        "holdout": holdout,
        "examples": {k: len(v) for k, v in dm.examples.items()},
        "best_epoch": keep.epoch,
        "best_val_loss": keep.best,
        "epochs_run": trainer.current_epoch,
        "devices": str(devices),
        "num_nodes": num_nodes,
        "world_size": trainer.world_size,
        "strategy": strategy,
        "seconds": {"featurize": round(featurized, 1), "fit": round(fitted - featurized, 1)},
        "calibration": cal_report,
        "featurizer": featurizer_digest(),
    }
    splits = dm.split_traces()
    metrics[RECORD_KEY] = record([*splits["train"], *splits["validation"]], splits["test"], seed, holdout)
    assert dm.encoder is not None and dm.vocab is not None and dm.tokenizer_json is not None
    parts = ModelParts(Path(out), config, dm.tokenizer_json, dm.vocab, calibration, metrics)
    path = save_pretrained(module.model, parts, out)
    if pool and splits["validation"]:
        from toolcast.training.pool_fit import fit_pool

        metrics["pool"] = fit_pool(path, splits["train"], splits["validation"], progress=progress,
                                   cache_dir=cache.parent / "text_encoder")
    from toolcast.training.horizon_fit import drop_horizon_files, fit_horizon_file

    if horizon is not None and splits["validation"]:
        is_read, is_write = horizon
        metrics["horizon"] = fit_horizon_file(path, splits["train"], splits["validation"], is_read=is_read,
                                              is_write=is_write)
    else:
        drop_horizon_files(path)  # an earlier model's must not score this one
    if evaluate_test and "test" in dm.examples:
        metrics["test"] = evaluate_split(path, splits["test"])
    metrics["seconds"]["total"] = round(time.perf_counter() - started, 1)
    save_pretrained(module.model, replace(parts, metrics=metrics), out)
    log.info("model written to %s in %.0f s", path, metrics["seconds"]["total"])
    return path


def evaluate_split(path: Path, test: Sequence[Trace]) -> dict[str, Any]:
    """`toolcast eval`'s figures on the test traces, calibrated and not, and pooled with the pattern pool
    when the directory has a pool, for the metrics card."""
    from toolcast.predictor.loading import load
    from toolcast.predictor.pooling import POOL_FILE
    from toolcast.training.evaluate import evaluate
    from toolcast.training.metrics import summarize

    out = {}
    for calibrated in (True, False):
        predictor = LearnedPredictor.load(path, calibrated=calibrated)
        out["calibrated" if calibrated else "uncalibrated"] = summarize(evaluate(predictor, test))
    if (path / POOL_FILE).exists():
        out["pooled"] = summarize(evaluate(load(path, backend="torch"), test))
    return out


__all__ = ["train", "Calibration"]
