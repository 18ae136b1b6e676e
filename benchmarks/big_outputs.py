"""A large JSON tool output in the context: what the embedded predictor's step costs.

    .venv/bin/python benchmarks/big_outputs.py --model DIR [--rows 100 1000 10000 50000]

Agents read big API listings and files. The context is a user message, an assistant turn and one call
whose output is a JSON list of `rows` objects (an id, a SKU, a sentence, a price: 4 leaves each); per
size, a fresh predictor times the first `predict(context, k=3)` after that output arrived and the next
step (one more message). Prints a markdown table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from toolcast.data.schema import Context, Message, ToolCall, ToolSpec
from toolcast.predictor import load

TOOLS = [
    ToolSpec("list_orders", "List a user's orders.",
             {"type": "object", "properties": {"user_id": {"type": "string"}}, "required": ["user_id"]}),
    ToolSpec("get_order", "Details of an order.",
             {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}),
]


def listing(rows: int) -> str:
    return json.dumps([{"id": f"ORD{i:06d}", "sku": f"SKU-{i * 7:07d}",
                        "name": f"Item number {i} of the catalog",
                        "price": i * 1.5} for i in range(rows)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, metavar="DIR", help="an exported model directory")
    ap.add_argument("--rows", type=int, nargs="+", default=[100, 1000, 10000, 50000])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print("| rows | output MB | first step s (min of repeats) | next step ms |")
    print("|---|---|---|---|")
    for rows in args.rows:
        out = listing(rows)
        firsts, nexts = [], []
        for _ in range(args.repeats):
            predictor = load(args.model)
            events = [Message("user", "show my orders"), Message("assistant", "", turn=0),
                      ToolCall("c1", 0, "list_orders", {"user_id": "u1"}, out)]
            t0 = time.perf_counter()
            predictor.predict(Context(events, TOOLS, {}), 3)
            t1 = time.perf_counter()
            predictor.predict(Context([*events, Message("assistant", "Here they are.")], TOOLS, {}), 3)
            t2 = time.perf_counter()
            firsts.append(t1 - t0)
            nexts.append(t2 - t1)
        print(f"| {rows} | {len(out) / 1e6:.2f} | {min(firsts):.3f} | {min(nexts) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
