"""`toolcast train`: agent logs in, a calibrated model directory out (calls `toolcast.training.train`)."""

from __future__ import annotations

import argparse
import json

from toolcast.cli.common import fail, report_format_error
from toolcast.data import TraceFormatError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the next-call model on agent logs",
        description="Split the logs by task group (80/10/10, --seed), train the next-call transformer with "
        "early stopping on the validation loss, fit its temperatures on validation, mine the pattern pool "
        "and fit the weights that pool it with the model on validation (pool.json, pattern_pool.json.gz: "
        "what the directory serves; --no-pool skips it), measure it on the test split, and write the model "
        "directory (config.json, tokenizer.json, vocab.json, model.safetensors, calibration.json, "
        "metrics.json), then export it to ONNX for the embedded predictor (tools.onnx, model.onnx, "
        "slots.onnx, onnx.json; --no-export skips it). Runs on CPU here and, unchanged, on GPUs or several "
        "processes or nodes through Lightning (--devices, --num-nodes, --strategy ddp).",
    )
    p.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="PATH",
        help="log files or folders (any supported format; a folder means every log in it)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    p.add_argument(
        "--max-epochs",
        type=int,
        default=12,
        metavar="N",
        help="most epochs (early stopping usually ends sooner; default 12)",
    )
    p.add_argument(
        "--seed", type=int, default=0, metavar="S", help="split, initialisation, order (default 0)"
    )
    p.add_argument("--devices", default="1", metavar="N", help="processes / GPUs per machine (default 1)")
    p.add_argument("--num-nodes", type=int, default=1, metavar="N",
                   help="machines (default 1); start the same command on each, with MASTER_ADDR, "
                   "MASTER_PORT, NODE_RANK set (or under SLURM / torchrun); see README")
    p.add_argument("--featurize-procs", type=int, metavar="N",
                   help="processes that featurize the examples (default: one per core)")
    p.add_argument(
        "--strategy",
        default="auto",
        metavar="S",
        help="Lightning strategy: auto, ddp, ddp_spawn, ... (default auto)",
    )
    p.add_argument("--accelerator", default="cpu", metavar="A", help="cpu, gpu, auto (default cpu)")
    p.add_argument(
        "--holdout",
        metavar="KEY=VALUE",
        help="move the traces whose metadata KEY is (or, a list, contains) VALUE to the test split "
        "(KEY~PART: whose KEY contains PART, e.g. agent_model~claude), "
        "e.g. domain=retail: measures an unseen tool set",
    )
    p.add_argument("--hidden", type=int, help="model width (default from the config, 64)")
    p.add_argument("--layers", type=int, help="transformer layers (default 2)")
    p.add_argument(
        "--max-tools",
        type=int,
        metavar="N",
        help="candidate tools per context, the two specials included (default: 48, raised to fit the "
        "logs' largest tool set up to 160; a tool past it is never predicted unless called earlier)",
    )
    p.add_argument(
        "--ema-epochs",
        type=float,
        default=1.0,
        metavar="E",
        help="validate and ship an exponential moving average of the weights over about the last E "
        "epochs (default 1; 0 keeps the raw weights)",
    )
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads per process on CPU (default 1: fastest here, safe on a shared CPU)")
    p.add_argument("--no-eval", action="store_true", help="skip measuring the test split at the end")
    p.add_argument("--no-pool", action="store_true",
                   help="ship the model alone: do not mine the pattern pool and fit the pool's weights on "
                   "validation (by default the directory serves the model pooled with it, pool.json)")
    p.add_argument("--no-horizon", action="store_true",
                   help="do not fit the horizon scorer (horizon.json: p that a candidate call is issued "
                   "before the next write, fitted on validation with the fan-out mined on train; with it "
                   "`toolcast simulate --model DIR` adds the 'learned_horizon' policy)")
    p.add_argument("--contracts", metavar="FILE",
                   help="for the horizon scorer, which tools are reads and which change state: replay "
                   "contracts JSON or a coding contracts file, as `toolcast simulate --contracts` (default: "
                   "the builtin name patterns and the shipped coding contracts)")
    p.add_argument(
        "--no-export",
        action="store_true",
        help="skip the ONNX export (`toolcast export DIR`) that otherwise runs at the end",
    )
    p.set_defaults(func=run)


def _contracts(path: str | None):
    """The replay contracts the horizon scorer is fitted with (`toolcast simulate`'s, see --contracts)."""
    from toolcast.runtime.coding_contracts import naming_policy

    return naming_policy(path)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from toolcast.predictor.config import ModelConfig, TrainConfig
    from toolcast.training.train import train

    devices: int | str = int(args.devices) if args.devices.isdigit() else args.devices
    overrides = {k: v for k, v in (("hidden", args.hidden), ("layers", args.layers),
                                   ("max_tools", args.max_tools)) if v is not None}
    if "hidden" in overrides:
        overrides["intermediate"] = 2 * overrides["hidden"]
    try:
        model = replace(ModelConfig(), **overrides)
        train_config = TrainConfig(ema_epochs=args.ema_epochs)
    except ValueError as e:
        return fail(str(e))
    if args.max_epochs < 1:
        return fail("--max-epochs must be at least 1")
    if args.num_nodes < 1 or (args.featurize_procs is not None and args.featurize_procs < 1):
        return fail("--num-nodes and --featurize-procs must be at least 1")
    horizon = None
    if not args.no_horizon:
        try:
            policy = _contracts(args.contracts)
        except ValueError as e:
            return fail(str(e))
        horizon = (policy.is_read, policy.is_write)
    try:
        out = train(
            args.data,
            args.out,
            max_epochs=args.max_epochs,
            seed=args.seed,
            devices=devices,
            num_nodes=args.num_nodes,
            strategy=args.strategy,
            accelerator=args.accelerator,
            model=model,
            train_config=train_config,
            holdout=args.holdout,
            evaluate_test=not args.no_eval,
            threads=args.threads,
            grow_tools=args.max_tools is None,
            featurize_procs=args.featurize_procs,
            pool=not args.no_pool,
            horizon=horizon,
        )
    except TraceFormatError as e:
        return report_format_error(e)
    except ValueError as e:
        return fail(str(e))
    if out is None:  # a DDP rank other than 0: rank 0 writes and reports
        return 0
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    cal = metrics["calibration"]["tool"]
    print(
        f"wrote {out}: {metrics['examples']} decision points, best epoch {metrics['best_epoch']}, "
        f"{metrics['seconds']['total']:.0f} s"
    )
    print(
        f"tool head: temperature {cal['temperature']:.3f}, validation ECE {cal['ece_before']:.4f} -> "
        f"{cal['ece_after']:.4f}"
    )
    test = metrics.get("test", {}).get("calibrated")
    if test:
        print(
            "test split: "
            + ", ".join(
                f"{k} {test[k]:.3f}" for k in ("tool_top1", "tool_top3", "call_top1", "call_top3", "ece")
            )
        )
    if args.no_export:
        return 0
    from toolcast.cli.export_cmd import export_and_report

    return export_and_report(str(out))
