"""pydantic-ai agents on toolcast's speculation runtime.

    from pydantic_ai import Agent
    from toolcast.adapters.pydantic_ai import speculation_capability

    spec = speculation_capability(contracts={"get_order": read_only(30)}, predictor=predictor)
    agent = Agent(model, tools=[get_order, cancel_order], capabilities=[spec])
    result = await agent.run("Where is my order W123?")
    print(spec.runtime.stats.table())

pydantic-ai's hooks, as this release has them (`pydantic_ai.capabilities.AbstractCapability`):

- `get_wrapper_toolset` wraps the run's toolset (a `WrapperToolset`): its `get_tools` is where the tools are
  registered with the runtime (name, description, JSON schema) and where the run's first step reports the
  user's prompt, before the first model request (speculation begins while the model generates);
- `after_model_request` reports the model's text;
- `wrap_tool_execute` routes each real call (its arguments as the model wrote them) through
  `runtime.call`: an exact (tool, arguments) match with a speculative result is served from it, skipping
  the inner execute lifecycle (the result is the tool's own return value); anything else runs pydantic-ai's
  own handler, as without toolcast;
- `wrap_run` ends the session when the run ends, however it ends;
- `get_wrapper_model` wraps the model: when the run streams (`agent.run_stream`, `agent.iter` with
  `node.stream`, an `event_stream_handler`), the model's stream events (text deltas, tool-call argument
  fragments) go to a `toolcast.runtime.stream.StreamFeeder` for the session, so a read-only call starts as
  soon as its arguments parse complete and the agent's call of it joins that run; a stream that raises or
  ends truncated (`finish_reason` "length") discards what it started. A run that does not stream is
  unchanged.

A speculative run validates the predicted arguments with the tool's own validator and calls the wrapped
toolset's `call_tool` with the run's context, as pydantic-ai does. Tools with a custom argument validator
and tools that are not plain function tools (deferred, needing approval) never run ahead.
Put the capability first in `capabilities=[...]` so it wraps the others (outermost).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import (
    ModelResponse,
    PartDeltaEvent,
    PartEndEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
    ThinkingPart,
    ThinkingPartDelta,
    ToolCallPart,
    ToolCallPartDelta,
)
from pydantic_ai.models import Model
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.toolsets import AbstractToolset, WrapperToolset
from pydantic_ai.toolsets.abstract import ToolsetTool

from toolcast.adapters.bridge import Bridge, Contracts
from toolcast.data.schema import ToolSpec
from toolcast.predictor.protocol import Predictor
from toolcast.runtime import DENY, RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.stream import TRUNCATED, StreamFeeder

log = logging.getLogger("toolcast.adapters.pydantic_ai")

_SPEC_CALL_ID = "toolcast-speculative"


@dataclass(eq=False)
class _Run:
    session: str
    toolset: AbstractToolset[Any]
    ctx: Any
    tools: dict[str, ToolsetTool[Any]] = field(default_factory=dict)


def session_of(ctx: Any) -> str:
    return f"pa-{ctx.run_id}" if getattr(ctx, "run_id", None) else f"pa-{id(ctx.usage)}"


def _args_text(args: Any) -> str:
    return args if isinstance(args, str) else json.dumps(args) if args else ""


class _FedStream:
    """A `StreamedResponse` as the agent sees it, its events also fed to the session's `StreamFeeder`."""

    def __init__(self, inner: Any, bridge: Bridge, session: str):
        self._inner, self._bridge, self._session = inner, bridge, session
        self._feeder = StreamFeeder(bridge.runtime, session)
        self._events: AsyncIterator[Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __aiter__(self) -> AsyncIterator[Any]:
        if self._events is None:
            self._events = self._fed()
        return self._events

    async def _fed(self) -> AsyncIterator[Any]:
        async for event in self._inner:
            with self._bridge.in_session(self._session):
                self._feed(event)
            yield event

    def _feed(self, event: Any) -> None:
        f = self._feeder
        if isinstance(event, PartStartEvent):
            part = event.part
            if isinstance(part, TextPart | ThinkingPart):
                f.text_delta(part.content)
            elif isinstance(part, ToolCallPart):
                f.call_delta(event.index, name=part.tool_name, arguments=_args_text(part.args))
        elif isinstance(event, PartDeltaEvent):
            delta = event.delta
            if isinstance(delta, TextPartDelta | ThinkingPartDelta):
                f.text_delta(delta.content_delta or "")
            elif isinstance(delta, ToolCallPartDelta):
                f.call_delta(event.index, name=delta.tool_name_delta, arguments=_args_text(delta.args_delta))
        elif isinstance(event, PartEndEvent):
            f.call_done(event.index)

    def end(self, ok: bool) -> None:
        if ok:
            response = self._inner.get()
            ok = getattr(response, "finish_reason", None) not in TRUNCATED
        with self._bridge.in_session(self._session):
            self._feeder.finish() if ok else self._feeder.abort()


@dataclass(init=False)
class StreamingModel(WrapperModel):
    """The run's model, whose streamed responses are fed to the runtime (see the module's docstring)."""

    capability: SpeculationCapability = field(default=None, repr=False)  # type: ignore[assignment]

    def __init__(self, wrapped: Model, capability: SpeculationCapability):
        super().__init__(wrapped)
        self.capability = capability

    @asynccontextmanager
    async def request_stream(self, messages: Any, model_settings: Any, model_request_parameters: Any,
                             run_context: Any = None) -> AsyncIterator[Any]:
        session = session_of(run_context) if run_context is not None else None
        async with self.wrapped.request_stream(messages, model_settings, model_request_parameters,
                                               run_context) as stream:
            if session not in self.capability.runs:
                yield stream
                return
            fed = _FedStream(stream, self.capability.bridge, session)
            ok = False
            try:
                yield fed
                ok = True
            finally:
                fed.end(ok)


@dataclass
class SpeculativeToolset(WrapperToolset[Any]):
    """The run's toolset, remembered per run so speculative runs can call it."""

    capability: SpeculationCapability = field(default=None, repr=False)  # type: ignore[assignment]

    async def get_tools(self, ctx: Any) -> dict[str, ToolsetTool[Any]]:
        tools = await self.wrapped.get_tools(ctx)
        self.capability.saw_tools(ctx, self.wrapped, tools)
        return tools


@dataclass
class SpeculationCapability(AbstractCapability[Any]):
    """Routes a pydantic-ai agent's tool calls through a `SpeculativeRuntime` (see the module)."""

    bridge: Bridge
    model: str | None = None
    runs: dict[str, _Run] = field(default_factory=dict, repr=False)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a live runtime: not spec-serializable

    @property
    def runtime(self) -> SpeculativeRuntime:
        return self.bridge.runtime

    # ---- tools and the run's first step ----
    def get_wrapper_toolset(self, toolset: AbstractToolset[Any]) -> AbstractToolset[Any] | None:
        return SpeculativeToolset(toolset, capability=self)

    def saw_tools(self, ctx: Any, toolset: AbstractToolset[Any], tools: dict[str, ToolsetTool[Any]]) -> None:
        for name, t in tools.items():
            if name not in self.bridge.tools and t.tool_def.kind == "function":
                plain = t.args_validator_func is None
                if not plain and self.bridge.policy.for_tool(name).speculable:
                    log.warning("tool %s has a custom argument validator: it never runs ahead", name)
                d = t.tool_def
                self.bridge.register(ToolSpec(name, d.description or "", dict(d.parameters_json_schema)),
                                     self._bare(name), None if plain else DENY)
        session = session_of(ctx)
        run = self.runs.get(session)
        if run is None:
            run = self.runs[session] = _Run(session, toolset, ctx)
            self.bridge.start(session, model=self.model)
            prompt = ctx.prompt if isinstance(ctx.prompt, str) else ""
            self.bridge.user(session, prompt)
        run.toolset, run.ctx, run.tools = toolset, ctx, tools

    def _bare(self, name: str):
        async def run(session: str, args: dict[str, Any]) -> Any:
            r = self.runs.get(session)
            tool = r.tools.get(name) if r is not None else None
            if tool is None:
                raise RuntimeError(f"{name}: not a tool of session {session} (or the run has ended)")
            ctx = dataclasses.replace(r.ctx, tool_name=name, tool_call_id=_SPEC_CALL_ID, retry=0)
            validated = tool.args_validator.validate_python(args, context=ctx.validation_context)
            return await r.toolset.call_tool(name, validated, ctx, tool)
        return run

    def get_wrapper_model(self, model: Model) -> Model | None:
        return StreamingModel(model, self)

    # ---- messages and the run's end ----
    async def after_model_request(self, ctx: Any, *, request_context: Any, response: ModelResponse
                                  ) -> ModelResponse:
        session = session_of(ctx)
        if session in self.runs:
            text = "".join(p.content for p in response.parts if isinstance(p, TextPart))
            self.bridge.assistant(session, text)
        return response

    async def wrap_run(self, ctx: Any, *, handler: Any) -> Any:
        try:
            return await handler()
        finally:
            session = session_of(ctx)
            if self.runs.pop(session, None) is not None:
                await self.bridge.end(session)

    # ---- the real calls ----
    async def wrap_tool_execute(self, ctx: Any, *, call: Any, tool_def: Any, args: Any, handler: Any) -> Any:
        session = session_of(ctx)
        if call.tool_name not in self.bridge.tools or session not in self.runs:
            return await handler(args)
        raw = call.args_as_dict()
        return await self.bridge.call(session, call.tool_name, raw, lambda: handler(args))


def speculation_capability(contracts: Contracts = None, predictor: Predictor | None = None,
                           config: RuntimeConfig | None = None, *, runtime: SpeculativeRuntime | None = None,
                           model: str | None = None) -> SpeculationCapability:
    """A capability for `Agent(..., capabilities=[...])` that runs likely tool calls ahead.

    contracts: per tool name, what it promises (`toolcast.runtime.read_only(...)`); default deny.
    predictor: ranks the next calls (`toolcast.predictor.Predictor.load(DIR)`); None = no speculation.
    config: the runtime's settings; runtime: an existing runtime to share (then `predictor` and `config`
    are ignored). model: the LLM's name (the runtime's think-time estimates are per model).
    The runtime's statistics are `capability.runtime.stats`.
    """
    rt = runtime or SpeculativeRuntime((), predictor, config)
    return SpeculationCapability(Bridge(rt, contracts), model)
