"""The fan-out baseline: launch every read whose argument an earlier output lists, not one guess.

Mined from logs the way the pattern pool mines value maps (`value_maps.py`): for each read tool with one
argument slot, the output fields of earlier calls its values come from (`get_reservation_details.
reservation_id <- get_user_details output reservations[*]`), kept when that holds in at least
`MIN_GROUPS` task groups. At a decision point every value such a field lists that the slot has not taken
yet in the session is a candidate call: a profile listing four reservations gives four reads at once.

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

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.decisions import decision_positions
from toolcast.data.schema import Context, Trace
from toolcast.predictor.base import CallPrediction
from toolcast.predictor.extractors import value_id
from toolcast.predictor.value_maps import ContextIndex, SourceKey, coerce, describe, slot_types

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


Rule = tuple[str, str, SourceKey]
"""(tool, slot, output source)."""


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
            for index, _i, calls in _contexts(trace):
                for call in calls:
                    if len(call.args) != 1 or not is_read(call.tool):
                        continue
                    (slot, value), = call.args.items()
                    for place in index.sources_holding(value):
                        if place[0] == "output":
                            groups[(call.tool, slot, place)].add(trace.group)
        self.rules = {r: RuleStats() for r, g in groups.items() if len(g) >= self.min_groups}
        for trace in traces:
            self._count(trace, is_write)
        log.info("fan-out: %d rules over %d tools", len(self.rules), len({r[0] for r in self.rules}))
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
        index = ContextIndex()
        done = 0
        for d, (_, i, _calls) in enumerate(points):
            while done < i:
                index.add(trace.events[done])
                done += 1
            for cand, rule in self._offers(index):
                stats = self.rules[rule]
                age = _age_bucket(d - first_offer.setdefault(cand.key, d))
                stats.offered[age] += 1
                ahead = future[d].get(cand.key)
                if ahead is not None:
                    stats.hits[age] += 1
                    stats.next_hits[age] += ahead == 0

    # ---- prediction --------------------------------------------------------------------------------
    def _offers(self, index: ContextIndex) -> list[tuple[CallPrediction, Rule]]:
        out: list[tuple[CallPrediction, Rule]] = []
        seen: set[tuple[str, str]] = set()
        for rule in self.rules:
            tool, slot, src = rule
            used = index.used.get((tool, slot), set())
            for raw in index.values(src, limit=MAX_VALUES, exclude=used):
                v = coerce(raw, self.types.get((tool, slot)))
                if v is None or value_id(v) in used:
                    continue
                pred = CallPrediction(tool, {slot: v}, sources={slot: describe(src)})
                if pred.key not in seen:
                    seen.add(pred.key)
                    out.append((pred, rule))
        return out

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        """Every fan-out candidate (up to k), best first by p_horizon; ages from the context itself."""
        index = ContextIndex()
        first: dict[tuple[str, str], int] = {}
        d = 0
        # Replaying the context's decision points gives each candidate its age (offers so far).
        positions = [i for i, _ in decision_positions(context.events)] + [len(context.events)]
        done = 0
        for i in sorted(set(positions)):
            while done < i:
                index.add(context.events[done])
                done += 1
            offers = self._offers(index)
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
        return {"rules": [{"tool": t, "slot": s, "source": describe(src), "offered": st.offered,
                           "hits": st.hits, "next_hits": st.next_hits}
                          for (t, s, src), st in self.rules.items()]}


def _contexts(trace: Trace, keep: bool = True):
    """(index, position, calls) at each decision point; with keep=False the index is not built."""
    index = ContextIndex() if keep else None
    done = 0
    for i, calls in decision_positions(trace.events):
        if index is not None:
            while done < i:
                index.add(trace.events[done])
                done += 1
        yield index, i, calls


def fit_fanout(traces: Iterable[Trace], *, is_read: Callable[[str], bool] | None = None,
               is_write: Callable[[str], bool] | None = None) -> FanoutPredictor:
    return FanoutPredictor().fit(traces, is_read=is_read, is_write=is_write)

