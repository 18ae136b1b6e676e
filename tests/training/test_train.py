"""Training: temperature calibration, the holdout filter, and `train` end to end on a tiny log set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toolcast.predictor.config import TrainConfig, tiny_config
from toolcast.training.calibrate import fit_calibration, fit_temperature, multi_nll, reliability, top1
from toolcast.training.datamodule import holdout_predicate

TINY = tiny_config()


def miscalibrated(n: int = 4000, k: int = 6, scale: float = 4.0, seed: int = 0):
    """Labels drawn from softmax(z), logits reported as scale * z: an over-confident model."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.0, (n, k))
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    y = np.array([rng.choice(k, p=row) for row in p])
    targets = np.zeros((n, k), bool)
    targets[np.arange(n), y] = True
    return scale * z, targets


def test_temperature_scaling_lowers_nll_and_ece_on_an_overconfident_model():
    logits, targets = miscalibrated()
    t = fit_temperature(logits, targets)
    assert 3.0 < t < 5.0  # recovers the scale it was made with
    assert multi_nll(logits, targets, t) < multi_nll(logits, targets)
    ece_before = reliability(*top1(logits, targets, 1.0))["ece"]
    ece_after = reliability(*top1(logits, targets, t))["ece"]
    assert ece_after < ece_before / 2


def test_fit_calibration_reports_both_heads():
    logits, targets = miscalibrated(n=500)
    slot_logits = logits[:, None, :]
    slot_target = targets.argmax(-1)[:, None]
    cal, report = fit_calibration(logits, targets, slot_logits, slot_target)
    assert cal.tool_temperature > 1 and cal.slot_temperature > 1
    assert report["tool"]["nll_after"] <= report["tool"]["nll_before"]
    assert report["n_slot_rows"] == 500


def test_holdout_predicate(make_trace):
    t = make_trace()
    t.metadata.update(domain="retail", involved_classes=["TravelAPI", "MathAPI"])
    assert holdout_predicate("domain=retail")(t)
    assert not holdout_predicate("domain=airline")(t)
    assert holdout_predicate("involved_classes=MathAPI")(t)
    assert holdout_predicate(None) is None
    t.metadata["agent_model"] = "claude-opus-4-6"
    assert holdout_predicate("agent_model~claude")(t) and not holdout_predicate("agent_model=claude")(t)
    assert not holdout_predicate("agent_model~gpt")(t) and not holdout_predicate("nothing~x")(t)
    with pytest.raises(ValueError, match="key=value"):
        holdout_predicate("retail")


