"""What every adapter shares: a framework's tool call routed through `SpeculativeRuntime`.

A framework hands an adapter each real tool call together with a way to run it (LangChain's handler,
pydantic-ai's wrapped toolset, the OpenAI Agents SDK's `on_invoke_tool`, an MCP upstream). The adapter
registers every tool with the runtime once, as a `Tool` whose function runs it *bare* (without the
framework's per-call machinery), which is what a speculative run does. A real call goes through
`runtime.call` so the runtime can serve it from a matching speculative result, join one in flight, or run
it; in the last case the runtime's run of the tool calls the framework's own handler instead of the bare
function. Which of the two a run is comes from a context variable that the real call sets (asyncio copies
it into the tasks the call creates, e.g. a hedged run) and marks finished when the call returns, so a
speculative run started afterwards never sees it as its own.

Speculative runs of frameworks whose tools need the run's context (pydantic-ai's `RunContext`, the OpenAI
Agents SDK's `RunContextWrapper`) get the session they belong to from the same context variables: the
runtime starts speculation from the call (or user message) that reached the decision point. The runtime
knows tools by name only, so several adapters may share one runtime (agents built per request): a tool
is registered with the runtime once, by the first adapter (the runtime refuses a second tool of one
name; the others reuse it, and must give it the same contract), and each session is routed to the bare
runs of the adapter that started it. A speculative run that cannot find its
session raises, which the runtime never shows to the agent.

Only the runtime's public API is used: `start_session`, `observe`, `observe_user`, `call`, `end_session`,
and `toolcast.runtime.stream.StreamFeeder` for the model's stream deltas (fed inside `in_session`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from toolcast.data.schema import ToolSpec
from toolcast.runtime import DENY, ContractPolicy, SpeculativeRuntime, Tool, ToolContract

log = logging.getLogger("toolcast.adapters")

Contracts = Mapping[str, ToolContract] | ContractPolicy | None
"""Per-tool contracts: a mapping by tool name, a `ContractPolicy` (names and glob patterns), or None.
A tool without one never runs ahead (deny)."""

BareRun = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""`run(session, args)`: the tool run on its own, as a speculative run does."""


class Result(str):
    """A tool result as text (what the runtime logs and the predictor reads) carrying the framework's own
    result object (a LangChain `ToolMessage`, an MCP `CallToolResult`) in `value`."""

    value: Any

    def __new__(cls, text: str, value: Any) -> Result:
        obj = super().__new__(cls, text)
        obj.value = value
        return obj


@dataclass(eq=False)
class _RealCall:
    session: str
    tool: str
    run: Callable[[], Awaitable[Any]]
    active: bool = True


_REAL: ContextVar[_RealCall | None] = ContextVar("toolcast_adapter_real_call", default=None)
_SESSION: ContextVar[str | None] = ContextVar("toolcast_adapter_session", default=None)
_ROUTES: WeakKeyDictionary[SpeculativeRuntime, dict[str, dict[str, BareRun]]] = WeakKeyDictionary()
"""Per runtime: session -> the bare runs (by tool name) of the adapter that started the session."""
_REGISTERED: WeakKeyDictionary[SpeculativeRuntime, dict[str, Tool]] = WeakKeyDictionary()
"""Per runtime: the tools the adapters registered with it (shared by the adapters on that runtime)."""


def policy_of(contracts: Contracts) -> ContractPolicy:
    if contracts is None:
        return ContractPolicy()
    if isinstance(contracts, ContractPolicy):
        return contracts
    if not isinstance(contracts, Mapping):
        raise TypeError(f"contracts: expected a mapping of tool name to ToolContract or a ContractPolicy, "
                        f"got {type(contracts).__name__}")
    for name, c in contracts.items():
        if not isinstance(c, ToolContract):
            raise TypeError(f"contracts[{name!r}]: expected a ToolContract, got {type(c).__name__}")
    return ContractPolicy(tools=dict(contracts))


