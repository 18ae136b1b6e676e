"""The learned predictor beside the baselines, on the same held-out decision points (BENCHMARKS.md).

    python benchmarks/learned_predictor.py --model DIR --data ../shared/data [--holdout domain=retail]

Without --holdout: the task-grouped test split of --data (`split_for_eval`, seed 0), baselines fitted on
train + validation, exactly as `toolcast eval` does. With --holdout KEY=VALUE: the traces whose metadata
matches are the test set and the baselines are fitted on all the others (train the model with the same
--holdout); the figures are also given for the points whose labelled tool never occurs in the fitting
traces (an unseen tool set). Prints a markdown table; --json writes every figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from toolcast.data.load import load_traces
from toolcast.data.schema import RESPOND
from toolcast.predictor import load
from toolcast.predictor.baselines import fit_baseline
from toolcast.training.datamodule import holdout_predicate
from toolcast.training.evaluate import evaluate, split_for_eval
from toolcast.training.metrics import CI_METRICS, by_source, group_bootstrap, summarize

COLS = ("tool_top1", "tool_top3", "call_top1", "call_top3", "respond_precision", "respond_recall", "ece")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", nargs="+", required=True)
    p.add_argument("--holdout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", nargs="*", default=["markov", "pattern"])
    p.add_argument("--json")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    traces = load_traces(*args.data)
    held = holdout_predicate(args.holdout)
    if held is None:
        fit, test = split_for_eval(traces, args.seed)
    else:
        fit = [t for t in traces if not held(t)]
        test = [t for t in traces if held(t) and not t.metadata.get("looping")]
    seen_tools = {c.tool for t in fit for c in t.calls}
    predictors = [("learned (calibrated)", load(args.model, backend="torch")),
                  ("learned (uncalibrated)", load(args.model, backend="torch", calibrated=False))]
    predictors += [(name, fit_baseline(name, fit)) for name in args.baselines]
    results, all_outcomes = {}, {}
    for name, predictor in predictors:
        t0 = time.perf_counter()
        outcomes = all_outcomes[name] = evaluate(predictor, test)
        unseen = [o for o in outcomes if o.label_tools != (RESPOND,) and not set(o.label_tools) & seen_tools]
        results[name] = {"all": summarize(outcomes), "by_source": by_source(outcomes),
                         "unseen_tool_points": summarize(unseen) if unseen else None,
                         "seconds": round(time.perf_counter() - t0, 1)}
    setup = {"data": args.data, "holdout": args.holdout, "seed": args.seed, "fit_traces": len(fit),
             "test_traces": len(test)}
    print(f"setup: {setup}")
    print("| predictor | subset | " + " | ".join(COLS) + " | n_points |")
    print("|---|---|" + "---|" * (len(COLS) + 1))
    for name, r in results.items():
        rows = [("all", r["all"]), *r["by_source"].items()]
        if r["unseen_tool_points"]:
            rows.append(("unseen tools", r["unseen_tool_points"]))
        for subset, s in rows:
            cells = " | ".join("-" if s[c] != s[c] else f"{s[c]:.3f}" for c in COLS)
            print(f"| {name} | {subset} | {cells} | {s['n_points']} |")
    first, *rest = all_outcomes
    ci = group_bootstrap(all_outcomes[first], [all_outcomes[r] for r in rest])
    if ci:
        print(f"\n95% intervals resampling the {ci['groups']} task groups ({ci['resamples']} resamples):")
        print("| predictor | " + " | ".join(CI_METRICS) + " |\n|---|" + "---|" * len(CI_METRICS))
        print(f"| {first} | " + " | ".join(f"{ci[m][0]:.3f} - {ci[m][1]:.3f}" for m in CI_METRICS) + " |")
        for other, diff in zip(rest, ci["differences"], strict=True):
            print(f"| {first} minus {other} | "
                  + " | ".join(f"{diff[m][0]:+.3f} - {diff[m][1]:+.3f}" for m in CI_METRICS) + " |")
    results["ci95"] = ci
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"setup": setup, "results": results}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
