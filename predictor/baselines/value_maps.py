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
- `("template", text)`: a command template mined from the slot's values (`sed -n '1,60p' {path}`),
  filled with the context's paths newest first (`templates.py`);
- `("constant",)`: the slot's constants, values that recur across at least `MIN_GROUPS` task groups.
  Mining counts them with each task's own traces left out, so a user id or an order number of one task
  never becomes a constant (docs/architecture.md, "Argument values").

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

from toolcast.data.schema import Context, Event, Message, ToolCall, Trace, decision_positions
from toolcast.predictor.baselines.constants import ConstantTable
from toolcast.predictor.baselines.io import at, count, counts, get, obj, seq, text, tuple_key
from toolcast.predictor.baselines.templates import (
    MAX_TEMPLATES,
    PATH_KINDS,
    PATHS,
    fill,
    is_pathlike,
    template_of,
)
from toolcast.predictor.baselines.value_sources import (
    CONSTANT,
    FRESH,
    GENERIC,
    MAX_RANK,
    MIN_GROUPS,
    PRIOR_STRENGTH,
    SourceKey,
    coerce,
    describe,
    index_keys,
    match_key,
    resolve,
    type_name,
)
from toolcast.predictor.features.extractors import KINDS, extract_event, value_id

log = logging.getLogger(__name__)

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
        # The path pool: what the path extractors found (joined listings first), then path-like arguments.
        pool = [(v, vid) for kind in PATH_KINDS for _p, v, vid in found[kind]]
        pool += [(v, vid) for _p, v, vid in found["argument"] if is_pathlike(v)]
        if pool:
            per_event[PATHS] = pool
        for key, values in per_event.items():
            self._blocks[key].append(values)
        if isinstance(event, ToolCall):
            for slot, value in event.args.items():
                self.used[(event.tool, slot)].add(value_id(value))
        self.n += 1

    def keys(self) -> list[SourceKey]:
        """Every source that has listed a value so far."""
        return list(self._blocks)

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

    def to_dict(self) -> list[Any]:
        return [self.applicable, self.offered, self.hits]

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SourceStats:
        applicable, offered, hits = seq(d, where, 3)
        return cls(count(applicable, at(where, 0)), counts(offered, at(where, 1), MAX_RANK),
                   counts(hits, at(where, 2), MAX_RANK))


def _sources_to_dict(sources: dict[SourceKey, SourceStats]) -> list[list[Any]]:
    return [[list(k), st.to_dict()] for k, st in sources.items()]


def _sources_from_dict(d: Any, where: str) -> dict[SourceKey, SourceStats]:
    out = {}
    for i, pair in enumerate(seq(d, where)):
        k, st = seq(pair, at(where, i), 2)
        out[tuple_key(k, at(at(where, i), 0))] = SourceStats.from_dict(st, at(at(where, i), 1))
    return out


@dataclass
class SlotMap:
    """A slot's type and its sources' statistics."""

    type: str | None
    sources: dict[SourceKey, SourceStats]
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "n": self.n, "sources": _sources_to_dict(self.sources)}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SlotMap:
        type_, wt = get(obj(d, where), "type", where)
        n, wn = get(d, "n", where)
        return cls(None if type_ is None else text(type_, wt), _sources_from_dict(*get(d, "sources", where)),
                   count(n, wn))


