"""toolcast.adapters.openai_agents, streamed: the model's Responses events reach the runtime's StreamFeeder.

The scripted model streams each turn's call through the SDK's own event builder (`agents.testing`), then
keeps writing for a while before the response completes: a read call is started from the stream (no
predictor: only the stream can start it) and the SDK's call of it joins that run.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("agents")

from agents import Agent, RunConfig, Runner, function_tool  # noqa: E402
from agents.items import ToolCallOutputItem  # noqa: E402
from agents.models.interface import Model  # noqa: E402
from agents.testing.model import ModelStep, assistant_message, function_call  # noqa: E402
from agents.testing.model import ScriptedModel as SdkScripted  # noqa: E402
from openai.types.responses import ResponseFailedEvent  # noqa: E402

from toolcast.adapters.openai_agents import speculate  # noqa: E402

NO_TRACING = RunConfig(tracing_disabled=True)
TAIL = 0.2
"""Seconds the model goes on streaming after a call's arguments are complete."""


class StreamedModel(Model):
    """Streams the script's turns; with `fail`, a call turn ends in `response.failed`, not completed."""

    def __init__(self, script, final: str, fail: bool = False):
        self.script, self.final, self.fail = list(script), final, fail

    async def get_response(self, *args, **kwargs):
        raise NotImplementedError("the tests run the agent streamed")

    async def stream_response(self, system_instructions, input, *args, **kwargs):
        turn = sum(1 for i in input if isinstance(i, dict) and i.get("type") == "function_call_output")
        step = self.script[turn]
        out = ([assistant_message(self.final)] if step is None
               else [function_call(step[0], step[1], call_id=f"call-{turn}")])
        events = [e async for e in SdkScripted([ModelStep(output=out)]).stream_response(
            system_instructions, input, *args, **kwargs)]
        for event in events[:-1]:
            yield event
            if event.type == "response.function_call_arguments.done":
                await asyncio.sleep(TAIL)
        if self.fail and step is not None:  # the provider gives up on the response
            last = events[-1]
            yield ResponseFailedEvent(type="response.failed", sequence_number=last.sequence_number,
                                      response=last.response.model_copy(update={"status": "failed"}))
            return
        yield events[-1]


def shop_agent(kit, shop, fail: bool = False) -> Agent:
    tools = [function_tool(f) for f in (shop.get_order, shop.get_shipment, shop.cancel_order)]
    return Agent("support", tools=tools, model=StreamedModel(kit.SCRIPT, kit.FINAL, fail))


async def streamed(run):
    async for _ in run.stream_events():
        pass
    return run


def outputs(result) -> list[tuple[str, str]]:
    return [(i.raw_item["call_id"], str(i.output)) for i in result.new_items
            if isinstance(i, ToolCallOutputItem)]


async def test_a_streamed_call_starts_before_the_sdk_issues_it(kit):
    serial_shop, shop = kit.Shop(), kit.Shop()
    serial = await streamed(Runner.run_streamed(shop_agent(kit, serial_shop), kit.USER,
                                                run_config=NO_TRACING))
    spec = speculate(shop_agent(kit, shop), kit.CONTRACTS, None, kit.runtime_config())
    result = await streamed(spec.run_streamed(kit.USER, run_config=NO_TRACING))
    await spec.runtime.aclose()
    assert outputs(result) == outputs(serial) and len(outputs(serial)) == len(kit.AGENT_CALLS)
    assert result.final_output == serial.final_output == kit.FINAL
    stats = spec.runtime.stats.to_dict()["total"]
    reads = len(kit.AGENT_CALLS) - len(kit.STATE_CHANGING)
    assert stats["hits"] + stats["joins"] == reads, stats  # every read joined its run from the stream
    assert shop.ran == serial_shop.ran  # each tool ran exactly as often as serially: once per call
    assert shop.orders == serial_shop.orders
    assert not spec.hooks._runs  # noqa: SLF001 - the session ended with the run


async def test_a_stream_that_fails_serves_nothing_and_never_writes(kit):
    shop = kit.Shop()
    spec = speculate(shop_agent(kit, shop, fail=True), kit.CONTRACTS, None,
                     kit.runtime_config())
    with pytest.raises(Exception):  # noqa: B017 - the SDK's error for a failed response
        await streamed(spec.run_streamed(kit.USER, run_config=NO_TRACING))
    await spec.runtime.aclose()
    stats = spec.runtime.stats.to_dict()["total"]
    assert stats["launched"] == 1 and stats["hits"] + stats["joins"] + stats["real_calls"] == 0, stats
    assert stats["dropped"] == {"stream ended": 1}, stats
    assert shop.ran["get_order", "W1"] == 1  # started from the stream, then discarded
    assert not [k for k in shop.ran if k[0] in kit.STATE_CHANGING]


async def test_a_write_never_runs_from_the_stream(kit):
    """A read, then the cancellation: the stream starts the read, but the write's completed arguments run
    nothing until the SDK calls it, and then once."""
    shop = kit.Shop()
    script = [("get_order", {"order_id": "W1"}), ("cancel_order", {"order_id": "W1"}), None]
    agent = Agent("support", tools=[function_tool(shop.get_order), function_tool(shop.cancel_order)],
                  model=StreamedModel(script, kit.FINAL))
    spec = speculate(agent, kit.CONTRACTS, None, kit.runtime_config())
    ran_when_written: list[int] = []
    original = spec.hooks.bridge.assistant

    def assistant(session, text=""):  # a model message is complete: what ran during its stream?
        ran_when_written.append(shop.ran["cancel_order", "W1"])
        original(session, text)

    spec.hooks.bridge.assistant = assistant
    result = await streamed(spec.run_streamed(kit.USER, run_config=NO_TRACING))
    await spec.runtime.aclose()
    assert result.final_output == kit.FINAL
    assert ran_when_written == [0, 0, 1] and shop.ran["cancel_order", "W1"] == 1
    stats = spec.runtime.stats.to_dict()["total"]
    assert stats["launched"] == 1 and stats["hits"] + stats["joins"] == 1, stats  # the read only
