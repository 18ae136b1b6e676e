"""toolcast.adapters: the speculation runtime under the agents people run.

One module per framework, each imported on its own (its framework is an extra: `toolcast[langchain]`,
`toolcast[openai-agents]`, `toolcast[pydantic-ai]`, `toolcast[mcp]`); this package imports none of them,
and `toolcast.runtime` never imports this package.

- `toolcast.adapters.langchain`: `speculation_middleware(...)` for LangChain v1 `create_agent` (and
  LangGraph's `ToolNode`);
- `toolcast.adapters.openai_agents`: `speculate(agent, ...)` for the OpenAI Agents SDK;
- `toolcast.adapters.pydantic_ai`: `speculation_capability(...)` for pydantic-ai agents;
- `toolcast.adapters.mcp_proxy`: the MCP proxy behind `toolcast mcp-proxy`.
"""
