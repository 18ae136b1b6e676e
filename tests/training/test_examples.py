"""Slot constants are values an agent writes without reading them, recurring across task groups."""

from __future__ import annotations

from toolcast.data import Message, ToolCall, ToolSpec, Trace
from toolcast.training.examples import CONSTANT_MIN_GROUPS, build_vocabularies


def _task(group: str, order: str) -> Trace:
    """A shop task: the user's orders come back from a lookup; the agent reads the first one, locks the
    doors (an array value no event shows) and always asks for a 'summary' view."""
    spec = ToolSpec("get_order", "", {"type": "object", "properties": {"order_id": {}, "view": {}}})
    lock = ToolSpec("lock", "", {"type": "object", "properties": {"doors": {}}})
    return Trace(
        trace_id=group,
        group=group,
        source="test",
        tools=[spec, lock],
        events=[
            Message("user", "where is my order?"),
            ToolCall("c0", 0, "get_user", {"user_id": "ann"}, f'{{"orders": ["{order}"]}}'),
            ToolCall("c1", 1, "get_order", {"order_id": order, "view": "summary"}, "{}"),
            ToolCall("c2", 2, "lock", {"doors": ["driver", "passenger"]}, "{}"),
        ],
    )


def test_a_value_read_from_the_context_is_never_a_constant():
    # The same order id in every task (a frequent test user): always read from a lookup, so proposing it
    # where that user is absent would be wrong.
    traces = [_task(f"g{i}", "#W2575533") for i in range(CONSTANT_MIN_GROUPS + 1)]
    constants = build_vocabularies(traces, None).constants
    assert "order_id" not in constants.get("get_order", {})
    assert constants["get_order"]["view"] == ["summary"]
    assert constants["lock"]["doors"] == [["driver", "passenger"]]


def test_a_value_needs_enough_task_groups():
    traces = [_task(f"g{i}", f"#W{i}") for i in range(CONSTANT_MIN_GROUPS - 1)]
    assert build_vocabularies(traces, None).constants == {}
