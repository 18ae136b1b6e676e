"""The fitted baselines saved as one JSON file and loaded back: file size, save and load time, and the time
of a prediction by the loaded model against the freshly fitted one (which must be the same model).

    .venv/bin/python benchmarks/baseline_io.py ../shared/data/tau2 ../shared/data/bfcl \\
        [--points 400] [--json PATH]

Fits the pattern pool and the Markov table on every trace given, saves each as `.json` and `.json.gz`
(REPEATS times, the median), loads each back (the same), then predicts (k=8) at POINTS decision points
spread over the traces with the fitted and the loaded model in alternating blocks and reports the median
time per point; every prediction of the loaded model is checked against the fitted one's.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from toolcast.data import load_traces
from toolcast.data.schema import canonical_args
from toolcast.predictor.baselines import MarkovPredictor, PatternPoolPredictor, decision_contexts

REPEATS = 5


def timed(fn, repeats: int = REPEATS) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def same(a, b) -> bool:
    key = [[p.tool, canonical_args(p.args), p.free, p.p_tool, p.p_call, p.sources] for p in a]
    return key == [[p.tool, canonical_args(p.args), p.free, p.p_tool, p.p_call, p.sources] for p in b]


def measure(cls, traces, contexts) -> dict:
    t0 = time.perf_counter()
    fitted = cls().fit(traces)
    row = {"fit_s": time.perf_counter() - t0}
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".json", ".json.gz"):
            path = Path(tmp) / f"{cls.name}{suffix}"
            row[f"{suffix}_save_s"], _ = timed(lambda p=path: fitted.save(p))
            row[f"{suffix}_load_s"], loaded = timed(lambda p=path: cls.load(p))
            row[f"{suffix}_bytes"] = path.stat().st_size
    if cls is PatternPoolPredictor:  # what the constants would weigh kept whole (one task's values too)
        compact = {"separators": (",", ":")}
        row["constants_whole_json_bytes"] = len(json.dumps(fitted.value_maps.constants.to_dict(1), **compact))
        row["constants_kept_json_bytes"] = len(json.dumps(fitted.value_maps.constants.to_dict(), **compact))
    fresh_ms: list[float] = []
    loaded_ms: list[float] = []
    for block in range(6):  # alternate, so that a busy moment of the shared machine hits both alike
        for model, times in ((fitted, fresh_ms), (loaded, loaded_ms))[:: 1 if block % 2 else -1]:
            t0 = time.perf_counter()
            for ctx in contexts:
                model.predict(ctx, k=8)
            times.append((time.perf_counter() - t0) * 1000 / len(contexts))
    row["predict_ms_fresh"] = statistics.median(fresh_ms)
    row["predict_ms_loaded"] = statistics.median(loaded_ms)
    row["points_differing"] = sum(not same(fitted.predict(c, k=8), loaded.predict(c, k=8)) for c in contexts)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--points", type=int, default=400)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    traces = load_traces(*args.paths)
    contexts = [ctx for t in traces for ctx, _ in decision_contexts(t)]
    contexts = contexts[:: max(1, len(contexts) // args.points)][: args.points]
    out: dict[str, dict] = {"traces": {"n": len(traces)}, "points": {"n": len(contexts)}}
    print(f"{len(traces)} traces, {len(contexts)} decision points timed")
    for cls in (PatternPoolPredictor, MarkovPredictor):
        row = measure(cls, traces, contexts)
        out[cls.name] = row
        print(f"{cls.name}: fit {row['fit_s']:.1f} s; "
              + "; ".join(f"{s} {row[f'{s}_bytes'] / 1e6:.2f} MB, save {row[f'{s}_save_s']:.2f} s, "
                          f"load {row[f'{s}_load_s']:.2f} s" for s in (".json", ".json.gz"))
              + f"; predict {row['predict_ms_fresh']:.2f} ms fitted vs {row['predict_ms_loaded']:.2f} ms "
                f"loaded per point; {row['points_differing']} points differ")
        if "constants_whole_json_bytes" in row:
            print(f"  constants: {row['constants_kept_json_bytes'] / 1e6:.2f} MB JSON kept (2+ task groups), "
                  f"{row['constants_whole_json_bytes'] / 1e6:.2f} MB if every value were kept")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
