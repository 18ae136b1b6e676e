"""LangChain v1 agents and LangGraph's `ToolNode` on toolcast's speculation runtime.

    from langchain.agents import create_agent
    from toolcast.adapters.langchain import speculation_middleware

    spec = speculation_middleware(tools, contracts={"get_order": read_only(30)}, predictor=predictor)
    agent = create_agent(model, tools, middleware=[spec])
    await agent.ainvoke({"messages": [("user", "...")]})
    print(spec.runtime.stats.table())

`speculation_middleware` returns an `AgentMiddleware` whose hooks report the user's messages (before the
agent starts: speculation begins while the model generates) and the model's messages to the runtime, and
whose `awrap_tool_call` routes each real tool call through `runtime.call`: an exact (tool, arguments) match
with a speculative result is served from it, anything else runs through LangChain's own handler (the
`ToolNode`, other middleware, error handling) as it would without toolcast. A speculative run invokes the
`BaseTool` itself with the predicted arguments; a tool that needs injected arguments (graph state, the
store, `ToolRuntime`) is never run ahead, whatever its contract says.

A speculative run gets none of the agent's callbacks (it is private: it never shows in `astream_events`
or the agent's tracer); a call served from speculation ran no tool for the agent, so it shows no tool
events either, only its `ToolMessage`.

LangGraph without `create_agent`: pass the same object's hook to the node,
`ToolNode(tools, awrap_tool_call=spec.awrap_tool_call)`; messages are then read from the graph state at
each tool call, so speculation starts after the first tool result instead of at the user's message.

When the model streams (the agent run with `astream(..., stream_mode="messages")`, or a model built with
`streaming=True`), `awrap_model_call` also feeds each `AIMessageChunk` (its text, its `tool_call_chunks`'
argument fragments) to a `toolcast.runtime.stream.StreamFeeder` for the session: a read-only call starts
as soon as its arguments parse complete, and the agent's call of it joins that run; a model call that
raises or stops truncated (`finish_reason` "length") discards what its stream started. (A plain
`ToolNode` sees no model call: nothing is streamed to the runtime there.)

Async agents only (`ainvoke`, `astream`): the runtime lives on the agent's event loop.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Annotated, Any, NotRequired
from uuid import UUID

from langchain.agents.middleware import AgentMiddleware, AgentState
from langchain.agents.middleware.types import PrivateStateAttr
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as as_tool
from langchain_core.tracers.context import register_configure_hook
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.prebuilt.tool_node import ToolCallRequest

from toolcast.adapters.bridge import Bridge, Contracts, Result
from toolcast.data.schema import ToolSpec
from toolcast.predictor.protocol import Predictor
from toolcast.runtime import DENY, RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.stream import TRUNCATED, StreamFeeder

log = logging.getLogger("toolcast.adapters.langchain")

SESSION_KEY = "toolcast_session"
_SPEC_CALL_ID = "toolcast-speculative"
_PRIVATE = {"callbacks": [], "tags": ["toolcast-speculative"], "run_name": "toolcast-speculative"}
"""A speculative run's config: none of the agent's callbacks (its stream, its tracer), which it would
otherwise inherit from the real call it was started from; its result stays private until served."""


class StreamFeed(AsyncCallbackHandler):
    """The chunks one model call streams, fed to the session's `StreamFeeder` (only that call's: a model
    run inside a tool started meanwhile inherits the handler and is ignored)."""

    run_inline = True

    def __init__(self, bridge: Bridge, session: str):
        self.bridge = bridge
        self.session = session
        self.feeder = StreamFeeder(bridge.runtime, session)
        self.run_id: UUID | None = None

    async def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any
                                  ) -> None:
        if self.run_id is None:
            self.run_id = run_id

    async def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID, **kwargs: Any) -> None:
        message = getattr(chunk, "message", None)
        if run_id != self.run_id or not isinstance(message, AIMessageChunk):
            return
        with self.bridge.in_session(self.session):
            self.feeder.text_delta(message.text)
            for i, tc in enumerate(message.tool_call_chunks):
                index = tc.get("index")
                self.feeder.call_delta(index if index is not None else tc.get("id") or i,
                                       name=tc.get("name"), arguments=tc.get("args") or "")

    def end(self, ok: bool) -> None:
        with self.bridge.in_session(self.session):
            self.feeder.finish() if ok else self.feeder.abort()


_FEED: ContextVar[StreamFeed | None] = ContextVar("toolcast_langchain_stream_feed", default=None)
register_configure_hook(_FEED, inheritable=False)  # LangChain adds the handler to runs started under it


def _truncated(response: Any) -> bool:
    messages = getattr(response, "result", None) or [response]
    meta = [getattr(m, "response_metadata", None) or {} for m in messages if isinstance(m, AIMessage)]
    return any(m.get("finish_reason") in TRUNCATED or m.get("stop_reason") in TRUNCATED for m in meta)


class SpeculationState(AgentState):
    toolcast_session: NotRequired[Annotated[str, PrivateStateAttr]]


def content_text(content: Any) -> str:
    """A message's content as text (content blocks as JSON)."""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)


