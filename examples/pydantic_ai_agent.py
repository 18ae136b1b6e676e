"""The support agent on pydantic-ai, with toolcast under it (a capability).

    pip install 'toolcast[pydantic-ai]'       # or: make install
    .venv/bin/python examples/pydantic_ai_agent.py [--quick]

The model is pydantic-ai's `FunctionModel` replaying the recorded LLM (its calls and thinking time); the
tools are the support world's real ones (`support_world.py`). The only toolcast line is
`capabilities=[speculation_capability(contracts, runtime=...)]` (see `framework_harness.py` for the
serial-against-speculative comparison this prints).
"""

from __future__ import annotations

import asyncio
import sys

from framework_harness import contracts_of, main, plain, user_and_turns
from pydantic_ai import Agent, Tool
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel

from toolcast.adapters.pydantic_ai import speculation_capability


def replayed_model(sid: str, turns, scale: float) -> FunctionModel:
    async def respond(messages, info) -> ModelResponse:
        i = sum(isinstance(m, ModelResponse) for m in messages)
        turn = turns[i]
        await asyncio.sleep(turn.think * scale)
        parts = [TextPart(turn.text)] if turn.text or not turn.calls else []
        parts += [ToolCallPart(name, args, tool_call_id=f"{sid}-{i}.{k}")
                  for k, (name, args) in enumerate(turn.calls)]
        return ModelResponse(parts=parts)

    return FunctionModel(respond)


def tool_of(tool) -> Tool:
    fn = plain(tool)

    async def run(**args) -> str:
        return await asyncio.to_thread(fn, **args)

    return Tool.from_schema(run, name=tool.name, description=tool.description, json_schema=tool.parameters)


async def run_session(session, tools, runtime, scale) -> list[str]:
    user, turns = user_and_turns(session)
    capabilities = [] if runtime is None else [speculation_capability(contracts_of(tools), runtime=runtime)]
    agent = Agent(replayed_model(session.id, turns, scale), tools=[tool_of(t) for t in tools],
                  capabilities=capabilities)
    result = await agent.run(user)
    return [str(p.content) for m in result.all_messages() for p in m.parts if isinstance(p, ToolReturnPart)]


if __name__ == "__main__":
    sys.exit(main("pydantic-ai", run_session))
