"""The fan-out baseline: launch every read whose argument an earlier output lists, not one guess.

Mined from logs the way the pattern pool mines value maps (`value_maps.py`): for each read tool with one
argument slot, the output fields of earlier calls its values come from (`get_reservation_details.
reservation_id <- get_user_details output reservations[*]`); for a read with several slots, the list
records of earlier outputs that hold all of its values (`get_flight_status(flight_number, date) <-
get_reservation_details output flights[*] .flight_number, .date`). A rule is kept when it holds in at
least `MIN_GROUPS` task groups. At a decision point every value (record) such a rule lists that has not
been called yet in the session is a candidate call: a profile listing four reservations gives four reads.

Each candidate is priced by horizon probabilities measured on the training logs, per (rule, how many
decision points the value has been on offer):

- `p_horizon`: the call is issued before the session's next state change, within `horizon` decision
  points (what a speculative result needs to be claimed: writes invalidate it);
- `p_call`: it is the very next call (the share of those hits that came at the next decision point).

What the runtime does with them is its own business (`runtime/planner.py` prices a set of candidates by
the horizon utility); dropping results on writes is the speculation cache's invalidation. Nothing here
knows tool contracts: `fit` takes which tools are reads (`is_read`; default: every tool) and which
change state (`is_write`; default: none), so one rule serves any harness.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.schema import Context, ToolCall, Trace, decision_positions
from toolcast.predictor.baselines.value_maps import ContextIndex, coerce, describe, match_key, slot_types
from toolcast.predictor.features.extractors import MAX_LEAVES, value_id
from toolcast.predictor.protocol import CallPrediction

log = logging.getLogger(__name__)

MIN_GROUPS = 2
"""A rule must have held the agent's value in this many task groups."""
HORIZON = 8
"""Decision points ahead a candidate may be claimed in, for its mined p_horizon."""
MAX_VALUES = 16
"""Values one rule offers at a decision point (newest outputs first)."""
AGES = (0, 1, 2, 4)
"""Age buckets: decision points a value has been on offer (>= each bound); later offers hit less."""
PRIOR = (1.0, 3.0)
"""(hits, offers) pseudo-counts every rule's precision starts from (~0.33)."""


@dataclass
class RuleStats:
    offered: list[int] = field(default_factory=lambda: [0] * len(AGES))
    hits: list[int] = field(default_factory=lambda: [0] * len(AGES))
    """Issued within the horizon, before the next write."""
    next_hits: list[int] = field(default_factory=lambda: [0] * len(AGES))
    """Issued at the very next decision point."""

    def p(self, age: int) -> tuple[float, float]:
        """(p_horizon, p_next) at an age bucket, smoothed."""
        h, o = self.hits[age] + PRIOR[0], self.offered[age] + PRIOR[1]
        p_h = h / o
        p_next = p_h * (self.next_hits[age] + 0.5) / (self.hits[age] + 1.0)
        return p_h, p_next


Rule = tuple
"""("value", tool, slot, output source), or for a multi-slot read
("record", tool, source tool, record shape, ((slot, field), ...))."""


class _State:
    """What a context offers: its value index, the records of its JSON outputs, the calls made."""

    def __init__(self) -> None:
        self.index = ContextIndex()
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        """(tool, record shape e.g. `flights[*]`, field -> value) of every list element of every output."""
        self.called: set[tuple[str, str]] = set()

    def add(self, event: Any) -> None:
        self.index.add(event)
        if isinstance(event, ToolCall):
            self.called.add(event.key)
            self.records.extend((event.tool, shape, rec) for shape, rec in _records(event))


def _records(call: ToolCall) -> list[tuple[str, dict[str, Any]]]:
    """(shape, fields) of each list element in a call's JSON output (`flights[2].date` -> `flights[*]`)."""
    out = call.output
    if not out or out.lstrip()[:1] not in ("{", "["):
        return []
    try:
        parsed = json.loads(out)
    except (ValueError, RecursionError):
        return []
    recs: dict[str, dict[str, Any]] = {}
    for n, (path, value) in enumerate(jsonpaths.leaves(parsed, with_keys=False)):
        if n >= MAX_LEAVES:
            break
        cut = path.rfind("]")
        if cut < 0 or cut + 2 >= len(path) or path[cut + 1] != ".":
            continue
        recs.setdefault(path[:cut + 1], {})[path[cut + 2:]] = value
    return [(jsonpaths.generalize(prefix), fields) for prefix, fields in recs.items()]


def _age_bucket(age: int) -> int:
    return max(i for i, lo in enumerate(AGES) if age >= lo)


