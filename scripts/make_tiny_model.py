"""Rebuild tests/fixtures/model_tiny/: a tiny exported model directory for the embedded (torch-free) tests.

    .venv/bin/python scripts/make_tiny_model.py            # writes tests/fixtures/model_tiny/

Trains a tiny model (hidden 8, one layer, a few epochs) on two files of the bundled sample, exports it to
ONNX (validated against PyTorch as every export is), and copies the parts the embedded predictor reads
(no model.safetensors: the base install never loads it). `expected.json` holds the torch predictor's
top-3 on a few decision points of the bundled sample, so the base-install test can check that
onnxruntime gives the same calls without torch. Rebuild it when the featurizer or the model changes
(the embedded test then fails with "exported by another version" or a changed top-3).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.predictor.config import TrainConfig, tiny_config
from toolcast.predictor.modeldir import CALIBRATION_FILE, CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE
from toolcast.predictor.onnx.contract import GRAPHS, MANIFEST_FILE
from toolcast.predictor.torch.export import export_onnx
from toolcast.predictor.torch.predictor import LearnedPredictor
from toolcast.training.train import train

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "model_tiny"
FILES = ("bfcl-v4-multi-turn-base.jsonl.gz", "tau2-telecom-gpt-4o.json.gz")
"""Sample files trained on; the expected predictions come from the first traces of each."""
TINY = tiny_config(hidden=8, intermediate=16, max_events=16, max_tools=24)
POINTS_PER_FILE = 6


def expected_points(predictor: LearnedPredictor) -> list[dict]:
    """The torch predictor's top-3 on decision points spread over the first traces of each sample file."""
    out = []
    for name in FILES:
        (path,) = [p for p in sample_files() if p.name == name]
        traces = load_traces(path)[:3]
        for trace in traces:
            points = list(trace.decision_points())
            for i in sorted({0, len(points) // 2, len(points) - 1}):
                context, _label = points[i]
                preds = predictor.predict(context, k=3)
                out.append(
                    {
                        "file": name,
                        "trace_id": trace.trace_id,
                        "point": i,
                        "top": [p.to_dict() for p in preds],
                    }
                )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data = [p for p in sample_files() if p.name in FILES]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TOOLCAST_CACHE"] = str(Path(tmp) / "cache")
        model_dir = Path(tmp) / "model"
        train(
            data,
            model_dir,
            max_epochs=3,
            seed=0,
            model=TINY,
            train_config=TrainConfig(batch_size=32, warmup_steps=5),
            progress=False,
            evaluate_test=False,
            pool=False,  # the fixture is the model alone: the embedded tests check it against torch
        )
        export_onnx(model_dir)
        expected = expected_points(LearnedPredictor.load(model_dir))
        shutil.rmtree(args.out, ignore_errors=True)
        args.out.mkdir(parents=True)
        for f in (CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE, CALIBRATION_FILE, MANIFEST_FILE):
            shutil.copy(model_dir / f, args.out / f)
        for f in (g.files["float"] for g in GRAPHS):
            shutil.copy(model_dir / f, args.out / f)
    (args.out / "metrics.json").write_text(
        json.dumps({"note": "tiny test fixture made by scripts/make_tiny_model.py", "data": list(FILES)}),
        encoding="utf-8",
    )
    (args.out / "expected.json").write_text(json.dumps(expected, indent=1), encoding="utf-8")
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({size / 1024:.0f} KB, {len(expected)} expected points)")


if __name__ == "__main__":
    main()
