"""`toolcast eval`: next-call accuracy and calibration of a predictor on held-out decision points."""

from __future__ import annotations

import argparse
import json
import logging
import math
from typing import Any

from toolcast.cli.common import add_input_args, atomic_output, fail, report_format_error
from toolcast.data import ImportReport, Trace, TraceFormatError, load_traces
from toolcast.data.quality import is_looping
from toolcast.predictor.baselines import BASELINES, fit_baseline
from toolcast.predictor.protocol import Predictor
from toolcast.training.evaluate import (
    EvalReport,
    evaluate,
    looping_left_out,
    plot_reliability,
    split_for_eval,
)
from toolcast.training.trained_on import TrainedOn

log = logging.getLogger("toolcast")


class ModelNotAvailableError(RuntimeError):
    """The learned model cannot be loaded in this build."""


def load_model(path: str) -> Predictor:
    """The learned model in `path` as a `Predictor` (`toolcast.predictor.load`: ONNX when exported, else
    torch)."""
    from toolcast.predictor import load
    from toolcast.predictor.modeldir import ModelDirError

    try:
        return load(path)
    except ModelDirError as e:
        raise ModelNotAvailableError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="accuracy and calibration of next-call predictions on held-out traces",
        description="Measure a predictor on the decision points of held-out traces: tool top-1/top-3 and "
        "call (tool + exact arguments) top-1/top-3 over the points where the agent called a tool, "
        "<respond> precision/recall and expected calibration error over all points. A point counts as "
        "right when the prediction matches any call of the agent's turn (parallel calls). A --model is "
        "measured on every trace of --data it was not trained on (its metrics card records its training "
        "traces): on its own logs that is their test split, on other logs all of them. A --baseline "
        "without --train is fitted on the train+validation splits of --data (task-grouped, --seed; "
        "80/10/10) and measured on the test split.")
    add_input_args(p, flag="--data")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", metavar="DIR", help="a trained model directory")
    who.add_argument("--baseline", choices=BASELINES, help="fit and measure a baseline instead of a model")
    p.add_argument("--train", nargs="+", metavar="PATH",
                   help="logs to fit the baseline on; then all of --data is measured")
    split = p.add_mutually_exclusive_group()
    split.add_argument("--no-split", action="store_true",
                       help="measure on all of --data, even traces the model was trained on")
    split.add_argument("--split", action="store_true",
                       help="measure on the test split of --data (--seed) even when the model was not "
                       "trained on it")
    p.add_argument("--seed", type=int, default=0, help="seed of the task-grouped split (default 0)")
    p.add_argument("--keep-looping", action="store_true",
                   help="also measure looping traces (more than 3 of the agent's calls repeat the call just "
                   "before them), which the split leaves out by default, as training does; the count left "
                   "out is reported")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--plot", metavar="FILE", help="write a reliability diagram (PNG)")
    p.add_argument("--top", type=int, default=20, help="rows of the per-tool table (default 20)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = ImportReport()
    try:
        data = load_traces(*args.data, format=args.format, errors=args.errors, report=report, progress=True,
                           fold=args.fold)
        train = (load_traces(*args.train, format=args.format, errors=args.errors, report=report,
                             progress=True, fold=args.fold) if args.train else None)
    except TraceFormatError as e:
        return report_format_error(e)
    if args.model and args.train:
        return fail("--train fits a baseline; a --model is already trained (drop --train)")
    trained = _trained_on(args.model) if args.model else None
    if args.model and not args.split and not args.no_split and trained is not None:
        fit, test, setup = [], *_not_trained_on(data, trained, args.keep_looping)
    elif train is None and not args.no_split:
        if args.model and not args.split:
            log.warning("%s: its metrics card does not record the traces it was trained on (trained by an "
                        "older toolcast): measuring the test split of --data, as if the logs were its own; "
                        "--no-split measures all of them", args.model)
        fit, test = split_for_eval(data, args.seed, keep_looping=args.keep_looping)
        setup = {"measured_on": "test split of --data", "fitted_on": "train+validation splits of --data",
                 "split": "task-grouped 80/10/10", "seed": args.seed,
                 "looping_left_out": None if args.keep_looping else looping_left_out(data, args.seed)}
    else:
        fit, test = (train or []), data
        setup = {"measured_on": "all of --data", "fitted_on": "--train" if train else "(model)"}
    if args.model:
        setup.pop("fitted_on", None)
    if not test:
        if "left_out_trained" in setup:
            return fail(f"no traces to measure on: the model was trained on all {setup['left_out_trained']} "
                        "traces of --data (give logs it has not seen, or --no-split to measure them anyway)")
        return fail("no traces to measure on (the test split of --data is empty: give more task groups, "
                    "another --seed, or --no-split)")
    try:
        if args.model:
            predictor = load_model(args.model)
        else:
            if not fit:
                return fail("no traces to fit the baseline on (give --train, or more task groups in --data)")
            predictor = fit_baseline(args.baseline, fit, progress=True)
    except ModelNotAvailableError as e:
        return fail(str(e))
    setup.update(fit_traces=len(fit) if not args.model else None, test_traces=len(test))
    pool = getattr(predictor, "fitted", None)  # a pooled directory: say what is pooled, with what weights
    if args.model and pool is not None:
        setup["pool"] = {"experts": pool.experts, "tool_weights": pool.tool_weights,
                         "arg_weights": pool.arg_weights}
    result = EvalReport(predictor.name, evaluate(predictor, test, progress=True), setup)
    if args.plot:
        with atomic_output(args.plot, "wb") as f:
            plot_reliability(result.outcomes, f, title=predictor.name)
    d = _finite(result.to_dict())
    d["skipped"] = [str(e) for e in report.skipped]
    if args.json:
        print(json.dumps(d))
        return 0
    _print_human(d, args)
    return 0


def _trained_on(model: str) -> TrainedOn | None:
    """The model directory's record of its training traces (None: no card, or an older one)."""
    from pathlib import Path

    from toolcast.predictor.modeldir import METRICS_FILE

    path = Path(model) / METRICS_FILE
    try:
        return TrainedOn.from_metrics(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def _not_trained_on(data: list[Trace], trained: TrainedOn,
                    keep_looping: bool) -> tuple[list[Trace], dict[str, Any]]:
    """(the traces to measure, setup): every trace of --data the model was not fitted on, each trace id
    once, looping traces left out unless kept (training leaves them out too)."""
    unique: dict[str, Trace] = {}
    for t in data:
        unique.setdefault(t.trace_id, t)
    test, seen = trained.partition(unique.values())
    looping = [] if keep_looping else [t for t in test if is_looping(t)]
    if looping:
        test = [t for t in test if not is_looping(t)]
    measured_on = "all of --data" if not seen else (
        f"--data less the {len(seen)} traces the model was trained or calibrated on")
    setup: dict[str, Any] = {
        "measured_on": measured_on, "data_traces": len(unique), "left_out_trained": len(seen),
        "looping_left_out": None if keep_looping else {
            "traces": len(looping), "points": sum(1 for t in looping for _ in t.decision_points())}}
    if seen and trained.holdout:
        setup["model_holdout"] = trained.holdout
    return test, setup


def _finite(x: Any) -> Any:
    """NaN (a rate over zero points) as null: JSON has no NaN."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def _f(v: float | None) -> str:
    return "    -" if v is None else f"{v:5.3f}"


def _print_human(d: dict[str, Any], args: argparse.Namespace) -> None:
    s = d["setup"]
    who = f"model {args.model}" if args.model else f"{d['predictor']} baseline"
    fitted = f", fitted on {s['fit_traces']} traces ({s['fitted_on']})" if s.get("fit_traces") else ""
    split = f"; {s['split']}, seed {s['seed']}" if "split" in s else ""
    print(f"{who}{fitted}; measured on {s['test_traces']} traces ({s['measured_on']}){split}")
    if s.get("pool"):
        pool = s["pool"]
        print("the directory serves a pool: " + ", ".join(
            f"{e} (tools {w:g}, arguments {b:g})"
            for e, w, b in zip(pool["experts"], pool["tool_weights"], pool["arg_weights"], strict=True)))
    if s.get("left_out_trained"):
        print(f"left out {s['left_out_trained']} of the {s['data_traces']} traces of --data: the model was "
              "trained or calibrated on them (--no-split measures them too)")
    lo = s.get("looping_left_out")
    if lo and lo["traces"]:
        where = "of the test split " if "split" in s else ""
        print(f"left out {lo['traces']} looping trace(s) {where}({lo['points']} decision points; "
              "--keep-looping measures them)")
    print(f"decision points {d['n_decision_points']}: {d['n_points']} where the agent called a tool "
          f"(n_points), {d['n_respond_points']} where it answered in text")
    print("a prediction is right when it matches any call of the agent's turn (parallel calls)\n")
    cols = ("tool_top1", "tool_top3", "call_top1", "call_top3", "respond_precision", "respond_recall", "ece")
    print(f"{'':24} tool@1 tool@3 call@1 call@3 resp.P resp.R    ECE  n_points")
    rows = [("all", d), *((f"  {k}", v) for k, v in d["by_source"].items())]
    for name, r in rows:
        print(f"{name:24} " + "  ".join(_f(r[c]) for c in cols) + f"  {r['n_points']:>8}")
    ci = d.get("ci95") or {}
    if ci:
        names = {"tool_top1": "tool@1", "tool_top3": "tool@3", "call_top1": "call@1", "call_top3": "call@3",
                 "ece": "ECE"}
        print(f"95% intervals, resampling the {ci['groups']} task groups: " + ", ".join(
            f"{n} {ci[m][0]:.3f}-{ci[m][1]:.3f}" for m, n in names.items() if ci.get(m)))
    print(f"\nper labelled tool (top {args.top} by points)")
    print(f"  {'tool':<34} {'points':>6}  tool@1 tool@3 call@1 call@3")
    for r in d["per_tool"][: args.top]:
        print(f"  {r['tool']:<34} {r['n']:>6}  " + "  ".join(
            _f(r[c]) for c in ("tool_top1", "tool_top3", "call_top1", "call_top3")))
    if args.plot:
        print(f"\nreliability diagram: {args.plot}")
    for e in d["skipped"]:
        print(f"skipped: {e}")
