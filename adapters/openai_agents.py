"""The OpenAI Agents SDK on toolcast's speculation runtime.

    from agents import Runner
    from toolcast.adapters.openai_agents import speculate

    spec = speculate(agent, contracts={"get_order": read_only(30)}, predictor=predictor)
    result = await Runner.run(spec.agent, "Where is my order W123?", hooks=spec.hooks)
    print(spec.runtime.stats.table())

`speculate` returns a copy of the agent whose `FunctionTool`s have their `on_invoke_tool` wrapped, and
`RunHooks` that report to the runtime the run's user messages (in `on_llm_start`, before the model is
called: speculation begins while it generates) and the model's text (`on_llm_end`). Each real tool call
goes through `runtime.call`: an exact (tool, arguments) match with a speculative result is served from it;
anything else runs the tool's original `on_invoke_tool` (the SDK's validation, failure handling and
timeouts), as without toolcast. A speculative run calls the same original `on_invoke_tool` with the
predicted arguments and a `ToolContext` over the run's own context object. One run is one session (the
run's `RunContextWrapper`, which the SDK hands to every hook and tool of the run).

Streamed runs (`Runner.run_streamed(spec.agent, ..., hooks=spec.hooks)` or `spec.run_streamed(...)`):
when the agent's model is a `Model` object (not a model name), the copy's model is wrapped so that every
Responses event it streams goes to a `toolcast.runtime.stream.StreamFeeder` for the run's session before
the SDK sees it: a read-only call starts as soon as its arguments parse complete, and the SDK's call of it
joins the run; a stream that fails or ends incomplete discards what it started.

Only the agent's own function tools are wrapped (not hosted tools, not the tools of handoff targets);
hooks you already use can be chained with `speculate(..., hooks=your_hooks)`.
"""

from __future__ import annotations

import copy
import json
import logging
import uuid
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, FunctionTool, RunContextWrapper, RunHooks, Runner
from agents.models.interface import Model
from agents.tool_context import ToolContext
from agents.usage import Usage

from toolcast.adapters.bridge import Bridge, Contracts
from toolcast.data.schema import ToolSpec
from toolcast.predictor.protocol import Predictor
from toolcast.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.stream import StreamFeeder

log = logging.getLogger("toolcast.adapters.openai_agents")

_SPEC_CALL_ID = "toolcast-speculative"
_STARTED: ContextVar[list[int] | None] = ContextVar("toolcast_openai_agents_started", default=None)
MAX_OPEN_RUNS = 1024
"""Runs kept open at once; the oldest is closed beyond it (a run that raised never reaches its end hook)."""


@dataclass(eq=False)
class _Run:
    session: str
    context: RunContextWrapper[Any]
    users_seen: int = 0
    llm_input: Any = None
    """The input of the run's current model call (the SDK hands the same list to the model)."""


def item_text(content: Any) -> str:
    """The text of a Responses input/output item's content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") if isinstance(p, Mapping) else getattr(p, "text", None) for p in content]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)


class SpeculationHooks(RunHooks):
    """Reports each run's messages to the runtime and ends its session with the run."""

    def __init__(self, bridge: Bridge, model: str | None = None, chained: RunHooks | None = None):
        self.bridge = bridge
        self.model = model
        self.chained = chained
        self._runs: dict[int, _Run] = {}

    def run_of(self, context: RunContextWrapper[Any]) -> _Run:
        """The run a context belongs to: every context of a run shares the run's `usage` object."""
        key = id(context.usage)
        run = self._runs.get(key)
        if run is None:
            if len(self._runs) >= MAX_OPEN_RUNS:
                self._runs.pop(next(iter(self._runs)))
            run = self._runs[key] = _Run(f"oa-{uuid.uuid4().hex[:12]}", context)
            self.bridge.start(run.session, model=self.model)
            started = _STARTED.get()
            if started is not None:  # inside `Speculation.run`: it ends the session however the run ends
                started.append(key)
        return run

    def run_of_input(self, input_items: Any) -> _Run | None:
        """The run whose model call this is: `on_llm_start` saw the same input object."""
        return next((r for r in self._runs.values() if r.llm_input is input_items), None)

    async def end_runs(self, keys: list[int]) -> None:
        for key in keys:
            run = self._runs.pop(key, None)
            if run is not None:
                await self.bridge.end(run.session)

    async def on_llm_start(self, context, agent, system_prompt, input_items) -> None:
        run = self.run_of(context)
        users = [i for i in input_items if _field(i, "role") == "user"]
        for item in users[run.users_seen:]:
            self.bridge.user(run.session, item_text(_field(item, "content")))
        run.users_seen = len(users)
        run.llm_input = input_items
        if self.chained is not None:
            await self.chained.on_llm_start(context, agent, system_prompt, input_items)

    async def on_llm_end(self, context, agent, response) -> None:
        run = self.run_of(context)
        texts = [item_text(_field(i, "content")) for i in response.output if _field(i, "type") == "message"]
        self.bridge.assistant(run.session, "\n".join(t for t in texts if t))
        if self.chained is not None:
            await self.chained.on_llm_end(context, agent, response)

    async def on_agent_end(self, context, agent, output) -> None:
        run = self._runs.pop(id(context.usage), None)
        if run is not None:
            await self.bridge.end(run.session)
        if self.chained is not None:
            await self.chained.on_agent_end(context, agent, output)

    # The rest only pass through to the chained hooks.
    async def on_agent_start(self, context, agent) -> None:
        if self.chained is not None:
            await self.chained.on_agent_start(context, agent)

    async def on_handoff(self, context, from_agent, to_agent) -> None:
        if self.chained is not None:
            await self.chained.on_handoff(context, from_agent, to_agent)

    async def on_tool_start(self, context, agent, tool) -> None:
        if self.chained is not None:
            await self.chained.on_tool_start(context, agent, tool)

    async def on_tool_end(self, context, agent, tool, result) -> None:
        if self.chained is not None:
            await self.chained.on_tool_end(context, agent, tool, result)


