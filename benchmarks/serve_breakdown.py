"""Where a `toolcast serve` request's time goes, measured in one process without HTTP.

Called by `serve_load.py --breakdown N` with the same request bodies as the load test. For each body,
in the order the server does them: `json.loads`, pydantic validation (`PredictRequest`), conversion to a
canonical `Context` (`to_context`: new event objects, as every HTTP request makes, so the predictor's
per-event caches miss exactly as they do in the server), the predictor run on that one context, and
the response (`PredictResponse` serialised to JSON). Then the same contexts (converted afresh) in
predictor runs of 8 and 64, as micro-batching makes them. The ONNX graphs' share is timed by wrapping
the predictor's onnxruntime sessions (the predictor is not changed); the rest of a run is featurizing
and decoding in Python. Thread CPU time is reported beside wall time: the machine is shared, and CPU
seconds per prediction is what bounds throughput on two cores.
"""

from __future__ import annotations

import functools
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class _TimedSession:
    """An onnxruntime session whose `run` calls add their wall time to `spent`."""

    def __init__(self, session: Any, spent: list[float]):
        self._session, self._spent = session, spent

    def run(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._session.run(*args, **kwargs)
        finally:
            self._spent[0] += time.perf_counter() - t0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def _load(kind: str, model: str | None, data: list[str]) -> Any:
    if kind == "model":
        from toolcast.serving.loading import load_predictor

        return load_predictor(Path(model))
    if kind == "markov":
        from toolcast.data import load_traces
        from toolcast.predictor.baselines import fit_baseline

        return fit_baseline("markov", load_traces(*data))
    raise SystemExit("--breakdown needs --model DIR or --predictor markov")


def _ms(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {"mean": round(1000 * statistics.fmean(xs), 3), "p50": round(1000 * xs[len(xs) // 2], 3),
            "p99": round(1000 * xs[min(len(xs) - 1, int(0.99 * len(xs)))], 3)}


def breakdown(contexts: list[dict[str, Any]], kind: str, model: str | None, data: list[str],
              json_out: str | None) -> None:
    from toolcast.serving.schemas import CallPredictionOut, PredictRequest, PredictResponse

    predictor = _load(kind, model, data)
    graphs = [0.0]
    sessions = getattr(predictor, "sessions", None)
    if isinstance(sessions, dict):
        for name in list(sessions):
            sessions[name] = _TimedSession(sessions[name], graphs)
    bodies = [json.dumps(c).encode() for c in contexts]
    parts: dict[str, list[float]] = {k: [] for k in ("parse", "validate", "convert", "predict", "graphs",
                                                     "respond", "total")}
    cpu: dict[str, list[float]] = {"predict": [], "total": []}
    predictor.predict_batch([PredictRequest.model_validate(json.loads(bodies[0])).to_context()], 3)  # warm
    for body in bodies:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        obj = json.loads(body)
        t1 = time.perf_counter()
        req = PredictRequest.model_validate(obj)
        t2 = time.perf_counter()
        context = req.to_context()
        t3 = time.perf_counter()
        g0, pc0 = graphs[0], time.thread_time()
        (answer,) = predictor.predict_batch([context], req.k)
        t4, pc1 = time.perf_counter(), time.thread_time()
        PredictResponse(predictions=[CallPredictionOut.from_prediction(p) for p in answer],
                        predictor="x", k=req.k).model_dump_json()
        t5 = time.perf_counter()
        for name, dt in (("parse", t1 - t0), ("validate", t2 - t1), ("convert", t3 - t2),
                         ("predict", t4 - t3), ("graphs", graphs[0] - g0), ("respond", t5 - t4),
                         ("total", t5 - t0)):
            parts[name].append(dt)
        cpu["predict"].append(pc1 - pc0)
        cpu["total"].append(time.thread_time() - c0)
    median_bytes = sorted(map(len, bodies))[len(bodies) // 2]
    result: dict[str, Any] = {"contexts": len(bodies), "median_body_bytes": median_bytes,
                              "one_context_ms": {k: _ms(v) for k, v in parts.items()},
                              "one_context_cpu_ms": {k: _ms(v) for k, v in cpu.items()}, "batched": {}}
    for size in (8, 64):
        reqs = [PredictRequest.model_validate(json.loads(b)) for b in bodies]
        t_wall, t_cpu, g_total, n = 0.0, 0.0, 0.0, 0
        for i in range(0, len(reqs) - size + 1, size):
            ctxs = [r.to_context() for r in reqs[i:i + size]]
            g0, c0, t0 = graphs[0], time.thread_time(), time.perf_counter()
            predictor.predict_batch(ctxs, 3)
            t_wall += time.perf_counter() - t0
            t_cpu += time.thread_time() - c0
            g_total += graphs[0] - g0
            n += size
        if n:
            result["batched"][size] = {"ms_per_context": round(1000 * t_wall / n, 3),
                                       "cpu_ms_per_context": round(1000 * t_cpu / n, 3),
                                       "graphs_ms_per_context": round(1000 * g_total / n, 3),
                                       "contexts_per_s": round(n / t_wall, 1)}
    print(json.dumps(result, indent=1))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1))


def session_replay(data: list[str], split: str, kind: str, model: str | None, max_requests: int,
                   json_out: str | None, view: str = "next", k: int = 3) -> None:
    """What the server gains by keeping event objects across requests (`serving.interning`).

    The embedded predictor caches per event *object* (event rows, extractor findings, a session's
    candidate pool), so an agent process pays only for its new events at each step. Over HTTP every
    request parses into new objects and pays for the whole history. Here the decision points of the
    split's traces are sent in session order (trace by trace, step by step, as agents send them),
    converted as the server does with interning off (`intern_events=0`) and, second, with the server's
    `EventInterner` at its default size (the same JSON -> the same object), each with a fresh predictor;
    per-request predictor CPU and wall time for both. `view="horizon"`: the server's horizon view
    (`serving.loading.load_horizon`) around the loaded model, asked for `k` calls.
    """
    from toolcast.data import load_traces
    from toolcast.data.splits import split_of
    from toolcast.serving.batching import run_predictor
    from toolcast.serving.client import context_body
    from toolcast.serving.interning import EventInterner
    from toolcast.serving.schemas import PredictRequest
    from toolcast.serving.settings import ServeSettings

    bodies: list[bytes] = []
    for trace in load_traces(*data):
        if split_of(trace.group, 0) != split:
            continue
        for context, _ in trace.decision_points():
            bodies.append(json.dumps(context_body(context, k, view)).encode())
        if len(bodies) >= max_requests:
            break
    result: dict[str, Any] = {"requests": len(bodies), "view": view, "k": k}
    for mode in ("interning off", "interning on"):
        predictor = _load(kind, model, data)
        if view == "horizon":
            from toolcast.serving.loading import load_horizon

            predictor = load_horizon(Path(model), predictor) if model else None
            if predictor is None:
                raise SystemExit(f"--view horizon: {model} has no horizon view")
        run = functools.partial(run_predictor, predictor)  # what the server's schedulers run
        interner = EventInterner(ServeSettings.intern_events) if mode == "interning on" else None
        wall, cpu, intern = [], [], []
        for body in bodies:
            req = PredictRequest.model_validate(json.loads(body))
            i0 = time.perf_counter()
            context = req.to_context(interner=interner)
            intern.append(time.perf_counter() - i0)
            c0, t0 = time.thread_time(), time.perf_counter()
            run([(context, req.k)])
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
        result[mode] = {"convert_ms": _ms(intern), "predict_ms": _ms(wall), "predict_cpu_ms": _ms(cpu)}
        if interner is not None:
            result[mode]["intern_hits"], result[mode]["intern_misses"] = interner.hits, interner.misses
    print(json.dumps(result, indent=1))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1))
