"""What the runtime wraps: a tool (a plain sync or async callable) with its JSON schema and contract."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
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


def runs_in_thread(tool: Tool) -> bool:
    """A plain callable runs in a worker thread; a coroutine function on the event loop."""
    fn = tool.fn
    return not (inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__))


class ThreadLane:
    """Threads for sync tools that know how many of them are busy, hung or cancelled runs included.

    Cancelling an awaited thread's future does not stop the thread: a sync tool that hangs keeps its
    thread until it returns. The lane counts such threads as busy, so the runtime starts no run that
    would queue behind them (`free`), and real calls have a lane of their own that speculation never
    occupies. Threads are made on demand, up to `threads`.
    """

    def __init__(self, threads: int, name: str):
        self.threads = threads
        self._name = name
        self._busy = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def busy(self) -> int:
        return self._busy

    @property
    def free(self) -> int:
        return self.threads - self._busy

    def submit(self, fn: Callable[[], Any]) -> Future:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix=self._name)
        with self._lock:
            self._busy += 1

        def run() -> Any:
            try:
                return fn()
            finally:
                self._done()

        future = self._executor.submit(run)
        future.add_done_callback(lambda f: self._done() if f.cancelled() else None)  # never started
        return future

    def _done(self) -> None:
        with self._lock:
            self._busy -= 1

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


async def invoke(tool: Tool, args: Mapping[str, Any], lane: ThreadLane) -> Any:
    """Run the tool once: coroutine functions on the loop, plain callables in a thread of `lane`."""
    fn = tool.fn
    if not runs_in_thread(tool):
        return await fn(**args)
    result = await asyncio.wrap_future(lane.submit(functools.partial(fn, **args)))
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
