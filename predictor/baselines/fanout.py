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

A read the mined rules do not speak for in a context (a tool set the logs never had) is fanned out by the
names of its slots and of earlier outputs' lists instead (`fanout_names.py`), priced by those rules'
precision counted on the same logs.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolcast.data.schema import Context, ToolCall, Trace, decision_positions
from toolcast.predictor.baselines.fanout_names import NAME_RULES, name_offers
from toolcast.predictor.baselines.fanout_state import Replay, State, ToolSlots, slot_offers
from toolcast.predictor.baselines.io import read_state, state_file, write_state
from toolcast.predictor.baselines.kept import KeptPerConversation
from toolcast.predictor.baselines.value_maps import coerce, describe, match_key, slot_types
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
MAX_REPLAYS = 256
"""Conversations whose replay `predict` keeps (least recently used out first)."""
FORMAT = "toolcast.fanout"
FANOUT_FILE = "fanout.json.gz"
"""A model directory's fan-out (`toolcast train` writes it beside `horizon.json`)."""


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
        self.name_rules: dict[Rule, RuleStats] = {}
        """The rules by name (`fanout_names.py`), for reads no mined rule speaks for in a context (none of
        the tool's mined rules' source tools was called there: `_source_tools`); empty: none offered."""
        self._source_tools: dict[str, set[str]] = {}
        """Each tool's mined rules' source tools (`_index_sources`, once `rules` is fitted or loaded)."""
        self.is_read: Callable[[str], bool] | None = None
        """Which tools the rules by name may offer (`fit` sets it from its own; a loaded fan-out offers any
        tool, which the runtime's contracts then judge: set it to offer reads only)."""
        self._replays: KeptPerConversation[Replay] = KeptPerConversation(MAX_REPLAYS)
        """Each conversation's replay, checked against the context before it is extended."""

    def with_reads(self, is_read: Callable[[str], bool]) -> FanoutPredictor:
        """This fan-out (its rules shared, not copied) whose rules by name offer `is_read`'s tools, with
        replays of its own (a replay's offers depend on which tools are reads)."""
        other = copy.copy(self)
        other.is_read = is_read
        other._replays = KeptPerConversation(MAX_REPLAYS)
        return other

    # ---- mining ------------------------------------------------------------------------------------
    def fit(self, traces: Iterable[Trace], *, is_read: Callable[[str], bool] | None = None,
            is_write: Callable[[str], bool] | None = None) -> FanoutPredictor:
        traces = list(traces)
        is_read = is_read or (lambda _t: True)
        is_write = is_write or (lambda _t: False)
        self.types = slot_types(traces)
        self.is_read = is_read
        self.name_rules = {r: RuleStats() for r in NAME_RULES}
        called_slots = ToolSlots.of_calls(c for t in traces for c in t.calls)
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
        # in a fixed order: the first rule that offers a call prices it, and the places a value was found
        # come from a set, whose order changes from one process to the next
        self.rules = {r: RuleStats() for r, g in sorted(groups.items(), key=lambda rg: repr(rg[0]))
                      if len(g) >= self.min_groups}
        self._index_sources()
        for trace in traces:
            self._count(trace, is_write, called_slots)
        log.info("fan-out: %d rules over %d tools", len(self.rules), len({r[1] for r in self.rules}))
        return self

    def _count(self, trace: Trace, is_write: Callable[[str], bool],
               called_slots: dict[str, tuple[str, ...]]) -> None:
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
        first_named: dict[tuple[str, str], int] = {}
        state = State(trace.tools)
        state.tools.add_missing(called_slots)  # a log without a tool list still counts its reads
        done = 0
        reads = self.is_read or (lambda _t: True)
        for d, (_, i, _calls) in enumerate(points):
            while done < i:
                state.add(trace.events[done])
                done += 1
            # the mined rules' offers, and apart, the rules by name as if every tool here were new
            for offers, stats_of, first in ((self._offers(state, names=False), self.rules, first_offer),
                                            (name_offers(state, reads, MAX_VALUES), self.name_rules,
                                             first_named)):
                for cand, rule in offers:
                    stats = stats_of[rule]
                    age = _age_bucket(d - first.setdefault(cand.key, d))
                    stats.offered[age] += 1
                    ahead = future[d].get(cand.key)
                    if ahead is not None:
                        stats.hits[age] += 1
                        stats.next_hits[age] += ahead == 0

    # ---- prediction --------------------------------------------------------------------------------
    def _offers(self, state: State, names: bool = True) -> list[tuple[CallPrediction, Rule]]:
        """The mined rules' candidates, then (`names`) the rules by name's for the reads no mined rule
        speaks for here."""
        out: list[tuple[CallPrediction, Rule]] = []
        seen: set[tuple[str, str]] = set(state.called)
        index = state.index
        for rule in self.rules:
            if rule[0] == "value":
                _, tool, slot, src = rule
                for pred in slot_offers(index, src, tool, slot, self.types.get((tool, slot)), MAX_VALUES):
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
        if names and self.name_rules:
            is_read, sources, called = self.is_read, self._source_tools, state.called_tools

            def new_read(tool: str) -> bool:
                # a tool of the same name in other logs (BFCL's get_order_details is not retail's) is new
                # here unless a source of its mined rules was called in this context
                return not (sources.get(tool, set()) & called) and (is_read is None or is_read(tool))

            out.extend((pred, rule) for pred, rule in name_offers(state, new_read, MAX_VALUES)
                       if pred.key not in seen)
        return out

    def _index_sources(self) -> None:
        self._source_tools = defaultdict(set)
        for rule in self.rules:
            self._source_tools[rule[1]].add(rule[3][1] if rule[0] == "value" else rule[2])

    def stats(self, rule: Rule) -> RuleStats:
        """A rule's counts: a mined rule's own, or its kind's for a rule by name."""
        return self.name_rules[rule] if rule in self.name_rules else self.rules[rule]

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        """Every fan-out candidate (up to k), best first by p_horizon; ages from the context itself.

        A candidate's age is the number of decision points it has been on offer, so the context's decision
        points are replayed; the replay is kept per conversation (`fanout_state.Replay`) and only extended
        by the new events, so a session pays for each decision point once, not at every prediction."""
        replay = self._replays.take(context.events) or Replay()
        offers, d, first = replay.advance(self, context.events, context.tools)
        self._replays.keep(context.events, replay)
        scored = []
        for cand, rule in offers:
            p_h, p_next = self.stats(rule).p(_age_bucket(d - first.get(cand.key, d)))
            scored.append(CallPrediction(cand.tool, dict(cand.args), sources=dict(cand.sources),
                                         p_tool=p_next, p_call=p_next, p_horizon=p_h))
        scored.sort(key=lambda c: (-c.p_horizon, c.tool, str(c.args)))
        return scored[:k]

    def to_dict(self) -> dict[str, Any]:
        """The rules as people read them (output sources described), for reports; `save` writes them
        as they load back."""
        return {"rules": [{"rule": [describe(x) if isinstance(x, tuple) and x and x[0] == "output" else x
                                    for x in rule], "offered": st.offered, "hits": st.hits,
                           "next_hits": st.next_hits} for rule, st in self.rules.items()]}

    # ---- saved and loaded: one JSON file, no logs needed ----------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted rules, their counts and the slot types (`FANOUT_FILE` in a directory, or the
        .json / .json.gz file named), atomically; `load` reads it back."""
        target = state_file(path, FANOUT_FILE)
        write_state(target, FORMAT, {
            "horizon": self.horizon, "min_groups": self.min_groups,
            "types": [[tool, slot, kind] for (tool, slot), kind in self.types.items()],
            "rules": [{"rule": _as_lists(rule), "offered": st.offered, "hits": st.hits,
                       "next_hits": st.next_hits} for rule, st in self.rules.items()],
            "name_rules": [{"rule": list(rule), "offered": st.offered, "hits": st.hits,
                            "next_hits": st.next_hits} for rule, st in self.name_rules.items()]})
        return target

    @classmethod
    def load(cls, path: str | Path, is_read: Callable[[str], bool] | None = None) -> FanoutPredictor:
        """A saved fan-out; ValueError naming the file and the field it rejects. `is_read`: which tools its
        rules by name may offer (not saved: the runtime's contracts say; None offers any tool)."""
        source = state_file(path, FANOUT_FILE)
        d = read_state(source, FORMAT)
        where = str(source)

        def count(v: Any, field_name: str) -> int:
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{where}: field '{field_name}' must be a non-negative integer, got {v!r}")
            return v

        def counts(v: Any, field_name: str) -> list[int]:
            if not isinstance(v, list) or len(v) != len(AGES):
                raise ValueError(f"{where}: field '{field_name}' must be a list of {len(AGES)} counts")
            return [count(x, field_name) for x in v]

        self = cls(count(d.get("horizon"), "horizon"), count(d.get("min_groups"), "min_groups"))
        types = d.get("types")
        if not isinstance(types, list) or not all(
                isinstance(t, list) and len(t) == 3 and all(isinstance(x, str) for x in t) for t in types):
            raise ValueError(f"{where}: field 'types' must be a list of [tool, slot, type] strings")
        self.types = {(tool, slot): kind for tool, slot, kind in types}
        rules = d.get("rules")
        if not isinstance(rules, list):
            raise ValueError(f"{where}: field 'rules' must be a list")
        for i, r in enumerate(rules):
            rule = _as_tuples(r.get("rule")) if isinstance(r, dict) else None
            if not isinstance(rule, tuple) or len(rule) < 4 or rule[0] not in ("value", "record") or not all(
                    isinstance(x, str) for x in rule[1:3]):
                raise ValueError(f"{where}: field 'rules[{i}].rule' must be a 'value' or 'record' rule")
            self.rules[rule] = RuleStats(*(counts(r.get(k), f"rules[{i}].{k}")
                                           for k in ("offered", "hits", "next_hits")))
        self._index_sources()
        self.is_read = is_read
        # a file saved before the rules by name has no such field: it offers none
        named = d.get("name_rules", [])
        if not isinstance(named, list):
            raise ValueError(f"{where}: field 'name_rules' must be a list")
        for i, r in enumerate(named):
            rule = tuple(r.get("rule")) if isinstance(r, dict) and isinstance(r.get("rule"), list) else None
            if rule not in NAME_RULES:
                raise ValueError(f"{where}: field 'name_rules[{i}].rule' must be one of {list(NAME_RULES)}")
            self.name_rules[rule] = RuleStats(*(counts(r.get(k), f"name_rules[{i}].{k}")
                                                for k in ("offered", "hits", "next_hits")))
        return self


def _as_lists(x: Any) -> Any:
    return [_as_lists(v) for v in x] if isinstance(x, tuple) else x


def _as_tuples(x: Any) -> Any:
    """`_as_lists` undone: a rule is tuples all the way down (it is a dict key), so every list was one."""
    return tuple(_as_tuples(v) for v in x) if isinstance(x, list) else x


def _record_rules(call: ToolCall, state: State) -> set[Rule]:
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
    state = State(trace.tools) if keep else None
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

