"""An MCP server that relays to upstream MCP servers and runs their read-only tools ahead.

Between any MCP client (a desktop app, an IDE, a coding agent) and its servers: the client connects to
the proxy (stdio or streamable HTTP); the proxy connects to each upstream (a command it starts, over stdio,
or a URL, over streamable HTTP) with the official MCP Python SDK, lists their tools, resources, resource
templates and prompts as its own, and relays each request to the upstream that has it. Tool calls go
through `SpeculativeRuntime.call`: after each tool result the predictor ranks the next calls and the
runtime runs the eligible ones ahead; a call that matches one exactly (tool, arguments) gets its result.

Eligibility is the runtime's rule for MCP (`ToolContract.from_mcp`): a tool's annotations count only for
an upstream named in `trust` (its `serverInfo.name`); there `readOnlyHint: true` makes it side-effect-free
and idempotent, fresh for `stable_for` seconds; every other tool, and every tool of an untrusted server,
never runs ahead. A speculative result that is an MCP error (`isError`) is never handed over: the client's
own call runs instead. An MCP client reports no user messages, so speculation starts after the first tool
result.
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.server.lowlevel import Server

from toolcast.adapters.bridge import Bridge, Result
from toolcast.data.schema import ToolSpec
from toolcast.predictor.protocol import Predictor
from toolcast.runtime import RuntimeConfig, SpeculativeRuntime, ToolContract

log = logging.getLogger("toolcast.adapters.mcp_proxy")

MAX_SESSIONS = 256
"""Client connections with a live runtime session; the oldest is ended beyond it."""


class ProxyError(RuntimeError):
    """An upstream cannot be reached or its tools cannot be relayed (names the upstream)."""


@dataclass
class Upstream:
    target: str
    """The command line (stdio) or URL (streamable HTTP) given by the user."""
    client: Client
    name: str = ""
    """The server's own name (`serverInfo.name`): what `--trust` matches."""
    tools: list[types.Tool] = field(default_factory=list)
    resources: list[types.Resource] = field(default_factory=list)
    templates: list[types.ResourceTemplate] = field(default_factory=list)
    prompts: list[types.Prompt] = field(default_factory=list)


def client_for(target: str) -> Client:
    """A client for `target`: an http(s) URL, or a command line started over stdio."""
    if target.startswith(("http://", "https://")):
        return Client(target, cache=None)
    argv = shlex.split(target)
    if not argv:
        raise ProxyError("--upstream: empty command")
    # The upstream inherits the proxy's environment (its API keys), as it would from the client itself.
    return Client(StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ)), cache=None)


