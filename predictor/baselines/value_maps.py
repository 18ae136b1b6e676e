"""Value-mapping functions: where a tool's argument slot takes its value from, mined from logs.

PASTE (arXiv 2603.18897) fills a predicted call's arguments with *value-mapping functions*, e.g.
`get_reservation_details.reservation_id <- get_user_details output reservations[*]`. Here a function is a
`Source`, named by a tuple key, that turns a context into a ranked list of values:

- `("output", tool, shape)`: the leaves at `shape` of that tool's earlier outputs, newest call first,
  in list order (the *position* in that list is part of what is learned);
- `("argument", tool, shape)`: an earlier call's argument at `shape` (the same slot of the same tool
  included: "keep using the id I used before");
- `("text", kind, role, tool)`: values an extractor of `kind` found in text written by `role`
  ("an ID in the user's text", "a file name quoted in an `mv` result");
- `("constant",)`: the slot's constants, values that recur across at least `MIN_GROUPS` task groups.
  Mining counts them with each task's own traces left out, so a user id or an order number of one task
  never becomes a constant (DESIGN.md, "Argument values come from the context").

`mine_value_maps` learns, for every (tool, slot), which sources held the value the agent used, and how
often each source's value at each rank was the right one: the empirical success that ranks them and gives
honest probabilities. Values are matched as `toolcast.data.provenance` matches them (12 == "12"), then
converted to the slot's type, so the filled call is the one the agent would have made.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.decisions import decision_positions
from toolcast.data.schema import Context, Event, Message, ToolCall, Trace
from toolcast.predictor.features.extractors import KINDS, extract_event, path_shape, value_id

log = logging.getLogger(__name__)

SourceKey = tuple[str, ...]
CONSTANT: SourceKey = ("constant",)
MIN_GROUPS = 2
"""A source (and a constant) must hold the right value in this many task groups to be kept."""
MAX_RANK = 4
"""Values a source offers per slot: the first `MAX_RANK` of its list."""
PRIOR_STRENGTH = 2.0
"""Pseudo-count of the prior when estimating a (source, rank)'s hit rate for one slot."""
FRESH = "fresh"
"""Marks a variant of a list source that skips the values this slot already took (iterate a list)."""

_OUTPUT_KINDS = {"json_leaf", "output_text"}
USER_TEXT_KINDS: tuple[str, ...] = ("ident", "quoted", "number", "file_path", "email", "url", "capitalized",
                                    "word")

GENERIC: tuple[SourceKey, ...] = (
    ("same_slot",),  # this tool's own earlier value for the slot
    ("same_name",),  # an earlier argument of any tool under the same slot name
    ("any_argument",),  # any earlier argument value, newest first
    ("output_key",),  # an earlier output leaf whose key is the slot's name
    ("output_key", FRESH),
    *(("text", kind, "user", "") for kind in USER_TEXT_KINDS),
    CONSTANT,
)
"""Sources tried for every slot (with statistics pooled over slots as their prior), beside the specific
ones each slot's training calls reveal."""


def _last_key(path: str) -> str:
    shape = path_shape(path)
    return shape.rsplit(".", 1)[-1].replace("[*]", "")


def index_keys(kind: str, role: str, tool: str | None, path: str) -> tuple[SourceKey, ...]:
    """The sources a mention is an instance of (as the context index files it)."""
    if kind in _OUTPUT_KINDS:
        return (("output", tool or "", path_shape(path)), ("outkey", _last_key(path)))
    if kind == "argument":
        shape = path_shape(path)
        return (("argument", tool or "", shape), ("argument", "*", shape), ("argument", "*", "*"))
    return (("text", kind, role, tool or ""),)


def resolve(key: SourceKey, tool: str, slot: str) -> tuple[SourceKey, bool]:
    """(index key, fresh?) of a source for a given tool and slot."""
    head = key[0]
    fresh = key[-1] == FRESH
    if head == "same_slot":
        return ("argument", tool, slot), False
    if head == "same_name":
        return ("argument", "*", slot), False
    if head == "any_argument":
        return ("argument", "*", "*"), False
    if head == "output_key":
        return ("outkey", slot), fresh
    return (key[:-1] if fresh else key), fresh


