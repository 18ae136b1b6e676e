"""What the runtime wraps: a tool (a plain sync or async callable) with its JSON schema and contract."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import ToolSpec
from toolcast.runtime.contracts import DENY, ToolContract


@dataclass
class Tool:
    """A tool the agent calls through the runtime. Without a contract it never runs ahead (deny)."""

    name: str
    fn: Callable[..., Any]
    """Called as fn(**args); sync callables run in a worker thread, async ones on the event loop."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """JSON schema of the arguments (what the agent's LLM sees)."""
    description: str = ""
    contract: ToolContract = DENY
    annotations: dict[str, Any] = field(default_factory=dict)
    """MCP-style annotations, passed on to predictors; they never grant eligibility by themselves."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a tool needs a non-empty name")
        if not callable(self.fn):
            raise TypeError(f"tool {self.name!r}: fn must be callable, got {type(self.fn).__name__}")
        if not isinstance(self.contract, ToolContract):
            raise TypeError(f"tool {self.name!r}: contract must be a ToolContract")

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters, self.annotations)

    @classmethod
    def from_mcp(cls, name: str, fn: Callable[..., Any], *, parameters: Mapping[str, Any] | None = None,
                 description: str = "", annotations: Mapping[str, Any] | None = None, trusted: bool = False,
                 stable_for: float = 30.0) -> Tool:
        """A tool served by an MCP server: its annotations count only if the user trusts the server."""
        ann = dict(annotations or {})
        return cls(name, fn, dict(parameters or {}), description,
                   ToolContract.from_mcp(ann, trusted=trusted, stable_for=stable_for), ann)


async def invoke(tool: Tool, args: Mapping[str, Any], executor: Executor | None) -> Any:
    """Run the tool once: coroutine functions on the loop, plain callables in `executor`."""
    fn = tool.fn
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__):
        return await fn(**args)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(executor, functools.partial(fn, **args))
    if inspect.isawaitable(result):
        result = await result
    return result


def as_text(result: Any) -> str:
    """A result as the text a log (and so a predictor's context) would hold."""
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)
