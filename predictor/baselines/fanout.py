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
from pathlib import Path
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.schema import Context, ToolCall, Trace, decision_positions
from toolcast.predictor.baselines.io import read_state, state_file, write_state
from toolcast.predictor.baselines.kept import KeptPerConversation
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


class _State:
    """What a context offers: its value index, the records of its JSON outputs, the calls made."""

    def __init__(self) -> None:
        self.index = ContextIndex()
        self.records: list[tuple[str, str, dict[str, Any]]] = []
        """(tool, record shape e.g. `flights[*]`, field -> value) of every list element of every output."""
        self.called: set[tuple[str, str]] = set()

    def add(self, event: Any) -> None:
        # Only tool calls feed it: offers come from outputs (messages never hold an "output" source),
        # the values slots took and the calls made.
        if isinstance(event, ToolCall):
            self.index.add(event)
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
        self._replays: KeptPerConversation[_Replay] = KeptPerConversation(MAX_REPLAYS)
        """Each conversation's replay, checked against the context before it is extended."""

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
        """Every fan-out candidate (up to k), best first by p_horizon; ages from the context itself.

        A candidate's age is the number of decision points it has been on offer, so the context's decision
        points are replayed; the replay is kept per conversation (`_Replay`) and only extended by the new
        events, so a session pays for each decision point once, not at every prediction."""
        replay = self._replays.take(context.events) or _Replay()
        offers, d, first = replay.advance(self, context.events)
        self._replays.keep(context.events, replay)
        scored = []
        for cand, rule in offers:
            p_h, p_next = self.rules[rule].p(_age_bucket(d - first.get(cand.key, d)))
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
                       "next_hits": st.next_hits} for rule, st in self.rules.items()]})
        return target

    @classmethod
    def load(cls, path: str | Path) -> FanoutPredictor:
        """A saved fan-out; ValueError naming the file and the field it rejects."""
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
        return self


def _as_lists(x: Any) -> Any:
    return [_as_lists(v) for v in x] if isinstance(x, tuple) else x


def _as_tuples(x: Any) -> Any:
    """`_as_lists` undone: a rule is tuples all the way down (it is a dict key), so every list was one."""
    return tuple(_as_tuples(v) for v in x) if isinstance(x, list) else x


class _Replay:
    """A context's decision points replayed so far: the state at its last event, the decision point at
    which each candidate was first offered, and the offers at the last event.

    `advance` extends it to a longer context when that context is this one's continuation (same tool calls
    at the same places, same outputs, same decision points), else starts over: what it returns is always
    what a replay from scratch gives. The decision points of a context before its last event do not change
    when it grows (`decision_positions` looks at an event and the one before it); the context's end is one
    too (its candidates' ages are counted there), but only for this context, so it is not committed."""

    def __init__(self) -> None:
        self.state = _State()
        self.done = 0
        """Events the state has seen."""
        self.calls: list[tuple[int, ToolCall, Any, bool]] = []
        """(index, call, its output, its error flag) of each call the state has seen."""
        self.positions: list[int] = []
        """Committed decision points (each before the end of the context it came from)."""
        self.first: dict[tuple[str, str], int] = {}
        self.offers: tuple[int, list[tuple[CallPrediction, Rule]]] | None = None
        """(position, offers there) of the last position looked at."""

    def _continues(self, events: list, positions: list[int]) -> bool:
        if len(events) < self.done or positions[:len(self.positions)] != self.positions:
            return False
        if any(p < self.done for p in positions[len(self.positions):-1]):
            return False
        calls = [(j, e) for j, e in enumerate(events[:self.done]) if isinstance(e, ToolCall)]
        return len(calls) == len(self.calls) and all(
            j == j0 and (e is e0 or e == e0) and e.output == out and e.error == err
            for (j, e), (j0, e0, out, err) in zip(calls, self.calls, strict=True))

    def advance(self, fanout: FanoutPredictor, events: list) -> tuple[list[tuple[CallPrediction, Rule]],
                                                                         int, dict[tuple[str, str], int]]:
        """(offers at the context's end, its decision index, first offer of each candidate)."""
        n = len(events)
        positions = sorted({i for i, _ in decision_positions(events) if i < n} | {n})
        if not self._continues(events, positions):
            self.__init__()
        for i in positions[len(self.positions):]:
            if self.offers is None or self.offers[0] != i:
                while self.done < i:
                    e = events[self.done]
                    self.state.add(e)
                    if isinstance(e, ToolCall):
                        self.calls.append((self.done, e, e.output, e.error))
                    self.done += 1
                self.offers = (i, fanout._offers(self.state))
            if i == n:
                break
            for cand, _ in self.offers[1]:
                self.first.setdefault(cand.key, len(self.positions))
            self.positions.append(i)
        return self.offers[1], len(self.positions), self.first


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

