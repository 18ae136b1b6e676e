"""A session's argument-value candidates kept across steps: a step adds only its new events' mentions.

The agent process calls the predictor at every step with the history it saw before plus one new event.
`extractors.extract_candidates` (the specification) re-merges every mention of the whole history each
time: ~1,000 mentions at 64 events, 15 ms at 256. `SessionCandidates` keeps, per session, the merged
pool (distinct values by value id, their newest mention, their rank in each extractor kind's list) and
folds in the new events: a value mentioned by the new event moves to the front of the pool and of its
kinds' lists, every other value keeps its order (its rank can only grow, by the new values ahead of it).

A context is served from a kept pool only when the pool's events are a prefix of it: the same objects,
each unchanged since it was folded in (`extractors.event_key`: a call whose output was filled in later,
an edited message, changed arguments all count as changed). Anything else (another session, an edited
or shortened history) starts a new pool from the first event: the from-scratch path. Pools are kept
per first event object, least recently used dropped beyond `size`.

What a step returns, `CandidatePool`, is a sequence of `extractors.Candidate` equal to
`extract_candidates(context)` (built on demand: tests, other consumers) and carries what the slot
featurizer reads directly: the pool in order, and each value's best rank capped at `RANK_CAP - 1` (the
slot features cannot tell larger ranks apart: rank buckets end at 63, priorities at 40).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolcast.data.schema import Context, Event, ToolCall, canonical_args
from toolcast.predictor.features.extractors import (
    KINDS,
    Candidate,
    Mention,
    _frozen_key,
    event_key,
    extract_event,
    role_of,
)

RANK_CAP = 64
"""Ranks kept exactly per kind; larger ones read as RANK_CAP - 1 by the slot featurizer."""
_RANKS = np.arange(RANK_CAP, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Source:
    """A value's newest mention: what the slot featurizer reads of a candidate. Compared (and hashed)
    by identity: a new mention of the value is a new `Source`, so results cached per source stay right."""

    value: Any
    kind: str
    """"extractor kind:role" ("json_leaf:output"), as `slots.kind_of` gives it."""
    event: int
    tool: str | None
    path: str


class _State:
    """One session's merged pool after `len(events)` events."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.keys: list[tuple] = []
        """`_frozen_key` of each event when it was folded in."""
        self.cid: dict[str, int] = {}
        """Value id -> candidate number (order of first sight)."""
        self.vids: list[str] = []
        self.src: list[Source] = []
        """Newest mention of each candidate."""
        self.blocks: list[list[tuple[int, list[tuple[str, str, str | None, str, Any]]]]] = []
        """Per candidate: (event index, its mentions there in reading order: kind, role, tool, path,
        value), oldest event first."""
        self.order: list[int] = []
        """Candidates by newest mention (the pool order)."""
        self.top: dict[str, list[int]] = {k: [] for k in KINDS}
        """Per kind: the first RANK_CAP distinct candidates, newest first (their ranks)."""
        self.calls: list[list[tuple[str, str, str]]] = []
        """Per event: (tool, slot, canonical value) of its arguments (earlier uses)."""
        self.used: dict[tuple[str, str], frozenset[str]] = {}
        """(tool, slot) / ("", slot) / ("", "") -> canonical values the calls so far passed
        (`values.earlier_uses`); replaced, never changed in place, so a step's pool may keep the one it
        saw."""
        self.changed: list[int] = []
        """Candidates whose newest mention changed, in fold order (a log the slot caches follow)."""
        self.slot_cache: dict[Any, Any] = {}
        """The slot rows' per-candidate tables (`session/tables.py`), kept with the session."""
        self.lock = threading.Lock()

    def matches(self, events: Sequence[Event]) -> bool:
        """This pool's events are a prefix of `events`, the same objects, none changed since. Safe to
        call while another thread folds (it reads the events folded completely, `keys` is appended
        last); the answer holds for `len(self.keys)` events."""
        n = len(self.keys)
        if n > len(events):
            return False
        for i in range(n - 1, -1, -1):  # newest first: a filled-in output is most likely there
            e = events[i]
            if e is not self.events[i] or event_key(e) != self.keys[i]:
                return False
        return True

    def fold(self, event: Event) -> None:
        """Add the next event's mentions."""
        idx = len(self.events)
        found = extract_event(event)
        self.events.append(event)
        tool = event.tool if isinstance(event, ToolCall) else None
        erole = role_of(event)
        front: list[int] = []  # distinct candidates of this event, in its reading order
        seen: set[int] = set()
        for kind in KINDS:
            role = "call" if kind == "argument" else erole
            head: list[int] = []
            head_set: set[int] = set()
            for path, value, vid in found[kind]:
                c = self.cid.get(vid)
                if c is None:
                    c = self.cid[vid] = len(self.vids)
                    self.vids.append(vid)
                    self.src.append(None)  # type: ignore[arg-type]  # set just below
                    self.blocks.append([])
                if c not in seen:
                    seen.add(c)
                    front.append(c)
                    self.src[c] = Source(value, f"{kind}:{role}", idx, tool, path)
                    self.blocks[c].append((idx, []))
                self.blocks[c][-1][1].append((kind, role, tool, path, value))
                if c not in head_set:
                    head_set.add(c)
                    head.append(c)
            if head:
                old = self.top[kind]
                self.top[kind] = (head + [c for c in old if c not in head_set])[:RANK_CAP]
        if front:
            self.order = front + [c for c in self.order if c not in seen]
            self.changed.extend(front)
        if isinstance(event, ToolCall):
            calls = [(event.tool, s, canonical_args(v)) for s, v in event.args.items()]
            if calls:
                used = dict(self.used)
                for tool, slot, canon in calls:
                    for key in ((tool, slot), ("", slot), ("", "")):
                        used[key] = used.get(key, frozenset()) | {canon}
                self.used = used
            self.calls.append(calls)
        else:
            self.calls.append([])
        self.keys.append(_frozen_key(event))  # last: `matches` reads only events folded completely