def describe(key: SourceKey) -> str:
    """`get_user_details output reservations[*]`, `earlier argument cd.folder`, `ident in user text`."""
    fresh = " (not yet used)" if key[-1] == FRESH else ""
    head = key[0]
    if head == "output":
        return f"{key[1]} output {key[2] or '(whole)'}{fresh}"
    if head == "argument":
        return f"earlier argument {key[1]}.{key[2]}"
    if head == "text":
        where = f"{key[3]} output" if key[2] == "output" else f"{key[2]} text"
        return f"{key[1]} in {where}"
    return {"same_slot": "same slot, earlier call", "same_name": "same slot name, any earlier call",
            "any_argument": "any earlier argument", "output_key": f"earlier output key = slot name{fresh}",
            "constant": "constant"}[head]


def match_key(value: Any) -> str:
    """Loose identity used to *find* a value (12 == "12" == 12.0), as provenance labelling does."""
    if isinstance(value, dict | list) or value is None or isinstance(value, bool):
        return value_id(value)
    key = jsonpaths.value_key(value)
    return key if key is not None else value_id(value)


def type_name(value: Any) -> str:
    return type(value).__name__


def coerce(value: Any, type_: str | None) -> Any:
    """`value` as a value of the slot's JSON type, or None when it cannot be one losslessly."""
    if type_ is None or type_name(value) == type_:
        return value
    if isinstance(value, bool) or isinstance(value, dict | list):
        return None
    if type_ == "str":
        return jsonpaths.value_key(value)
    try:
        if type_ == "int":
            f = float(value)
            return int(f) if f.is_integer() else None
        if type_ == "float":
            return float(value)
    except (TypeError, ValueError):
        return None
    if type_ == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


# ---- a context's sources, built event by event ------------------------------------------------------


class ContextIndex:
    """Every source's values in a context. Built incrementally (`add` each event in order), so that a
    replay of a trace costs one pass; `values(key)` lists a source's distinct values newest first."""

    def __init__(self) -> None:
        self.n = 0
        self._blocks: dict[SourceKey, list[list[tuple[Any, str]]]] = defaultdict(list)
        self._where: dict[str, set[SourceKey]] = defaultdict(set)
        self.used: dict[tuple[str, str], set[str]] = defaultdict(set)
        """(tool, slot) -> value ids already passed to that slot."""

    @classmethod
    def of(cls, context: Context) -> ContextIndex:
        index = cls()
        for event in context.events:
            index.add(event)
        return index

    def add(self, event: Event) -> None:
        found = extract_event(event)
        role = event.role if isinstance(event, Message) else "output"
        tool = event.tool if isinstance(event, ToolCall) else None
        per_event: dict[SourceKey, list[tuple[Any, str]]] = {}
        for kind in KINDS:
            for path, value, vid in found[kind]:
                keys = index_keys(kind, "call" if kind == "argument" else role, tool, path)
                for key in keys:
                    per_event.setdefault(key, []).append((value, vid))
                self._where[match_key(value)].add(keys[0])
        for key, values in per_event.items():
            self._blocks[key].append(values)
        if isinstance(event, ToolCall):
            for slot, value in event.args.items():
                self.used[(event.tool, slot)].add(value_id(value))
        self.n += 1

    def sources_holding(self, value: Any) -> set[SourceKey]:
        """The sources whose lists hold `value` (loosely matched)."""
        return self._where.get(match_key(value), set())

    def values(self, key: SourceKey, limit: int = MAX_RANK, exclude: set[str] | None = None) -> list[Any]:
        out: list[Any] = []
        seen: set[str] = set(exclude) if exclude else set()
        for block in reversed(self._blocks.get(key, ())):
            for value, vid in block:
                if vid not in seen:
                    seen.add(vid)
                    out.append(value)
                    if len(out) >= limit:
                        return out
        return out


# ---- constants ---------------------------------------------------------------------------------------