def tool_spec(tool: BaseTool) -> ToolSpec:
    fn = convert_to_openai_tool(tool)["function"]
    return ToolSpec(tool.name, fn.get("description", ""), fn.get("parameters", {}))


def needs_injection(tool: BaseTool) -> bool:
    """Does the tool take arguments the model does not give (state, store, `ToolRuntime`, call id)?"""
    schema = tool.tool_call_schema
    schema = schema if isinstance(schema, dict) else schema.model_json_schema()
    return bool(set(tool.args) - set(schema.get("properties", {})))


class SpeculationMiddleware(AgentMiddleware):
    """Routes an agent's tool calls through a `SpeculativeRuntime` (see the module's docstring)."""

    state_schema = SpeculationState

    def __init__(self, tools: Sequence[BaseTool | Callable[..., Any]], runtime: SpeculativeRuntime,
                 contracts: Contracts = None, model: str | None = None):
        super().__init__()
        self.tools = []  # the tools are the agent's own: none added
        self.bridge = Bridge(runtime, contracts)
        self.model = model
        self._lc_tools: dict[str, BaseTool] = {}
        self._seen: dict[str, int] = {}
        """Session -> messages reported. A plain `ToolNode` never ends its sessions: see `_sync`."""
        self._prune_at = 64
        for t in tools:
            t = t if isinstance(t, BaseTool) else as_tool(t)
            contract = None
            if needs_injection(t) and self.bridge.policy.for_tool(t.name).speculable:
                log.warning("tool %s takes injected arguments: it never runs ahead", t.name)
                contract = DENY
            self._lc_tools[t.name] = t
            self.bridge.register(tool_spec(t), self._bare(t), contract)

    @property
    def runtime(self) -> SpeculativeRuntime:
        return self.bridge.runtime

    def _bare(self, tool: BaseTool):
        async def run(session: str, args: dict[str, Any]) -> Result:
            call = {"type": "tool_call", "name": tool.name, "args": args, "id": _SPEC_CALL_ID}
            out = await tool.ainvoke(call, _PRIVATE)
            if not isinstance(out, ToolMessage):  # e.g. a Command: not a result that can be handed over
                raise TypeError(f"{tool.name} returned {type(out).__name__}, not a ToolMessage")
            return Result(content_text(out.content), out)
        return run

    # ---- messages ----
    def _sync(self, session: str, messages: Sequence[BaseMessage]) -> None:
        """Report the conversation's messages the runtime has not seen yet (user and model turns)."""
        if session not in self._seen:
            if len(self._seen) > self._prune_at:  # sessions the runtime ended on its own (idle): forget
                live = set(self.runtime.session_ids())  # them; one that goes on is reported afresh
                self._seen = {s: n for s, n in self._seen.items() if s in live}
                self._prune_at = 2 * len(self._seen) + 64
            self.bridge.start(session, model=self.model)
            self._seen[session] = 0
        for m in messages[self._seen[session]:]:
            if isinstance(m, HumanMessage):
                self.bridge.user(session, content_text(m.content))
            elif isinstance(m, AIMessage):
                self.bridge.assistant(session, m.text if isinstance(m.text, str) else "")
        self._seen[session] = len(messages)

    async def abefore_agent(self, state: SpeculationState, runtime: Any) -> dict[str, Any] | None:
        session = state.get(SESSION_KEY) or f"lc-{uuid.uuid4().hex[:12]}"
        self._sync(session, state["messages"])
        return None if state.get(SESSION_KEY) else {SESSION_KEY: session}

    async def aafter_model(self, state: SpeculationState, runtime: Any) -> dict[str, Any] | None:
        session = state.get(SESSION_KEY)
        if session is not None:
            self._sync(session, state["messages"])
        return None

    async def aafter_agent(self, state: SpeculationState, runtime: Any) -> dict[str, Any] | None:
        session = state.get(SESSION_KEY)
        if session is not None and self._seen.pop(session, None) is not None:
            await self.bridge.end(session)
        return None

    async def awrap_model_call(self, request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        """The model call: what it streams goes to the runtime (see the module's docstring)."""
        state = request.state if isinstance(request.state, dict) else {}
        session = state.get(SESSION_KEY)
        if session is None:
            return await handler(request)
        feed = StreamFeed(self.bridge, session)
        token = _FEED.set(feed)
        ok = False
        try:
            response = await handler(request)
            ok = not _truncated(response)
            return response
        finally:
            _FEED.reset(token)
            feed.end(ok)

    # ---- tool calls ----
    def _session_of(self, request: ToolCallRequest) -> str:
        state = request.state if isinstance(request.state, dict) else {}
        session = state.get(SESSION_KEY)
        if session is None:  # a plain ToolNode: one session per graph thread
            config = getattr(request.runtime, "config", None) or {}
            session = f"lg-{config.get('configurable', {}).get('thread_id', 'default')}"
        if "messages" in state:
            self._sync(session, state["messages"])
        return session

    async def awrap_tool_call(self, request: ToolCallRequest,
                              handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Any]]) -> Any:
        call = request.tool_call
        name = call["name"]
        if name not in self.bridge.tools:  # not one of ours: LangChain handles it as usual
            return await handler(request)
        session = self._session_of(request)

        async def run_real() -> Result:
            out = await handler(request)
            return Result(content_text(out.content) if isinstance(out, ToolMessage) else "", out)

        out = await self.bridge.call(session, name, call.get("args") or {}, run_real)
        if isinstance(out, ToolMessage) and out.tool_call_id == _SPEC_CALL_ID:  # served from speculation
            out = out.model_copy(update={"tool_call_id": call["id"]})
        return out


def speculation_middleware(tools: Sequence[BaseTool | Callable[..., Any]], contracts: Contracts = None,
                           predictor: Predictor | None = None, config: RuntimeConfig | None = None, *,
                           runtime: SpeculativeRuntime | None = None,
                           model: str | None = None) -> SpeculationMiddleware:
    """Middleware for `create_agent(model, tools, middleware=[...])` that runs likely calls ahead.

    tools: the agent's tools (the same list given to `create_agent`).
    contracts: per tool name, what it promises (`toolcast.runtime.read_only(...)`); default deny.
    predictor: ranks the next calls (`toolcast.predictor.Predictor.load(DIR)`); None = no speculation.
    config: the runtime's settings; runtime: an existing runtime to share instead (then `predictor` and
    `config` are ignored). model: the agent's LLM name (the runtime's think-time estimates are per model).
    The runtime's statistics are `middleware.runtime.stats`.
    """
    rt = runtime or SpeculativeRuntime((), predictor, config)
    return SpeculationMiddleware(tools, rt, contracts, model)