class Bridge:
    """One runtime, the tools registered with it, and the calls and messages of the agents' sessions."""

    def __init__(self, runtime: SpeculativeRuntime, contracts: Contracts = None):
        self.runtime = runtime
        self.policy = policy_of(contracts)
        self.tools: dict[str, Tool] = {}
        self._bare: dict[str, BareRun] = {}
        self._routes = _ROUTES.setdefault(runtime, {})
        self._prune_at = 64

    def register(self, spec: ToolSpec, run_bare: BareRun, contract: ToolContract | None = None) -> Tool:
        """Register a framework tool. `contract` overrides the policy's (e.g. one from MCP annotations)."""
        name = spec.name
        if name in self.tools:
            raise ValueError(f"two tools named {name!r} in one agent")
        self._bare[name] = run_bare
        routes = self._routes

        async def run(**args: Any) -> Any:
            real = _REAL.get()
            if real is not None and real.active and real.tool == name:
                return await real.run()
            session = real.session if real is not None else _SESSION.get()
            bare = routes.get(session, {}).get(name) if session is not None else None
            if bare is None:
                raise RuntimeError(f"speculative run of {name!r} outside any open session ({session})")
            return await bare(session, args)

        contract = contract if contract is not None else self.policy.for_tool(name)
        registered = _REGISTERED.setdefault(self.runtime, {})
        tool = registered.get(name)
        if tool is not None:  # another adapter on this runtime registered it: its sessions route by session
            if tool.contract != contract:
                raise ValueError(f"tool {name!r}: another adapter on this runtime registered it with the "
                                 f"contract {tool.contract}; this one gives {contract}")
            self.tools[name] = tool
            return tool
        tool = Tool(name, run, dict(spec.parameters), spec.description, contract, dict(spec.annotations))
        self.runtime.add_tool(tool)
        registered[name] = tool
        self.tools[name] = tool
        if contract is not DENY:
            log.debug("tool %s: %s", name, contract.why_not() or "may run ahead")
        return tool

    # ---- sessions ----
    def start(self, session: str, *, model: str | None = None, metadata: Mapping[str, Any] | None = None
              ) -> None:
        self._prune()
        self._routes[session] = self._bare
        self.runtime.start_session(session, model=model, metadata=metadata)

    def _prune(self) -> None:
        """Forget the routes of sessions the runtime has ended on its own (idle past `session_idle_s`, or
        beyond `max_sessions`): an adapter that never ends its sessions (a plain LangGraph `ToolNode`, an
        MCP client, a run that raised) must not grow the routes without bound. Amortised: only once they
        have doubled since the last time. A session the agent goes on with gets its route back at its
        next call."""
        if len(self._routes) <= self._prune_at:
            return
        live = set(self.runtime.session_ids())
        for session in [s for s in self._routes if s not in live]:
            del self._routes[session]
        self._prune_at = 2 * len(self._routes) + 64

    def user(self, session: str, text: str) -> None:
        """The user's message: a decision point, so speculation starts (in this session's context)."""
        self._routes.setdefault(session, self._bare)
        token = _SESSION.set(session)
        try:
            self.runtime.observe_user(session, text)
        finally:
            _SESSION.reset(token)

    @contextmanager
    def in_session(self, session: str) -> Iterator[None]:
        """Code that may start speculative runs for `session` outside a real call (a `StreamFeeder` fed
        the model's stream deltas): the runs it starts find their session."""
        self._routes.setdefault(session, self._bare)
        token = _SESSION.set(session)
        try:
            yield
        finally:
            _SESSION.reset(token)

    def assistant(self, session: str, text: str = "") -> None:
        """The LLM finished a message (its text, maybe empty, before the calls it issues)."""
        self.runtime.observe(session, "assistant", text)

    async def end(self, session: str) -> None:
        self._routes.pop(session, None)
        await self.runtime.end_session(session)

    async def call(self, session: str, tool: str, args: Mapping[str, Any],
                   run: Callable[[], Awaitable[Any]]) -> Any:
        """The agent's real call: served from speculation on an exact match, else `run()` (the framework's
        own execution). Returns what `run()` returns (or what a bare run returned, for a served call); a
        `Result` comes back as its `value`."""
        self._routes.setdefault(session, self._bare)  # pruned after the runtime ended it: it goes on
        real = _RealCall(session, tool, run)
        token = _REAL.set(real)
        try:
            result = await self.runtime.call(session, tool, args)
        finally:
            real.active = False
            _REAL.reset(token)
        if isinstance(result, Result):  # the runtime's log keeps the text, not the framework's object
            value, result.value = result.value, None
            return value
        return result