def test_train_end_to_end_writes_a_model_that_eval_loads(shop_traces, tmp_path, monkeypatch, capsys):
    from toolcast.cli.eval_cmd import load_model
    from toolcast.training.train import train

    monkeypatch.setenv("TOOLCAST_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "logs.jsonl"
    data.write_text("".join(t.to_json() + "\n" for t in shop_traces(30)), encoding="utf-8")
    out = train(
        [data],
        tmp_path / "model",
        max_epochs=3,
        seed=0,
        model=TINY,
        train_config=TrainConfig(batch_size=16, warmup_steps=2),
        progress=False,
        horizon=(lambda t: t.startswith("get_"), lambda t: not t.startswith("get_")),
    )
    assert out is not None
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "tokenizer.json",
        "vocab.json",
        "model.safetensors",
        "calibration.json",
        "metrics.json",
    } <= names
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["examples"]["train"] > 0 and "calibrated" in metrics["test"]
    record = metrics["trained_on"]  # what `toolcast eval` leaves out: every train + validation trace
    assert record["fitted_traces"] + record["test_traces"] == 30 and len(record["digests"]) == 30 - record[
        "test_traces"]
    predictor = load_model(str(out))
    context, _label = next(iter(shop_traces(1, offset=99)[0].decision_points()))
    preds = predictor.predict(context, k=3)
    assert preds and all(0 <= p.p_call <= 1 for p in preds)
    # the directory serves the model pooled with the mined pattern pool and the semantic expert
    from toolcast.predictor.pooling import PooledPredictor

    assert {"pool.json", "pattern_pool.json.gz"} <= names
    assert ("text_encoder.npy" in names) == ("semantic" in predictor.fitted.used)  # saved when it is used
    assert isinstance(predictor, PooledPredictor)
    assert predictor.fitted.experts == ["learned", "pattern", "semantic"]
    assert metrics["pool"]["fitted_on"] > 0 and "pooled" in metrics["test"]
    # ... and has a horizon scorer, which `toolcast simulate --model` turns into the learned_horizon policy
    from toolcast.cli.main import main
    from toolcast.predictor.horizon import HorizonScorer

    assert metrics["horizon"]["candidates"] > 0
    assert HorizonScorer.load(out / "horizon.json").mlp is not None
    from toolcast.predictor.baselines.fanout import FanoutPredictor

    FanoutPredictor.load(out)  # what an agent process builds the horizon view with, beside the model
    from toolcast.predictor import load
    from toolcast.predictor.horizon import HorizonPredictor

    view = load(out, view="horizon", is_read=lambda t: t.startswith("get_"),
                is_write=lambda t: not t.startswith("get_"))
    assert isinstance(view, HorizonPredictor) and view.pattern is view.base.experts["pattern"]  # loaded once
    horizon_preds = view.predict(context, k=16)
    assert horizon_preds and all(p.p_horizon is not None for p in horizon_preds)
    with pytest.raises(ValueError, match="view must be"):
        load(out, view="later")
    (out / "horizon.json").rename(tmp_path / "horizon.json")
    with pytest.raises(ValueError, match=r"model directory .*: no horizon\.json for the horizon view"):
        load(out, view="horizon")
    (tmp_path / "horizon.json").rename(out / "horizon.json")
    assert main(["simulate", "--model", str(out), "--data", str(data), "--json"]) == 0
    assert "learned_horizon" in json.loads(capsys.readouterr().out)


def test_train_command_is_registered():
    from toolcast.cli.main import COMMANDS, build_parser

    assert "train_cmd" in COMMANDS
    args = build_parser().parse_args(
        ["train", "--data", "x", "--out", "y", "--devices", "2", "--strategy", "ddp"]
    )
    assert args.devices == "2" and args.strategy == "ddp" and args.max_epochs == 12
    assert args.ema_epochs == 1.0


def test_train_command_rejects_a_negative_ema_horizon(tmp_path, capsys):
    from toolcast.cli.main import main

    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--ema-epochs", "-1"])
    assert code != 0 and "ema_epochs must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_with_ema_the_kept_weights_are_the_averaged_ones_that_were_validated():
    """KeepBest must copy the weights validation saw: with `Ema`, the average (swapped in only during
    validation), not the raw weights it swaps back before `on_validation_end`."""
    import lightning as L
    import torch

    from toolcast.training.train import Ema, KeepBest

    class Toy(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

        def _loss(self, batch):
            x, y = batch
            return ((self.w(x) - y) ** 2).mean()

        def training_step(self, batch, _i):
            return self._loss(batch)

        def validation_step(self, batch, _i):
            self.log("val_loss", self._loss(batch))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).unsqueeze(-1)
    data = torch.utils.data.TensorDataset(x, 3 * x + 1)
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    keep, ema = KeepBest(), Ema(decay=0.9, start=0)
    module = Toy()
    trainer = L.Trainer(max_epochs=3, callbacks=[keep, ema], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, loader, loader)
    assert keep.epoch == 2  # the loss falls every epoch: the last is best
    averaged = ema._average_model.module.state_dict()  # what on_train_end copied into the module too
    for name, value in keep.state.items():
        assert torch.equal(value, averaged[name]), name


def test_ema_epochs_is_validated():
    with pytest.raises(ValueError, match="ema_epochs"):
        TrainConfig(ema_epochs=-1.0)


def test_train_command_rejects_a_bad_contracts_file_before_training(tmp_path, capsys):
    from toolcast.cli.main import build_parser, main

    bad = tmp_path / "contracts.json"
    bad.write_text("{not json", encoding="utf-8")
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m"), "--contracts", str(bad)])
    assert code != 0 and "contracts.json" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    args = build_parser().parse_args(["train", "--data", "x", "--out", "y", "--no-horizon"])
    assert args.no_horizon and args.contracts is None
