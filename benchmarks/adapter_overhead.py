"""What each adapter adds to a tool call when nothing is speculated (no predictor), in microseconds.

    .venv/bin/python benchmarks/adapter_overhead.py [--calls 2000] [--repeats 7] [--json PATH]

For each framework: CALLS sequential calls of a trivial async tool (returns a short string at once) made
the way the framework makes them (LangChain: the ToolNode's handler, `tool.ainvoke(tool_call)`; the OpenAI
Agents SDK: the `FunctionTool`'s `on_invoke_tool`; pydantic-ai: the execute handler, reduced to the tool),
once directly and once through the adapter's hook (`awrap_tool_call`, the wrapped `on_invoke_tool`,
`wrap_tool_execute`) with a runtime that has no predictor: each call goes through `runtime.call` and
reaches a decision point, nothing runs ahead. Blocks alternate, REPEATS each; the figures are medians.
(Whole agent runs with the frameworks' fake models cost 9-17 ms per tool call here, and their run-to-run
noise is larger than the adapter, so the hook is measured on its own.) The MCP proxy: 50 sequential
`call_tool`s of a client over stdio to the upstream server, directly and through `toolcast mcp-proxy`
(one more process and one more stdio hop).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


async def echo(order_id: str) -> str:
    """A trivial tool."""
    return f"order {order_id}"


# ---- per framework: (plain call, call through the adapter), each an async () -> result ---------------


async def runtime_pair():
    """`SpeculativeRuntime.call` on its own: what every adapter pays inside its hook."""
    from toolcast.runtime import SpeculativeRuntime, Tool

    rt = SpeculativeRuntime([Tool("echo", echo)])
    rt.start_session("bench")
    args = {"order_id": "W1"}
    return (lambda: echo(**args)), (lambda: rt.call("bench", "echo", args)), rt


async def langchain_pair():
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import StructuredTool
    from langgraph.prebuilt.tool_node import ToolCallRequest

    from toolcast.adapters.langchain import speculation_middleware

    tool = StructuredTool.from_function(coroutine=echo)
    mw = speculation_middleware([tool])
    call = {"type": "tool_call", "name": "echo", "args": {"order_id": "W1"}, "id": "c1"}
    state = {"messages": [HumanMessage("go")]}
    request = ToolCallRequest(tool_call=call, tool=tool, state=state, runtime=None)

    async def handler(req):  # what the ToolNode runs for a call
        return await req.tool.ainvoke(req.tool_call)

    return (lambda: handler(request)), (lambda: mw.awrap_tool_call(request, handler)), mw.runtime


async def openai_agents_pair():
    from agents import Agent, function_tool
    from agents.tool_context import ToolContext

    from toolcast.adapters.openai_agents import speculate

    tool = function_tool(echo)
    spec = speculate(Agent("bench", tools=[tool]))
    wrapped = spec.agent.tools[0]
    text = json.dumps({"order_id": "W1"})
    ctx = ToolContext(None, tool_name="echo", tool_call_id="c1", tool_arguments=text)
    return (lambda: tool.on_invoke_tool(ctx, text)), (lambda: wrapped.on_invoke_tool(ctx, text)), spec.runtime


async def pydantic_ai_pair():
    from types import SimpleNamespace

    from pydantic_ai.messages import ToolCallPart

    from toolcast.adapters.pydantic_ai import _Run, session_of, speculation_capability
    from toolcast.data.schema import ToolSpec

    cap = speculation_capability()
    ctx = SimpleNamespace(run_id="bench", prompt="go")
    session = session_of(ctx)
    cap.bridge.register(ToolSpec("echo"), lambda s, a: echo(**a))
    cap.runs[session] = _Run(session, None, ctx)  # what the run's first get_tools records
    cap.bridge.start(session)
    part = ToolCallPart("echo", {"order_id": "W1"}, tool_call_id="c1")
    args = {"order_id": "W1"}

    async def handler(a):  # pydantic-ai's execute lifecycle, reduced to the tool
        return await echo(**a)

    return (lambda: handler(args)), (lambda: cap.wrap_tool_execute(ctx, call=part, tool_def=None, args=args,
                                                                    handler=handler)), cap.runtime


async def hook_overhead(make_pair, calls: int, repeats: int) -> tuple[float, float]:
    """Median microseconds per call, plain and through the adapter, over `repeats` alternating blocks."""
    plain, adapted, runtime = await make_pair()
    times: dict[str, list[float]] = {"plain": [], "adapted": []}
    for _ in range(repeats):
        for name, fn in (("plain", plain), ("adapted", adapted)):
            t0 = time.perf_counter()
            for _ in range(calls):
                await fn()
            times[name].append((time.perf_counter() - t0) / calls * 1e6)
    await runtime.aclose()
    return statistics.median(times["plain"]), statistics.median(times["adapted"])


async def mcp_run(calls: int, adapted: bool) -> float:
    from mcp import Client, StdioServerParameters

    server = ROOT / "tests" / "adapters" / "mcp_upstream_server.py"
    with tempfile.TemporaryDirectory() as tmp:
        upstream = [sys.executable, str(server), str(Path(tmp) / "ran.jsonl")]
        argv = ([sys.executable, "-m", "toolcast.cli.main", "mcp-proxy", "--upstream", " ".join(upstream)]
                if adapted else upstream)
        async with Client(StdioServerParameters(command=argv[0], args=argv[1:]), cache=None) as c:
            await c.call_tool("cancel_order", {"order_id": "W2"})  # warm: the first call pays set-up
            t0 = time.perf_counter()
            for _ in range(calls):  # cancel_order: no sleep in the server, never runs ahead
                await c.call_tool("cancel_order", {"order_id": "W2"})
            return time.perf_counter() - t0


PAIRS = {"runtime.call": runtime_pair, "langchain": langchain_pair, "openai-agents": openai_agents_pair,
         "pydantic-ai": pydantic_ai_pair}
NAMES = [*PAIRS, "mcp-proxy"]


async def measure(name: str, calls: int, repeats: int) -> dict[str, Any]:
    if name in PAIRS:
        await hook_overhead(PAIRS[name], 50, 1)  # warm imports and first-use set-up
        p, a = await hook_overhead(PAIRS[name], calls, repeats)
    else:
        await mcp_run(5, False)
        await mcp_run(5, True)
        plain, adapted = [], []
        for _ in range(repeats):
            plain.append(await mcp_run(calls, False) / calls * 1e6)
            adapted.append(await mcp_run(calls, True) / calls * 1e6)
        p, a = statistics.median(plain), statistics.median(adapted)
    return {"framework": name, "calls": calls, "repeats": repeats, "per_call_plain_us": p,
            "per_call_adapted_us": a, "overhead_us": a - p}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000, help="tool calls per block (the MCP proxy: 50)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", choices=NAMES, action="append", help="measure these only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for name in args.only or NAMES:
        calls = min(args.calls, 50) if name == "mcp-proxy" else args.calls
        r = asyncio.run(measure(name, calls, args.repeats))
        rows.append(r)
        print(f"{name:<14} {r['per_call_plain_us']:>10.0f} us/call plain  {r['per_call_adapted_us']:>10.0f} "
              f"us/call with toolcast  overhead {r['overhead_us']:>8.0f} us/call", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
