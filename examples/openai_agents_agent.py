"""The support agent on the OpenAI Agents SDK, with toolcast under it (`speculate`).

    pip install 'toolcast[openai-agents]'     # or: make install
    .venv/bin/python examples/openai_agents_agent.py [--quick]

The model is a `Model` that replays the recorded LLM (its calls and thinking time), so no API key is
needed; the tools are the support world's real ones (`support_world.py`) as `FunctionTool`s. The only
toolcast line is `speculate(agent, contracts, runtime=...)`, then
`Runner.run(spec.agent, ..., hooks=spec.hooks)`
(see `framework_harness.py` for the serial-against-speculative comparison this prints).
"""

from __future__ import annotations

import asyncio
import json
import sys

from agents import Agent, FunctionTool, RunConfig, Runner
from agents.items import ModelResponse, ToolCallOutputItem
from agents.models.interface import Model
from agents.usage import Usage
from framework_harness import contracts_of, main, plain, user_and_turns
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from toolcast.adapters.openai_agents import speculate


class ReplayedModel(Model):
    """Answers turn i with the recorded LLM's turn i, after its recorded thinking time."""

    def __init__(self, sid: str, turns, scale: float):
        self.sid, self.turns, self.scale, self.i = sid, turns, scale, 0

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                           tracing, **kwargs) -> ModelResponse:
        turn, i = self.turns[self.i], self.i
        self.i += 1
        await asyncio.sleep(turn.think * self.scale)
        out = [ResponseFunctionToolCall(type="function_call", call_id=f"{self.sid}-{i}.{k}", name=name,
                                        arguments=json.dumps(args), id=f"fc-{i}.{k}")
               for k, (name, args) in enumerate(turn.calls)]
        if turn.text or not out:
            text = ResponseOutputText(type="output_text", text=turn.text, annotations=[])
            out.insert(0, ResponseOutputMessage(id=f"m-{i}", type="message", role="assistant",
                                                status="completed", content=[text]))
        return ModelResponse(output=out, usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError("this example runs without streaming")


def function_tool_of(tool) -> FunctionTool:
    fn = plain(tool)

    async def invoke(ctx, input_json: str) -> str:
        return await asyncio.to_thread(fn, **json.loads(input_json or "{}"))

    return FunctionTool(tool.name, tool.description, tool.parameters, invoke, strict_json_schema=False)


async def run_session(session, tools, runtime, scale) -> list[str]:
    user, turns = user_and_turns(session)
    agent = Agent("support", tools=[function_tool_of(t) for t in tools],
                  model=ReplayedModel(session.id, turns, scale))
    config = RunConfig(tracing_disabled=True)
    if runtime is None:
        result = await Runner.run(agent, user, run_config=config, max_turns=100)
    else:
        spec = speculate(agent, contracts_of(tools), runtime=runtime)
        result = await Runner.run(spec.agent, user, hooks=spec.hooks, run_config=config, max_turns=100)
    return [str(i.output) for i in result.new_items if isinstance(i, ToolCallOutputItem)]


if __name__ == "__main__":
    sys.exit(main("OpenAI Agents SDK", run_session))