@dataclass
class ValueMaps:
    """Everything mined: per (tool, slot) sources with their success, pooled priors, constants."""

    slots: dict[tuple[str, str], SlotMap]
    constants: ConstantTable
    pooled: dict[SourceKey, SourceStats] = field(default_factory=dict)
    """Generic sources' statistics over all slots: the prior of each slot's estimate."""
    _ranked: dict[tuple[str, str], tuple[dict, list[tuple[SourceKey, SourceStats, list[float]]]]] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    """(tool, slot) -> (the slot's sources dict it was made from, its sources best first, each with its
    p_hit at every rank): `candidates` runs for every slot of every candidate tool at every step, and
    the ranking depends on the mined counts only (a third of a pooled step went to re-sorting them)."""

    def to_dict(self) -> dict[str, Any]:
        return {"slots": [[tool, slot, m.to_dict()] for (tool, slot), m in self.slots.items()],
                "pooled": _sources_to_dict(self.pooled), "constants": self.constants.to_dict()}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> ValueMaps:
        slots, ws = get(obj(d, where), "slots", where)
        table = {}
        for i, item in enumerate(seq(slots, ws)):
            tool, slot, m = seq(item, at(ws, i), 3)
            ts = (text(tool, at(at(ws, i), 0)), text(slot, at(at(ws, i), 1)))
            table[ts] = SlotMap.from_dict(m, at(at(ws, i), 2))
        return cls(table, ConstantTable.from_dict(*get(d, "constants", where)),
                   _sources_from_dict(*get(d, "pooled", where)))

    def p_hit(self, key: SourceKey, stats: SourceStats, rank: int) -> float:
        """P(the value a source offers at `rank` is the agent's): the slot's own count, smoothed toward
        the source's pooled rate at that rank (generic sources) or its own rate over all ranks."""
        prior_stats = self.pooled.get(key)
        prior = prior_stats.rate(rank) if prior_stats is not None else stats.rate()
        return (stats.hits[rank] + PRIOR_STRENGTH * prior) / (stats.offered[rank] + PRIOR_STRENGTH)

    def ranked(self, tool: str, slot: str) -> list[tuple[SourceKey, SourceStats]]:
        """The slot's sources, best first by their estimated precision at rank 0."""
        return [(key, stats) for key, stats, _ in self._ranked_slot(tool, slot)]

    def _ranked_slot(self, tool: str, slot: str) -> list[tuple[SourceKey, SourceStats, list[float]]]:
        """`ranked` with each source's p_hit per rank, made once per slot (maps are not changed once mined:
        a slot whose sources dict was replaced is ranked again)."""
        slot_map = self.slots.get((tool, slot))
        if slot_map is None:
            return []
        kept = self._ranked.get((tool, slot))
        if kept is not None and kept[0] is slot_map.sources:
            return kept[1]
        order = sorted(slot_map.sources.items(), key=lambda kv: (-self.p_hit(kv[0], kv[1], 0), kv[0]))
        ranked = [(key, stats, [self.p_hit(key, stats, r) for r in range(MAX_RANK)]) for key, stats in order]
        self._ranked[(tool, slot)] = (slot_map.sources, ranked)
        return ranked

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
        for key, _stats, p_at in self._ranked_slot(tool, slot)[:top_sources]:
            for rank, value in enumerate(self.offer(index, key, tool, slot, slot_map.type, group)):
                p = p_at[rank]
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
        elif key[0] == "template":
            filled = (fill(key[1], p) for p in index.values(PATHS, limit=MAX_RANK * 2))
            raw = [v for v in filled if v is not None]
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
    templates: dict[tuple[str, str], dict[SourceKey, set[str]]] = defaultdict(lambda: defaultdict(set))
    for trace in _progress(traces, progress, "value maps 1/2"):
        for index, calls in label_contexts(trace):
            paths = None
            for call in calls:
                for slot, value in call.args.items():
                    for place in index.sources_holding(value):
                        for key in _specific(place):
                            hit_groups[(call.tool, slot)][key].add(trace.group)
                    if isinstance(value, str | list):
                        paths = index.values(PATHS, limit=64) if paths is None else paths
                        template = template_of(value, paths)
                        if template is not None:
                            templates[(call.tool, slot)][("template", template)].add(trace.group)
    slots: dict[tuple[str, str], SlotMap] = {}
    for ts, type_ in types.items():
        keys = {k for k, gs in hit_groups.get(ts, {}).items() if len(gs) >= min_groups}
        common = sorted((k for k, gs in templates.get(ts, {}).items() if len(gs) >= min_groups),
                        key=lambda k: (-len(templates[ts][k]), k))
        keys.update(common[:MAX_TEMPLATES])
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