class FanoutPredictor:
    """Every not-yet-called value that a mined output field lists, as a call of the read that takes it."""

    name = "fanout"

    def __init__(self, horizon: int = HORIZON, min_groups: int = MIN_GROUPS):
        self.horizon = horizon
        self.min_groups = min_groups
        self.rules: dict[Rule, RuleStats] = {}
        self.types: dict[tuple[str, str], str] = {}

    # ---- mining ------------------------------------------------------------------------------------
    def fit(self, traces: Iterable[Trace], *, is_read: Callable[[str], bool] | None = None,
            is_write: Callable[[str], bool] | None = None) -> FanoutPredictor:
        traces = list(traces)
        is_read = is_read or (lambda _t: True)
        is_write = is_write or (lambda _t: False)
        self.types = slot_types(traces)
        groups: dict[Rule, set[str]] = defaultdict(set)
        for trace in traces:
            for state, _i, calls in _contexts(trace):
                for call in calls:
                    if not call.args or not is_read(call.tool):
                        continue
                    if len(call.args) == 1:
                        (slot, value), = call.args.items()
                        for place in state.index.sources_holding(value):
                            if place[0] == "output":
                                groups[("value", call.tool, slot, place)].add(trace.group)
                    else:
                        for rule in _record_rules(call, state):
                            groups[rule].add(trace.group)
        self.rules = {r: RuleStats() for r, g in groups.items() if len(g) >= self.min_groups}
        for trace in traces:
            self._count(trace, is_write)
        log.info("fan-out: %d rules over %d tools", len(self.rules), len({r[1] for r in self.rules}))
        return self

    def _count(self, trace: Trace, is_write: Callable[[str], bool]) -> None:
        points = list(_contexts(trace, keep=False))
        # For each decision point: the calls issued from it on, up to the next write and the horizon.
        future: list[dict[tuple[str, str], int]] = []
        for d in range(len(points)):
            seen: dict[tuple[str, str], int] = {}
            for ahead, (_, _, calls) in enumerate(points[d:d + self.horizon]):
                stop = False
                for c in calls:
                    if is_write(c.tool):
                        stop = True
                        break
                    seen.setdefault(c.key, ahead)
                if stop:
                    break
            future.append(seen)
        first_offer: dict[tuple[str, str], int] = {}
        state = _State()
        done = 0
        for d, (_, i, _calls) in enumerate(points):
            while done < i:
                state.add(trace.events[done])
                done += 1
            for cand, rule in self._offers(state):
                stats = self.rules[rule]
                age = _age_bucket(d - first_offer.setdefault(cand.key, d))
                stats.offered[age] += 1
                ahead = future[d].get(cand.key)
                if ahead is not None:
                    stats.hits[age] += 1
                    stats.next_hits[age] += ahead == 0

    # ---- prediction --------------------------------------------------------------------------------
    def _offers(self, state: _State) -> list[tuple[CallPrediction, Rule]]:
        out: list[tuple[CallPrediction, Rule]] = []
        seen: set[tuple[str, str]] = set(state.called)
        index = state.index
        for rule in self.rules:
            if rule[0] == "value":
                _, tool, slot, src = rule
                used = index.used.get((tool, slot), set())
                for raw in index.values(src, limit=MAX_VALUES, exclude=used):
                    v = coerce(raw, self.types.get((tool, slot)))
                    if v is None or value_id(v) in used:
                        continue
                    pred = CallPrediction(tool, {slot: v}, sources={slot: describe(src)})
                    if pred.key not in seen:
                        seen.add(pred.key)
                        out.append((pred, rule))
                continue
            _, tool, src_tool, shape, pairs = rule
            n = 0
            for rec_tool, rec_shape, fields in reversed(state.records):
                if rec_tool != src_tool or rec_shape != shape or n >= MAX_VALUES:
                    continue
                args = {slot: coerce(fields.get(f), self.types.get((tool, slot))) for slot, f in pairs}
                if any(v is None for v in args.values()):
                    continue
                pred = CallPrediction(tool, args, sources={slot: f"{src_tool} output {shape}.{f}"
                                                           for slot, f in pairs})
                if pred.key not in seen:
                    seen.add(pred.key)
                    out.append((pred, rule))
                    n += 1
        return out

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        """Every fan-out candidate (up to k), best first by p_horizon; ages from the context itself."""
        state = _State()
        first: dict[tuple[str, str], int] = {}
        d = 0
        # Replaying the context's decision points gives each candidate its age (offers so far).
        positions = [i for i, _ in decision_positions(context.events)] + [len(context.events)]
        done = 0
        offers: list[tuple[CallPrediction, Rule]] = []
        for i in sorted(set(positions)):
            while done < i:
                state.add(context.events[done])
                done += 1
            offers = self._offers(state)
            for cand, _ in offers:
                first.setdefault(cand.key, d)
            d += 1
        scored = []
        for cand, rule in offers:
            p_h, p_next = self.rules[rule].p(_age_bucket(d - 1 - first[cand.key]))
            cand.p_tool, cand.p_call, cand.p_horizon = p_next, p_next, p_h
            scored.append(cand)
        scored.sort(key=lambda c: (-c.p_horizon, c.tool, str(c.args)))
        return scored[:k]

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [{"rule": [describe(x) if isinstance(x, tuple) and x and x[0] == "output" else x
                                    for x in rule], "offered": st.offered, "hits": st.hits,
                           "next_hits": st.next_hits} for rule, st in self.rules.items()]}


def _record_rules(call: ToolCall, state: _State) -> set[Rule]:
    """The records of earlier outputs that hold every argument of a multi-slot call, as rules."""
    want = {slot: match_key(v) for slot, v in call.args.items()}
    rules: set[Rule] = set()
    for tool, shape, fields in state.records:
        keys: dict[str, list[str]] = defaultdict(list)
        for f, v in fields.items():
            keys[match_key(v)].append(f)
        if all(w in keys for w in want.values()):
            pairs = tuple(sorted((slot, keys[w][0]) for slot, w in want.items()))
            rules.add(("record", call.tool, tool, shape, pairs))
    return rules


def _contexts(trace: Trace, keep: bool = True):
    """(state, position, calls) at each decision point; with keep=False the state is not built."""
    state = _State() if keep else None
    done = 0
    for i, calls in decision_positions(trace.events):
        if state is not None:
            while done < i:
                state.add(trace.events[done])
                done += 1
        yield state, i, calls


def fit_fanout(traces: Iterable[Trace], *, is_read: Callable[[str], bool] | None = None,
               is_write: Callable[[str], bool] | None = None) -> FanoutPredictor:
    return FanoutPredictor().fit(traces, is_read=is_read, is_write=is_write)

