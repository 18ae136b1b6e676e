"""ONNX export: the contract, parity with PyTorch (top-k identical, probabilities within 1e-4), int8
agreement, a failing validation that names the largest difference, a stale export, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_model

from toolcast.predictor.config import TrainConfig, tiny_config
from toolcast.predictor.modeldir import ModelDirError
from toolcast.predictor.onnx.arrays import stack, trim
from toolcast.predictor.onnx.contract import (
    AXES,
    ENCODER,
    FEATURE_INPUTS,
    GRAPHS,
    LENGTH_OF,
    SLOTS,
    TOOLS,
)
from toolcast.predictor.onnx.predictor import OnnxPredictor
from toolcast.predictor.torch.model import EVENT_INPUTS, OUTPUT_NAMES, SLOT_INPUTS, TOOL_INPUTS
from toolcast.predictor.torch.predictor import LearnedPredictor, load_pretrained

TINY = tiny_config()
TOL = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory, shop_traces):
    """A tiny model trained for a few seconds on the shop traces, exported with int8 graphs too."""
    from toolcast.predictor.torch.export import export_onnx
    from toolcast.training.train import train

    tmp = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOOLCAST_CACHE", str(tmp / "cache"))
        data = tmp / "logs.jsonl"
        data.write_text("".join(t.to_json() + "\n" for t in shop_traces(40)), encoding="utf-8")
        out = train(
            [data],
            tmp / "model",
            max_epochs=4,
            model=TINY,
            train_config=TrainConfig(batch_size=16, warmup_steps=2),
            progress=False,
            evaluate_test=False,
            pool=False,  # the export is checked against the model alone
        )
        report = export_onnx(out, quantize="int8")
    return out, report


@pytest.fixture(scope="module")
def held_out(shop_traces):
    return [c for t in shop_traces(12, offset=500) for c, _label in t.decision_points()]


def test_contract_names_the_models_inputs_and_every_axis():
    assert FEATURE_INPUTS == EVENT_INPUTS + TOOL_INPUTS
    assert set(TOOLS.inputs) | set(ENCODER.inputs) >= set(FEATURE_INPUTS)
    made = set(FEATURE_INPUTS) | set(SLOT_INPUTS)
    for g in GRAPHS:  # every graph input is the featurizer's or an earlier graph's output
        assert set(g.inputs) <= made, g.name
        made |= set(g.outputs)
    assert SLOTS.inputs[3:] == SLOT_INPUTS
    assert set(OUTPUT_NAMES) <= {o for g in GRAPHS for o in g.outputs}
    for g in GRAPHS:  # every tensor crossing a graph boundary has its axes named, the batch axis dynamic
        assert all(AXES[name][0] is not None for name in (*g.inputs, *g.outputs)), g.name
    assert all(axis in AXES[source] for axis, source in LENGTH_OF.items())
    featurized = [*FEATURE_INPUTS, *SLOT_INPUTS]  # the arrays the predictor cuts (graph outputs: never)
    named = {a for n in featurized for a in AXES[n] if a not in (None, "batch")}
    assert named == set(LENGTH_OF)


def test_trim_and_stack_keep_the_used_part():
    a = {"ev_type": np.array([1, 5, 3, 0, 0]), "ev_mask": np.array([1, 1, 1, 0, 0], bool)}
    a["ev_text"] = np.zeros((5, 6), np.int64)
    a["ev_text"][1, :2] = 7
    t = trim(a)
    assert t["ev_type"].tolist() == [1, 5, 3] and t["ev_text"].shape == (3, 2)
    b = trim(
        {"ev_type": np.array([1, 0]), "ev_mask": np.array([1, 0], bool), "ev_text": np.zeros((2, 6), int)}
    )
    s = stack([t, b], ["ev_type", "ev_text"])
    assert s["ev_type"].tolist() == [[1, 5, 3], [1, 0, 0]] and s["ev_text"].shape == (2, 3, 2)
    assert trim(a, keep=("text_tokens",))["ev_text"].shape == (3, 6)  # a kept axis stays whole


def test_export_validates_and_onnx_gives_the_torch_top_k(exported, held_out):
    path, report = exported
    assert report.validation["topk_identical"] and report.validation["examples"] > 0
    assert max(report.validation["max_abs_diff"].values()) <= TOL
    manifest = json.loads((path / "onnx.json").read_text())
    assert manifest["default"] == "int8" and set(manifest["variants"]) == {"float", "int8"}
    torch_pred = LearnedPredictor.load(path)
    onnx_pred = OnnxPredictor.load(path, variant="float")
    worst = 0.0
    for context in held_out:
        a, b = torch_pred.predict(context, k=5), onnx_pred.predict(context, k=5)
        assert [(c.key, c.free) for c in a] == [(c.key, c.free) for c in b]
        worst = max([worst, *(abs(x.p_call - y.p_call) for x, y in zip(a, b, strict=True))])
        worst = max([worst, *(abs(x.p_tool - y.p_tool) for x, y in zip(a, b, strict=True))])
    assert worst <= TOL
    batch = onnx_pred.predict_batch(held_out, k=5)
    for context, got in zip(held_out, batch, strict=True):
        want = torch_pred.predict(context, k=5)
        assert [c.key for c in got] == [c.key for c in want]
        assert all(abs(x.p_call - y.p_call) <= TOL for x, y in zip(got, want, strict=True))


def test_int8_top1_agrees_with_float(exported, held_out):
    from toolcast.predictor.torch.export import int8_agreement

    path, report = exported
    assert report.int8["call_top1_agreement"] >= 0.99
    measured = int8_agreement(OnnxPredictor.load(path, variant="float"), OnnxPredictor.load(path), held_out)
    assert measured["tool_top1_agreement"] >= 0.99 and measured["call_top1_agreement"] >= 0.99
    assert OnnxPredictor.load(path).name == "learned-int8"


def test_validation_failure_names_the_largest_difference(exported):
    from toolcast.predictor.torch.export import ExportValidationError, export_onnx

    path, _report = exported
    before = (path / "onnx.json").read_text()
    with pytest.raises(ExportValidationError, match=r"differ by up to \d\.\d+e-\d+ on \w+"):
        export_onnx(path, tolerance=1e-12)
    assert (path / "onnx.json").read_text() == before  # nothing replaced by a failed export


def test_weights_changed_after_export_are_caught(exported, tmp_path):
    import shutil

    path, _report = exported
    d = tmp_path / "m"
    shutil.copytree(path, d)
    model, _parts = load_pretrained(d)
    with torch.no_grad():
        model.tool_head.mlp_out.bias.add_(1.0)
    save_model(model, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelDirError, match="model.safetensors changed since the ONNX graphs were exported"):
        OnnxPredictor.load(d)


def test_cli_export_and_eval_prefers_onnx(exported, tmp_path, capsys):
    import shutil

    from toolcast.cli.eval_cmd import ModelNotAvailableError, load_model
    from toolcast.cli.main import main

    path, _report = exported
    d = tmp_path / "m"
    shutil.copytree(path, d)
    for f in [*(f for g in GRAPHS for f in g.files.values()), "onnx.json"]:
        (d / f).unlink()
    assert isinstance(load_model(str(d)), LearnedPredictor)  # no export: the torch predictor
    assert main(["export", str(d)]) == 0
    assert "top-k identical: yes" in capsys.readouterr().out
    assert isinstance(load_model(str(d)), OnnxPredictor)
    assert not (d / "model.int8.onnx").exists()
    assert main(["export", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (d / "slots.onnx").write_bytes(b"")
    with pytest.raises(ModelNotAvailableError, match="slots.onnx"):
        load_model(str(d))


def test_package_exports_the_onnx_predictor_for_serving():
    import toolcast.predictor as tp
    from toolcast.serving.loading import find_loader

    assert tp.Predictor is OnnxPredictor
    assert find_loader() is tp.load