@dataclass
class Speculation:
    """What `speculate` returns: run `agent` with `hooks` (or call `run`)."""

    agent: Agent[Any]
    hooks: SpeculationHooks
    runtime: SpeculativeRuntime
    tools: list[str] = field(default_factory=list)
    """The function tools routed through the runtime."""

    async def run(self, input: Any, **kwargs: Any) -> Any:
        """`Runner.run(self.agent, input, hooks=self.hooks, **kwargs)`; the run's session ends with it even
        when the run raises (the SDK calls no end hook then)."""
        started: list[int] = []
        token = _STARTED.set(started)
        try:
            return await Runner.run(self.agent, input, hooks=self.hooks, **kwargs)
        finally:
            _STARTED.reset(token)
            await self.hooks.end_runs(started)

    def run_streamed(self, input: Any, **kwargs: Any) -> Any:
        """`Runner.run_streamed(self.agent, input, hooks=self.hooks, **kwargs)`: the model's stream deltas
        go to the runtime too (see the module's docstring). The session ends with the run's end hook (a run
        that fails is ended by the runtime when idle)."""
        return Runner.run_streamed(self.agent, input, hooks=self.hooks, **kwargs)


class StreamingModel(Model):
    """The agent's model, its streamed Responses events also fed to the run's session (`StreamFeeder`)."""

    def __init__(self, inner: Model, hooks: SpeculationHooks):
        self.inner = inner
        self.hooks = hooks

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        return await self.inner.get_response(*args, **kwargs)

    async def stream_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> Any:
        events = self.inner.stream_response(system_instructions, input, *args, **kwargs)
        run = self.hooks.run_of_input(input)
        if run is None:  # not a run under these hooks: pass through
            async for event in events:
                yield event
            return
        bridge = self.hooks.bridge
        feeder = StreamFeeder(bridge.runtime, run.session)
        finished = False
        try:
            async for event in events:
                with bridge.in_session(run.session):
                    feeder.openai_response_event(event)
                yield event
            finished = True
        finally:
            with bridge.in_session(run.session):
                if finished:
                    feeder.finish()
                else:
                    feeder.abort()

    def get_retry_advice(self, request: Any) -> Any:
        return self.inner.get_retry_advice(request)

    async def close(self) -> None:
        await self.inner.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.inner._cleanup_on_run_end(owner)  # noqa: SLF001 - the SDK's own hook, passed on


def _wrap(tool: FunctionTool, bridge: Bridge, hooks: SpeculationHooks) -> FunctionTool:
    original = tool.on_invoke_tool
    name = tool.name

    async def bare(session: str, args: dict[str, Any]) -> Any:
        run = next((r for r in hooks._runs.values() if r.session == session), None)
        if run is None:
            raise RuntimeError(f"session {session} has ended")
        text = json.dumps(args, ensure_ascii=False)
        ctx = ToolContext(run.context.context, Usage(), name, _SPEC_CALL_ID, text)
        return await original(ctx, text)

    async def on_invoke_tool(ctx: ToolContext[Any], input_json: str) -> Any:
        try:
            args = json.loads(input_json) if input_json else {}
        except ValueError:
            args = None
        if not isinstance(args, dict):  # malformed arguments: the SDK reports them as it always does
            return await original(ctx, input_json)
        session = hooks.run_of(ctx).session
        return await bridge.call(session, name, args, lambda: original(ctx, input_json))

    bridge.register(ToolSpec(name, tool.description, dict(tool.params_json_schema)), bare)
    wrapped = copy.copy(tool)
    wrapped.on_invoke_tool = on_invoke_tool
    return wrapped


def speculate(agent: Agent[Any], contracts: Contracts = None, predictor: Predictor | None = None,
              config: RuntimeConfig | None = None, *, runtime: SpeculativeRuntime | None = None,
              hooks: RunHooks | None = None, model: str | None = None) -> Speculation:
    """Put the speculation runtime under an OpenAI Agents SDK agent (see the module's docstring).

    contracts: per tool name, what it promises (`toolcast.runtime.read_only(...)`); default deny.
    predictor: ranks the next calls (`toolcast.predictor.Predictor.load(DIR)`); None = no speculation.
    config: the runtime's settings; runtime: an existing runtime to share (then `predictor` and `config`
    are ignored). hooks: your own `RunHooks`, still called. model: the LLM's name (for think-time
    estimates; default the agent's model when it is a string).
    """
    rt = runtime or SpeculativeRuntime((), predictor, config)
    bridge = Bridge(rt, contracts)
    model = model or (agent.model if isinstance(agent.model, str) else None)
    run_hooks = SpeculationHooks(bridge, model, hooks)
    tools, names = [], []
    for t in agent.tools:
        if isinstance(t, FunctionTool):
            tools.append(_wrap(t, bridge, run_hooks))
            names.append(t.name)
        else:
            tools.append(t)
    changes: dict[str, Any] = {"tools": tools}
    if isinstance(agent.model, Model):
        changes["model"] = StreamingModel(agent.model, run_hooks)
    return Speculation(agent.clone(**changes), run_hooks, rt, names)
