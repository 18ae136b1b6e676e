"""Predictor latency: one context at history 16 / 64 / 256 and batch throughput, torch vs onnxruntime vs int8.

    .venv/bin/python benchmarks/predictor_latency.py --model DIR [--data PATH ...] [--contexts 40]
    .venv/bin/python benchmarks/predictor_latency.py --model DIR --accuracy PATH ...   # int8's accuracy

DIR must be exported with int8 (`toolcast export DIR --quantize int8`). Contexts are real: the first H
events of tau2 traces (default ../shared/data/tau2, else the bundled sample); a history longer than any
trace is several traces of one tool set played back to back, as one long session. Per backend and
thread count (1, 2), wall clock on this process:

- step p50 / p99 (and the step's CPU time, p50): `predict(context, k=3)` when the context's last event
  is new and the others were seen at the step before (the agent-process case: featurizing included; the
  ONNX predictor caches event rows and keeps each session's candidate pool, the torch one re-merges the
  candidates from scratch). A fresh predictor per repeat: the newest event's content was never seen by
  it (before 2026-11-22 the step ran after other runs on the same contexts, whose content caches -- the
  text encoder's words, argument values' features -- then already held the new event: 2.52 instead
  of 2.65 ms at history 64);
- step after other work p50: the same step with a full garbage-collector pass just before it (the
  CPU's caches evicted, as after the agent's own work between two steps);
- cold p50: every event new (the first prediction on a context);
- model p50: the graph runs only (the graphs a step runs, on the arrays the predictor builds);
- featurizing, each part alone, in the step's situation: event and tool arrays, the predictor's
  argument-value candidates (a session's pool kept across steps, `session_candidates`), slot rows for
  4 tools (the predictor's path: `slot_rows` over the kept pool);
- batch: `predict_batch` over 32 contexts at history 64, contexts per second (featurizing included, the
  contexts' event rows cached as after earlier steps), and model-only contexts per second.

Prints markdown tables and the machine's load average before and after; writes nothing. The garbage
collector runs between samples, not inside them (as `timeit` does).
"""

from __future__ import annotations

import argparse
import copy
import gc
import os
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import Context, Trace
from toolcast.predictor import load as load_model
from toolcast.predictor.onnx.arrays import stack
from toolcast.predictor.onnx.contract import ENCODER, FEATURE_INPUTS, SLOTS
from toolcast.predictor.onnx.predictor import OnnxPredictor
from toolcast.predictor.session import slot_rows
from toolcast.predictor.session.candidates import CandidatePool
from toolcast.predictor.torch.model import SLOT_INPUTS
from toolcast.predictor.torch.predictor import to_tensors

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau2"
HISTORIES = (16, 64, 256)
BACKENDS = ("torch", "onnxruntime", "onnxruntime int8")
BATCH = 32


def contexts_at(traces: list[Trace], h: int, n: int) -> list[Context]:
    """`n` contexts of exactly `h` events: prefixes of long traces, else traces of one tool set chained."""
    out = [Context(t.events[:h], t.tools, t.metadata) for t in traces if len(t.events) >= h][:n]
    by_tools: dict[tuple[str, ...], list[Trace]] = defaultdict(list)
    for t in traces:
        by_tools[tuple(sorted(s.name for s in t.tools))].append(t)
    for group in sorted(by_tools.values(), key=len, reverse=True):
        events, i = [], 0
        while len(out) < n and i < len(group):
            events += group[i].events
            i += 1
            if len(events) >= h:
                out.append(Context(events[:h], group[0].tools, group[0].metadata))
                events = []
    return out[:n]


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1e3, q))


