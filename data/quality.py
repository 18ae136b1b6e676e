"""Trace-level quality flags every importer's traces get, whatever their format.

A *looping* trace is an agent stuck repeating itself: more than `LOOP_REPEATS` of its calls repeat the
call just before them (same tool, same canonical arguments). Such a trace teaches a model loops and, in an
evaluation, one stuck session can contribute a hundred identical points and outweigh dozens of healthy
sessions. Training leaves looping traces out (`TrainConfig.drop_looping`) and `toolcast eval` measures
without them unless asked (`--keep-looping`), reporting how many it left out. Nothing is dropped here.
An importer may record the flag in `trace.metadata["looping"]` (tau2 does, with the counts behind it);
`is_looping` reads it, or applies the rule to a trace of any other format.
"""

from __future__ import annotations

from collections.abc import Iterable

from toolcast.data.schema import ToolCall, Trace, canonical_args

LOOP_REPEATS = 3
"""A trace loops when more than this many agent calls repeat the call just before them. This is the rule
of ../shared/data's tau2 MANIFEST.json (`identical_consecutive_pairs`), which gives its 18 looping
simulations; it holds for any agent log."""


def repeats(calls: Iterable[ToolCall]) -> tuple[int, int]:
    """(how many calls repeat the call just before them, the longest run of identical calls)."""
    n, best, run, prev = 0, 0, 0, None
    for call in calls:
        key = (call.tool, canonical_args(call.args))
        if key == prev:
            n, run = n + 1, run + 1
        else:
            run = 1
        best, prev = max(best, run), key
    return n, best


def mark_looping(trace: Trace) -> Trace:
    """Set `metadata["looping"]` (with `identical_repeats`, `longest_identical_run`) unless the importer
    already did."""
    if "looping" not in trace.metadata:
        n, longest = repeats(trace.calls)
        trace.metadata.update(looping=n > LOOP_REPEATS, identical_repeats=n, longest_identical_run=longest)
    return trace


def is_looping(trace: Trace) -> bool:
    flag = trace.metadata.get("looping")
    if flag is not None:
        return bool(flag)
    return repeats(trace.calls)[0] > LOOP_REPEATS
