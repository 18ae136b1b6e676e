"""Looping traces are flagged the same way whatever format they came from."""

from __future__ import annotations

from toolcast.data import Message, ToolCall, Trace
from toolcast.data.quality import LOOP_REPEATS, is_looping, repeats


def _trace(calls: list[tuple[str, dict]], metadata: dict | None = None) -> Trace:
    events = [Message("user", "help")]
    events += [ToolCall(f"c{i}", i, tool, args, "{}") for i, (tool, args) in enumerate(calls)]
    return Trace(trace_id="t", group="g", source="openai", metadata=metadata or {}, events=events)


def test_repeats_count_only_consecutive_identical_calls():
    calls = _trace([("a", {"x": 1}), ("a", {"x": 1}), ("b", {}), ("a", {"x": 1}), ("a", {"x": 1})]).calls
    assert repeats(calls) == (2, 2)
    assert repeats(_trace([("a", {"x": 1}), ("a", {"x": 2})]).calls) == (0, 1)


def test_a_trace_of_any_format_loops_past_the_threshold():
    stuck = _trace([("transfer", {"why": "x"})] * (LOOP_REPEATS + 2))
    assert is_looping(stuck)
    assert not is_looping(_trace([("transfer", {"why": "x"})] * (LOOP_REPEATS + 1)))
    assert not is_looping(_trace([("get", {"id": i}) for i in range(10)]))


def test_an_importers_flag_wins():
    assert is_looping(_trace([], {"looping": True}))
    assert not is_looping(_trace([("a", {})] * 10, {"looping": False}))
