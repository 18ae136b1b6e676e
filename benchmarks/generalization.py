"""Generalization figures for BENCHMARKS.md: learned models, pattern pool and Markov on the same points.

    python benchmarks/generalization.py --data ../shared/data/tau2 ../shared/data/bfcl \
        [--holdout agent_model~claude] --models learned=DIR [--alone] [--json OUT]

The split is the one `toolcast train` makes with the same --seed / --holdout (task-grouped 80/10/10,
looping traces out; with --holdout, every matching trace is the test set and the rest of train +
validation is fitted on). The baselines are fitted on train + validation; each model must have been
trained with the same split (its metrics card is checked). For each predictor: the headline metrics,
95% intervals resampling task groups (`training.metrics.group_bootstrap`, paired against the pattern
pool), the same on the points whose labelled tools no training trace called ("unseen tools"), and for the
learned models the ECE after online recalibration (`runtime.planner.OnlineCalibration` applied to the
top tool's probability in trace order, counted after a warm-up). A model directory with a pool is
measured as it serves (the model pooled with the pattern pool and the semantic expert); `--alone` adds
each model without its pool, on the same points.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from toolcast.cli.eval_cmd import load_model
from toolcast.data import load_traces
from toolcast.data.quality import is_looping
from toolcast.data.schema import RESPOND
from toolcast.data.splits import split_of
from toolcast.predictor.baselines import fit_baseline
from toolcast.runtime.planner import OnlineCalibration
from toolcast.training.datamodule import holdout_predicate
from toolcast.training.evaluate import evaluate
from toolcast.training.metrics import ECE_BINS, PointOutcome, group_bootstrap, reliability_bins, summarize

log = logging.getLogger("generalization")
COLS = ("tool_top1", "tool_top3", "call_top1", "call_top3", "respond_precision", "respond_recall", "ece")
WARMUP = 200
"""Points an online recalibration sees before its ECE counts."""


def split(traces, seed: int, holdout: str | None):
    seen, unique = set(), []
    for t in traces:
        if t.trace_id not in seen and not is_looping(t):
            seen.add(t.trace_id)
            unique.append(t)
    held = holdout_predicate(holdout)
    if held is None:
        return ([t for t in unique if split_of(t.group, seed) != "test"],
                [t for t in unique if split_of(t.group, seed) == "test"])
    return ([t for t in unique if not held(t) and split_of(t.group, seed) != "test"],
            [t for t in unique if held(t)])


def online_ece(outcomes: list[PointOutcome], warmup: int = WARMUP) -> dict[str, float]:
    """ECE of the top tool's probability replaced, point by point, by its online-recalibrated value
    (only earlier points' outcomes used), over the points after the first `warmup`."""
    cal = OnlineCalibration(bins=10, weight=5.0)
    conf, hit = [], []
    for i, o in enumerate(outcomes):
        p = o.confidence
        if i >= warmup:
            conf.append(cal.adjust(p))
            hit.append(o.top1_correct)
        cal.observe(p, o.top1_correct)
    raw = [o.confidence for o in outcomes[warmup:]], [o.top1_correct for o in outcomes[warmup:]]
    return {"ece_online": _ece(conf, hit), "ece_same_points": _ece(*raw), "warmup": warmup}


def _ece(conf, hit) -> float:
    rows = reliability_bins(conf, hit, ECE_BINS)
    n = sum(r["count"] for r in rows)
    return sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]) / max(1, n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--holdout")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models", nargs="*", default=[], metavar="NAME=DIR")
    ap.add_argument("--alone", action="store_true", help="also measure each model without its pool")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fit, test = split(load_traces(*args.data), args.seed, args.holdout)
    trained_tools = {c.tool for t in fit for c in t.calls}
    log.info("fit on %d traces, measured on %d", len(fit), len(test))
    results: dict[str, list[PointOutcome]] = {}
    seconds: dict[str, float] = {}
    for name in ("pattern", "markov"):
        t0 = time.perf_counter()
        results[name] = evaluate(fit_baseline(name, fit), test)
        seconds[name] = time.perf_counter() - t0
    for spec in args.models:
        name, _, path = spec.partition("=")
        card = json.loads((Path(path) / "metrics.json").read_text(encoding="utf-8"))
        if card.get("holdout") != args.holdout or card.get("seed") != args.seed:
            log.error("%s was trained with holdout %r seed %r, not %r %r", path, card.get("holdout"),
                      card.get("seed"), args.holdout, args.seed)
            return 1
        t0 = time.perf_counter()
        results[name] = evaluate(load_model(path), test)
        seconds[name] = time.perf_counter() - t0
        if args.alone:
            from toolcast.predictor import load

            t0 = time.perf_counter()
            results[f"{name} (model alone)"] = evaluate(load(path, pooled=False), test)
            seconds[f"{name} (model alone)"] = time.perf_counter() - t0
    unseen = [i for i, o in enumerate(results["pattern"])
              if o.label_tools != (RESPOND,) and not set(o.label_tools) & trained_tools]
    out = {"data": args.data, "holdout": args.holdout, "seed": args.seed, "fit_traces": len(fit),
           "test_traces": len(test), "unseen_tool_points": len(unseen), "predictors": {}}
    for name, outs in results.items():
        others = [] if name == "pattern" else [results["pattern"]]
        sub = [outs[i] for i in unseen]
        entry = {"all": summarize(outs), "ci95": group_bootstrap(outs, others),
                 "unseen_tools": summarize(sub) if sub else None,
                 "unseen_ci95": group_bootstrap(sub, [[results["pattern"][i] for i in unseen]]
                                                if name != "pattern" else []) if sub else None,
                 "seconds": round(seconds[name], 1)}
        if name not in ("pattern", "markov"):
            entry["online"] = online_ece(outs)
        out["predictors"][name] = entry
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")
    print(f"holdout {args.holdout or '(none: in-distribution test split)'}; fit {len(fit)} traces, "
          f"test {len(test)} traces; unseen-tool points {len(unseen)}")
    print("| predictor | subset | " + " | ".join(COLS) + " | n_points |")
    for name, e in out["predictors"].items():
        for subset in ("all", "unseen_tools"):
            s = e[subset]
            if s:
                print(f"| {name} | {subset} | " + " | ".join(
                    "-" if s[c] != s[c] else f"{s[c]:.3f}" for c in COLS) + f" | {s['n_points']} |")
    for name, e in out["predictors"].items():
        ci = e["ci95"]
        print(name, {k: v for k, v in ci.items() if k != "groups"})
        if e["unseen_ci95"]:
            print("  unseen:", {k: v for k, v in e["unseen_ci95"].items() if k != "groups"})
        if "online" in e:
            print("  online recalibration:", e["online"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
