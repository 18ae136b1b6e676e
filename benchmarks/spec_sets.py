"""Speculating sets: the frontier of every policy, one `simulate` run per (sessions, lambda).

    .venv/bin/python benchmarks/spec_sets.py --model DIR --lambdas 1 0.5 --sessions 1 16 --out /tmp/sets

Fits the Markov, pattern-pool and fan-out baselines on the train split of the data, loads the learned
model, fits its horizon scorer (`toolcast.predictor.horizon`) on the validation split (saved as
`horizon.json` in --out), then replays the test split through `toolcast.runtime.simulate.simulate` with
all policies in each run: serial, the next-call oracle, the horizon oracle, the baselines, the learned
model's next-call view (`learned`) and its horizon view (`learned_horizon`); with --stream also the
stream oracle and each predictor with its stream. Prints a markdown table (share of the next-call
oracle's saving, wasted tool-seconds per saved second) and writes every summary to --out/results.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from toolcast.data import load_traces
from toolcast.data.splits import split_of
from toolcast.predictor.baselines import fit_baseline
from toolcast.predictor.baselines.fanout import fit_fanout
from toolcast.predictor.horizon import BASE_K, HorizonPredictor, HorizonScorer
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.replay_contracts import replay_policy
from toolcast.runtime.simulate import SimConfig, simulate
from toolcast.training.datamodule import holdout_predicate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
log = logging.getLogger("spec_sets")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=[str(DATA / "tau2"), str(DATA / "bfcl")])
    ap.add_argument("--model", help="learned model directory (ONNX export)")
    ap.add_argument("--lambdas", nargs="+", type=float, default=[1.0])
    ap.add_argument("--sessions", nargs="+", type=int, default=[1])
    ap.add_argument("-k", type=int, default=8)
    ap.add_argument("--spec-per-call", type=float)
    ap.add_argument("--max-per-session", type=int, default=PlannerConfig.max_per_session,
                    help="speculative runs in flight per session")
    ap.add_argument("--max-in-flight", type=int, default=PlannerConfig.max_in_flight,
                    help="speculative runs in flight in total")
    ap.add_argument("--stream", nargs="*", metavar="POLICY",
                    help="also the stream oracle and a +stream run of these predictors (none named: all)")
    ap.add_argument("--online-calibration", action="store_true",
                    help="price with the runtime's online calibration (its default; off here by default, as "
                    "the recorded figures were measured)")
    ap.add_argument("--no-horizon-calibration", action="store_true",
                    help="with --online-calibration, leave the candidates' horizon p uncorrected")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--holdout", metavar="KEY=VALUE",
                    help="replay the traces matching it (key=value or key~part, as `toolcast train "
                         "--holdout`) and fit every predictor and scorer on the others' train / validation "
                         "splits: a harness or tool set none of them saw (give --model a model trained with "
                         "the same --holdout)")
    ap.add_argument("--policies", nargs="+", help="keep only these predictors")
    ap.add_argument("--scorer", help="a fitted horizon.json to use instead of fitting one")
    ap.add_argument("--base-k", type=int, default=BASE_K,
                    help="the learned model's candidates the horizon view pools (`HorizonPredictor.base_k`)")
    ap.add_argument("--scorer-kind", choices=["logistic", "mlp"], default="mlp",
                    help="the horizon scorer fitted on the validation split (`HorizonPredictor.fit`'s kind)")
    ap.add_argument("--no-horizon-pattern", action="store_true",
                    help="the horizon view without the pattern pool's candidates (model and fan-out only)")
    ap.add_argument("--explain", metavar="POLICY",
                    help="instead of the frontier: where POLICY loses the next-call oracle's saving "
                         "(`spec_explain.py`), per (sessions, lambda)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    traces = load_traces(*args.data)
    train, valid, test = splits(traces, args.holdout)
    test = test[: args.limit]
    contracts = replay_policy()
    is_read, is_write = contracts.is_read, contracts.is_write

    predictors = {name: fit_baseline(name, train) for name in ("markov", "pattern")}
    fanout = fit_fanout(train, is_read=is_read, is_write=is_write)
    predictors["fanout"] = fanout
    if args.model:
        from toolcast.predictor import load

        learned = load(args.model)  # the ONNX export when the directory has one, else the torch model
        _check_card(Path(args.model), args.holdout)
        predictors["learned"] = learned
        horizon = HorizonPredictor(learned, fanout, name="learned_horizon",
                                   pattern=None if args.no_horizon_pattern else predictors["pattern"],
                                   is_write=is_write, base_k=args.base_k)
        t0 = time.perf_counter()
        if args.scorer:
            horizon.scorer = HorizonScorer.load(args.scorer)
            if not any(f.startswith("pat") for f in horizon.scorer.features):
                horizon.pattern = None
        else:
            horizon.fit(valid, is_write=is_write, kind=args.scorer_kind).save(out / "horizon.json")
            log.info("horizon scorer fitted on %d validation traces in %.0f s", len(valid),
                     time.perf_counter() - t0)
        predictors["learned_horizon"] = horizon
    if args.policies:
        predictors = {n: p for n, p in predictors.items() if n in args.policies}

    if args.explain:
        explain(args, test, train, predictors[args.explain], contracts, out)
        return
    results = []
    for sessions in args.sessions:
        for lam in args.lambdas:
            t0 = time.perf_counter()
            cfg = SimConfig(sessions=sessions, k=args.k, stream=args.stream is not None,
                            stream_predictors=tuple(args.stream) if args.stream else None,
                            planner=_planner(args, lam))
            report = simulate(test, predictors, train=train, contracts=contracts, config=cfg)
            summary = report.summary()
            texted = {t.trace_id for t in test if _text_before_calls(t)}
            results.append({"sessions": sessions, "lambda": lam, "k": args.k,
                            "max_per_session": args.max_per_session, "max_in_flight": args.max_in_flight,
                            "summary": summary,
                            "text_before_calls": _subset(report, texted),
                            "tools": {n: r.stats.to_dict()["tools"] for n, r in report.runs.items()
                                      if n in predictors}})
            log.info("sessions %d, lambda %g: %.0f s", sessions, lam, time.perf_counter() - t0)
            (out / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
            print(table(results[-1]), flush=True)


def splits(traces, holdout: str | None) -> tuple[list, list, list]:
    """(train, validation, test): the task-grouped split of seed 0; with `holdout`, the matching traces
    are the test set and leave train and validation (as `toolcast train --holdout` splits)."""
    held = holdout_predicate(holdout)
    split = {t.trace_id: split_of(t.group, 0) for t in traces}
    if held is None:
        return tuple([t for t in traces if split[t.trace_id] == name]
                     for name in ("train", "validation", "test"))
    test = [t for t in traces if held(t)]
    if not test:
        raise SystemExit(f"--holdout {holdout!r} matches no trace")
    rest = [t for t in traces if not held(t)]
    return ([t for t in rest if split[t.trace_id] == "train"],
            [t for t in rest if split[t.trace_id] == "validation"], test)


def _check_card(model: Path, holdout: str | None) -> None:
    """Warn when the model was trained on a split other than the one replayed (its card's holdout)."""
    card = model / "metrics.json"
    if card.is_file():
        trained = json.loads(card.read_text(encoding="utf-8")).get("holdout")
        if trained != holdout:
            log.warning("%s was trained with holdout %r, the replay uses %r: its test traces may be in the "
                        "model's training data", model, trained, holdout)


def _planner(args, lam: float) -> PlannerConfig:
    # the figures in BENCHMARKS "Speculating sets" were measured before online calibration became the
    # runtime's default: off here, so the commands there give the same numbers
    return PlannerConfig(lambda0=lam, spec_per_call=args.spec_per_call, max_per_session=args.max_per_session,
                         max_in_flight=args.max_in_flight, online_calibration=args.online_calibration,
                         calibrate_horizon=not args.no_horizon_calibration)


def explain(args, test, train, predictor, contracts, out: Path) -> None:
    from spec_explain import classify, record, report

    from toolcast.runtime.latency import LatencyProfile
    from toolcast.runtime.planner import Estimates
    from toolcast.runtime.replay import OraclePredictor
    from toolcast.runtime.timing import fit_estimates

    profile = LatencyProfile.default()
    prior = fit_estimates(train, Estimates(), profile, "profile")
    every = []
    for sessions in args.sessions:
        for lam in args.lambdas:
            cfg = SimConfig(sessions=sessions, k=args.k,
                            planner=_planner(args, lam))
            kw = {"contracts": contracts, "profile": profile, "config": cfg, "prior": prior}
            rows = classify(record(test, OraclePredictor(), **kw), record(test, predictor, **kw), args.k)
            every.append({"sessions": sessions, "lambda": lam, "policy": args.explain, "calls": rows})
            print(f"\n{args.explain}, sessions {sessions}, lambda {lam}\n" + report(rows), flush=True)
            (out / "explain.json").write_text(json.dumps(every), encoding="utf-8")


def _text_before_calls(trace) -> bool:
    """An assistant message with text that also issued calls (the text streams before them)."""
    from toolcast.data.schema import Message

    turns = {c.turn for c in trace.calls}
    return any(isinstance(e, Message) and e.role == "assistant" and e.text.strip() and e.turn in turns
               for e in trace.events)


def _subset(report, ids: set[str]) -> dict:
    """Mean task time and saving against serial of every policy on the traces in `ids`."""
    def mean(name):
        xs = [t.task_s for t in report.runs[name].traces if t.trace_id in ids]
        return sum(xs) / len(xs) if xs else float("nan")

    base = mean("serial")
    return {"traces": len(ids), **{name: {"mean_task_s": round(mean(name), 4),
                                          "saving_s": round(base - mean(name), 4)} for name in report.runs}}


def table(run: dict) -> str:
    s = run["summary"]
    head = f"sessions {run['sessions']}, lambda {run['lambda']}, k {run['k']}, {s['serial']['traces']} traces"
    lines = [head,
             "| policy | mean task s | saved % | of oracle | waste/saved | launched | served |",
             "|---|---|---|---|---|---|---|"]
    for name, m in s.items():
        cap = "-" if m["saving_captured"] is None else f"{100 * m['saving_captured']:.1f}%"
        waste = "-" if m["waste_per_saved_s"] is None else f"{m['waste_per_saved_s']:.2f}"
        lines.append(f"| {name} | {m['mean_task_s']:.2f} | {m['saving_pct']:.2f} | {cap} | {waste} | "
                     f"{m['launched']} | {m['served']} |")
    sub = run.get("text_before_calls") or {}
    streamed = [n for n in sub if n.endswith("+stream")]
    if streamed:
        lines.append(f"\nOn the {sub['traces']} traces with text before calls (saving s, stream adds):")
        for n in streamed:
            plain, both = sub[n[: -len("+stream")]]["saving_s"], sub[n]["saving_s"]
            share = (both - plain) / both if both > 0 else float("nan")
            lines.append(f"- {n}: {plain:.3f} -> {both:.3f} s ({100 * share:.1f}% of it from the stream)")
        if "oracle_stream" in sub:
            lines.append(f"- oracle_stream alone: {sub['oracle_stream']['saving_s']:.3f} s "
                         f"(next-call oracle {sub['oracle']['saving_s']:.3f} s)")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
