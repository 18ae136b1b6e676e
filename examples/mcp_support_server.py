"""The support world's tools as an MCP server over stdio (for `mcp_proxy_agent.py`).

    python examples/mcp_support_server.py STATE.json [--scale 0.3]

A fresh world (files in a temporary folder, the shop API on 127.0.0.1) per process; every tool of
`support_world.make_tools` with its JSON schema, annotated `readOnlyHint` exactly when its contract says
side-effect-free (and `openWorldHint: false`: everything is local). When the client disconnects, the
world's final state (files and shop data) is written to STATE.json, for the example's safety check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from support_world import ShopService, ToolError, Workspace, load_store, make_tools

from toolcast.runtime.tools import as_text


async def serve(state_path: Path, scale: float) -> None:
    with tempfile.TemporaryDirectory(prefix="toolcast-mcp-world-") as tmp:
        ws, shop = Workspace(Path(tmp) / "workspace", load_store()), ShopService(load_store(), scale)
        tools = {t.name: t for t in make_tools(ws, shop.url)}
        listed = [types.Tool(name=t.name, description=t.description, input_schema=t.parameters,
                             annotations=types.ToolAnnotations(read_only_hint=t.contract.side_effect_free,
                                                               open_world_hint=False))
                  for t in tools.values()]

        async def list_tools(ctx, params) -> types.ListToolsResult:
            return types.ListToolsResult(tools=listed)

        async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
            try:
                text = as_text(await asyncio.to_thread(tools[params.name].fn, **(params.arguments or {})))
            except ToolError as e:  # the LLM reads the error as the call's result, as in agent_loop.py
                text = f"ToolError: {e}"
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)])

        server = Server("support-world", on_list_tools=list_tools, on_call_tool=call_tool)
        try:
            async with stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            state_path.write_text(json.dumps({"files": ws.snapshot(), "shop": shop.state()}, sort_keys=True))
            shop.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("state", type=Path, help="where to write the world's final state")
    ap.add_argument("--scale", type=float, default=1.0, help="time scale of the shop API's latency")
    args = ap.parse_args()
    asyncio.run(serve(args.state, args.scale))