@dataclass
class ConstantTable:
    """(tool, slot) -> value id -> (value, task groups that used it)."""

    table: dict[tuple[str, str], dict[str, tuple[Any, set[str]]]] = field(default_factory=dict)

    @classmethod
    def fit(cls, traces: Iterable[Trace]) -> ConstantTable:
        table: dict[tuple[str, str], dict[str, tuple[Any, set[str]]]] = defaultdict(dict)
        for trace in traces:
            for call in trace.calls:
                for slot, value in call.args.items():
                    entry = table[(call.tool, slot)].setdefault(value_id(value), (value, set()))
                    entry[1].add(trace.group)
        return cls(dict(table))

    def values(self, tool: str, slot: str, leave_out: str | None = None, min_groups: int = MIN_GROUPS,
               limit: int = MAX_RANK) -> list[Any]:
        """Constants of a slot, most widespread first; `leave_out` = the group being predicted in
        training, whose own traces must not make a value a constant."""
        scored = []
        for value, groups in self.table.get((tool, slot), {}).values():
            n = len(groups) - (leave_out in groups)
            if n >= min_groups:
                scored.append((-n, value_id(value), value))
        scored.sort(key=lambda s: s[:2])
        return [v for _, _, v in scored[:limit]]


# ---- mined value maps -------------------------------------------------------------------------------


@dataclass
class SourceStats:
    """How one source did for one slot on the training calls (or, pooled, for all slots)."""

    applicable: int = 0
    """Calls where the source offered at least one value."""
    offered: list[int] = field(default_factory=lambda: [0] * MAX_RANK)
    hits: list[int] = field(default_factory=lambda: [0] * MAX_RANK)
    """offered[m] / hits[m]: times its value at rank m was offered / was the agent's value."""

    def rate(self, rank: int | None = None) -> float:
        """Smoothed hit rate at a rank (or over all ranks)."""
        h = sum(self.hits) if rank is None else self.hits[rank]
        o = sum(self.offered) if rank is None else self.offered[rank]
        return (h + 0.5) / (o + 1.0)

    def merge(self, other: SourceStats) -> None:
        self.applicable += other.applicable
        for m in range(MAX_RANK):
            self.offered[m] += other.offered[m]
            self.hits[m] += other.hits[m]


@dataclass
class SlotMap:
    """A slot's type and its sources' statistics."""

    type: str | None
    sources: dict[SourceKey, SourceStats]
    n: int = 0


@dataclass
class ValueMaps:
    """Everything mined: per (tool, slot) sources with their success, pooled priors, constants."""

    slots: dict[tuple[str, str], SlotMap]
    constants: ConstantTable
    pooled: dict[SourceKey, SourceStats] = field(default_factory=dict)
    """Generic sources' statistics over all slots: the prior of each slot's estimate."""

    def p_hit(self, key: SourceKey, stats: SourceStats, rank: int) -> float:
        """P(the value a source offers at `rank` is the agent's): the slot's own count, smoothed toward
        the source's pooled rate at that rank (generic sources) or its own rate over all ranks."""
        prior_stats = self.pooled.get(key)
        prior = prior_stats.rate(rank) if prior_stats is not None else stats.rate()
        return (stats.hits[rank] + PRIOR_STRENGTH * prior) / (stats.offered[rank] + PRIOR_STRENGTH)

    def ranked(self, tool: str, slot: str) -> list[tuple[SourceKey, SourceStats]]:
        """The slot's sources, best first by their estimated precision at rank 0."""
        slot_map = self.slots.get((tool, slot))
        if slot_map is None:
            return []
        return sorted(slot_map.sources.items(), key=lambda kv: (-self.p_hit(kv[0], kv[1], 0), kv[0]))

    def candidates(self, index: ContextIndex, tool: str, slot: str, group: str | None = None,
                   top_sources: int = 16) -> list[tuple[Any, float, str]]:
        """(value, p, source description) for a slot in a context, best first; p's sum to <= 1.

        Each source offers its first values; a value's p is the best empirical hit rate among the
        (source, rank) pairs that offer it, and the p's are scaled down when they add up past 1.
        """
        slot_map = self.slots.get((tool, slot))
        if slot_map is None:
            return []
        best: dict[str, tuple[Any, float, str]] = {}
        for key, stats in self.ranked(tool, slot)[:top_sources]:
            for rank, value in enumerate(self.offer(index, key, tool, slot, slot_map.type, group)):
                p = self.p_hit(key, stats, rank)
                vid = value_id(value)
                if vid not in best or p > best[vid][1]:
                    best[vid] = (value, p, describe(key))
        out = sorted(best.values(), key=lambda c: -c[1])
        total = sum(p for _, p, _ in out)
        if total > 1.0:
            out = [(v, p / total, d) for v, p, d in out]
        return out

    def offer(self, index: ContextIndex, key: SourceKey, tool: str, slot: str, type_: str | None,
              group: str | None = None) -> list[Any]:
        """The values a source offers for a slot, converted to the slot's type, distinct, in rank order."""
        if key == CONSTANT:
            raw = self.constants.values(tool, slot, leave_out=group)
        else:
            where, fresh = resolve(key, tool, slot)
            used = index.used.get((tool, slot)) if fresh else None
            raw = index.values(where, limit=MAX_RANK * 2, exclude=used)
        out: list[Any] = []
        seen: set[str] = set()
        for value in raw:
            v = coerce(value, type_)
            if v is None:
                continue
            vid = value_id(v)
            if vid not in seen:
                seen.add(vid)
                out.append(v)
                if len(out) >= MAX_RANK:
                    break
        return out


