"""toolcast.adapters.langchain: a LangChain v1 agent (scripted fake chat model) over real local tools.

Serial run (no toolcast) against speculative run (the middleware, the pattern pool fit on recorded
sessions): the agent sees the same messages, speculation served some calls, the write never ran ahead.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("langchain.agents")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel  # noqa: E402
from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.tools import StructuredTool, ToolException  # noqa: E402
from langgraph.graph import START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode, tools_condition  # noqa: E402

from toolcast.adapters.langchain import speculation_middleware  # noqa: E402


class ScriptedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, thinking `think` seconds per turn (the runtime speculates meanwhile)."""

    think: float = 0.2
    disable_streaming: bool = True  # astream_events then calls _agenerate too

    def bind_tools(self, tools, **kwargs):
        return self

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        await asyncio.sleep(self.think)
        return self._generate(messages, stop, run_manager, **kwargs)


def scripted_model(kit) -> ScriptedChatModel:
    turns = [AIMessage("", tool_calls=[{"name": s[0], "args": s[1], "id": f"call-{i}"}]) if s
             else AIMessage(kit.FINAL) for i, s in enumerate(kit.SCRIPT)]
    return ScriptedChatModel(messages=iter(turns))


def shop_tools(shop) -> list[StructuredTool]:
    return [StructuredTool.from_function(coroutine=f)
            for f in (shop.get_order, shop.get_shipment, shop.cancel_order)]


def seen(messages) -> list[tuple[str, str, str]]:
    return [(type(m).__name__, str(m.content), getattr(m, "tool_call_id", "") or "") for m in messages]


async def run_agent(kit, speculate: bool, predictor):
    shop = kit.Shop()
    tools = shop_tools(shop)
    middleware = ([speculation_middleware(tools, kit.CONTRACTS, predictor, kit.runtime_config())]
                  if speculate else [])
    agent = create_agent(scripted_model(kit), tools, middleware=middleware)
    out = await agent.ainvoke({"messages": [("user", kit.USER)]})
    stats = None
    if speculate:
        stats = middleware[0].runtime.stats.to_dict()["total"]
        await middleware[0].runtime.aclose()
    return seen(out["messages"]), shop, stats


async def test_agent_sees_the_serial_results_and_speculation_serves(kit, predictor):
    serial, serial_shop, _ = await run_agent(kit, False, predictor)
    spec, shop, stats = await run_agent(kit, True, predictor)
    assert spec == serial
    assert [m for m in spec if m[0] == "ToolMessage"][0][2] == "call-0"  # the agent's own call ids
    assert stats["hits"] + stats["joins"] >= 1, stats
    assert shop.orders == serial_shop.orders
    ahead = kit.ahead_of_agent(shop, kit.AGENT_CALLS)
    assert not [k for k in ahead if k[0] in kit.STATE_CHANGING]
    assert shop.ran["cancel_order", "W1"] == 1


async def test_no_predictor_is_a_plain_relay(kit):
    shop = kit.Shop()
    tools = shop_tools(shop)
    mw = speculation_middleware(tools, kit.CONTRACTS)
    agent = create_agent(scripted_model(kit), tools, middleware=[mw])
    out = await agent.ainvoke({"messages": [("user", kit.USER)]})
    await mw.runtime.aclose()
    assert sum(shop.ran.values()) == len(kit.AGENT_CALLS)
    assert mw.runtime.stats.to_dict()["total"]["launched"] == 0
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content == kit.FINAL


async def test_tool_errors_reach_the_agent_as_without_toolcast(kit, predictor):
    """A tool that fails: the agent gets the tool's own error message, as it would with no middleware."""

    async def get_order(order_id: str) -> str:
        """An order."""
        raise ToolException(f"no order {order_id}")

    tools = [StructuredTool.from_function(coroutine=get_order, handle_tool_error=True)]
    turns = [AIMessage("", tool_calls=[{"name": "get_order", "args": {"order_id": "W9"}, "id": "c1"}]),
             AIMessage(kit.FINAL)]
    results = []
    for mw in ([], [speculation_middleware(tools, kit.CONTRACTS, predictor, kit.runtime_config())]):
        agent = create_agent(ScriptedChatModel(messages=iter(turns)), tools, middleware=mw)
        out = await agent.ainvoke({"messages": [("user", kit.USER)]})
        results.append([(m.content, m.status) for m in out["messages"] if isinstance(m, ToolMessage)])
        for m in mw:
            await m.runtime.aclose()
    assert results[0] == results[1] == [("no order W9", "error")]


async def test_a_langgraph_tool_node(kit, predictor):
    """LangGraph without create_agent: the hook passed to ToolNode; messages read from the graph state."""
    shop = kit.Shop()
    tools = shop_tools(shop)
    mw = speculation_middleware(tools, kit.CONTRACTS, predictor, kit.runtime_config())
    model = scripted_model(kit)

    async def call_model(state: MessagesState) -> dict:
        return {"messages": [await model.ainvoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(tools, awrap_tool_call=mw.awrap_tool_call))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    out = await graph.compile().ainvoke({"messages": [("user", kit.USER)]},
                                        {"configurable": {"thread_id": "t1"}})
    await mw.runtime.aclose()
    results = [m.content for m in out["messages"] if isinstance(m, ToolMessage)]
    assert len(results) == len(kit.AGENT_CALLS) and '"eta": "today"' in results[2]
    assert out["messages"][-1].content == kit.FINAL
    stats = mw.runtime.stats.to_dict()["total"]
    assert stats["real_calls"] == len(kit.AGENT_CALLS)
    assert shop.ran["cancel_order", "W1"] == 1


async def test_speculative_runs_stay_out_of_the_agents_event_stream(kit, predictor):
    """Speculative runs never show in `astream_events`: the stream shows the tools that ran for the agent's
    own calls (a call served from speculation ran no tool for it, so it shows no tool events)."""
    shop = kit.Shop()
    tools = shop_tools(shop)
    mw = speculation_middleware(tools, kit.CONTRACTS, predictor, kit.runtime_config())
    agent = create_agent(scripted_model(kit), tools, middleware=[mw])
    started = [e["name"] async for e in agent.astream_events({"messages": [("user", kit.USER)]}, version="v2")
               if e["event"] == "on_tool_start"]
    await mw.runtime.aclose()
    stats = mw.runtime.stats.to_dict()["total"]
    assert stats["launched"] >= 1 and sum(shop.ran.values()) > len(kit.AGENT_CALLS)
    assert len(started) == len(kit.AGENT_CALLS) - stats["hits"] - stats["joins"]
    assert set(started) <= {tool for tool, _ in kit.AGENT_CALLS} and "cancel_order" in started


async def test_a_tool_node_s_sessions_the_runtime_ended_are_forgotten(kit):
    """A plain ToolNode never ends its sessions (one per graph thread); the runtime ends them on its own
    (issue 16: idle, or beyond max_sessions) and the middleware must not remember every thread forever."""
    from langchain_core.messages import HumanMessage

    from toolcast.runtime import RuntimeConfig

    mw = speculation_middleware(shop_tools(kit.Shop()), kit.CONTRACTS, None, RuntimeConfig(max_sessions=4))

    async def run():
        return "real"

    for i in range(300):
        mw._sync(f"lg-{i}", [HumanMessage("hi")])  # noqa: SLF001 - what awrap_tool_call does first
        await mw.bridge.call(f"lg-{i}", "get_order", {"order_id": "W1"}, run)
    assert len(mw._seen) <= 2 * 5 + 64 + 1  # noqa: SLF001
    await mw.runtime.aclose()