def step_latency(load: Callable[[], Any], contexts: list[Context], repeats: int) -> dict[str, list[float]]:
    """Latencies in seconds: "step", "step CPU", "step after other work", "cold". Each pass loads a
    fresh predictor, so nothing of a context's newest event was seen before its step: the predictor's
    caches by content (the text encoder's words, argument values' features, tool-set arrays) hold only
    what the earlier contexts of the pass brought, as in a process that has served other sessions of
    this agent, never the timed event itself.

    Step: the context's prefix predicted (untimed), then at once the whole context on the same event
    objects: the CPU's caches still hold what the prefix's prediction touched. Step after other work:
    the same, with a full garbage-collector pass between the two (it walks every object of this
    process, evicting the CPU's caches), closer to an agent process that parsed an LLM response and ran
    tools between two steps. Cold: every event new. Step CPU is this process's CPU time over the step
    (`time.process_time`): on a machine shared with other jobs the wall clock also counts the time
    other processes held the core."""
    out: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        for evict in (False, True):
            pred = load()
            for c in contexts:
                gc.collect()  # outside the timers: the deep copies make garbage, timeit-style timing
                fresh = copy.deepcopy(c)
                pred.predict(Context(fresh.events[:-1], fresh.tools, fresh.metadata), 3)
                if evict:
                    gc.collect()
                c0, t0 = time.process_time(), time.perf_counter()
                pred.predict(fresh, 3)
                t1, c1 = time.perf_counter(), time.process_time()
                if evict:
                    out["step after other work"].append(t1 - t0)
                else:
                    out["step"].append(t1 - t0)
                    out["step CPU"].append(c1 - c0)
        pred = load()
        for c in contexts:
            gc.collect()
            fresh = copy.deepcopy(c)
            t0 = time.perf_counter()
            pred.predict(fresh, 3)
            out["cold"].append(time.perf_counter() - t0)
    return out


def model_runs(onnx: OnnxPredictor, contexts: list[Context]):
    """The arrays each graph is fed (from the ONNX predictor's own featurizing), per context."""
    return [(r.encoder_inputs, r.slot_inputs) for r in onnx.runs(contexts)]