def label_contexts(trace: Trace) -> Iterator[tuple[ContextIndex, list[ToolCall]]]:
    """(index of the context, the calls the agent then made) at each decision point with calls; one
    index grows along the trace, so do not keep it past the next step."""
    index = ContextIndex()
    done = 0
    for i, calls in decision_positions(trace.events):
        while done < i:
            index.add(trace.events[done])
            done += 1
        if calls:
            yield index, calls


def slot_types(traces: Iterable[Trace]) -> dict[tuple[str, str], str]:
    """The JSON type each (tool, slot) most often has."""
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for trace in traces:
        for call in trace.calls:
            for slot, value in call.args.items():
                counts[(call.tool, slot)][type_name(value)] += 1
    return {k: c.most_common(1)[0][0] for k, c in counts.items()}


def _specific(key: SourceKey) -> list[SourceKey]:
    """The slot-specific sources a place that held the value stands for (list outputs: also fresh)."""
    if key[0] == "output":
        return [key, (*key, FRESH)] if "[*]" in key[2] else [key]
    if key[0] == "argument" and key[1] != "*":
        return [key]
    if key[0] == "text" and key[2] != "user":
        return [key]
    return []  # user text, wildcard arguments: covered by GENERIC


def mine_value_maps(traces: list[Trace], min_groups: int = MIN_GROUPS, progress: bool = False) -> ValueMaps:
    """Find each slot's specific sources (pass 1), then measure every source's success at every rank
    for every slot (pass 2); pool the generic sources' statistics over slots as their prior."""
    types = slot_types(traces)
    constants = ConstantTable.fit(traces)
    hit_groups: dict[tuple[str, str], dict[SourceKey, set[str]]] = defaultdict(lambda: defaultdict(set))
    for trace in _progress(traces, progress, "value maps 1/2"):
        for index, calls in label_contexts(trace):
            for call in calls:
                for slot, value in call.args.items():
                    for place in index.sources_holding(value):
                        for key in _specific(place):
                            hit_groups[(call.tool, slot)][key].add(trace.group)
    slots: dict[tuple[str, str], SlotMap] = {}
    for ts, type_ in types.items():
        keys = {k for k, gs in hit_groups.get(ts, {}).items() if len(gs) >= min_groups}
        slots[ts] = SlotMap(type_, {k: SourceStats() for k in (*GENERIC, *sorted(keys))})
    maps = ValueMaps(slots, constants)
    for trace in _progress(traces, progress, "value maps 2/2"):
        for index, calls in label_contexts(trace):
            for call in calls:
                for slot, truth in call.args.items():
                    slot_map = slots[(call.tool, slot)]
                    slot_map.n += 1
                    want = value_id(truth)
                    for key, stats in slot_map.sources.items():
                        offered = maps.offer(index, key, call.tool, slot, slot_map.type, trace.group)
                        stats.applicable += bool(offered)
                        for rank, v in enumerate(offered):
                            stats.offered[rank] += 1
                            stats.hits[rank] += value_id(v) == want
    for slot_map in slots.values():
        for key in GENERIC:
            maps.pooled.setdefault(key, SourceStats()).merge(slot_map.sources[key])
        # A source that never offered the right value adds nothing but noise.
        slot_map.sources = {k: st for k, st in slot_map.sources.items() if sum(st.hits)}
    log.info("value maps: %d slots, %d sources", len(slots), sum(len(s.sources) for s in slots.values()))
    return maps


def _progress(items: list, on: bool, desc: str) -> Iterable:
    if not on:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="trace", leave=False)
