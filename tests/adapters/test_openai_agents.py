"""toolcast.adapters.openai_agents: an OpenAI Agents SDK agent (a scripted `Model`) over real local tools.

Serial run (the agent as it is) against speculative run (`speculate(agent, ...)`, the pattern pool fit on
recorded sessions): the same tool outputs, speculation served some calls, the write never ran ahead.
"""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("agents")

from agents import Agent, RunConfig, Runner, function_tool  # noqa: E402
from agents.items import ModelResponse, ToolCallOutputItem  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.usage import Usage  # noqa: E402
from openai.types.responses import (  # noqa: E402
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from toolcast.adapters.openai_agents import speculate  # noqa: E402

NO_TRACING = RunConfig(tracing_disabled=True)


class ScriptedModel(Model):
    """Answers each turn from the script after `think` seconds (the runtime speculates meanwhile)."""

    def __init__(self, script, final: str, think: float = 0.2):
        self.script, self.final, self.think = list(script), final, think

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                           tracing, **kwargs) -> ModelResponse:
        await asyncio.sleep(self.think)
        turn = sum(1 for i in input if isinstance(i, dict) and i.get("type") == "function_call_output")
        step = self.script[turn]
        if step is None:
            out = [ResponseOutputMessage(id="m", type="message", role="assistant", status="completed",
                                         content=[ResponseOutputText(type="output_text", text=self.final,
                                                                     annotations=[])])]
        else:
            out = [ResponseFunctionToolCall(type="function_call", call_id=f"call-{turn}", name=step[0],
                                            arguments=json.dumps(step[1]), id=f"fc-{turn}")]
        return ModelResponse(output=out, usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError("the tests run the agent without streaming")


def shop_agent(kit, shop) -> Agent:
    tools = [function_tool(f) for f in (shop.get_order, shop.get_shipment, shop.cancel_order)]
    return Agent("support", tools=tools, model=ScriptedModel(kit.SCRIPT, kit.FINAL))


def outputs(result) -> list[tuple[str, str]]:
    return [(i.raw_item["call_id"], str(i.output)) for i in result.new_items
            if isinstance(i, ToolCallOutputItem)]


async def test_agent_sees_the_serial_results_and_speculation_serves(kit, predictor):
    serial_shop, shop = kit.Shop(), kit.Shop()
    serial = await Runner.run(shop_agent(kit, serial_shop), kit.USER, run_config=NO_TRACING)
    spec = speculate(shop_agent(kit, shop), kit.CONTRACTS, predictor, kit.runtime_config())
    result = await spec.run(kit.USER, run_config=NO_TRACING)
    await spec.runtime.aclose()
    assert outputs(result) == outputs(serial) and len(outputs(serial)) == len(kit.AGENT_CALLS)
    assert result.final_output == serial.final_output == kit.FINAL
    stats = spec.runtime.stats.to_dict()["total"]
    assert stats["hits"] + stats["joins"] >= 1, stats
    assert shop.orders == serial_shop.orders
    assert not [k for k in kit.ahead_of_agent(shop, kit.AGENT_CALLS) if k[0] in kit.STATE_CHANGING]
    assert shop.ran["cancel_order", "W1"] == 1
    assert spec.tools == ["get_order", "get_shipment", "cancel_order"]


async def test_concurrent_runs_are_separate_sessions(kit, predictor):
    """Two runs of one agent at once: a session each (the run's context), each with its own calls."""
    shop = kit.Shop()
    spec = speculate(shop_agent(kit, shop), kit.CONTRACTS, predictor, kit.runtime_config())
    results = await asyncio.gather(*(spec.run(kit.USER, run_config=NO_TRACING) for _ in range(2)))
    await spec.runtime.aclose()
    assert [len(outputs(r)) for r in results] == [len(kit.AGENT_CALLS)] * 2
    assert spec.runtime.stats.to_dict()["total"]["real_calls"] == 2 * len(kit.AGENT_CALLS)
    assert shop.ran["cancel_order", "W1"] == 2
    assert not spec.hooks._runs  # both sessions ended with their runs


async def test_adapters_sharing_one_runtime_keep_their_sessions_apart(kit, predictor):
    """Agents built per request, each speculated over one shared runtime: each run is its own session and
    its speculative runs use its own tools."""
    shops = [kit.Shop(), kit.Shop()]
    first = speculate(shop_agent(kit, shops[0]), kit.CONTRACTS, predictor, kit.runtime_config())
    second = speculate(shop_agent(kit, shops[1]), kit.CONTRACTS, runtime=first.runtime)
    results = await asyncio.gather(first.run(kit.USER, run_config=NO_TRACING),
                                   second.run(kit.USER, run_config=NO_TRACING))
    await first.runtime.aclose()
    assert outputs(results[0]) == outputs(results[1])
    stats = first.runtime.stats.to_dict()["total"]
    assert stats["hits"] + stats["joins"] >= 2, stats
    for shop in shops:  # every run of a shop's tools was its own agent's call or speculation for it
        assert shop.ran["cancel_order", "W1"] == 1 and shop.ran["get_order", "W1"] >= 1


async def test_a_run_that_raises_ends_its_session(kit, predictor):
    class Broken(ScriptedModel):
        async def get_response(self, *args, **kwargs):
            raise RuntimeError("the model is down")

    spec = speculate(Agent("support", tools=[function_tool(kit.Shop().get_order)], model=Broken([], "")),
                     kit.CONTRACTS, predictor, kit.runtime_config())
    with pytest.raises(RuntimeError, match="the model is down"):
        await spec.run(kit.USER, run_config=NO_TRACING)
    assert not spec.hooks._runs and not spec.runtime._sessions  # noqa: SLF001 - nothing left open
    await spec.runtime.aclose()