class CandidatePool(Sequence[Candidate]):
    """One context's candidates (a `SessionCandidates` step): equal to `extract_candidates(context)`
    as a sequence; `order`, `sources`, `capped_ranks` and `used` (earlier uses) for `slot_rows.build`."""

    def __init__(self, state: _State, n_events: int):
        """Made under the state's lock, with the state at `n_events` events."""
        self.state, self.n_events = state, n_events
        self.order = state.order  # replaced by a fold, never changed in place
        self.order_array = np.array(self.order, np.int64)
        self.sources = list(map(state.src.__getitem__, self.order))
        best = np.full(len(state.vids), RANK_CAP - 1, np.int64)  # each value's best rank in any kind
        for lst in state.top.values():
            if lst:  # distinct candidates, best first
                a = np.array(lst, np.int64)
                best[a] = np.minimum(best[a], _RANKS[: len(a)])
        self.capped_ranks: list[int] = best[self.order_array].tolist()
        self.used = state.used
        self._full: list[Candidate] | None = None
        self._changed = len(state.changed)

    # ---- the full candidates, on demand (the same objects `extract_candidates` makes) ----
    def _materialize(self) -> list[Candidate]:
        if self._full is None:
            st, n = self.state, self.n_events
            ranks: dict[str, dict[int, int]] = {k: {} for k in KINDS}
            for idx in range(n - 1, -1, -1):  # exact ranks, as `mentions` numbers them
                found = extract_event(st.events[idx])
                for kind in KINDS:
                    kr = ranks[kind]
                    for _p, _v, vid in found[kind]:
                        kr.setdefault(st.cid[vid], len(kr))
            out = []
            for c in self.order:
                ms = []
                for idx, block in reversed(st.blocks[c]):
                    if idx >= n:  # folded in after this step (the pool went on to a longer context)
                        continue
                    for kind, role, tool, path, value in block:
                        ms.append(Mention(value, kind, idx, role, tool, path, ranks[kind][c], n - 1 - idx))
                out.append(Candidate(ms[0].value, tuple(ms)))
            self._full = out
        return self._full

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i):  # type: ignore[override]
        return self._materialize()[i]

    def __iter__(self):
        return iter(self._materialize())


class SessionCandidates:
    """`Extract` for an agent process: `extract_candidates` with each session's pool kept across steps.
    Thread-safe: one lock to find a pool, each pool's own lock to fold into it (a cold fold of a long
    history does not hold up other sessions). size: pools kept (least recently used dropped).

    Pools are found by their first event object, and several pools may share one: sessions that open
    with the same system prompt (one object when the server interns events, `toolcast serve`) each keep
    their own pool, and a step takes the longest pool that is a prefix of its history."""

    PER_FIRST_EVENT = 32
    """Pools kept per first event (sessions sharing one opening), oldest dropped first."""

    def __init__(self, size: int = 64):
        self.size = size
        self._pools: OrderedDict[int, list[_State]] = OrderedDict()
        self._count = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __call__(self, context: Context, kinds: Any = None) -> Sequence[Candidate]:
        if kinds is not None:
            from toolcast.predictor.features.extractors import extract_candidates

            return extract_candidates(context, kinds)
        events = context.events
        if not events:
            return CandidatePool(_State(), 0)
        with self._lock:  # finding and ranking pools only: a fold (a cold one is long) takes the state's lock
            key = id(events[0])
            states = self._pools.get(key)
            if states is None:
                states = self._pools[key] = []
            state, seen = None, -1
            for st in states:
                n = len(st.keys)
                if n > seen and st.matches(events):
                    state, seen = st, n
            if state is not None:
                self.hits += 1
                states.remove(state)
                states.append(state)  # most recently used last
            else:
                self.misses += 1
                state, seen = _State(), 0
                states.append(state)
                self._count += 1
                if len(states) > self.PER_FIRST_EVENT:
                    states.pop(0)
                    self._count -= 1
            self._pools.move_to_end(key)
            while self._count > self.size and self._pools:
                old_key, old = next(iter(self._pools.items()))
                if old_key == key and len(self._pools) == 1:
                    old.pop(0)
                    self._count -= 1
                    continue
                self._count -= len(old)
                del self._pools[old_key]
        with state.lock:
            if (len(state.keys) != seen or len(state.events) != seen) and not state.matches(events):
                state = _State()  # another context went on with that pool meanwhile: one of its own
            for e in events[len(state.events) :]:
                state.fold(e)
            return CandidatePool(state, len(events))
