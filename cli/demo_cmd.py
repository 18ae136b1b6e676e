"""`toolcast demo`: the whole product on the bundled sample, ending in a report a person can read.

Steps: read the sample logs; split them by task group; train a small model (CPU, a few minutes) and
export it; measure it and both baselines on the test split (`toolcast eval`'s numbers); replay the test
split serial vs speculative (`toolcast simulate`, with the fan-out and, from the model directory's
`horizon.json`, the learned model's horizon view); write report.md with plots and print its path.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from toolcast.cli.common import fail

log = logging.getLogger("toolcast.demo")
SEED = 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train, evaluate and simulate on the bundled sample; write a report",
        description="Run the whole product on the bundled sample logs (tau2-bench and BFCL, see "
        "toolcast/data/sample/README.md): train a small next-call model on CPU, export it to ONNX, measure "
        "it against the Markov and pattern-pool baselines on a task-grouped test split, replay the test "
        "split serial vs speculative, and write a markdown report with plots. Prints the report's path.",
    )
    p.add_argument(
        "--out", metavar="DIR", help="folder for the model and the report (default: runs/demo-<time>)"
    )
    p.add_argument(
        "--max-epochs", type=int, default=8, metavar="N", help="training epochs at most (default 8)"
    )
    p.add_argument("--no-train", action="store_true", help="baselines only (no torch needed)")
    p.add_argument("--model", metavar="DIR", help="use this trained model instead of training one")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolcast.data import load_traces
    from toolcast.data.samples import sample_files
    from toolcast.data.stats import corpus_stats
    from toolcast.training.evaluate import split_for_eval

    started = time.perf_counter()
    out = Path(args.out or f"runs/demo-{datetime.now():%Y%m%d-%H%M%S}")
    out.mkdir(parents=True, exist_ok=True)
    files = sample_files()
    traces = load_traces(*files, progress=True)
    fit, test = split_for_eval(traces, SEED)
    log.info(
        "sample: %d traces; fitting on %d, measuring on %d (task-grouped split, seed %d)",
        len(traces),
        len(fit),
        len(test),
        SEED,
    )
    notes: list[str] = []
    learned, model_dir = None, args.model
    if not args.no_train and model_dir is None:
        model_dir = _train(files, out / "model", args.max_epochs, notes)
    if model_dir is not None:
        from toolcast.cli.eval_cmd import ModelNotAvailableError, load_model

        try:
            learned = load_model(str(model_dir))
        except ModelNotAvailableError as e:
            return fail(str(e))
    predictors = _predictors(fit, learned)
    evals, outcomes = _evaluate({**predictors, **_model_alone(model_dir, learned)}, test)
    figures: dict[str, str] = {}
    featured = "learned" if learned is not None else "pattern"
    _reliability(outcomes[featured], out / "reliability.png", featured)
    figures[f"Reliability diagram ({featured})"] = "reliability.png"
    sim, per_tool, sim_note = _simulate(test, fit, predictors, model_dir if learned is not None else None)
    from toolcast.cli.report import plot_hit_rate_per_tool, write_report
    from toolcast.cli.simulate_cmd import plot_summary

    plot_summary(sim, str(out / "task_time.png"), featured=featured)
    figures["Task time per policy, and the share of the oracle's saving captured"] = "task_time.png"
    plot_hit_rate_per_tool(
        {k: v for k, v in per_tool.items() if k != "serial"}, out / "hit_rate_per_tool.png"
    )
    figures["Hit rate per tool"] = "hit_rate_per_tool.png"
    from toolcast.runtime.simulate import SimConfig

    replay = SimConfig()
    notes.append(
        f"Replay at the runtime's defaults: {replay.k} candidates per decision point, price of waste "
        f"λ0 = {replay.planner.lambda0}. `fanout` "
        "launches every listed value a read has not taken yet (mined from the fitting logs)"
        + ("; `learned_horizon` scores the model's, the fan-out's and the pattern pool's candidates by "
           "p(issued before the next write), with the scorer `toolcast train` fitted on the validation split."
           if "learned_horizon" in sim else ".")
    )
    if learned is None:
        notes.append("No learned model in this run (--no-train): baselines only.")
    notes.append(f"The whole demo took {time.perf_counter() - started:.0f} s.")
    report = write_report(
        out,
        data=f"the bundled sample ({len(traces)} traces from {len(files)} files; fitted on {len(fit)}, "
        f"measured on {len(test)} held-out task groups' traces)",
        stats=corpus_stats(traces).to_dict(),
        evals=evals,
        sim=sim,
        sim_note=sim_note,
        figures=figures,
        notes=notes,
    )
    print(f"report: {report.resolve()}")
    return 0


def _train(files: list[Path], model_dir: Path, max_epochs: int, notes: list[str]) -> Path | None:
    try:
        from toolcast.training.train import train
    except ImportError as e:
        notes.append(f"Training skipped: the [train] extra is not installed ({e}).")
        log.warning("training skipped: %s", e)
        return None
    from toolcast.runtime.replay_contracts import load_replay_policy

    policy = load_replay_policy(None)  # which tools are reads and writes, for the horizon scorer
    t0 = time.perf_counter()
    path = train([str(f) for f in files], model_dir, max_epochs=max_epochs, seed=SEED, progress=True,
                 horizon=(policy.is_read, policy.is_write))
    _export(path, notes)
    notes.append(
        f"Model trained in {time.perf_counter() - t0:.0f} s on CPU (at most {max_epochs} epochs, "
        f"early stopping on validation loss): {model_dir}."
    )
    return path


def _export(model_dir: Path, notes: list[str]) -> None:
    """The ONNX export `toolcast train` ends with (what an agent process embeds); the demo then measures
    and replays it. If it cannot be made, the demo goes on with the torch model and says so."""
    from toolcast.predictor.modeldir import ModelDirError
    from toolcast.predictor.torch.export import ExportValidationError, export_onnx

    try:
        r = export_onnx(str(model_dir))
    except (ModelDirError, ExportValidationError) as e:
        notes.append(f"ONNX export failed ({e}); measured with the torch model.")
        log.warning("ONNX export failed: %s", e)
        return
    worst = max(r.validation["max_abs_diff"].values())
    notes.append(f"Exported to ONNX for the embedded predictor (largest |onnxruntime - torch| {worst:.1e} on "
                 f"{r.validation['examples']} validation contexts): the figures are the ONNX predictor's.")


def _predictors(fit: list, learned: Any) -> dict[str, Any]:
    from toolcast.predictor.baselines import fit_baseline

    out: dict[str, Any] = {name: fit_baseline(name, fit) for name in ("markov", "pattern")}
    if learned is not None:
        out["learned"] = learned
    return out


def _model_alone(model_dir: Any, learned: Any) -> dict[str, Any]:
    """When the learned predictor pools the model with the pattern pool, the model alone too (measured,
    not replayed): the report shows what each part brings."""
    from toolcast.predictor import load
    from toolcast.predictor.pooling import PooledPredictor

    if not isinstance(learned, PooledPredictor):
        return {}
    alone = load(str(model_dir), pooled=False)
    alone.name = "learned (model alone)"
    return {alone.name: alone}


def _evaluate(predictors: dict[str, Any], test: list) -> tuple[dict[str, dict], dict[str, list]]:
    from toolcast.training.evaluate import evaluate
    from toolcast.training.metrics import summarize

    evals, outcomes = {}, {}
    for name, p in predictors.items():
        outcomes[name] = evaluate(p, test, progress=True)
        evals[name] = summarize(outcomes[name])
        log.info(
            "%s: tool top-1 %.3f, call top-3 %.3f", name, evals[name]["tool_top1"], evals[name]["call_top3"]
        )
    return evals, outcomes


def _reliability(outcomes: list, path: Path, name: str) -> None:
    from toolcast.cli.common import atomic_output
    from toolcast.training.evaluate import plot_reliability

    with atomic_output(path, "wb") as f:
        plot_reliability(outcomes, f, title=name)


def _simulate(test: list, fit: list, predictors: dict[str, Any], model_dir: Any) -> tuple[dict, dict, str]:
    from toolcast.cli.simulate_cmd import set_policies
    from toolcast.runtime.latency import LatencyProfile
    from toolcast.runtime.replay_contracts import load_replay_policy
    from toolcast.runtime.simulate import SimConfig, simulate

    contracts = load_replay_policy(None)
    scorer = Path(model_dir) / "horizon.json" if model_dir is not None else None
    fitted = str(scorer) if scorer is not None and scorer.exists() else None
    sets = set_policies(fit, contracts, predictors.get("learned"), fitted, predictors.get("pattern"))
    report = simulate(
        test,
        {**predictors, **sets},
        train=fit,
        profile=LatencyProfile.default(),
        contracts=contracts,
        config=SimConfig(),  # the runtime's defaults: 16 candidates, lambda0 0.7
    )
    per_tool = {
        name: {tool: ts.to_dict() for tool, ts in run.stats.tools.items()}
        for name, run in report.runs.items()
    }
    note = report.table().split("\n\n", 1)[-1]
    return report.summary(), per_tool, note
