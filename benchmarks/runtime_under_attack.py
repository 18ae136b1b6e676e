"""Sessions that are never ended: memory and per-decision cost of the runtime as they pile up.

    .venv/bin/python benchmarks/runtime_under_attack.py                    # 10,000 sessions
    .venv/bin/python benchmarks/runtime_under_attack.py --sessions 2000 --idle 3600

One `SpeculativeRuntime` on the virtual clock (`simclock`: sleeps cost no wall time, so the wall time
measured is the runtime's own work). A new session arrives every --gap seconds of virtual time, reports a
user message (a decision point: the predictor proposes a read, which launches and finishes in 50 ms) and
is never heard from again: no call, no end_session. At 100, 1,000, 10,000 ... sessions it prints the
live sessions and cache entries, the memory Python holds (tracemalloc, current) and the CPU time per
decision point (process time, mean over the last 100: wall time on a shared machine measures the load).
With --idle (the runtime's `session_idle_s`) and the reads' --ttl (`stable_for`), a runtime that sweeps
holds at most (idle / gap) sessions, however many arrived.

Runs against whatever `toolcast.runtime` is importable, so the same script measures an older checkout
(settings it lacks are left out). Writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import time
import tracemalloc

from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import read_only
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.tools import Tool


class OneRead:
    name = "one-read"

    def __init__(self) -> None:
        self.n = 0

    def predict(self, context, k=3):
        self.n += 1
        return [CallPrediction("read", {"x": self.n % 50}, p_tool=0.9, p_call=0.9)]


async def read(x):
    await asyncio.sleep(0.05)
    return {"x": x, "payload": "y" * 200}


def make_runtime(idle: float, ttl: float) -> SpeculativeRuntime:
    wanted = {"workers": 8, "session_idle_s": idle, "planner": PlannerConfig(max_in_flight=8, max_per_tool=8)}
    known = {f.name for f in dataclasses.fields(RuntimeConfig)}
    config = RuntimeConfig(**{k: v for k, v in wanted.items() if k in known})
    return SpeculativeRuntime([Tool("read", read, contract=read_only(ttl))], OneRead(), config)


async def attack(sessions: int, checkpoints: list[int], gap: float, idle: float, ttl: float) -> list[dict]:
    rt = make_runtime(idle, ttl)
    rows = []
    window: list[float] = []
    for i in range(1, sessions + 1):
        t0 = time.process_time()
        rt.observe_user(f"s{i}", "hi")
        await asyncio.sleep(gap)  # the decision point's prediction and launch run here (no wall time)
        window = (window + [time.process_time() - t0])[-100:]
        if i in checkpoints:
            gc.collect()
            current, _ = tracemalloc.get_traced_memory()
            live = len(rt._sessions)  # noqa: SLF001 - older checkouts have no session_ids()
            row = {"sessions": i, "live_sessions": live, "live_entries": len(rt.cache.entries()),
                   "memory_mib": current / 2**20, "cpu_us_per_decision": 1e6 * sum(window) / len(window)}
            rows.append(row)
            print(f"{i:>7,} sessions: {live:>6,} live, {row['live_entries']:>6,} cache entries, "
                  f"{row['memory_mib']:7.2f} MiB traced, {row['cpu_us_per_decision']:8.1f} CPU us/decision",
                  flush=True)
    await rt.aclose()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10_000)
    ap.add_argument("--gap", type=float, default=1.0, help="virtual seconds between new sessions")
    ap.add_argument("--idle", type=float, default=60.0, help="session_idle_s of the runtime")
    ap.add_argument("--ttl", type=float, default=30.0, help="stable_for of the read (freshness window)")
    ap.add_argument("--no-trace", action="store_true", help="no tracemalloc (it slows allocation): time only")
    args = ap.parse_args()
    checkpoints = [n for n in (100, 1_000, 3_000, 10_000, 30_000, 100_000) if n <= args.sessions]
    if args.sessions not in checkpoints:
        checkpoints.append(args.sessions)
    if not args.no_trace:
        tracemalloc.start()
    run_virtual(attack(args.sessions, checkpoints, args.gap, args.idle, args.ttl))


if __name__ == "__main__":
    main()
