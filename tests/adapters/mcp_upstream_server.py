"""A small MCP server for the proxy's tests, started as a subprocess: `python mcp_upstream_server.py LOG`.

A shop with two read-only tools that take a while (annotated `readOnlyHint`), one state-changing tool, a
resource and a prompt. Every tool run appends `tool args` to LOG, so a test sees what ran and how often.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

LOG = sys.argv[1]
ORDERS = {"W1": {"status": "pending", "shipment_id": "S1"}, "W2": {"status": "shipped", "shipment_id": "S2"}}
SHIPMENTS = {"S1": {"carrier": "DHL", "eta": "2 days"}, "S2": {"carrier": "UPS", "eta": "today"}}
READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)

server = MCPServer("shop")


def ran(tool: str, **args: str) -> None:
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps({"tool": tool, "args": args}) + "\n")


@server.tool(annotations=READ)
async def get_order(order_id: str) -> str:
    """An order: its status and shipment id."""
    ran("get_order", order_id=order_id)
    await asyncio.sleep(0.3)
    if order_id not in ORDERS:
        raise ValueError(f"no order {order_id}")
    return json.dumps({"order_id": order_id, **ORDERS[order_id]})


@server.tool(annotations=READ)
async def get_shipment(shipment_id: str) -> str:
    """A shipment: carrier and expected arrival."""
    ran("get_shipment", shipment_id=shipment_id)
    await asyncio.sleep(0.3)
    return json.dumps({"shipment_id": shipment_id, **SHIPMENTS[shipment_id]})


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
async def cancel_order(order_id: str) -> str:
    """Cancel an order."""
    ran("cancel_order", order_id=order_id)
    ORDERS[order_id]["status"] = "cancelled"
    return json.dumps({"order_id": order_id, "status": "cancelled"})


@server.resource("shop://policy/cancellation")
def cancellation_policy() -> str:
    """The cancellation policy."""
    return "Pending orders can be cancelled."


@server.prompt()
def apologise(name: str) -> str:
    """An apology to a customer."""
    return f"Write a short apology to {name}."


if __name__ == "__main__":
    server.run()
