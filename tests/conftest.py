"""Shared test fixtures. Test helpers live here, never inside the package."""

from __future__ import annotations

import pytest

from toolcast.data import Message, ToolCall, ToolSpec, Trace


def build_trace(trace_id: str = "t1") -> Trace:
    """A small trace with a user message, a parallel turn (one call failed) and a text answer."""
    return Trace(
        trace_id=trace_id,
        group="g1",
        source="test",
        metadata={"agent_model": "m", "nested": {"a": [1, 2]}},
        tools=[
            ToolSpec(
                "get_user",
                "Look up a user.",
                {"type": "object", "properties": {"user_id": {}}},
                {"readOnlyHint": True},
            )
        ],
        events=[
            Message("user", "I am user_1", t_end=1.5),
            Message("assistant", "", t_start=1.5, t_end=2.0, tokens=12, turn=0),
            ToolCall("c1", 0, "get_user", {"user_id": "user_1"}, '{"name": "Ann"}', False, 2.0, 2.1),
            ToolCall("c2", 0, "get_user", {"user_id": "user_2"}, "boom", True, 2.0, 2.2, extra={"x": 1}),
            Message("assistant", "Done, ünïcode ✓", turn=None),
        ],
    )


@pytest.fixture
def make_trace():
    """Factory for `build_trace`: `make_trace("id")`."""
    return build_trace


def mutations(record, values=(5, None, [], {}, "x", "{bad", True)):
    """Copies of a JSON record with one value replaced by each of `values`, at every position in it.

    For "bad input is a clear error, never a crash" tests of the importers.
    """
    import copy

    def positions(node, prefix=()):
        yield prefix
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            yield from positions(child, (*prefix, key))

    for path in list(positions(record)):
        for value in values:
            if not path:
                yield value
                continue
            copied = copy.deepcopy(record)
            node = copied
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            yield copied


@pytest.fixture
def mutate():
    """`mutate(record)`: see `mutations`."""
    return mutations
