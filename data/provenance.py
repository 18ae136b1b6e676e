"""Argument provenance: for every argument leaf of every call, where its value was first seen before it.

This is the training signal for argument prediction (which candidate the LLM copied) and the basis of
`toolcast stats`. Kinds, in the order a value can be found:

- `output`: a leaf of an earlier tool output (JSON path), or a span of a non-JSON output (`text[i:j]`);
- `argument`: an earlier call's argument (its path);
- `user` / `assistant` / `system`: a span of that message's text;
- `none`: nowhere before the call (the LLM invented it, or it is a constant of the tool: whether a
  value recurs across tasks is a corpus question, answered by `constant_values`).

Values are matched by `jsonpaths.value_key` (so 12 == "12"): JSON leaves exactly, text case-insensitively
at word boundaries, and only for values of at least `MIN_TEXT_MATCH` characters (a "1" in a text says
nothing). Booleans and nulls are never matched: they are constants or inventions.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from toolcast.data import jsonpaths
from toolcast.data.schema import Message, ToolCall, Trace

MIN_TEXT_MATCH = 3
KINDS: tuple[str, ...] = ("output", "argument", "user", "assistant", "system", "none")


@dataclass(frozen=True)
class ArgProvenance:
    call_id: str
    tool: str
    slot: str
    """Top-level argument name."""
    path: str
    """Leaf path inside the arguments, e.g. `passengers[0].first_name`."""
    value: object
    kind: str
    source_event: int | None = None
    """Index in trace.events of the event the value was first seen in."""
    source_tool: str | None = None
    source_path: str | None = None
    """JSON path in the source output/arguments, or `text[i:j]` for a text span."""


@dataclass
class _Seen:
    kind: str
    event: int
    tool: str | None
    path: str


def _text_span(text: str, needle: str) -> tuple[int, int] | None:
    if len(needle) < MIN_TEXT_MATCH:
        return None
    for m in re.finditer(re.escape(needle), text, flags=re.IGNORECASE):
        i, j = m.span()
        before = text[i - 1] if i else " "
        after = text[j] if j < len(text) else " "
        if not (before.isalnum() and needle[0].isalnum()) and not (after.isalnum() and needle[-1].isalnum()):
            return i, j
    return None


def trace_provenance(trace: Trace) -> list[ArgProvenance]:
    """Provenance of every argument leaf of every call of the trace, in call order."""
    exact: dict[str, _Seen] = {}  # value key -> first JSON leaf (output or argument) it was seen as
    texts: list[tuple[int, str, str, str | None]] = []  # (event, kind, text, tool) in order
    out: list[ArgProvenance] = []
    for idx, ev in enumerate(trace.events):
        if isinstance(ev, Message):
            if ev.text:
                texts.append((idx, ev.role, ev.text, None))
            continue
        assert isinstance(ev, ToolCall)
        for path, value in jsonpaths.leaves(ev.args, with_keys=False):
            slot = path.split(".", 1)[0].split("[", 1)[0]
            out.append(_locate(ev, slot, path, value, idx, exact, texts))
        # What this call makes visible to the calls after it: its arguments, then its output.
        for path, value in jsonpaths.leaves(ev.args, with_keys=False):
            key = jsonpaths.value_key(value)
            if key is not None and key not in exact:
                exact[key] = _Seen("argument", idx, ev.tool, path)
        parsed = ev.output_json()
        if isinstance(parsed, dict | list):
            for path, value in jsonpaths.leaves(parsed):
                key = jsonpaths.value_key(value)
                if key is not None and key not in exact:
                    exact[key] = _Seen("output", idx, ev.tool, path)
        elif ev.output:
            texts.append((idx, "output", ev.output, ev.tool))
    return out


def _locate(call: ToolCall, slot: str, path: str, value: object, idx: int, exact: dict[str, _Seen],
            texts: list[tuple[int, str, str, str | None]]) -> ArgProvenance:
    key = jsonpaths.value_key(value)
    best: _Seen | None = exact.get(key) if key is not None else None
    if key is not None:
        for event, kind, text, tool in texts:
            if best is not None and event >= best.event:
                break
            span = _text_span(text, key)
            if span is not None:
                best = _Seen(kind, event, tool, f"text[{span[0]}:{span[1]}]")
                break
    if best is None:
        return ArgProvenance(call.call_id, call.tool, slot, path, value, "none")
    return ArgProvenance(call.call_id, call.tool, slot, path, value, best.kind, best.event, best.tool,
                         best.path)


def constant_values(traces: Iterable[Trace], min_groups: int = 2) -> dict[tuple[str, str], set[str]]:
    """(tool, leaf path) -> the values that recur in at least `min_groups` different task groups.

    A value used by one task only is that task's data (a user id, an order number), not a constant of
    the tool; counting groups rather than traces keeps the many runs of one task from faking a constant.
    """
    groups: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for trace in traces:
        for call in trace.calls:
            for path, value in jsonpaths.leaves(call.args, with_keys=False):
                groups[(call.tool, jsonpaths.generalize(path), _const_key(value))].add(trace.group)
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (tool, path, key), gs in groups.items():
        if len(gs) >= min_groups:
            out[(tool, path)].add(key)
    return dict(out)


def _const_key(value: object) -> str:
    key = jsonpaths.value_key(value)
    return key if key is not None else repr(value)
