"""Decision points: the moments an agent's LLM starts generating, with what it did next.

See `Trace.decision_points` for the rule. Kept apart from the schema so the rule has one home.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from toolcast.data.schema import Context, Label, Message, ToolCall

if TYPE_CHECKING:
    from toolcast.data.schema import Event, Trace


def _turn_calls(events: list[Event], start: int, turn: int) -> list[ToolCall]:
    """The calls of `turn` that follow position `start` back to back."""
    calls: list[ToolCall] = []
    for e in events[start:]:
        if isinstance(e, ToolCall) and e.turn == turn:
            calls.append(e)
        elif calls or not (isinstance(e, Message) and e.role == "assistant" and e.turn == turn):
            break
    return calls


def decision_positions(events: list[Event]) -> Iterator[tuple[int, list[ToolCall]]]:
    """Yield (i, calls): a decision point whose context is events[:i] and whose label is `calls`."""
    n = len(events)
    started = False
    for i, e in enumerate(events):
        prev = events[i - 1] if i else None
        if isinstance(e, Message) and e.role == "assistant" and not started and e.turn is None:
            continue  # a greeting before anything happened (tau2 scripts one) is no decision of the LLM
        started = started or isinstance(e, ToolCall) or (isinstance(e, Message) and e.role == "user")
        if isinstance(e, Message) and e.role == "assistant":
            calls = _turn_calls(events, i + 1, e.turn) if e.turn is not None else []
            yield i, calls
        elif isinstance(e, ToolCall):
            # A call no assistant message announced starts a turn of its own (logs without LLM text).
            opened = (isinstance(prev, ToolCall) and prev.turn == e.turn) or (
                isinstance(prev, Message) and prev.role == "assistant" and prev.turn == e.turn)
            if not opened:
                yield i, _turn_calls(events, i, e.turn)
        elif isinstance(e, Message) and e.role == "user" and prev is not None and not e.extra.get(
                "with_tool_results"):
            # (Anthropic's user text sent together with tool results is one input to one generation.)
            # After a tool turn or a user message the LLM generated, even if the log kept no text.
            if isinstance(prev, ToolCall) or (isinstance(prev, Message) and prev.role == "user"):
                yield i, []
    if n and isinstance(events[-1], ToolCall) and (events[-1].output is not None or events[-1].error):
        # The trace ends on a tool result: the agent answered from it. A last call with no result (a run
        # interrupted before the tool ran, as a human-in-the-loop checkpoint is) ends with no answer.
        yield n, []


def decision_points(trace: Trace) -> Iterator[tuple[Context, Label]]:
    metadata = {"source": trace.source, **trace.metadata}
    for i, calls in decision_positions(trace.events):
        yield Context(events=trace.events[:i], tools=trace.tools, metadata=metadata), Label(calls=calls)
