"""Decision points on hand-built traces: where the LLM starts generating, and what it did next."""

from __future__ import annotations

from toolcast.data import RESPOND, Message, ToolCall, Trace


def trace(*events) -> Trace:
    return Trace(trace_id="t", group="g", source="test", events=list(events))


def points(t: Trace) -> list[tuple[list, list[str], list[str]]]:
    """(context events, label tools, label call ids) per decision point."""
    return [(ctx.events, label.tools, [c.call_id for c in label.calls]) for ctx, label in t.decision_points()]


def test_first_call_after_the_user_message():
    user = Message("user", "find order #W1")
    t = trace(user, Message("assistant", "", turn=0), ToolCall("c1", 0, "get_order", {"id": "#W1"}, "{}"),
              Message("assistant", "Found it."))
    ps = points(t)
    assert [p[1] for p in ps] == [["get_order"], [RESPOND]]
    assert ps[0][0] == [user]  # the context is what came before: nothing of the assistant's own turn
    assert [type(e).__name__ for e in ps[1][0]] == ["Message", "Message", "ToolCall"]


def test_parallel_calls_are_one_point_labelled_with_every_call():
    t = trace(Message("user", "two lookups"), Message("assistant", "", turn=0),
              ToolCall("a", 0, "lookup", {"q": 1}, "1"), ToolCall("b", 0, "lookup", {"q": 2}, "2"),
              ToolCall("c", 0, "other", {}, "3"), Message("assistant", "done"))
    ps = points(t)
    assert len(ps) == 2
    assert ps[0][2] == ["a", "b", "c"] and ps[0][1] == ["lookup", "lookup", "other"]
    # The next point comes after the last result of the parallel turn.
    assert ps[1][1] == [RESPOND]
    assert [e.call_id for e in ps[1][0] if isinstance(e, ToolCall)] == ["a", "b", "c"]


def test_a_text_answer_is_a_respond_point_and_a_scripted_greeting_is_none():
    t = trace(Message("assistant", "Hi! How can I help?"), Message("user", "hello"),
              Message("assistant", "What is your id?"), Message("user", "u_1"),
              Message("assistant", "", turn=0), ToolCall("c1", 0, "get_user", {"id": "u_1"}, "{}"))
    ps = points(t)
    assert [p[1] for p in ps] == [[RESPOND], ["get_user"], [RESPOND]]
    assert len(ps[0][0]) == 2  # the greeting is context, not a decision of the LLM


def test_a_failed_call_is_context_for_the_retry():
    failed = ToolCall("c1", 0, "get_user", {"id": "x"}, "Error: not found", error=True)
    t = trace(Message("user", "I am x"), Message("assistant", "", turn=0), failed,
              Message("assistant", "", turn=1), ToolCall("c2", 1, "find_user", {"name": "x"}, "u_x"),
              Message("assistant", "You are u_x."))
    ps = points(t)
    assert [p[1] for p in ps] == [["get_user"], ["find_user"], [RESPOND]]
    assert ps[1][0][-1] is failed and ps[1][0][-1].error


def test_logs_without_assistant_text():
    """BFCL-style: calls with no assistant message; the agent answered where the next user turn starts."""
    t = trace(Message("user", "cd into docs then list"), ToolCall("c0", 0, "cd", {"folder": "docs"}, "{}"),
              ToolCall("c1", 1, "ls", {}, "[]"), Message("user", "now remove a.txt"),
              ToolCall("c2", 2, "rm", {"file_name": "a.txt"}, "None"))
    ps = points(t)
    assert [p[1] for p in ps] == [["cd"], ["ls"], [RESPOND], ["rm"], [RESPOND]]
    assert [len(p[0]) for p in ps] == [1, 2, 3, 4, 5]  # the last point: the trace ends on a tool result


def test_a_trace_interrupted_before_its_last_call_ran_ends_with_no_answer():
    """A checkpoint taken before the tool ran (LangGraph's interrupt_before): nobody answered after it."""
    t = trace(Message("user", "refund #W1"), Message("assistant", "", turn=0),
              ToolCall("c1", 0, "refund", {"id": "#W1"}))
    assert [p[1] for p in points(t)] == [["refund"]]
    failed = trace(Message("user", "refund #W1"), ToolCall("c1", 0, "refund", {"id": "#W1"}, error=True))
    assert [p[1] for p in points(failed)] == [["refund"], [RESPOND]]  # an error is a result the LLM saw


def test_two_user_messages_in_a_row_mean_the_agent_answered_between():
    t = trace(Message("user", "a"), Message("user", "b"))
    assert [p[1] for p in points(t)] == [[RESPOND]]


def test_labels_carry_exact_calls():
    call = ToolCall("c1", 0, "get", {"b": 2, "a": 1}, "{}")
    t = trace(Message("user", "x"), Message("assistant", "", turn=0), call)
    (_, label), *_ = list(t.decision_points())
    assert label.calls == [call] and label.calls[0].key == ("get", '{"a":1,"b":2}')