def result_text(result: types.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def _all(fetch, attr: str) -> list[Any]:
    """Every page of a paginated list request."""
    items, cursor = [], None
    while True:
        page = await fetch(cursor=cursor) if cursor else await fetch()
        items += getattr(page, attr)
        cursor = page.next_cursor
        if not cursor:
            return items


class McpProxy:
    """The proxy's state: upstream clients, the runtime, and the routing tables."""

    def __init__(self, targets: Sequence[str], *, trust: Iterable[str] = (),
                 predictor: Predictor | None = None,
                 config: RuntimeConfig | None = None, stable_for: float = 30.0):
        if not targets:
            raise ProxyError("no upstream server: give at least one --upstream CMD|URL")
        self.targets = list(targets)
        self.trust = set(trust)
        self.stable_for = stable_for
        self.runtime = SpeculativeRuntime((), predictor, config)
        self.bridge = Bridge(self.runtime)
        self.upstreams: list[Upstream] = []
        self._tool_owner: dict[str, Upstream] = {}
        self._prompt_owner: dict[str, Upstream] = {}
        self._resource_owner: dict[str, Upstream] = {}
        self._sessions: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> McpProxy:
        try:
            for target in self.targets:
                up = Upstream(target, client_for(target))
                try:
                    await self._stack.enter_async_context(up.client)
                    await self._discover(up)
                except ProxyError:
                    raise
                except Exception as e:  # noqa: BLE001 - any failure to connect is one clear line
                    while getattr(e, "exceptions", None):  # anyio's task groups wrap the cause
                        e = e.exceptions[0]
                    raise ProxyError(f"upstream {target!r}: cannot connect: "
                                     f"{type(e).__name__}: {e}") from None
                self.upstreams.append(up)
            unknown = self.trust - {u.name for u in self.upstreams}
            if unknown:
                log.warning("--trust %s: no upstream of that name (upstreams: %s)",
                            ", ".join(sorted(unknown)),
                            ", ".join(u.name for u in self.upstreams))
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.runtime.aclose()
        finally:
            await self._stack.aclose()

    async def _discover(self, up: Upstream) -> None:
        c = up.client
        info = c.server_info
        up.name = info.name if info is not None else up.target
        caps = c.server_capabilities
        if caps.tools is not None:
            up.tools = await _all(c.list_tools, "tools")
        if caps.resources is not None:
            up.resources = await _all(c.list_resources, "resources")
            up.templates = await _all(c.list_resource_templates, "resource_templates")
        if caps.prompts is not None:
            up.prompts = await _all(c.list_prompts, "prompts")
        trusted = up.name in self.trust
        for t in up.tools:
            if t.name in self._tool_owner:
                raise ProxyError(f"tool {t.name!r} is served by both {self._tool_owner[t.name].name!r} and "
                                 f"{up.name!r}; the proxy needs tool names to be unique")
            self._tool_owner[t.name] = up
            ann = t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else {}
            contract = ToolContract.from_mcp(ann, trusted=trusted, stable_for=self.stable_for)
            self.bridge.register(ToolSpec(t.name, t.description or "", dict(t.input_schema), ann),
                                 self._bare(up, t.name), contract)
        self._prompt_owner.update({p.name: up for p in up.prompts})
        self._resource_owner.update({str(r.uri): up for r in up.resources})
        ahead = sum(self.bridge.tools[t.name].contract.speculable for t in up.tools)
        log.info("upstream %s (%s): %d tools (%d may run ahead), %d resources, %d prompts%s", up.name,
                 up.target, len(up.tools), ahead,
                 len(up.resources), len(up.prompts), ", trusted" if trusted else "")

    def _bare(self, up: Upstream, name: str):
        async def run(session: str, args: dict[str, Any]) -> Result:
            result = await up.client.call_tool(name, args)
            if result.is_error:  # an error is never handed over: the client's own call runs instead
                raise ProxyError(f"{name}: upstream error: {result_text(result)[:200]}")
            return Result(result_text(result), result)
        return run

    async def _session(self, ctx: Any) -> str:
        """The client's session. MCP's current protocol is stateless per request, so: an HTTP client's
        `Mcp-Session-Id` when it sends one, else one session for the proxy (a stdio proxy has one client).
        MCP gives no end-of-session hook: beyond MAX_SESSIONS the oldest ends."""
        headers = getattr(ctx.request, "headers", None)
        key = (headers.get("mcp-session-id") if headers is not None else None) or ""
        session = self._sessions.get(key)
        if session is None:
            if len(self._sessions) >= MAX_SESSIONS:
                await self.bridge.end(self._sessions.pop(next(iter(self._sessions))))
            session = self._sessions[key] = f"mcp-{next(self._ids)}"
            self.bridge.start(session)
        return session

    # ---- the MCP server's handlers ----
    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[t for u in self.upstreams for t in u.tools])

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        up = self._tool_owner.get(params.name)
        if up is None:
            unknown = types.TextContent(type="text", text=f"unknown tool {params.name!r}")
            return types.CallToolResult(content=[unknown], is_error=True)
        args = dict(params.arguments or {})

        async def run_real() -> Result:
            result = await up.client.call_tool(params.name, args)
            return Result(result_text(result), result)

        return await self.bridge.call(await self._session(ctx), params.name, args, run_real)

    async def list_resources(self, ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=[r for u in self.upstreams for r in u.resources])

    async def list_resource_templates(self, ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        templates = [t for u in self.upstreams for t in u.templates]
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def read_resource(self, ctx: Any, params: types.ReadResourceRequestParams
                            ) -> types.ReadResourceResult:
        uri = str(params.uri)
        owners = [self._resource_owner[uri]] if uri in self._resource_owner else [
            u for u in self.upstreams if u.templates]
        last: Exception | None = None
        for up in owners:  # a templated URI: the first upstream with templates that can read it
            try:
                return await up.client.read_resource(uri)
            except Exception as e:  # noqa: BLE001 - try the next upstream, report the last failure
                last = e
        raise ProxyError(f"no upstream could read {uri}" + (f": {last}" if last else ""))

    async def list_prompts(self, ctx: Any, params: Any) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=[p for u in self.upstreams for p in u.prompts])

    async def get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        up = self._prompt_owner.get(params.name)
        if up is None:
            raise ProxyError(f"unknown prompt {params.name!r}")
        return await up.client.get_prompt(params.name, dict(params.arguments or {}))

    def server(self, name: str = "toolcast-mcp-proxy") -> Server:
        """The MCP server: advertises what the upstreams offer, relays each request."""
        handlers: dict[str, Any] = {"on_list_tools": self.list_tools, "on_call_tool": self.call_tool}
        if any(u.resources or u.templates for u in self.upstreams):
            handlers.update(on_list_resources=self.list_resources, on_read_resource=self.read_resource,
                            on_list_resource_templates=self.list_resource_templates)
        if any(u.prompts for u in self.upstreams):
            handlers.update(on_list_prompts=self.list_prompts, on_get_prompt=self.get_prompt)
        return Server(name, **handlers)
