"""`toolcast simulate`: how much task time speculation saves on real traces, against the oracle.

Replays the traces (discrete-event, on a virtual clock) through the real speculation runtime: serial,
the oracle (every next call known in advance), both baselines, and the learned model with `--model`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from toolcast.cli.common import atomic_output, fail, report_format_error
from toolcast.data import FORMAT_NAMES, TraceFormatError, load_traces
from toolcast.data.schema import Trace
from toolcast.predictor.protocol import Predictor

log = logging.getLogger("toolcast.simulate")
BASELINES = ("markov", "pattern")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate", help="replay traces: task time serial vs speculative vs the oracle",
        description="Replay agent traces through the speculation runtime on a virtual clock: serial, the "
        "oracle (every next call known in advance: the upper bound), the Markov and pattern-pool baselines "
        "and, with --model, the learned model, all in the same run. LLM time comes from the logs' "
        "timestamps where they have them, tool time from a latency profile (the logs' own tool timings "
        "describe test harnesses, not production tools). Eligibility in replay: tools whose names read as "
        "reads (get_*, list_*, search_*, ...) may run ahead, every other tool is state-changing; override "
        "with --contracts. The live runtime stays default-deny.")
    p.add_argument("--data", nargs="+", required=True, metavar="PATH",
                   help="traces to replay (files or folders)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", metavar="DIR", help="a trained model directory: adds the 'learned' policy")
    who.add_argument("--baseline", choices=BASELINES,
                     help="no learned model: feature this baseline (both baselines always run)")
    p.add_argument("--train", nargs="+", metavar="PATH",
                   help="traces to fit the baselines and the S/L priors on; without it the task-grouped "
                   "train split of --data is used and the test split replayed")
    p.add_argument("--split", choices=("test", "validation", "train", "all"),
                   help="which split of --data to replay (default: test without --train, all with it)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the task-grouped split (default 0, as `toolcast train` and `eval`)")
    p.add_argument("--latency", metavar="PROFILE",
                   help="latency profile JSON (default: the shipped profile, tools as remote APIs)")
    p.add_argument("--tool-time", choices=("profile", "recorded"),
                   help="tool service times from the profile or the logs' recorded durations (default: "
                   "recorded for coding agents' sessions, Claude Code and Codex, else the profile)")
    p.add_argument("--contracts", metavar="FILE",
                   help="replay contracts JSON overriding the name patterns, or a coding contracts file "
                   "(default for Claude Code / Codex sessions: the shipped runtime/profiles/"
                   "coding_contracts.json)")
    p.add_argument("--sessions", type=int, default=1, help="traces replayed at once (default 1)")
    p.add_argument("--workers", type=int, default=8, help="tool workers shared by all sessions (default 8)")
    p.add_argument("-k", type=int, default=16,
                   help="candidates asked of each predictor (default 16, the runtime's: RuntimeConfig.k)")
    p.add_argument("--lambda", dest="lambda0", type=float, default=0.7,
                   help="price of a wasted tool-second against a saved second on an idle pool (default 0.7, "
                   "the runtime's: PlannerConfig.lambda0)")
    p.add_argument("--spec-per-call", type=float, metavar="R",
                   help="cap speculative launches per real call in a session (default: no cap)")
    p.add_argument("--stream", action="store_true",
                   help="also replay each message streaming to the runtime: adds oracle_stream and a "
                   "'<policy>+stream' run of every predictor")
    p.add_argument("--no-fanout", action="store_true", help="leave out the fan-out baseline")
    p.add_argument("--horizon-scorer", metavar="FILE",
                   help="a fitted horizon scorer (horizon.json, written by benchmarks/spec_sets.py): adds "
                   "'learned_horizon', the learned model's horizon view (default: DIR/horizon.json if "
                   "present)")
    p.add_argument("--online-calibration", action=argparse.BooleanOptionalAction, default=True,
                   help="price candidates with p corrected online by the outcomes seen so far in the run "
                   "(each policy starts from nothing; only past outcomes are used; default on, as in the "
                   "runtime: --no-online-calibration prices on the predictor's p alone)")
    p.add_argument("--limit", type=int, help="replay at most this many traces (the first, in file order)")
    p.add_argument("--format", default="auto", choices=FORMAT_NAMES, help="log format (default: auto)")
    p.add_argument("--errors", default="raise", choices=("raise", "skip"), help="on a bad record")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by policy name")
    p.add_argument("--plot", metavar="FILE", help="write a figure (PNG or SVG) of the results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolcast.runtime.coding_contracts import is_coding_session, replay_contracts_for
    from toolcast.runtime.latency import LatencyProfile
    from toolcast.runtime.planner import PlannerConfig
    from toolcast.runtime.simulate import SimConfig, simulate

    if args.sessions < 1 or args.workers < 1 or args.k < 1:
        return fail("--sessions, --workers and -k must be at least 1")
    try:
        profile = LatencyProfile.load(args.latency) if args.latency else LatencyProfile.default()
        replay_contracts_for(args.contracts)  # a bad file fails before the traces load
    except ValueError as e:
        return fail(str(e))
    try:
        replay, train = _traces(args)
    except TraceFormatError as e:
        return report_format_error(e)
    except ValueError as e:
        return fail(str(e))
    if not replay:
        return fail("no traces to replay (check --data and --split)")
    contracts, contracts_source = replay_contracts_for(args.contracts, replay)
    _report_clock_jumps(replay)
    tool_time = args.tool_time or ("recorded" if is_coding_session(replay) else "profile")
    config = SimConfig(sessions=args.sessions, workers=args.workers, k=args.k, tool_time=tool_time,
                       stream=args.stream,
                       planner=PlannerConfig(lambda0=args.lambda0, spec_per_call=args.spec_per_call,
                                             online_calibration=args.online_calibration))
    try:
        predictors = _predictors(args, train, contracts)
    except (ImportError, ValueError, OSError) as e:
        return fail(str(e))
    log.info("replaying %d traces (%d for fitting) with %s", len(replay), len(train),
             ", ".join(["serial", "oracle", *predictors]))
    report = simulate(replay, predictors, train=train, profile=profile, contracts=contracts, config=config,
                      contracts_source=contracts_source)
    summary = report.summary()
    if args.plot:
        try:
            plot_summary(summary, args.plot, featured="learned" if args.model else args.baseline)
        except ImportError as e:
            return fail(f"--plot needs matplotlib (pip install 'toolcast[train]'): {e}")
    if args.json:
        json.dump(summary, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print(report.table())
    return 0


def _report_clock_jumps(traces: list[Trace]) -> None:
    """A timestamp that goes back: its gap is replayed from the latency profile; say so."""
    from toolcast.data.active_time import active_time

    jumps = active_time(traces).clock_jumps
    if jumps:
        first = jumps[0]
        log.warning("%d clock jump(s) in the replayed logs (first: trace %s, event %s, %s s); those gaps are "
                    "timed by the latency profile", len(jumps), first["trace_id"], first["event"],
                    first["seconds"])


def _traces(args: argparse.Namespace) -> tuple[list[Trace], list[Trace]]:
    data = load_traces(*args.data, format=args.format, errors=args.errors, progress=True)
    split = args.split or ("all" if args.train else "test")
    train = load_traces(*args.train, format=args.format, errors=args.errors) if args.train else None
    if split != "all" or train is None:
        from toolcast.data.splits import split_of

        which = {t.trace_id: split_of(t.group, args.seed) for t in data}
        if train is None:
            train = [t for t in data if which[t.trace_id] == "train"]
        if split != "all":
            data = [t for t in data if which[t.trace_id] == split]
    if train is not None and not args.train:
        log.info("fitting on the train split of --data (%d traces), replaying the %s split",
                 len(train), split)
    if args.limit is not None:
        data = data[: args.limit]
    return data, train


def _predictors(args: argparse.Namespace, train: list[Trace], contracts: Any = None) -> dict[str, Predictor]:
    from pathlib import Path

    if not train:
        raise ValueError("no training traces for the baselines (give --train, or --data with a train split)")
    try:
        from toolcast.predictor.baselines import fit_baseline
    except ImportError as e:
        raise ImportError(f"the baselines are not available in this install (toolcast.predictor.baselines: "
                          f"{e})") from None
    learned = _load_learned(args.model) if args.model else None  # fail fast, before fitting
    out: dict[str, Predictor] = {}
    for name in BASELINES:
        log.info("fitting the %s baseline on %d traces", name, len(train))
        out[name] = fit_baseline(name, train)
    sets: dict[str, Predictor] = {}
    if contracts is not None and not getattr(args, "no_fanout", False):
        scorer = getattr(args, "horizon_scorer", None)
        if scorer is None and args.model and (Path(args.model) / "horizon.json").exists():
            scorer = str(Path(args.model) / "horizon.json")
        sets = set_policies(train, contracts, learned, scorer, out.get("pattern"))
    if "fanout" in sets:
        out["fanout"] = sets["fanout"]
    if learned is not None:
        out["learned"] = learned
    if "learned_horizon" in sets:
        out["learned_horizon"] = sets["learned_horizon"]
    return out


def set_policies(train: list[Trace], contracts: Any, learned: Predictor | None, scorer: str | None,
                 pattern: Predictor | None) -> dict[str, Predictor]:
    """The fan-out baseline mined on `train` (reads and writes from `contracts`) and, with a learned model
    and its fitted horizon scorer (`horizon.json`), its horizon view `learned_horizon` (the pattern pool
    a third source when the scorer was fitted with one)."""
    from toolcast.predictor.baselines.fanout import fit_fanout

    log.info("mining the fan-out baseline on %d traces", len(train))
    out: dict[str, Predictor] = {
        "fanout": fit_fanout(train, is_read=contracts.is_read, is_write=contracts.is_write)}
    if learned is not None and scorer is not None:
        from toolcast.predictor.horizon import HorizonPredictor, HorizonScorer

        fitted = HorizonScorer.load(scorer)
        uses_pattern = any(f.startswith("pat") for f in fitted.features)
        out["learned_horizon"] = HorizonPredictor(learned, out["fanout"], fitted, name="learned_horizon",
                                                  pattern=pattern if uses_pattern else None,
                                                  is_write=contracts.is_write)
    return out


def _load_learned(path: str) -> Predictor:
    """`toolcast.predictor.load`: the ONNX predictor when the directory has an export, else the torch one."""
    from toolcast.predictor import load
    from toolcast.predictor.modeldir import ModelDirError

    try:
        return load(path)
    except ModelDirError as e:
        raise ValueError(f"{path}: not a usable model directory: {e}") from None


def plot_summary(summary: dict[str, dict[str, Any]], path: str, featured: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    colors = ["#d95f02" if n == featured else "#7570b3" if n == "oracle" else "#999999" for n in names]
    ax1.bar(names, [summary[n]["mean_task_s"] for n in names], color=colors)
    means = [summary[n]["mean_task_s"] for n in names]
    tails = [summary[n]["p95_task_s"] - m for n, m in zip(names, means, strict=True)]
    ax1.errorbar(names, means, yerr=[[0] * len(names), tails], fmt="none", ecolor="black", capsize=3)
    ax1.set_ylabel("task time, s (mean; bar to p95)")
    others = [n for n in names if n != "serial"]
    ax2.bar(others, [100 * (summary[n]["saving_captured"] or 0) for n in others],
            color=[c for n, c in zip(names, colors, strict=True) if n != "serial"])
    ax2.set_ylabel("share of the oracle's saving, %")
    for i, n in enumerate(others):
        w = summary[n]["waste_per_saved_s"]
        ax2.annotate("waste/saved " + ("-" if w is None else f"{w:.2f}"), (i, 2), ha="center", fontsize=7,
                     rotation=90, va="bottom")
    first = next(iter(summary.values()))
    fig.suptitle(f"{first['traces']} traces, {first['sessions']} session(s), {first['workers']} workers, "
                 f"profile {first['profile']}", fontsize=9)
    fig.tight_layout()
    with atomic_output(path, "wb") as f:
        fig.savefig(f, format=path.rsplit(".", 1)[-1].lower() if "." in path else "png")
    plt.close(fig)
