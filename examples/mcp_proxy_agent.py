"""The support agent as an MCP client, straight to its MCP server and through `toolcast mcp-proxy`.

    pip install 'toolcast[mcp]'               # or: make install
    .venv/bin/python examples/mcp_proxy_agent.py [--quick]

The server is `mcp_support_server.py` (the support world's real tools over MCP, reads annotated
`readOnlyHint`). The client replays the recorded LLM (`transcripts/sessions.json`): per ticket, one MCP
session, the recorded thinking time before each turn, then the turn's calls. Each ticket runs in its own
world, all tickets at once, twice: directly against the server (serial) and through the proxy
(`toolcast mcp-proxy --upstream "python mcp_support_server.py ..." --trust support-world --baseline
transcripts/training.jsonl`). An MCP client reports no user messages, so the proxy's speculation starts
after each session's first tool result. The report checks that the client got the same results, that
no state-changing tool ran ahead and that every world ended the same.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from agent_loop import QUICK_SCALE, SESSIONS, TRAINING, Session, load_sessions
from mcp import Client, StdioServerParameters

HERE = Path(__file__).resolve().parent
STATE_CHANGING = ("write_file", "move_file", "cancel_order", "refund_order")


def server_argv(state: Path, scale: float) -> list[str]:
    return [sys.executable, str(HERE / "mcp_support_server.py"), str(state), "--scale", str(scale)]


async def run_session(s: Session, argv: list[str], scale: float) -> tuple[float, list[str]]:
    results = []
    async with Client(StdioServerParameters(command=argv[0], args=argv[1:]), cache=None) as c:
        t0 = time.perf_counter()
        for step in s.steps[1:]:
            await asyncio.sleep(step.think * scale)  # the LLM thinks; the proxy speculates meanwhile
            outs = await asyncio.gather(*(c.call_tool(tool, args) for tool, args in step.calls))
            results += [r.content[0].text for r in outs]
        return time.perf_counter() - t0, results


async def run_mode(mode: str, sessions: list[Session], tmp: Path, scale: float) -> dict:
    def argv(s: Session) -> list[str]:
        server = server_argv(tmp / f"{mode}-{s.id}.state.json", scale)
        if mode == "serial":
            return server
        return [sys.executable, "-m", "toolcast.cli.main", "mcp-proxy", "--upstream", " ".join(server),
                "--trust", "support-world", "--baseline", str(TRAINING),
                "--stats", str(tmp / f"{s.id}.stats.json")]

    runs = await asyncio.gather(*(run_session(s, argv(s), scale) for s in sessions))
    await asyncio.sleep(0.5)  # the servers write their final state as they exit
    states = {s.id: json.loads((tmp / f"{mode}-{s.id}.state.json").read_text()) for s in sessions}
    return {"seconds": {s.id: r[0] for s, r in zip(sessions, runs, strict=True)},
            "results": {s.id: r[1] for s, r in zip(sessions, runs, strict=True)}, "states": states}


async def amain(scale: float) -> int:
    _, sessions = load_sessions(SESSIONS)
    with tempfile.TemporaryDirectory(prefix="toolcast-mcp-example-") as tmp:
        serial = await run_mode("serial", sessions, Path(tmp), scale)
        spec = await run_mode("proxy", sessions, Path(tmp), scale)
        stats = [json.loads((Path(tmp) / f"{s.id}.stats.json").read_text()) for s in sessions]
    hits = sum(st["total"]["hits"] + st["total"]["joins"] for st in stats)
    ahead = sum(st["tools"].get(t, {}).get("launched", 0) for st in stats for t in STATE_CHANGING)
    same, same_world = serial["results"] == spec["results"], serial["states"] == spec["states"]
    a, b = max(serial["seconds"].values()), max(spec["seconds"].values())
    print(f"MCP: slowest session direct {a:.2f} s, through the proxy {b:.2f} s, saved {a - b:.2f} s "
          f"({(a - b) / a:.0%})")
    for s in sessions:
        x, y = serial["seconds"][s.id], spec["seconds"][s.id]
        print(f"  {s.id:<16} direct {x:6.2f} s  proxy {y:6.2f} s  saved {x - y:5.2f} s")
    print(f"calls served from speculation: {hits}; state-changing tools run ahead: {ahead}")
    print(f"results: {'identical' if same else 'DIFFERENT'}; worlds after: "
          f"{'identical' if same_world else 'DIFFERENT'}")
    ok = same and same_world and ahead == 0
    print(f"safety {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"every latency and think time x {QUICK_SCALE}")
    args = ap.parse_args()
    return asyncio.run(amain(QUICK_SCALE if args.quick else 1.0))


if __name__ == "__main__":
    sys.exit(main())
