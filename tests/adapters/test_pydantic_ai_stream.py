"""toolcast.adapters.pydantic_ai, streamed: the model's stream events reach the runtime's StreamFeeder.

The agent runs with an `event_stream_handler` (pydantic-ai then streams the model): the scripted
`FunctionModel` streams each call's arguments in fragments, then keeps going for a while before the
response ends. No predictor: only the stream can start a run, and the agent's call of it joins that run.
"""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelResponse, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel  # noqa: E402

from toolcast.adapters.pydantic_ai import speculation_capability  # noqa: E402

TAIL = 0.2
"""Seconds the model goes on streaming after a call's arguments are complete."""


class StreamBroke(RuntimeError):
    pass


def streamed_model(kit, script, fail: bool = False) -> FunctionModel:
    async def stream(messages, info: AgentInfo):
        turn = sum(isinstance(m, ModelResponse) for m in messages)
        step = script[turn]
        if step is None:
            for word in kit.FINAL.split(" "):
                yield word if word == kit.FINAL.split(" ")[-1] else word + " "
            return
        args = json.dumps(step[1])
        yield {0: DeltaToolCall(name=step[0], json_args=args[:7], tool_call_id=f"call-{turn}")}
        yield {0: DeltaToolCall(json_args=args[7:])}
        await asyncio.sleep(TAIL)
        if fail:
            raise StreamBroke("the connection dropped")

    return FunctionModel(stream_function=stream)


async def run(kit, shop, script, capabilities, fail: bool = False, names=None):
    tools = [getattr(shop, n) for n in (names or ("get_order", "get_shipment", "cancel_order"))]
    agent = Agent(streamed_model(kit, script, fail), tools=tools, capabilities=capabilities)

    async def handler(ctx, events):
        async for _ in events:
            pass

    return await agent.run(kit.USER, event_stream_handler=handler)


def returns(result) -> list[tuple[str, str, str]]:
    return [(p.tool_name, p.tool_call_id, str(p.content)) for m in result.all_messages() for p in m.parts
            if isinstance(p, ToolReturnPart)]


async def test_a_streamed_call_starts_before_the_agent_issues_it(kit):
    serial_shop, shop = kit.Shop(), kit.Shop()
    serial = await run(kit, serial_shop, kit.SCRIPT, [])
    cap = speculation_capability(kit.CONTRACTS, None, kit.runtime_config())
    result = await run(kit, shop, kit.SCRIPT, [cap])
    await cap.runtime.aclose()
    assert returns(result) == returns(serial) and len(returns(serial)) == len(kit.AGENT_CALLS)
    assert result.output == serial.output == kit.FINAL
    stats = cap.runtime.stats.to_dict()["total"]
    reads = len(kit.AGENT_CALLS) - len(kit.STATE_CHANGING)
    assert stats["launched"] == reads and stats["hits"] + stats["joins"] == reads, stats
    assert shop.ran == serial_shop.ran  # each tool ran exactly as often as serially: once per call
    assert shop.orders == serial_shop.orders
    assert not cap.runs


async def test_a_stream_that_breaks_serves_nothing(kit):
    shop = kit.Shop()
    cap = speculation_capability(kit.CONTRACTS, None, kit.runtime_config())
    with pytest.raises(StreamBroke):
        await run(kit, shop, kit.SCRIPT, [cap], fail=True)
    await cap.runtime.aclose()
    stats = cap.runtime.stats.to_dict()["total"]
    assert stats["launched"] == 1 and stats["hits"] + stats["joins"] + stats["real_calls"] == 0, stats
    assert stats["dropped"] == {"stream ended": 1}, stats
    assert not [k for k in shop.ran if k[0] in kit.STATE_CHANGING]


async def test_a_write_never_runs_from_the_stream(kit):
    """A read, then the cancellation: the stream starts the read; the write's completed arguments run
    nothing until the agent calls it, and then once."""
    shop = kit.Shop()
    script = [("get_order", {"order_id": "W1"}), ("cancel_order", {"order_id": "W1"}), None]
    cap = speculation_capability(kit.CONTRACTS, None, kit.runtime_config())
    ran_when_written: list[int] = []
    original = cap.bridge.assistant

    def assistant(session, text=""):  # a model response is complete: what ran during its stream?
        ran_when_written.append(shop.ran["cancel_order", "W1"])
        original(session, text)

    cap.bridge.assistant = assistant
    result = await run(kit, shop, script, [cap], names=("get_order", "cancel_order"))
    await cap.runtime.aclose()
    assert result.output == kit.FINAL
    assert ran_when_written == [0, 0, 1] and shop.ran["cancel_order", "W1"] == 1
    stats = cap.runtime.stats.to_dict()["total"]
    assert stats["launched"] == 1 and stats["hits"] + stats["joins"] == 1, stats  # the read only
