"""Fakes and app factories for the serving tests (test helpers live here, never in the package)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from toolcast.data.schema import RESPOND, Context, ToolCall
from toolcast.predictor.protocol import CallPrediction
from toolcast.serving import ServeSettings

EXAMPLE_BODY = {
    "events": [
        {"type": "message", "role": "user", "text": "I am user_1, where is my order?"},
        {"type": "message", "role": "assistant", "text": "", "turn": 0},
        {"type": "tool_call", "call_id": "c1", "turn": 0, "tool": "get_user", "args": {"user_id": "user_1"},
         "output": '{"orders": ["o9"]}', "error": False, "t_start": 1.0, "t_end": 1.1},
    ],
    "tools": [{"name": "get_user", "description": "Look up a user.",
               "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}}},
              {"name": "get_order", "parameters": {"type": "object", "properties": {"order_id": {}}}}],
    "metadata": {"agent_model": "m"},
    "k": 3,
}


class FakePredictor:
    """Deterministic: repeats the last call, then proposes every listed tool, then `<respond>`."""

    name = "fake"

    def __init__(self, version: str = "0.0-test"):
        self.version = version
        self.calls = 0

    def info(self) -> dict:
        return {"version": self.version, "tools": ["get_user", "get_order"],
                "card": {"tool_top1": 0.5, "ece": 0.03}}

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        self.calls += 1
        out: list[CallPrediction] = []
        last = next((e for e in reversed(context.events) if isinstance(e, ToolCall)), None)
        if last is not None:
            out.append(CallPrediction(last.tool, dict(last.args), [], 0.5, 0.4,
                                      {s: f"args:{last.tool}.{s}" for s in last.args}))
        for t in context.tools:
            out.append(CallPrediction(t.name, {}, t.param_names, 0.1, 0.0, {}))
        out.append(CallPrediction(RESPOND, {}, [], 0.05, 0.05, {}))
        return out[:k]


class BatchFakePredictor(FakePredictor):
    """The same answers through `predict_batch`; records the batch sizes it saw."""

    name = "fake-batch"

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self._lock = threading.Lock()

    def predict_batch(self, contexts: list[Context], k: int = 3) -> list[list[CallPrediction]]:
        with self._lock:
            self.batches.append(len(contexts))
        return [FakePredictor.predict(self, c, k) for c in contexts]


class BrokenPredictor(FakePredictor):
    name = "broken"

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        raise RuntimeError("secret internal detail /home/x/model.onnx")


def settings_for(predictor: object, **overrides) -> ServeSettings:
    """Settings that serve `predictor` (loaded synchronously, so the app is ready inside `with`)."""
    overrides.setdefault("load_in_background", False)
    return ServeSettings(loader=lambda _dir: predictor, **overrides)


@pytest.fixture
def fake() -> FakePredictor:
    return FakePredictor()


@pytest.fixture
def settings() -> Callable[..., ServeSettings]:
    """`settings(predictor, max_k=5, ...)`."""
    return settings_for


@pytest.fixture
def body() -> dict:
    import copy

    return copy.deepcopy(EXAMPLE_BODY)


@pytest.fixture
def batch_fake() -> BatchFakePredictor:
    return BatchFakePredictor()


@pytest.fixture
def broken() -> BrokenPredictor:
    return BrokenPredictor()
