"""What the adapter tests share: a shop of real local tools, the agent's script, a predictor from logs.

The tools sleep (a remote API's latency) and count every run. One script drives every framework's fake
model: look up two orders (the second order id comes from the first order's result), then a shipment
whose id comes from the order just read, then cancel the first order, then answer. The predictor is the
pattern-pool baseline fit on recorded sessions of this script (built here as toolcast traces), so
speculation is learned from logs, not scripted: it must pick the shipment id out of the order's result.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from toolcast.data.schema import Message, ToolCall, ToolSpec, Trace
from toolcast.predictor.baselines import fit_baseline
from toolcast.runtime import PlannerConfig, RuntimeConfig, ToolContract, read_only

LATENCY = 0.15
THINK = 0.2
ORDERS = {"W1": {"status": "pending", "shipment_id": "S1", "related": "W2"},
          "W2": {"status": "shipped", "shipment_id": "S2", "related": "W1"}}
SHIPMENTS = {"S1": {"carrier": "DHL", "eta": "2 days"}, "S2": {"carrier": "UPS", "eta": "today"}}
USER = "Cancel my order W1 and tell me about W2's delivery."

# (tool, args) per model turn; None = the model answers in text.
SCRIPT: list[tuple[str, dict[str, Any]] | None] = [
    ("get_order", {"order_id": "W1"}),
    ("get_order", {"order_id": "W2"}),
    ("get_shipment", {"shipment_id": "S2"}),
    ("cancel_order", {"order_id": "W1"}),
    None,
]
FINAL = "Done: W1 is cancelled, W2 arrives today."

CONTRACTS = {"get_order": read_only(30.0, reads=["order:{order_id}"]),
             "get_shipment": read_only(30.0),
             "cancel_order": ToolContract(mutates=["order:{order_id}"])}
STATE_CHANGING = ("cancel_order",)


@dataclass
class Shop:
    """The tools' shared state; `ran` counts runs per (tool, order or shipment id), `log` keeps the order."""

    orders: dict[str, dict[str, Any]] = field(default_factory=lambda: json.loads(json.dumps(ORDERS)))
    ran: Counter = field(default_factory=Counter)
    log: list[tuple[str, str]] = field(default_factory=list)

    def _ran(self, tool: str, key: str) -> None:
        self.ran[tool, key] += 1
        self.log.append((tool, key))

    async def get_order(self, order_id: str) -> str:
        """An order: its status, shipment id and a related order."""
        self._ran("get_order", order_id)
        await asyncio.sleep(LATENCY)
        return json.dumps({"order_id": order_id, **self.orders[order_id]})

    async def get_shipment(self, shipment_id: str) -> str:
        """A shipment: carrier and expected arrival."""
        self._ran("get_shipment", shipment_id)
        await asyncio.sleep(LATENCY)
        return json.dumps({"shipment_id": shipment_id, **SHIPMENTS[shipment_id]})

    async def cancel_order(self, order_id: str) -> str:
        """Cancel an order."""
        self._ran("cancel_order", order_id)
        self.orders[order_id]["status"] = "cancelled"
        return json.dumps({"order_id": order_id, "status": "cancelled"})


def recorded_sessions(n: int = 6) -> list[Trace]:
    """Sessions of the same agent as toolcast traces (what `toolcast import` makes of its logs)."""
    specs = [ToolSpec("get_order", "", {"type": "object", "properties": {"order_id": {"type": "string"}}}),
             ToolSpec("get_shipment", "",
                      {"type": "object", "properties": {"shipment_id": {"type": "string"}}}),
             ToolSpec("cancel_order", "", {"type": "object", "properties": {"order_id": {"type": "string"}}})]
    traces = []
    for i in range(n):
        first, second = (f"W{100 + i}", f"W{200 + i}")
        ship = f"S{300 + i}"
        outputs = {first: {"order_id": first, "status": "pending", "shipment_id": f"S{400 + i}",
                           "related": second},
                   second: {"order_id": second, "status": "shipped", "shipment_id": ship, "related": first}}
        events: list[Any] = [Message("user", f"Cancel my order {first} and tell me about {second}'s "
                                             "delivery.")]
        calls = [("get_order", {"order_id": first}, outputs[first]),
                 ("get_order", {"order_id": second}, outputs[second]),
                 ("get_shipment", {"shipment_id": ship},
                  {"shipment_id": ship, "carrier": "DHL", "eta": "today"}),
                 ("cancel_order", {"order_id": first}, {"order_id": first, "status": "cancelled"})]
        for turn, (tool, args, out) in enumerate(calls, 1):
            events.append(Message("assistant", "", turn=turn))
            events.append(ToolCall(f"c{i}.{turn}", turn, tool, args, json.dumps(out)))
        events.append(Message("assistant", "Done."))
        traces.append(Trace(f"t{i}", f"g{i}", "test", {"model": "scripted"}, specs, events))
    return traces


@pytest.fixture(scope="session")
def predictor():
    return fit_baseline("pattern", recorded_sessions())


def runtime_config() -> RuntimeConfig:
    """Speculate freely: the tests check routing and safety, not the planner's economics."""
    return RuntimeConfig(k=4, planner=PlannerConfig(lambda0=0.05))


def ahead_of_agent(shop: Shop, agent_calls: list[tuple[str, str]]) -> Counter:
    """Runs beyond the agent's own calls, per (tool, key): what speculation added."""
    return shop.ran - Counter(agent_calls)


AGENT_CALLS = [(tool, next(iter(args.values()))) for tool, args in (s for s in SCRIPT if s)]


@pytest.fixture
def kit() -> SimpleNamespace:
    """The shared world and script, for the adapter tests (helpers stay in tests/, never the package)."""
    return SimpleNamespace(Shop=Shop, SCRIPT=SCRIPT, FINAL=FINAL, USER=USER, THINK=THINK, CONTRACTS=CONTRACTS,
                           STATE_CHANGING=STATE_CHANGING, AGENT_CALLS=AGENT_CALLS,
                           runtime_config=runtime_config,
                           ahead_of_agent=ahead_of_agent)
