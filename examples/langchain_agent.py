"""The support agent as a LangChain v1 agent (`create_agent`), with toolcast's middleware under it.

    pip install 'toolcast[langchain]'         # or: make install
    .venv/bin/python examples/langchain_agent.py [--quick]

The model is LangChain's own fake chat model replaying the recorded LLM (its calls and thinking time);
the tools are the support world's real ones (`support_world.py`). The only toolcast line is the
middleware: `speculation_middleware(tools, contracts, runtime=...)` (see `framework_harness.py` for the
serial-against-speculative comparison this prints).
"""

from __future__ import annotations

import asyncio
import sys

from framework_harness import contracts_of, main, plain, user_and_turns
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import StructuredTool

from toolcast.adapters.langchain import speculation_middleware


class ReplayedChatModel(GenericFakeChatModel):
    """LangChain's fake chat model, thinking each turn's recorded time before answering."""

    thinks: list[float]

    def bind_tools(self, tools, **kwargs):
        return self

    async def _agenerate(self, messages, stop=None, run_manager=None, **kwargs):
        turn = sum(isinstance(m, AIMessage) for m in messages)
        await asyncio.sleep(self.thinks[turn])
        return self._generate(messages, stop, run_manager, **kwargs)


async def run_session(session, tools, runtime, scale) -> list[str]:
    user, turns = user_and_turns(session)
    replies = [AIMessage(t.text, tool_calls=[{"name": n, "args": a, "id": f"{session.id}-{i}.{k}"}
                                             for k, (n, a) in enumerate(t.calls)])
               for i, t in enumerate(turns)]
    model = ReplayedChatModel(messages=iter(replies), thinks=[t.think * scale for t in turns])
    lc_tools = [StructuredTool.from_function(plain(t), name=t.name, description=t.description,
                                             args_schema=t.parameters) for t in tools]
    middleware = [] if runtime is None else [speculation_middleware(lc_tools, contracts_of(tools),
                                                                    runtime=runtime)]
    agent = create_agent(model, lc_tools, middleware=middleware)
    out = await agent.ainvoke({"messages": [("user", user)]}, {"recursion_limit": 100})
    return [str(m.content) for m in out["messages"] if isinstance(m, ToolMessage)]


if __name__ == "__main__":
    sys.exit(main("LangChain create_agent", run_session))
