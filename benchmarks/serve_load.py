"""Load test of `toolcast serve` on loopback: throughput and p50/p99 latency at 1, 8 and 64 concurrent
clients, with micro-batching on and off.

    .venv/bin/python benchmarks/serve_load.py                      # fake constant-cost predictor
    .venv/bin/python benchmarks/serve_load.py --predictor markov   # the Markov baseline, fit on tau2
    .venv/bin/python benchmarks/serve_load.py --model DIR          # a model directory (the ONNX model)
    .venv/bin/python benchmarks/serve_load.py --workers 2          # two uvicorn worker processes

The script starts the server itself (uvicorn in a child process, 127.0.0.1 only), waits for /readyz,
drives it from this process with N keep-alive connections (a minimal asyncio HTTP/1.1 client, so the
client costs the two cores as little as possible), and stops the server. Each run is bounded by
--requests and --seconds, whichever comes first, after a short warm-up. Request bodies are real decision
points of the tau2 development logs (canonical events + the tools list, k=3); `--per-request B` sends B
contexts per request to /v1/predict/batch instead (throughput then counts contexts).

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
        from toolcast.predictor.base import CallPrediction

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

            return fit_baseline("markov", load_traces(cfg["data"]))
        from toolcast.serving.loading import load_predictor

        return load_predictor(Path(cfg["model"]))

    kwargs = {"max_wait_ms": cfg["max_wait_ms"]} if cfg["max_wait_ms"] is not None else {}
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


def contexts_as_json(data: str, n: int) -> list[dict[str, Any]]:
    from toolcast.data import load_traces
    from toolcast.serving.client import context_body

    out = []
    for trace in load_traces(data):
        for context, _ in trace.decision_points():
            out.append(context_body(context, 3))
            if len(out) >= n:
                return out
    return out


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


async def drive(port: int, requests: list[bytes], clients: int, max_requests: int, seconds: float) -> dict:
    cycle = itertools.cycle(requests)
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
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    p.add_argument("--max-wait-ms", type=float, help="micro-batching wait (default: the server's)")
    p.add_argument("--fake-ms", type=float, default=1.0, help="fake predictor: cost of a run (default: 1)")
    p.add_argument("--fake-per-item-ms", type=float, default=0.05,
                   help="fake predictor: extra cost per context in a run (default: 0.05)")
    p.add_argument("--http", default="auto", help="uvicorn HTTP implementation: auto, h11, httptools")
    p.add_argument("--data", default=str(DATA / "tau2"), help="logs the request bodies come from")
    p.add_argument("--payload", choices=("full", "small"), default="full",
                   help="full contexts with the tools list (default), or small: the last 4 events only")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args()
    kind = "model" if args.model else args.predictor
    levels = [int(c) for c in args.clients.split(",")]
    per = max(1, args.per_request)

    contexts = contexts_as_json(args.data, 500)
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
               "fake_ms": args.fake_ms, "fake_per_item_ms": args.fake_per_item_ms, "data": args.data}
        port = free_port()
        server = start_server(port, cfg, args.workers, args.http)
        try:
            wait_ready(port, server)
            wire = [http_request(port, path, b) for b in bodies]
            for clients in levels:
                asyncio.run(drive(port, wire, clients, args.warmup, 30.0))
                before, cpu = batch_stats(port), tree_cpu_seconds(server.pid)
                row = asyncio.run(drive(port, wire, clients, args.requests, args.seconds))
                after, cpu = batch_stats(port), tree_cpu_seconds(server.pid) - cpu
                runs = after[1] - before[1]
                row.update(batching="on" if batching else "off", clients=clients,
                           predictions_per_s=round(row["requests_per_s"] * per, 1),
                           mean_batch=round((after[0] - before[0]) / runs, 1) if runs and args.workers == 1
                           else None,
                           server_cpu=round(cpu / row["seconds"], 2), load=round(os.getloadavg()[0], 2))
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
