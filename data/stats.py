"""Corpus statistics: what `toolcast stats` reports about a set of traces.

Counts (traces, calls, tools, task groups), the most frequent tool transitions, and where argument
values come from: the share derivable from earlier tool outputs is what speculation can exploit.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.provenance import KINDS, constant_values, trace_provenance
from toolcast.data.schema import RESPOND, ToolCall, Trace, decision_positions

START = "<start>"
PROVENANCE_KINDS: tuple[str, ...] = (*KINDS[:-1], "constant", "none")


@dataclass
class CorpusStats:
    traces: int = 0
    unique_trace_ids: int = 0
    calls: int = 0
    tools: int = 0
    groups: int = 0
    decision_points: int = 0
    respond_points: int = 0
    without_tool_list: int = 0
    """Traces that list no tools (their schemas were not logged); the most tools one trace lists."""
    max_tools_listed: int = 0
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    transitions: list[tuple[str, str, int]] = field(default_factory=list)
    arg_leaves: int = 0
    provenance: dict[str, float] = field(default_factory=dict)
    """Share of argument leaves by where their value was first seen (PROVENANCE_KINDS)."""
    by_tool: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per tool: calls, argument leaves, share from earlier outputs, share derivable at all."""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["transitions"] = [{"from": a, "to": b, "count": n} for a, b, n in self.transitions]
        return d


def _domain(trace: Trace) -> str:
    domain = trace.metadata.get("domain") or trace.metadata.get("category")
    return f"{trace.source}:{domain}" if domain else trace.source


def corpus_stats(traces: Iterable[Trace], top: int = 15) -> CorpusStats:
    traces = list(traces)
    s = CorpusStats(traces=len(traces), unique_trace_ids=len({t.trace_id for t in traces}))
    tools: set[str] = set()
    groups: set[str] = set()
    per_source: dict[str, Counter] = defaultdict(Counter)
    transitions: Counter = Counter()
    kinds: Counter = Counter()
    tool_kinds: dict[str, Counter] = defaultdict(Counter)
    tool_calls: Counter = Counter()
    constants = constant_values(traces)
    for t in traces:
        calls = t.calls
        s.calls += len(calls)
        s.without_tool_list += not t.tools
        s.max_tools_listed = max(s.max_tools_listed, len(t.tools))
        tools.update(c.tool for c in calls)
        groups.add(t.group)
        src = per_source[_domain(t)]
        src["traces"] += 1
        src["calls"] += len(calls)
        prev, seen = START, 0
        for i, label in decision_positions(t.events):
            s.decision_points += 1
            nxt = label[0].tool if label else RESPOND
            s.respond_points += not label
            for e in t.events[seen:i]:  # the last call before this decision point
                if isinstance(e, ToolCall):
                    prev = e.tool
            seen = max(seen, i)
            transitions[(prev, nxt)] += 1
        tool_calls.update(c.tool for c in calls)
        for p in trace_provenance(t):
            kind = p.kind
            if kind == "none":
                key = jsonpaths.value_key(p.value)
                key = key if key is not None else repr(p.value)
                if key in constants.get((p.tool, jsonpaths.generalize(p.path)), ()):
                    kind = "constant"
            kinds[kind] += 1
            tool_kinds[p.tool][kind] += 1
    s.tools, s.groups = len(tools), len(groups)
    s.by_source = {k: dict(v) for k, v in sorted(per_source.items())}
    s.transitions = [(a, b, n) for (a, b), n in transitions.most_common(top)]
    s.arg_leaves = sum(kinds.values())
    s.provenance = {k: kinds[k] / s.arg_leaves if s.arg_leaves else 0.0 for k in PROVENANCE_KINDS}
    for tool, n in tool_calls.most_common():
        tk = tool_kinds[tool]
        leaves = sum(tk.values())
        s.by_tool[tool] = {
            "calls": n,
            "arg_leaves": leaves,
            "from_output": tk["output"] / leaves if leaves else 0.0,
            "derivable": (leaves - tk["none"]) / leaves if leaves else 0.0,
        }
    return s
