"""`toolcast export`: a trained model directory -> ONNX graphs validated against PyTorch (onnx.json)."""

from __future__ import annotations

import argparse

from toolcast.cli.common import fail


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model to ONNX for the embedded predictor",
        description="Export the model in DIR to ONNX (tools.onnx: the tool set's representation, kept per "
        "tool set; model.onnx: context and tools -> tool logits; slots.onnx: the argument head), run it "
        "with onnxruntime beside PyTorch on validation contexts of the logs it was trained on (or the "
        "bundled sample) and fail, with the largest difference seen, "
        "if any output differs by more than the tolerance or the top-k calls differ. Writes onnx.json "
        "(files, hashes, figures), which toolcast.predictor.Predictor checks at load. `toolcast train` "
        "runs this at its end unless given --no-export. Needs the [train] extra.",
    )
    p.add_argument("model", metavar="DIR", help="a trained model directory (with model.safetensors)")
    p.add_argument(
        "--quantize",
        choices=("int8",),
        help="also write int8 graphs (dynamic quantization) and make them the default, when their "
        "top-1 call agrees with float on at least 99%% of the validation contexts",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return export_and_report(args.model, args.quantize)


def export_and_report(model: str, quantize: str | None = None) -> int:
    """Export, print a summary, return the exit code (`toolcast train` calls this at its end too)."""
    try:
        from toolcast.predictor.modeldir import ModelDirError
        from toolcast.predictor.torch.export import ExportValidationError, export_onnx
    except ImportError as e:
        return fail(f"export needs the [train] extra (torch, onnx): {e}")
    try:
        r = export_onnx(model, quantize=quantize)
    except (ModelDirError, ExportValidationError) as e:
        return fail(str(e))
    v = r.validation
    name, worst = max(v["max_abs_diff"].items(), key=lambda kv: kv[1])
    print(
        f"exported {r.path}: opset {r.opset}, {v['examples']} validation contexts ({r.source}); "
        f"largest |onnxruntime - torch| {worst:.1e} on {name} (tolerance {r.tolerance:.0e}), "
        f"top-k identical: {'yes' if v['topk_identical'] else 'no'}"
    )
    if r.int8:
        print(
            f"int8: top-1 tool agreement {r.int8['tool_top1_agreement']:.1%}, top-1 call agreement "
            f"{r.int8['call_top1_agreement']:.1%}; default variant: {r.default}"
        )
    return 0