def ort_model_time(onnx: OnnxPredictor, fed, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        for enc, slots in fed:
            t0 = time.perf_counter()
            e = onnx._run(ENCODER.name, enc)
            onnx._run(SLOTS.name, {**slots, **{k: e[k] for k in SLOTS.inputs if k in e}})
            out.append(time.perf_counter() - t0)
    return out


@torch.inference_mode()
def torch_model_time(model, fed, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        for enc, slots in fed:
            t0 = time.perf_counter()
            _logits, state, states, tool_repr = model.encode(*to_tensors(enc, FEATURE_INPUTS))
            model.score_slots(state, states, tool_repr, *to_tensors(slots, SLOT_INPUTS))
            out.append(time.perf_counter() - t0)
    return out


def featurize_time(
    load: Callable[[], OnnxPredictor], contexts: list[Context], repeats: int
) -> dict[str, list[float]]:
    """The featurizing parts of a step, each timed alone, in the step's situation (the context's last
    event new, the rest seen at the step before: fresh copies, the prefix predicted first; a fresh
    predictor per repeat, as in `step_latency`): event and tool arrays (event rows cached but the new
    one's), the argument-value candidates (the predictor's own extractor: a session's pool kept, the new
    event folded in), slot rows of 4 tools from them."""
    out: dict[str, list[float]] = {"arrays": [], "extract": [], "slots": []}
    for _ in range(repeats):
        onnx = load()
        fz = onnx.featurizer
        for c in contexts:
            gc.collect()
            fresh = copy.deepcopy(c)
            onnx.predict(Context(fresh.events[:-1], fresh.tools, fresh.metadata), 3)
            t0 = time.perf_counter()
            f = onnx.features(fresh)
            t1 = time.perf_counter()
            cands = fz.extract(fresh) if fz.extract is not None else []
            t2 = time.perf_counter()
            wanted = [(i, f.tools.specs[i]) for i in range(2, min(6, len(f.tools.names)))]
            built = None
            if isinstance(cands, CandidatePool):  # the predictor's path over a kept pool
                built = slot_rows.build(fz.slot_featurizer, fresh, cands, wanted, fz.cfg.max_slots * 4)
            if built is None:
                fz.slot_featurizer.build(fresh, cands, wanted, fz.cfg.max_slots * 4)
            t3 = time.perf_counter()
            out["arrays"].append(t1 - t0)
            out["extract"].append(t2 - t1)
            out["slots"].append(t3 - t2)
    return out


def batch_rate(
    onnx: OnnxPredictor | None, model, contexts: list[Context], fed, repeats: int
) -> tuple[float, float]:
    """(contexts/s through predict_batch, contexts/s through the graphs alone)."""
    chunks = [contexts[i : i + BATCH] for i in range(0, len(contexts), BATCH)]
    fchunks = [fed[i : i + BATCH] for i in range(0, len(fed), BATCH)]
    full = float("nan")
    if onnx is not None:
        for ch in chunks:  # warm the row cache, as the sessions' earlier steps would have
            onnx.predict_batch(ch, 3)
        t0 = time.perf_counter()
        for _ in range(repeats):
            for ch in chunks:
                onnx.predict_batch(ch, 3)
        full = repeats * len(contexts) / (time.perf_counter() - t0)
    batches = []
    for ch in fchunks:
        enc = stack([{k: v[0] for k, v in e.items()} for e, _s in ch], list(ch[0][0]))
        slots = stack([{k: v[0] for k, v in s.items()} for _e, s in ch], list(ch[0][1]))
        batches.append((enc, slots))
    t0 = time.perf_counter()
    for _ in range(repeats):
        for enc, slots in batches:
            if onnx is not None:
                e = onnx._run(ENCODER.name, enc)
                onnx._run(SLOTS.name, {**slots, **{k: e[k] for k in SLOTS.inputs if k in e}})
            else:
                with torch.inference_mode():
                    _l, state, states, tool_repr = model.encode(*to_tensors(enc, FEATURE_INPUTS))
                    model.score_slots(state, states, tool_repr, *to_tensors(slots, SLOT_INPUTS))
    return full, repeats * len(fed) / (time.perf_counter() - t0)


def accuracy(model_dir: Path, data: list[str], seed: int) -> None:
    """`toolcast eval`'s figures on the test split for torch, onnxruntime and int8, and how often int8's
    top-1 call (and tool) is float's, over every test decision point."""
    from toolcast.data.splits import split_of
    from toolcast.training.evaluate import evaluate
    from toolcast.training.metrics import summarize

    test = [t for t in load_traces(*data) if split_of(t.group, seed) == "test"]
    float_pred = load_model(model_dir, backend="onnx", variant="float")
    int8_pred = load_model(model_dir, backend="onnx", variant="int8")
    cols = ("tool_top1", "tool_top3", "call_top1", "call_top3", "respond_precision", "respond_recall", "ece")
    print(f"\ntest split of {data} (seed {seed}): {len(test)} traces")
    print("| predictor | " + " | ".join(cols) + " | decision points |")
    print("|---|" + "---|" * (len(cols) + 1))
    for name, pred in (
        ("torch", load_model(model_dir, backend="torch")),
        ("onnxruntime", float_pred),
        ("onnxruntime int8", int8_pred),
    ):
        s = summarize(evaluate(pred, test))
        print(f"| {name} | " + " | ".join(f"{s[c]:.4f}" for c in cols) + f" | {s['n_decision_points']} |")
    contexts = [c for t in test for c, _label in t.decision_points()]
    call = tool = 0
    for c in contexts:
        a, b = float_pred.predict(c, 3), int8_pred.predict(c, 3)
        call += a[0].key == b[0].key
        tool += a[0].tool == b[0].tool
    print(
        f"int8 vs float top-1 agreement on {len(contexts)} test decision points: "
        f"call {call / len(contexts):.4f}, tool {tool / len(contexts):.4f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path, help="model directory exported with --quantize int8")
    ap.add_argument(
        "--data", nargs="+", default=[str(DATA)] if DATA.exists() else [str(p) for p in sample_files()]
    )
    ap.add_argument("--contexts", type=int, default=40, help="contexts per history length")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--histories", type=int, nargs="+", default=list(HISTORIES))
    ap.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS, help="default: all three"
    )
    ap.add_argument(
        "--accuracy",
        nargs="+",
        metavar="PATH",
        help="instead of timing: eval figures of torch / onnxruntime / int8 on the test split of PATH",
    )
    args = ap.parse_args()
    if args.accuracy:
        import json

        seed = json.loads((args.model / "metrics.json").read_text()).get("seed", 0)
        accuracy(args.model, args.accuracy, seed)
        return

    traces = load_traces(*args.data)
    sets = {h: contexts_at(traces, h, args.contexts) for h in args.histories}
    gc.disable()  # collected between samples instead (see step_latency), as timeit does
    print(
        f"load average before: {os.getloadavg()}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores; onnxruntime {ort.__version__}, torch {torch.__version__}"
    )
    print(f"contexts: {', '.join(f'{len(v)} at history {h}' for h, v in sets.items())}; data {args.data}")
    rows, brows = [], []
    for threads in args.threads:
        torch.set_num_threads(threads)
        loaders = {
            "torch": lambda: load_model(args.model, backend="torch"),
            "onnxruntime": lambda t=threads: load_model(
                args.model, backend="onnx", threads=t, variant="float"
            ),
            "onnxruntime int8": lambda t=threads: load_model(
                args.model, backend="onnx", threads=t, variant="int8"
            ),
        }
        backends = {name: loaders[name]() for name in BACKENDS if name in args.backends}
        onnx = backends.get("onnxruntime") or load_model(
            args.model, backend="onnx", threads=threads, variant="float"
        )
        for h, contexts in sets.items():
            fed = model_runs(onnx, contexts)
            feat = featurize_time(loaders["onnxruntime"], contexts, args.repeats)
            for name, pred in backends.items():
                lat = step_latency(loaders[name], contexts, args.repeats)
                if name == "torch":
                    model = torch_model_time(pred.model, fed, args.repeats)
                else:
                    model = ort_model_time(pred, fed, args.repeats)
                rows.append(
                    (
                        name,
                        threads,
                        h,
                        pct(lat["step"], 50),
                        pct(lat["step"], 99),
                        pct(lat["step CPU"], 50),
                        pct(lat["step after other work"], 50),
                        pct(lat["cold"], 50),
                        pct(model, 50),
                        pct(model, 99),
                        *(statistics.median(feat[k]) * 1e3 for k in ("arrays", "extract", "slots")),
                    )
                )
                print(
                    "| "
                    + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in rows[-1])
                    + " |",
                    flush=True,
                )
        contexts = sets.get(64, [])
        fed = model_runs(onnx, contexts) if contexts else []
        for name, pred in backends.items() if contexts else ():
            if name == "torch":
                full, model_only = batch_rate(None, pred.model, contexts, fed, args.repeats)
            else:
                full, model_only = batch_rate(pred, None, contexts, fed, args.repeats)
            brows.append((name, threads, full, model_only))
    print(f"\nload average after: {os.getloadavg()}")
    print(
        "\n| backend | threads | history | step p50 ms | step p99 ms | step CPU p50 ms "
        "| step after other work p50 ms | cold p50 ms "
        "| model p50 ms | model p99 ms | arrays p50 ms | extract p50 ms | slot rows p50 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    print(f"\n| backend | threads | predict_batch ctx/s (batch {BATCH}, history 64) | model-only ctx/s |")
    print("|---|---|---|---|")
    for name, threads, full, model_only in brows:
        print(f"| {name} | {threads} | {'-' if full != full else f'{full:.0f}'} | {model_only:.0f} |")


if __name__ == "__main__":
    main()
