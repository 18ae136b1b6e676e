"""Load test of `toolcast serve` on loopback: throughput and p50/p99 latency at 1, 8 and 64 concurrent
clients, with micro-batching on and off.

    .venv/bin/python benchmarks/serve_load.py                      # fake constant-cost predictor
    .venv/bin/python benchmarks/serve_load.py --predictor markov   # the Markov baseline, fit on tau2
    .venv/bin/python benchmarks/serve_load.py --model DIR          # a model directory (the ONNX model)
    .venv/bin/python benchmarks/serve_load.py --workers 2          # two uvicorn worker processes
    .venv/bin/python benchmarks/serve_load.py --model DIR --data ../shared/data/tau2 ../shared/data/bfcl \
        --split test --contexts 3000                               # the test split's decision points
    ... --model DIR --split test --breakdown 300                   # no server: a request's parts timed
    ... --model DIR --split test --session-replay 400              # no server: what interning events buys

The script starts the server itself (uvicorn in a child process, 127.0.0.1 only), waits for /readyz,
drives it from this process with N keep-alive connections (a minimal asyncio HTTP/1.1 client, so the
client costs the two cores as little as possible), and stops the server. Each run is bounded by
--requests and --seconds, whichever comes first, after a short warm-up; the bodies are sent in turn
across a server's runs (none twice before all were sent once). Request bodies are real decision points
(canonical events + the tools list, k=3): by default the first --contexts of the tau2 logs; with
--split, every decision point of that split's task groups (seed 0, as training splits), shuffled, so the
history lengths are those agents send step by step. `--per-request B` sends B contexts per request to
/v1/predict/batch instead (throughput then counts contexts). --breakdown and --session-replay
(serve_breakdown.py) time the parts of a request in this process, without a server.

The fake predictor costs `--fake-ms` + `--fake-per-item-ms` x batch size per run, holds one lock (one
model instance using the machine) and sleeps (releasing the GIL, as onnxruntime does): it measures the
server's own overhead and what batching buys when a run has a fixed cost. Prints the figures, the
server's and the client's CPU use (cores) and the load average (other work on the machine skews them);
with --json, also writes them there. Writes nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CONFIG_ENV = "TOOLCAST_BENCH_SERVER"


# ---- the server (child processes) ----------------------------------------------------------------------


class FakePredictor:
    """Constant-cost stand-in for the ONNX predictor: one run = fixed + per-item cost, one at a time."""

    name = "fake"

    def __init__(self, fixed_ms: float, per_item_ms: float):
        self.fixed_s, self.per_item_s = fixed_ms / 1000, per_item_ms / 1000
        self._lock = threading.Lock()

    def _answer(self, context: Any, k: int) -> list:
        from toolcast.predictor.protocol import CallPrediction

        tools = [t.name for t in context.tools][:k] or ["<respond>"]
        return [CallPrediction(t, {}, [], 1.0 / (i + 2), 1.0 / (i + 2), {}) for i, t in enumerate(tools)]

    def predict_batch(self, contexts: list, k: int = 3) -> list[list]:
        with self._lock:
            time.sleep(self.fixed_s + self.per_item_s * len(contexts))
        return [self._answer(c, k) for c in contexts]

    def predict(self, context: Any, k: int = 3) -> list:
        return self.predict_batch([context], k)[0]


def bench_app() -> Any:
    """The app each uvicorn worker builds, from the JSON config in $TOOLCAST_BENCH_SERVER."""
    from toolcast.serving.app import create_app
    from toolcast.serving.settings import ServeSettings

    cfg = json.loads(os.environ[CONFIG_ENV])

    def load(_dir: Any) -> Any:
        if cfg["kind"] == "fake":
            return FakePredictor(cfg["fake_ms"], cfg["fake_per_item_ms"])
        if cfg["kind"] == "markov":
            from toolcast.data import load_traces
            from toolcast.predictor.baselines import fit_baseline

            return fit_baseline("markov", load_traces(*cfg["data"]))
        from toolcast.serving.loading import load_predictor

        return load_predictor(Path(cfg["model"]))

    kwargs = {"max_wait_ms": cfg["max_wait_ms"]} if cfg["max_wait_ms"] is not None else {}
    if cfg.get("intern_events") is not None:
        kwargs["intern_events"] = cfg["intern_events"]
    return create_app(ServeSettings(model_dir=cfg["model"], loader=load, batching=cfg["batching"],
                                    load_in_background=False, **kwargs))


def serve(port: int, workers: int, http: str) -> None:
    """The server child: uvicorn on 127.0.0.1; each worker builds `bench_app` from the environment."""
    import uvicorn

    uvicorn.run("serve_load:bench_app", factory=True, app_dir=str(Path(__file__).parent), host="127.0.0.1",
                port=port, workers=workers, log_level="warning", access_log=False, http=http)


def start_server(port: int, cfg: dict[str, Any], workers: int, http: str) -> subprocess.Popen:
    env = {**os.environ, CONFIG_ENV: json.dumps(cfg)}
    return subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(workers), http], env=env,
                            stdin=subprocess.DEVNULL)


# ---- the load (this process) ---------------------------------------------------------------------------


def contexts_as_json(data: list[str], n: int, split: str | None = None, seed: int = 0,
                     max_events: int | None = None) -> list[dict[str, Any]]:
    """Request bodies (k=3) for the decision points of the logs in `data`.

    With `split` (train / validation / test), only traces whose task group falls in that split of the
    project's task-grouped split (`toolcast.data.splits.split_of`, seed `seed`, as training uses), every
    decision point of every such trace, shuffled (fixed seed) and cut to `n`: the history lengths are the
    ones an agent sends step by step. Without it, the first `n` decision points in file order.
    """
    import random

    from toolcast.data import load_traces
    from toolcast.data.splits import split_of
    from toolcast.serving.client import context_body

    out: list[dict[str, Any]] = []
    for trace in load_traces(*data):
        if split is not None and split_of(trace.group, seed) != split:
            continue
        for context, _ in trace.decision_points():
            if max_events is not None and len(context.events) > max_events:
                continue
            body = context_body(context, 3)
            body["source"] = trace.source  # dropped before sending; for the mix summary
            out.append(body)
            if split is None and len(out) >= n:
                return out
    if split is not None:
        random.Random(seed).shuffle(out)
    return out[:n]


def describe_mix(contexts: list[dict[str, Any]]) -> str:
    """Sources and history lengths (events) of the request bodies."""
    from collections import Counter

    if not contexts:
        return "no contexts (is the chosen split of --data empty?)"
    lengths = sorted(len(c["events"]) for c in contexts)
    by_source = Counter(str(c.get("source", "?")) for c in contexts)

    def q(f: float) -> int:
        return lengths[min(len(lengths) - 1, int(f * len(lengths)))]

    return (f"{len(contexts)} contexts ({', '.join(f'{k} {v}' for k, v in sorted(by_source.items()))}); "
            f"events per context p10 {q(0.1)} / p50 {q(0.5)} / p90 {q(0.9)} / max {lengths[-1]}")


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def one_client(port: int, requests: itertools.cycle, budget: dict, latencies: list[float],
                     errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget["left"] > 0 and time.perf_counter() < budget["until"]:
            budget["left"] -= 1
            t0 = time.perf_counter()
            writer.write(next(requests))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            status = int(head.split(b" ", 2)[1])
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def drive(port: int, cycle: itertools.cycle, clients: int, max_requests: int, seconds: float) -> dict:
    """One bounded run; `cycle` goes on where the previous run (or warm-up) on this server stopped, so
    no body is sent twice before all have been sent once."""
    budget = {"left": max_requests, "until": time.perf_counter() + seconds}
    latencies: list[float] = []
    errors: list[int] = []
    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one_client(port, cycle, budget, latencies, errors) for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"requests": len(latencies), "seconds": round(elapsed, 2),
            "requests_per_s": round(len(latencies) / elapsed, 1), "p50_ms": round(q[49] * 1000, 2),
            "p99_ms": round(q[98] * 1000, 2), "errors": len(errors), "client_cpu": round(cpu / elapsed, 2)}


def batch_stats(port: int) -> tuple[float, float]:
    """(contexts, runs) so far, from the server's Prometheus histogram (one worker's, with several)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = re.search(r"^toolcast_batch_size_sum (\S+)$", text, re.M)
    count = re.search(r"^toolcast_batch_size_count (\S+)$", text, re.M)
    return (float(total.group(1)) if total else 0.0), (float(count.group(1)) if count else 0.0)


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (Linux /proc)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])))
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, (0, 0))[1] / tick
        todo.extend(c for c, (ppid, _) in stats.items() if ppid == p)
    return total


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited during start-up (see its log above)")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server was not ready after {timeout:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:  # the server child started by start_server
        serve(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--predictor", choices=("fake", "markov", "model"), default="fake")
    p.add_argument("--model", help="model directory (implies --predictor model)")
    p.add_argument("--clients", default="1,8,64", help="concurrency levels (default: 1,8,64)")
    p.add_argument("--batching", default="off,on", help="micro-batching settings to run (default: off,on)")
    p.add_argument("--requests", type=int, default=4000, help="most requests per run (default: 4000)")
    p.add_argument("--seconds", type=float, default=8.0, help="most seconds per run (default: 8)")
    p.add_argument("--warmup", type=int, default=200, help="requests before each run (default: 200)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default: 1)")
    p.add_argument("--per-request", type=int, default=1,
                   help="contexts per request; above 1, POST /v1/predict/batch (default: 1)")
    p.add_argument("--intern-events", type=int,
                   help="server's event interning LRU size, 0 = off (default: the server's)")
    p.add_argument("--max-wait-ms", type=float, help="micro-batching wait (default: the server's)")
    p.add_argument("--fake-ms", type=float, default=1.0, help="fake predictor: cost of a run (default: 1)")
    p.add_argument("--fake-per-item-ms", type=float, default=0.05,
                   help="fake predictor: extra cost per context in a run (default: 0.05)")
    p.add_argument("--http", default="auto", help="uvicorn HTTP implementation: auto, h11, httptools")
    p.add_argument("--data", nargs="+", default=[str(DATA / "tau2")],
                   help="logs the request bodies come from (default: ../shared/data/tau2)")
    p.add_argument("--split", choices=("train", "validation", "test"),
                   help="only decision points of this split's task groups (seed 0), shuffled")
    p.add_argument("--contexts", type=int, default=500, help="distinct request bodies (default: 500)")
    p.add_argument("--breakdown", type=int, metavar="N",
                   help="no server: time N requests' parts in this process (parse, validate, convert, "
                        "predict alone and in batches, respond) and exit")
    p.add_argument("--payload", choices=("full", "small"), default="full",
                   help="full contexts with the tools list (default), or small: the last 4 events only")
    p.add_argument("--session-replay", type=int, metavar="N",
                   help="no server: up to N requests in session order, events converted with the server's "
                        "interning off vs on; the --split of --data, test by default")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--view", choices=("next", "horizon"), default="next",
                   help="--session-replay: the view asked for (horizon: the model directory's horizon view)")
    p.add_argument("-k", type=int, default=3, help="--session-replay: candidates asked for (default: 3)")
    args = p.parse_args()
    kind = "model" if args.model else args.predictor
    levels = [int(c) for c in args.clients.split(",")]
    per = max(1, args.per_request)

    if args.session_replay:
        from serve_breakdown import session_replay

        session_replay(args.data, args.split or "test", kind, args.model, args.session_replay, args.json,
                       args.view, args.k)
        return
    contexts = contexts_as_json(args.data, args.contexts, args.split)
    print(describe_mix(contexts))
    for c in contexts:
        c.pop("source", None)
    if args.breakdown:
        from serve_breakdown import breakdown

        breakdown(contexts[: args.breakdown], kind, args.model, args.data, args.json)
        return
    if args.payload == "small":
        for c in contexts:
            c.update(events=c["events"][-4:], tools=[])
    if per == 1:
        path, bodies = "/v1/predict", [json.dumps(c).encode() for c in contexts]
    else:
        path = "/v1/predict/batch"
        bodies = [json.dumps({"requests": [contexts[(i + j) % len(contexts)] for j in range(per)]}).encode()
                  for i in range(0, len(contexts), per)]
    sizes = sorted(len(b) for b in bodies)
    print(f"predictor {kind}" + (f" ({args.fake_ms} ms + {args.fake_per_item_ms} ms/context per run)"
                                 if kind == "fake" else "") + f"; workers {args.workers}; http {args.http}")
    print(f"{path}: {len(bodies)} bodies of {per} context(s), median {sizes[len(sizes) // 2]} bytes")
    rows = []
    for batching in [b.strip() == "on" for b in args.batching.split(",")]:
        cfg = {"kind": kind, "model": args.model, "batching": batching, "max_wait_ms": args.max_wait_ms,
               "fake_ms": args.fake_ms, "fake_per_item_ms": args.fake_per_item_ms, "data": args.data,
               "intern_events": args.intern_events}
        port = free_port()
        server = start_server(port, cfg, args.workers, args.http)
        try:
            wait_ready(port, server)
            wire = itertools.cycle([http_request(port, path, b) for b in bodies])
            for clients in levels:
                asyncio.run(drive(port, wire, clients, args.warmup, 30.0))
                load_before = round(os.getloadavg()[0], 2)
                before, cpu = batch_stats(port), tree_cpu_seconds(server.pid)
                row = asyncio.run(drive(port, wire, clients, args.requests, args.seconds))
                after, cpu = batch_stats(port), tree_cpu_seconds(server.pid) - cpu
                runs = after[1] - before[1]
                row.update(batching="on" if batching else "off", clients=clients,
                           predictions_per_s=round(row["requests_per_s"] * per, 1),
                           mean_batch=round((after[0] - before[0]) / runs, 1) if runs and args.workers == 1
                           else None,
                           server_cpu=round(cpu / row["seconds"], 2),
                           load=f"{load_before}->{round(os.getloadavg()[0], 2)}")
                rows.append(row)
                print(f"  batching {row['batching']:>3}  clients {clients:>3}: "
                      f"{row['predictions_per_s']:>7} pred/s  p50 {row['p50_ms']:>7} ms  "
                      f"p99 {row['p99_ms']:>7} ms  batch {row['mean_batch']}"
                      f"  cpu server {row['server_cpu']} client {row['client_cpu']}  load {row['load']}"
                      f"  ({row['requests']} requests, {row['errors']} errors)", flush=True)
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print("\n| batching | clients | predictions/s | p50 ms | p99 ms | mean batch | server CPU | client CPU |"
          " load avg | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = ("batching", "clients", "predictions_per_s", "p50_ms", "p99_ms", "mean_batch", "server_cpu",
                 "client_cpu", "load", "errors")
        print("| " + " | ".join(str(r[c]) for c in cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"predictor": kind, "http": args.http, "workers": args.workers,
                                               "per_request": per, "payload": args.payload, "rows": rows},
                                              indent=1))


if __name__ == "__main__":
    main()
