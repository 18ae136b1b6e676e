"""Helpers for the runtime tests (kept in tests/, never in the package), served by the `fk` fixture."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from toolcast.data.schema import RESPOND, Context, Message, ToolCall, ToolSpec, Trace, canonical_args
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import DENY, ToolContract, read_only
from toolcast.runtime.tools import Tool


def pred(tool: str, p: float = 0.9, free: list[str] | None = None, **args: Any) -> CallPrediction:
    return CallPrediction(tool, dict(args), free=list(free or []), p_tool=p, p_call=p)


def respond(p: float = 0.5) -> CallPrediction:
    return CallPrediction(RESPOND, p_tool=p, p_call=p)


class ScriptedPredictor:
    """Returns what `script(context)` says (or a fixed list); remembers every context it saw."""

    name = "scripted"

    def __init__(self, script: Callable[[Context], list[CallPrediction]] | list[CallPrediction]):
        self.script = script
        self.contexts: list[Context] = []

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        self.contexts.append(context)
        out = self.script(context) if callable(self.script) else list(self.script)
        return out


class FailingPredictor:
    name = "failing"

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        raise RuntimeError("predictor broke")


@dataclass
class Invocation:
    tool: str
    args: dict[str, Any]
    start: float
    end: float | None = None
    outcome: str = "running"


@dataclass
class FakeTools:
    """Async tools on the event loop's clock that log every invocation."""

    log: list[Invocation] = field(default_factory=list)

    def make(self, name: str, contract: ToolContract = DENY, duration: float = 1.0,
             behave: Callable[[Invocation], str] | None = None) -> Tool:
        """`behave(invocation)` may return "ok", "raise" or "hang" (default "ok")."""

        async def fn(**args: Any) -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            inv = Invocation(name, dict(args), loop.time())
            self.log.append(inv)
            mode = behave(inv) if behave else "ok"
            try:
                if mode == "hang":
                    await asyncio.Event().wait()
                await asyncio.sleep(duration)
                if mode == "raise":
                    inv.outcome = "raised"
                    raise RuntimeError(f"{name} failed")
                inv.outcome = "ok"
                return {"tool": name, "args": canonical_args(args), "n": len(self.log)}
            except asyncio.CancelledError:
                inv.outcome = "cancelled"
                raise
            finally:
                inv.end = loop.time()

        return Tool(name, fn, {"type": "object", "properties": {}}, contract=contract)

    def runs(self, name: str) -> list[Invocation]:
        return [i for i in self.log if i.tool == name]


READ = read_only(stable_for=100.0)


def shop_trace(trace_id: str = "t1", group: str = "g1", *, timed: bool = True, order: str = "A1",
               user_calls: list[dict] | None = None) -> Trace:
    """A small shop conversation: look up a user, then an order (two reads), then cancel it (a write),
    then read the order again; the LLM takes 2 s at each decision point when `timed`."""
    t = 100.0 if timed else None

    def at(dt: float) -> float | None:
        return None if t is None else t + dt

    user_extra = {"user_tool_calls": user_calls} if user_calls else {}
    events = [
        Message("user", f"cancel my order {order}, I am u1", t_end=at(0)),
        Message("assistant", "", t_end=at(2), turn=1),
        ToolCall("c1", 1, "get_user", {"user_id": "u1"}, json.dumps({"orders": [order]}), t_start=at(2),
                 t_end=at(2)),
        Message("assistant", "", t_end=at(4), turn=2),
        ToolCall("c2", 2, "get_order", {"order_id": order}, '{"status": "open"}', t_start=at(4), t_end=at(4)),
        Message("assistant", "Shall I cancel it?", t_end=at(6)),
        Message("user", "yes", t_end=at(7), extra=user_extra),
        Message("assistant", "", t_end=at(9), turn=3),
        ToolCall("c3", 3, "cancel_order", {"order_id": order}, '{"ok": true}', t_start=at(9), t_end=at(9)),
        Message("assistant", "", t_end=at(11), turn=4),
        ToolCall("c4", 4, "get_order", {"order_id": order}, '{"status": "cancelled"}', t_start=at(11),
                 t_end=at(11)),
        Message("assistant", "Done.", t_end=at(13)),
    ]
    def schema(slot: str) -> dict:
        return {"type": "object", "properties": {slot: {"type": "string"}}}

    tools = [ToolSpec("get_user", parameters=schema("user_id")),
             ToolSpec("get_order", parameters=schema("order_id")),
             ToolSpec("cancel_order", parameters=schema("order_id"))]
    return Trace(trace_id, group, "test", {"agent_model": "m"}, tools, events)


class Fakes:
    """The helpers above for tests, via the `fk` fixture (--import-mode=importlib: no sibling imports)."""

    pred = staticmethod(pred)
    respond = staticmethod(respond)
    ScriptedPredictor = ScriptedPredictor
    FailingPredictor = FailingPredictor
    FakeTools = FakeTools
    READ = READ
    shop_trace = staticmethod(shop_trace)


@pytest.fixture
def fk() -> type[Fakes]:
    return Fakes
