"""Where a timed session's time went: tools, LLM, the user; idle gaps, approvals, clock jumps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolcast.data import load_traces
from toolcast.data.active_time import MAX_GAP_S, active_time, reported_duration, tool_active_s
from toolcast.data.schema import Message, ToolCall, Trace

FIXTURE = Path(__file__).parents[1] / "fixtures" / "coding_sessions"


def trace(*events) -> Trace:
    return Trace("t", "g", "claude_code", {}, [], list(events))


def user(t, text="do it"):
    return Message("user", text, t_start=t, t_end=t)


def reply(t, turn=None, text=""):
    return Message("assistant", text, t_end=t, turn=turn)


def call(turn, tool, start, end, output="ok", **extra):
    return ToolCall(f"c{turn}{tool}{start}", turn, tool, {"x": 1}, output, False, start, end, extra=extra)


def test_tool_llm_and_user_time_from_the_timestamps():
    a = active_time([trace(user(0), reply(2, 0), call(0, "Bash", 2, 5), reply(6, 1), call(1, "Read", 6, 6.5),
                           reply(8, text="done"), user(68), reply(70, text="ok"))])
    assert (a.llm_s, a.tool_s, a.user_s) == pytest.approx((2 + 1 + 1.5 + 2, 3.5, 60))
    assert a.tool_share == pytest.approx(3.5 / 10)


def test_parallel_calls_count_once_from_first_start_to_last_result():
    a = active_time([trace(user(0), reply(1, 0), call(0, "Read", 1, 2), call(0, "Grep", 1, 4),
                           reply(5, text="x"))])
    assert a.tool_s == pytest.approx(3.0)


def test_questions_to_the_user_and_approval_waits_are_kept_out():
    codex_output = json.dumps({"output": "3 passed", "metadata": {"exit_code": 0, "duration_seconds": 2.0}})
    a = active_time([trace(user(0), reply(1, 0), call(0, "AskUserQuestion", 1, 41), reply(42, 1),
                           call(1, "shell", 42, 62, codex_output), reply(63, text="done"))])
    assert a.tool_s == pytest.approx(2.0)
    assert a.wait_s == pytest.approx(40 + 18)
    assert a.llm_s == pytest.approx(1 + 1 + 1)


def test_an_idle_gap_over_the_cap_is_the_users_and_a_clock_jump_is_reported():
    a = active_time([trace(user(0), reply(MAX_GAP_S + 10, text="late"), user(700), reply(702, 0),
                           call(0, "Read", 702, 703), reply(650, text="the clock went back"))])
    assert a.idle_gaps == 1 and a.user_s >= MAX_GAP_S
    assert len(a.clock_jumps) == 1 and a.clock_jumps[0]["seconds"] == pytest.approx(-53)
    assert a.llm_s == pytest.approx(2.0)


def test_reported_durations():
    wall = call(0, "shell", 5, 5, "Exit code: 0\nWall time: 1.5 seconds\nOutput:\nok")
    assert reported_duration(wall) == 1.5 and tool_active_s(wall) == 1.5  # written with its result
    glob = call(0, "Glob", 1, 1.2, "a.py", toolUseResult={"durationMs": 150})
    assert reported_duration(glob) == pytest.approx(0.15) and tool_active_s(glob) == pytest.approx(0.2)
    assert tool_active_s(call(0, "Read", None, None)) is None
    assert active_time([trace(user(0), call(0, "Read", None, None))]).untimed_calls == 1


def test_generated_sessions_in_both_formats():
    traces = load_traces(FIXTURE)
    assert sorted(t.source for t in traces) == ["claude_code", "claude_code", "codex", "codex"]
    a = active_time(traces)
    assert a.timed_traces == 4 and not a.clock_jumps
    assert 0 < a.tool_share < 1
    assert a.wait_s > 0  # the approved pytest runs
    old = next(t for t in traces if all(c.extra.get("t_start_from") == "reply_end" for c in t.calls))
    new = next(t for t in traces if t.source == "codex" and t is not old)
    assert not any("t_start_from" in c.extra for c in new.calls)  # a fast call sharing its output's ms
    for c in old.calls:  # the older Codex style: each call starts where its reply ended
        msg = next(e for e in old.events if isinstance(e, Message) and e.turn == c.turn)
        assert msg.t_end == c.t_start < c.t_end
