"""Write logs as toolcast JSONL with every trace's tool list removed: logs saved without tool schemas.

    .venv/bin/python benchmarks/strip_tools.py OUT.jsonl [PATH ...]   # default PATH: the bundled sample

Then train and evaluate on OUT.jsonl as on any logs (BENCHMARKS.md, "Logs without tool schemas").
"""

from __future__ import annotations

import argparse
import dataclasses

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the JSONL file to write")
    ap.add_argument("paths", nargs="*", help="logs to read (default: the bundled sample)")
    args = ap.parse_args()
    traces = load_traces(*(args.paths or sample_files()))
    with open(args.out, "w", encoding="utf-8") as f:
        for t in traces:
            f.write(dataclasses.replace(t, tools=[]).to_json() + "\n")
    print(f"wrote {len(traces)} traces without tool lists to {args.out}")


if __name__ == "__main__":
    main()
