"""ONNX export of a trained model directory, validated against PyTorch before anything is kept.

The contract (graphs, names, dynamic axes, opset, tolerance) is declared once in `onnx/contract.py`. Here:
write the three graphs from the trained weights (`graphs.py`: the same function in far fewer nodes
than a traced export, which is what a step's latency is made of), run them with onnxruntime beside
PyTorch on real validation contexts (the
validation split of the logs the model was trained on, as `metrics.json` records them, else the bundled
sample), and fail with the largest difference seen if any output differs by more than the tolerance or
the top-k calls differ. Optionally quantize to int8 (`onnxruntime.quantization.quantize_dynamic`) and
measure how often its top-1 agrees with the float graphs. Only then are the files moved into place and
`onnx.json` written with the sha256 of every file involved, which the embedded predictor checks at load.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
import torch

from toolcast.data.load import iter_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import Context
from toolcast.data.splits import split_of
from toolcast.predictor.modeldir import CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE, WEIGHTS_FILE, ModelParts
from toolcast.predictor.onnx.contract import (
    ENCODER,
    FEATURE_INPUTS,
    GRAPHS,
    MANIFEST_FILE,
    OPSET,
    TOLERANCE,
    Variant,
)
from toolcast.predictor.onnx.decode import softmax
from toolcast.predictor.onnx.manifest import MANIFEST_VERSION, sha256_file
from toolcast.predictor.onnx.predictor import OnnxPredictor, inference_session
from toolcast.predictor.protocol import CallPrediction
from toolcast.predictor.torch.graphs import EXACT, build
from toolcast.predictor.torch.model import SLOT_INPUTS, NextCallModel
from toolcast.predictor.torch.predictor import LearnedPredictor, load_pretrained, to_tensors

log = logging.getLogger(__name__)

Quantize = Literal[None, "int8"]
INT8_MIN_AGREEMENT = 0.99
"""Share of validation contexts whose top-1 call must be the same under int8 as under float."""
VALIDATION_CONTEXTS = 64
"""Contexts onnxruntime is checked against PyTorch on (every output, and the top-k calls)."""
INT8_CONTEXTS = 512
"""Contexts int8's top-1 is compared with float's on: a top-1 flips only on near-ties, so a few dozen
contexts would make one flip a 2% drop (float and int8 are both onnxruntime, so this is fast)."""
SOURCE_FILES = (CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE, WEIGHTS_FILE)
"""The files the graphs are built from; their sha256 goes into the manifest."""


class ExportValidationError(RuntimeError):
    """onnxruntime and PyTorch disagree beyond the tolerance (or int8 below its agreement floor)."""


# ---- the graphs ----------------------------------------------------------------------------------------


def write_graphs(model: NextCallModel, parts: ModelParts, out: Path) -> None:
    """The float graphs of `contract.GRAPHS`, from the model's weights, into `out`."""
    for name, graph in build(model, parts.config.model).items():
        (f,) = [g.files["float"] for g in GRAPHS if g.name == name]
        onnx.save(graph, str(out / f))


def sessions(path: Path, variant: Variant) -> dict:
    return {g.name: inference_session(path, g.files[variant], 1) for g in GRAPHS}


# ---- validation contexts ----------------------------------------------------------------------------------


def validation_contexts(
    parts: ModelParts, limit: int = VALIDATION_CONTEXTS, per_trace: int = 8
) -> tuple[list[Context], str]:
    """Decision points of the validation split of the logs the model was trained on (`metrics.json`'s
    data and seed), or of the bundled sample when those logs are not here; spread over each trace so
    long histories are in. Returns the contexts and where they came from."""
    paths = [Path(p) for p in parts.metrics.get("data", [])]
    seed = int(parts.metrics.get("seed", parts.config.train.seed))
    if paths and all(p.exists() for p in paths):
        source = (
            "validation split of " + ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
        )
    else:
        paths, source = sample_files(), "validation split of the bundled sample"
    picked: list[Context] = []
    spare: list[Context] = []
    for trace in iter_traces(*paths, errors="skip"):
        points = [c for c, _label in trace.decision_points()]
        if not points:
            continue
        idx = sorted({int(i) for i in np.linspace(0, len(points) - 1, min(per_trace, len(points)))})
        chosen = [points[i] for i in idx]
        (picked if split_of(trace.group, seed) == "validation" else spare).extend(chosen)
        if len(picked) >= limit:
            break
    out = (picked + spare)[:limit]  # too few validation points: other points fill up
    if not out:
        raise ExportValidationError(f"no decision points to validate with in {[str(p) for p in paths]}")
    if len(picked) < len(out):
        source += f" ({len(out) - len(picked)} of {len(out)} from the other splits)"
    return out, source


# ---- comparing --------------------------------------------------------------------------------------------


