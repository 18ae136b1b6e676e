"""Import speed: time `load_traces` over every log file of the development data (tau2 and BFCL).

    .venv/bin/python benchmarks/import_speed.py [PATH ...]   # default: ../shared/data/{tau2,bfcl}

Prints files, traces, tool calls, seconds (best of --repeat runs, wall clock) and traces per second per
format; writes nothing. The target is the whole development set in under a minute on a laptop core.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from toolcast.data import ImportReport, load_traces

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT = [str(DATA / "tau2"), str(DATA / "bfcl")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=DEFAULT, help="files or folders to import")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest is reported")
    args = parser.parse_args()

    best = float("inf")
    for _ in range(max(1, args.repeat)):
        report = ImportReport()
        start = time.perf_counter()
        traces = load_traces(*args.paths, report=report)
        best = min(best, time.perf_counter() - start)
    calls = sum(len(t.calls) for t in traces)
    events = sum(len(t.events) for t in traces)
    print(f"import {', '.join(args.paths)}")
    formats = ", ".join(f"{k}: {v}" for k, v in report.formats.items())
    print(f"  files {report.files}, traces {report.traces} ({formats})")
    print(f"  events {events}, tool calls {calls}, skipped {len(report.skipped)}")
    print(f"  {best:.2f} s (best of {args.repeat}), {report.traces / best:,.0f} traces/s, "
          f"{calls / best:,.0f} calls/s")


if __name__ == "__main__":
    main()
