"""Live check: the simulator's task times against the real runtime on the real clock.

    .venv/bin/python benchmarks/live_check.py                          # 40 tau2 traces, oracle + serial
    .venv/bin/python benchmarks/live_check.py --predictor markov       # a baseline, fit on the train split
    .venv/bin/python benchmarks/live_check.py --limit 80 --sessions 8 --scale 0.05
    .venv/bin/python benchmarks/live_check.py --predictor learned_horizon --model DIR --scorer horizon.json \
        -k 8 --lambda0 0.2

Both runs drive the same `SpeculativeRuntime` with the same replayed agents (`toolcast.runtime.replay`):
the simulator on the virtual clock (`toolcast simulate`'s discrete-event replay), the live run on the
ordinary asyncio loop with stand-in tools that really sleep their service time. Every duration of the live
run (LLM thinking, tool times, the planner's S and L priors, the hedge delay) is scaled by --scale so it
finishes in seconds; its wall-clock task times are divided by the scale before the comparison.

Agreement is reported per policy as the relative difference of the mean task time and of the saving
against serial, and per trace as the median and p95 relative difference. What the live run adds that the
simulator leaves out: event-loop scheduling and timer slack, and the predictor's own compute time (it runs
on the loop while the agent "thinks"). That compute is not scaled, so in the unscaled live figures it
weighs 1/scale times its real cost: the table reports it per decision point. Prints a markdown table;
with --json FILE also writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

from toolcast.data import load_traces
from toolcast.runtime.latency import LatencyProfile
from toolcast.runtime.planner import Estimates, PlannerConfig
from toolcast.runtime.replay import OraclePredictor, PolicyRun, run_policy_async
from toolcast.runtime.replay_contracts import replay_policy
from toolcast.runtime.runtime import RuntimeConfig
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.timing import fit_estimates

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT = [str(DATA / "tau2")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=DEFAULT, help="trace files or folders (default: tau2)")
    parser.add_argument("--limit", type=int, default=40, help="traces replayed (test split first)")
    parser.add_argument("--predictor", default="oracle",
                        choices=("oracle", "markov", "pattern", "oracle_horizon", "fanout", "oracle_stream",
                                 "learned_horizon"))
    parser.add_argument("--model", help="learned model directory (for learned_horizon)")
    parser.add_argument("--scorer", help="its fitted horizon.json (default: MODEL/horizon.json)")
    parser.add_argument("--lambda0", type=float, default=PlannerConfig.lambda0)
    parser.add_argument("--stream", action="store_true", help="feed each message's stream to the runtime")
    parser.add_argument("-k", type=int, default=3, help="candidates asked of the predictor (default 3)")
    parser.add_argument("--scale", type=float, default=0.05, help="live durations = replayed x scale")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency", help="latency profile JSON (default: the shipped profile)")
    parser.add_argument("--json", dest="json_out", help="also write the figures to this JSON file")
    args = parser.parse_args()

    from toolcast.data.splits import split_of

    traces = load_traces(*args.paths)
    train = [t for t in traces if split_of(t.group, 0) == "train"]
    replayed = [t for t in traces if split_of(t.group, 0) == "test"][: args.limit]
    profile = LatencyProfile.load(args.latency) if args.latency else LatencyProfile.default()
    contracts = replay_policy()
    prior = fit_estimates(train, Estimates(), profile)
    stream = args.stream or args.predictor == "oracle_stream"
    if args.predictor == "oracle":
        predictor = OraclePredictor()
    elif args.predictor == "oracle_horizon":
        from toolcast.runtime.oracles import HorizonOracle

        predictor = HorizonOracle(contracts)
    elif args.predictor == "oracle_stream":
        predictor = None
    elif args.predictor in ("fanout", "learned_horizon"):
        from toolcast.predictor.baselines.fanout import fit_fanout

        predictor = fit_fanout(train, is_read=contracts.is_read, is_write=contracts.is_write)
        if args.predictor == "learned_horizon":
            predictor = _learned_horizon(args, predictor, train, contracts)
    else:
        from toolcast.predictor.baselines import fit_baseline

        predictor = fit_baseline(args.predictor, train)

    # online calibration off, as when the figures in BENCHMARKS were measured (the runtime's default is on)
    planner = PlannerConfig(lambda0=args.lambda0, online_calibration=False)
    config = RuntimeConfig(workers=args.workers, k=args.k, planner=planner)
    s = args.scale
    live_config = replace(config, hedge_min=config.hedge_min * s, planner=replace(
        config.planner, default_tool_s=config.planner.default_tool_s * s,
        default_llm_s=config.planner.default_llm_s * s))

    def run(name, pred, scale, cfg):
        return run_policy_async(name, replayed, pred, contracts=contracts, profile=profile, config=cfg,
                                prior=prior, sessions=args.sessions, scale=scale,
                                stream=stream and name != "serial")

    # The oracle is registered per session by the replay, so it is not wrapped (it costs nothing anyway).
    timer = predictor if predictor is None or isinstance(predictor, OraclePredictor) else _Timed(predictor)
    results = {}
    for name, pred in (("serial", None), (args.predictor, timer)):
        sim = run_virtual(run(name, pred, 1.0, config))
        if isinstance(timer, _Timed):
            timer.seconds, timer.calls = 0.0, 0
        start = time.perf_counter()
        live = asyncio.run(run(name, pred, s, live_config))
        wall = time.perf_counter() - start
        results[name] = (sim, live, wall)

    rows, figures = [], {}
    base_sim = _mean(results["serial"][0])
    base_live = _mean(results["serial"][1]) / s
    for (name, (sim, live, wall)), pred in zip(results.items(), (None, timer), strict=True):
        m_sim, m_live = _mean(sim), _mean(live) / s
        pairs = zip(sim.traces, live.traces, strict=True)
        per_trace = [abs(b.task_s / s - a.task_s) / a.task_s for a, b in pairs if a.task_s > 0]
        save_sim, save_live = base_sim - m_sim, base_live - m_live
        fig = {"traces": len(sim.traces), "sim_mean_task_s": round(m_sim, 3),
               "live_mean_task_s": round(m_live, 3),
               "mean_rel_diff": round(abs(m_live - m_sim) / m_sim, 4),
               "per_trace_median_rel_diff": round(statistics.median(per_trace), 4),
               "per_trace_p95_rel_diff": round(_p95(per_trace), 4),
               "sim_saving_s": round(save_sim, 3), "live_saving_s": round(save_live, 3),
               "sim_hits": sim.stats.total().served, "live_hits": live.stats.total().served,
               "live_wall_s": round(wall, 1),
               "predict_ms": _ms(timer) if pred is timer else 0.0}
        figures[name] = fig
        rows.append(f"| {name} | {fig['sim_mean_task_s']:.2f} | {fig['live_mean_task_s']:.2f} | "
                    f"{100 * fig['mean_rel_diff']:.1f}% | {100 * fig['per_trace_median_rel_diff']:.1f}% / "
                    f"{100 * fig['per_trace_p95_rel_diff']:.1f}% | {fig['sim_saving_s']:.2f} / "
                    f"{fig['live_saving_s']:.2f} | {fig['sim_hits']} / {fig['live_hits']} | "
                    f"{fig['predict_ms']:.1f} | {wall:.1f} |")
    print(f"live check: {len(replayed)} test-split traces of {', '.join(args.paths)}, "
          f"{args.sessions} sessions, {args.workers} workers, profile {profile.label}, live time scale x{s}")
    print("\n| policy | sim mean task s | live mean task s (unscaled) | mean diff "
          "| per-trace diff median / p95 | saving s sim / live | hits sim / live | predict ms "
          "| live wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json_out:
        out = {"scale": s, "sessions": args.sessions, "profile": profile.label, "policies": figures}
        Path(args.json_out).write_text(json.dumps(out, indent=1))


def _learned_horizon(args, fanout, train, contracts):
    """The learned model's horizon view, as `spec_sets.py` builds it (its fitted scorer)."""
    from toolcast.predictor.baselines import fit_baseline
    from toolcast.predictor.horizon import HorizonPredictor, HorizonScorer
    from toolcast.predictor.onnx.predictor import OnnxPredictor

    if not args.model:
        raise SystemExit("--predictor learned_horizon needs --model DIR")
    scorer = HorizonScorer.load(args.scorer or Path(args.model) / "horizon.json")
    pattern = fit_baseline("pattern", train) if any(f.startswith("pat") for f in scorer.features) else None
    return HorizonPredictor(OnnxPredictor.load(args.model), fanout, scorer, name="learned_horizon",
                            pattern=pattern, is_write=contracts.is_write)


class _Timed:
    """The predictor, timed (wall clock per predict call), with the oracle's session hooks passed on."""

    def __init__(self, inner):
        self.inner, self.name, self.seconds, self.calls = inner, inner.name, 0.0, 0

    def predict(self, context, k=3):
        start = time.perf_counter()
        try:
            return self.inner.predict(context, k)
        finally:
            self.seconds += time.perf_counter() - start
            self.calls += 1


def _ms(timer) -> float:
    return round(1000 * timer.seconds / timer.calls, 2) if isinstance(timer, _Timed) and timer.calls else 0.0


def _mean(run: PolicyRun) -> float:
    return sum(t.task_s for t in run.traces) / len(run.traces)


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(0.95 * len(s)))]


if __name__ == "__main__":
    main()
