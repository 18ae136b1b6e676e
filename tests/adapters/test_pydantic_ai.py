"""toolcast.adapters.pydantic_ai: a pydantic-ai agent (`FunctionModel`, scripted) over real local tools.

Serial run (the agent with no capability) against speculative run (`speculation_capability`, the pattern
pool fit on recorded sessions): the same tool returns, speculation served some, the write never ran ahead.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart  # noqa: E402
from pydantic_ai.models.function import AgentInfo, FunctionModel  # noqa: E402

from toolcast.adapters.pydantic_ai import speculation_capability  # noqa: E402


def scripted_model(kit, think: float = 0.2) -> FunctionModel:
    """Each turn from the script (by the number of responses so far), after `think` seconds."""

    async def respond(messages, info: AgentInfo) -> ModelResponse:
        await asyncio.sleep(think)
        turn = sum(isinstance(m, ModelResponse) for m in messages)
        step = kit.SCRIPT[turn]
        if step is None:
            return ModelResponse(parts=[TextPart(kit.FINAL)])
        return ModelResponse(parts=[ToolCallPart(step[0], step[1], tool_call_id=f"call-{turn}")])

    return FunctionModel(respond)


def returns(result) -> list[tuple[str, str, str]]:
    return [(p.tool_name, p.tool_call_id, str(p.content)) for m in result.all_messages() for p in m.parts
            if isinstance(p, ToolReturnPart)]


async def run(kit, shop, capabilities):
    agent = Agent(scripted_model(kit), tools=[shop.get_order, shop.get_shipment, shop.cancel_order],
                  capabilities=capabilities)
    return await agent.run(kit.USER)


async def test_agent_sees_the_serial_results_and_speculation_serves(kit, predictor):
    serial_shop, shop = kit.Shop(), kit.Shop()
    serial = await run(kit, serial_shop, [])
    cap = speculation_capability(kit.CONTRACTS, predictor, kit.runtime_config())
    result = await run(kit, shop, [cap])
    await cap.runtime.aclose()
    assert returns(result) == returns(serial) and len(returns(serial)) == len(kit.AGENT_CALLS)
    assert result.output == serial.output == kit.FINAL
    stats = cap.runtime.stats.to_dict()["total"]
    assert stats["hits"] + stats["joins"] >= 1, stats
    assert shop.orders == serial_shop.orders
    assert not [k for k in kit.ahead_of_agent(shop, kit.AGENT_CALLS) if k[0] in kit.STATE_CHANGING]
    assert shop.ran["cancel_order", "W1"] == 1
    assert not cap.runs  # the session ended with the run


async def test_a_run_that_fails_ends_its_session(kit, predictor):
    shop = kit.Shop()
    cap = speculation_capability(kit.CONTRACTS, predictor, kit.runtime_config())

    async def broken(messages, info):
        raise RuntimeError("the model is down")

    agent = Agent(FunctionModel(broken), tools=[shop.get_order], capabilities=[cap])
    with pytest.raises(RuntimeError, match="the model is down"):
        await agent.run(kit.USER)
    await cap.runtime.aclose()
    assert not cap.runs
