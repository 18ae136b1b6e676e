"""toolcast.adapters.langchain, streamed: the model's `AIMessageChunk`s reach the runtime's StreamFeeder.

The agent runs with `astream(stream_mode="messages")`, so the (scripted) chat model streams: each call's
arguments arrive in fragments, then the model keeps going for a while before the message ends. No
predictor: only the stream can start a run, and the agent's call of it joins that run.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage  # noqa: E402
from langchain_core.messages.tool import tool_call_chunk  # noqa: E402
from langchain_core.outputs import ChatGenerationChunk  # noqa: E402
from langchain_core.tools import StructuredTool  # noqa: E402

from toolcast.adapters.langchain import speculation_middleware  # noqa: E402

TAIL = 0.2
"""Seconds the model goes on streaming after a call's arguments are complete."""


class StreamedChatModel(GenericFakeChatModel):
    """Streams the scripted messages; with `truncate`, a call's message ends with finish_reason "length"."""

    truncate: bool = False

    def bind_tools(self, tools, **kwargs):
        return self

    async def _astream(self, messages, stop=None, run_manager=None, **kwargs):
        message = next(self.messages)
        if not message.tool_calls:
            words = re.findall(r"\S+\s*", message.content)
            for i, word in enumerate(words):
                yield ChatGenerationChunk(message=AIMessageChunk(
                    word, chunk_position="last" if i == len(words) - 1 else None))
            return
        call = message.tool_calls[0]
        args = json.dumps(call["args"])
        yield ChatGenerationChunk(message=AIMessageChunk("Let me check. ", tool_call_chunks=[
            tool_call_chunk(name=call["name"], args="", id=call["id"], index=0)]))
        for piece in (args[:7], args[7:]):
            yield ChatGenerationChunk(message=AIMessageChunk("", tool_call_chunks=[
                tool_call_chunk(name=None, args=piece, id=None, index=0)]))
        await asyncio.sleep(TAIL)
        meta = {"finish_reason": "length" if self.truncate else "tool_calls"}
        yield ChatGenerationChunk(message=AIMessageChunk("", response_metadata=meta, chunk_position="last"))


def streamed_model(kit, script, truncate: bool = False) -> StreamedChatModel:
    turns = [AIMessage("", tool_calls=[{"name": s[0], "args": s[1], "id": f"call-{i}"}]) if s
             else AIMessage(kit.FINAL) for i, s in enumerate(script)]
    return StreamedChatModel(messages=iter(turns), truncate=truncate)


def shop_tools(shop, names=("get_order", "get_shipment", "cancel_order")) -> list[StructuredTool]:
    return [StructuredTool.from_function(coroutine=getattr(shop, n)) for n in names]


async def run_streamed(agent, kit):
    state = None
    async for mode, data in agent.astream({"messages": [("user", kit.USER)]},
                                          stream_mode=["messages", "values"]):
        if mode == "values":
            state = data
    return [(type(m).__name__, m.text, getattr(m, "tool_call_id", "") or "") for m in state["messages"]
            if isinstance(m, ToolMessage) or not getattr(m, "tool_calls", None)]


async def test_a_streamed_call_starts_before_the_agent_issues_it(kit):
    serial_shop, shop = kit.Shop(), kit.Shop()
    serial = await run_streamed(create_agent(streamed_model(kit, kit.SCRIPT), shop_tools(serial_shop)), kit)
    tools = shop_tools(shop)
    mw = speculation_middleware(tools, kit.CONTRACTS, None, kit.runtime_config())
    spec = await run_streamed(create_agent(streamed_model(kit, kit.SCRIPT), tools, middleware=[mw]), kit)
    await mw.runtime.aclose()
    assert spec == serial and serial[-1] == ("AIMessage", kit.FINAL, "")
    assert len([m for m in spec if m[0] == "ToolMessage"]) == len(kit.AGENT_CALLS)
    stats = mw.runtime.stats.to_dict()["total"]
    reads = len(kit.AGENT_CALLS) - len(kit.STATE_CHANGING)
    assert stats["launched"] == reads and stats["hits"] + stats["joins"] == reads, stats
    assert shop.ran == serial_shop.ran  # each tool ran exactly as often as serially: once per call
    assert shop.orders == serial_shop.orders


async def test_a_truncated_stream_serves_nothing(kit):
    shop = kit.Shop()
    tools = shop_tools(shop)
    mw = speculation_middleware(tools, kit.CONTRACTS, None, kit.runtime_config())
    await run_streamed(create_agent(streamed_model(kit, kit.SCRIPT, truncate=True), tools, middleware=[mw]),
                       kit)
    await mw.runtime.aclose()
    stats = mw.runtime.stats.to_dict()["total"]
    reads = len(kit.AGENT_CALLS) - len(kit.STATE_CHANGING)
    assert stats["launched"] == reads and stats["hits"] + stats["joins"] == 0, stats
    assert stats["dropped"] == {"stream ended": reads}, stats
    assert shop.ran["cancel_order", "W1"] == 1


async def test_a_write_never_runs_from_the_stream(kit):
    """A read, then the cancellation: the stream starts the read; the write's completed arguments run
    nothing until the agent calls it, and then once."""
    shop = kit.Shop()
    tools = shop_tools(shop, ("get_order", "cancel_order"))
    script = [("get_order", {"order_id": "W1"}), ("cancel_order", {"order_id": "W1"}), None]
    mw = speculation_middleware(tools, kit.CONTRACTS, None, kit.runtime_config())
    ran_when_written: list[int] = []
    original = mw.bridge.assistant

    def assistant(session, text=""):  # a model message is complete: what ran during its stream?
        ran_when_written.append(shop.ran["cancel_order", "W1"])
        original(session, text)

    mw.bridge.assistant = assistant
    out = await run_streamed(create_agent(streamed_model(kit, script), tools, middleware=[mw]), kit)
    await mw.runtime.aclose()
    assert out[-1] == ("AIMessage", kit.FINAL, "")
    assert ran_when_written == [0, 0, 1] and shop.ran["cancel_order", "W1"] == 1
    stats = mw.runtime.stats.to_dict()["total"]
    assert stats["launched"] == 1 and stats["hits"] + stats["joins"] == 1, stats  # the read only