@dataclass
class Comparison:
    examples: int = 0
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    worst: dict[str, int] = field(default_factory=dict)
    """Output -> index of the validation context where its largest difference was seen."""
    max_prob_diff: float = 0.0
    topk_mismatches: list[str] = field(default_factory=list)

    def see(self, name: str, a: np.ndarray, b: np.ndarray, i: int) -> None:
        d = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max()) if a.size else 0.0
        if d > self.max_abs_diff.get(name, -1.0):
            self.max_abs_diff[name], self.worst[name] = d, i

    def largest(self) -> tuple[str, float]:
        return max(self.max_abs_diff.items(), key=lambda kv: kv[1])


def same_calls(a: Sequence[CallPrediction], b: Sequence[CallPrediction], tol: float) -> str | None:
    """None when two top-k lists agree: same calls in the same order (a swap only between calls whose
    probabilities tie within `tol`), probabilities within `tol`. Else what differs."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} predictions"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if abs(x.p_call - y.p_call) > tol or abs(x.p_tool - y.p_tool) > tol:
            return (
                f"rank {i}: p_call {x.p_call:.6f} vs {y.p_call:.6f}, p_tool {x.p_tool:.6f} vs {y.p_tool:.6f}"
            )
        if (x.key, x.free) != (y.key, y.free):
            tie = any(
                abs(x.p_call - z.p_call) <= tol
                and abs(x.p_tool - z.p_tool) <= tol
                and (z.key, z.free) == (y.key, y.free)
                for z in a
            )
            if not tie:
                return f"rank {i}: {x.key} vs {y.key}"
    return None


def compare(
    model: NextCallModel,
    torch_pred: LearnedPredictor,
    onnx_pred: OnnxPredictor,
    contexts: Sequence[Context],
    k: int = 5,
    tolerance: float = TOLERANCE,
) -> Comparison:
    """onnxruntime vs PyTorch on the same (cut) arrays of each context, and top-k vs the torch predictor."""
    cmp = Comparison(examples=len(contexts))
    for i, context in enumerate(contexts):
        run = onnx_pred.runs([context])[0]
        with torch.inference_mode():
            ref = model.encode(*to_tensors(run.encoder_inputs, FEATURE_INPUTS))
            names = ("tool_logits", "state", "states", "tool_repr")  # what `encode` returns
            ref_out = dict(zip(names, (t.numpy() for t in ref), strict=True))
            slot_ref = model.score_slots(*ref[1:], *to_tensors(run.slot_inputs, SLOT_INPUTS))[0].numpy()
        for name in ENCODER.outputs:
            cmp.see(name, run.encoder_outputs[name], ref_out[name], i)
        cmp.see("tool_repr", run.tool_outputs["tool_repr"], ref_out["tool_repr"], i)
        cmp.see("slot_logits", run.slot_logits, slot_ref, i)
        n = len(run.features.tools.names)
        p_onnx = softmax(run.encoder_outputs["tool_logits"][0, :n], onnx_pred.tool_t)
        p_ref = softmax(ref_out["tool_logits"][0, :n], onnx_pred.tool_t)
        cmp.max_prob_diff = max(cmp.max_prob_diff, float(np.abs(p_onnx - p_ref).max()))
        why = same_calls(torch_pred.predict(context, k), onnx_pred._decode(run, k), tolerance)
        if why:
            cmp.topk_mismatches.append(f"context {i} ({len(context.events)} events): {why}")
    return cmp


def int8_agreement(
    float_pred: OnnxPredictor, int8_pred: OnnxPredictor, contexts: Sequence[Context]
) -> dict[str, float]:
    """Share of contexts where int8's top-1 tool / top-1 call equals float's, and the largest change of
    a probability among the top-3."""
    tool = call = 0
    worst = 0.0
    for a, b in zip(float_pred.runs(contexts), int8_pred.runs(contexts), strict=True):
        tool += int(
            np.argmax(a.encoder_outputs["tool_logits"][0]) == np.argmax(b.encoder_outputs["tool_logits"][0])
        )
        pa, pb = float_pred._decode(a, 3), int8_pred._decode(b, 3)
        call += int(pa[0].key == pb[0].key)
        worst = max([worst, *(abs(x.p_call - y.p_call) for x, y in zip(pa, pb, strict=False))])
    n = max(1, len(contexts))
    return {"tool_top1_agreement": tool / n, "call_top1_agreement": call / n, "max_top3_p_call_change": worst}


# ---- export -----------------------------------------------------------------------------------------------


@dataclass
class ExportReport:
    path: str
    opset: int
    tolerance: float
    source: str
    """Where the validation contexts came from."""
    validation: dict
    int8: dict | None = None
    default: Variant = "float"
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def export_onnx(
    model_dir: str | os.PathLike,
    quantize: Quantize = None,
    contexts: Sequence[Context] | None = None,
    tolerance: float = TOLERANCE,
) -> ExportReport:
    """Export `model_dir`'s model to ONNX, validate it against PyTorch, and write the graphs and
    `onnx.json` into the directory. quantize="int8" also writes int8 graphs (dynamic quantization) and
    makes them the default, or fails if their top-1 call is float's on fewer than 99% of `INT8_CONTEXTS`
    validation contexts. contexts: validation contexts (default: `validation_contexts`). Raises
    `ExportValidationError` with the largest difference seen; `ModelDirError` for a bad directory."""
    model, parts = load_pretrained(model_dir)
    path = parts.path
    if contexts is None:
        many, source = validation_contexts(parts, INT8_CONTEXTS if quantize else VALIDATION_CONTEXTS)
        contexts = many[:: max(1, len(many) // VALIDATION_CONTEXTS)][:VALIDATION_CONTEXTS]
        int8_contexts = many
    else:
        source, int8_contexts = "given contexts", list(contexts)
    torch_pred = LearnedPredictor(model, parts)
    with tempfile.TemporaryDirectory(dir=path, prefix=".export-") as tmp:
        work = Path(tmp)
        write_graphs(model, parts, work)
        float_pred = OnnxPredictor(parts, sessions(work, "float"))
        cmp = compare(model, torch_pred, float_pred, contexts, tolerance=tolerance)
        name, worst = cmp.largest()
        log.info("onnxruntime vs PyTorch on %d contexts: largest |diff| %.2e (%s)", cmp.examples, worst, name)
        if worst > tolerance:
            raise ExportValidationError(
                f"{path}: onnxruntime and PyTorch differ by up to {worst:.3e} on {name} (validation context "
                f"{cmp.worst[name]}; tolerance {tolerance:.0e}); all outputs: "
                + ", ".join(f"{k} {v:.2e}" for k, v in cmp.max_abs_diff.items())
            )
        if cmp.topk_mismatches:
            raise ExportValidationError(
                f"{path}: the ONNX predictor's top-k differs from PyTorch's on {len(cmp.topk_mismatches)} "
                f"of {cmp.examples} contexts (largest |diff| {worst:.2e} on {name}); "
                f"first: {cmp.topk_mismatches[0]}"
            )
        variants: dict[str, dict[str, str]] = {"float": {g.name: g.files["float"] for g in GRAPHS}}
        int8 = None
        default: Variant = "float"
        if quantize == "int8":
            int8 = _quantize(work, parts, float_pred, int8_contexts)
            variants["int8"] = {g.name: g.files["int8"] for g in GRAPHS}
            default = "int8"
        written = [f for v in variants.values() for f in v.values()]
        for f in written:
            os.replace(work / f, path / f)
    for g in GRAPHS:  # int8 graphs of an earlier export would no longer match these weights
        if "int8" not in variants:
            (path / g.files["int8"]).unlink(missing_ok=True)
    files = {f: sha256_file(path / f) for f in [*SOURCE_FILES, *written] if (path / f).is_file()}
    validation = {
        "examples": cmp.examples,
        "max_abs_diff": cmp.max_abs_diff,
        "max_tool_prob_diff": cmp.max_prob_diff,
        "topk_identical": not cmp.topk_mismatches,
    }
    report = ExportReport(str(path), OPSET, tolerance, source, validation, int8, default, files)
    manifest = {
        "format_version": MANIFEST_VERSION,
        "opset": OPSET,
        "tolerance": tolerance,
        "default": default,
        "variants": variants,
        "graphs": {g.name: {"inputs": list(g.inputs), "outputs": list(g.outputs)} for g in GRAPHS},
        "files": files,
        "validation": {**validation, "source": source, "int8": int8},
        "torch": torch.__version__,
    }
    tmp_manifest = path / (MANIFEST_FILE + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.replace(tmp_manifest, path / MANIFEST_FILE)
    return report


def _quantize(work: Path, parts: ModelParts, float_pred: OnnxPredictor, contexts: Sequence[Context]) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs every tensor it skips at INFO on the root logger: noise for the user.
    logging.disable(logging.WARNING)
    try:
        for g in GRAPHS:
            float_file = str(work / g.files["float"])
            exact = [n.name for n in onnx.load(float_file).graph.node if n.name.endswith(EXACT)]
            quantize_dynamic(
                float_file,
                str(work / g.files["int8"]),
                weight_type=QuantType.QInt8,
                nodes_to_exclude=exact,
                # com.microsoft nodes defeat onnx's shape inference; every tensor here is float
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    finally:
        logging.disable(logging.NOTSET)
    int8_pred = OnnxPredictor(parts, sessions(work, "int8"))
    agreement = int8_agreement(float_pred, int8_pred, contexts)
    log.info("int8 vs float on %d contexts: %s", len(contexts), agreement)
    if agreement["call_top1_agreement"] < INT8_MIN_AGREEMENT:
        raise ExportValidationError(
            f"{parts.path}: int8 top-1 call agrees with float on only "
            f"{agreement['call_top1_agreement']:.1%} of {len(contexts)} validation contexts "
            f"(need {INT8_MIN_AGREEMENT:.0%}); export without --quantize"
        )
    return {**agreement, "examples": len(contexts)}
