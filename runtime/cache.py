"""The speculation cache: private speculative results, served only to the exact call they ran.

Entries are keyed by (session, tool, canonical arguments) and are invisible to the agent until a real
call with the same key claims one. A claim succeeds only when the entry

- belongs to the current epoch of its session and of the runtime (a state-changing call with undeclared
  effects bumps one of them: `invalidate(session, None)` or `invalidate(None, None)`),
- was not invalidated (a state-changing call whose `mutates` overlap the entry's `reads`: in its session,
  or in any session when `invalidate` is given no session, as resource keys name shared state),
- is fresh (younger than its contract's `stable_for`, counted from the start of its run), and
- has not failed and was not claimed before (each speculative result is served at most once).

A claimed entry that is still running stays visible to invalidation, so a join re-checks `servable`
when the run ends. Pure and clock-free (callers pass `now`): the live runtime and the simulator share it.

Bounded work however many sessions there are: expired entries leave through a heap ordered by expiry
(`sweep`, amortised O(log n) per entry), and the unclaimed runs in flight are indexed (`running`), so
no decision point scans other sessions' entries.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from toolcast.runtime.contracts import keys_overlap

Key = tuple[str, str]
"""(tool, canonical args)."""


class State(enum.Enum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(eq=False)
class Entry:
    """One speculative run and its result."""

    id: int
    session: str
    tool: str
    cargs: str
    args: dict[str, Any]
    epoch: int
    reads: frozenset[str] | None
    started_at: float
    expires_at: float
    state: State = State.RUNNING
    result: Any = None
    error: BaseException | None = None
    finished_at: float | None = None
    claimed: bool = False
    invalid: bool = False
    """Set when invalidated, expired or dropped while claimed or running: never served."""
    handle: Any = None
    """The runtime's handle on the run (an asyncio task), for cancellation."""
    meta: dict[str, Any] = field(default_factory=dict)
    world: int = 0
    """The runtime-wide epoch when the run started."""
    stored: bool = True
    """Still in the cache (False once served, dropped or expired)."""

    @property
    def key(self) -> Key:
        return self.tool, self.cargs

    def busy_seconds(self, now: float) -> float:
        """Tool-seconds this run used so far (or in all, once finished)."""
        end = self.finished_at if self.finished_at is not None else now
        return max(0.0, end - self.started_at)


class SpeculationCache:
    def __init__(self) -> None:
        self._entries: dict[str, dict[Key, list[Entry]]] = {}
        self._epochs: dict[str, int] = {}
        self._world = 0
        self._ids = itertools.count(1)
        self._expiry: list[tuple[float, int, Entry]] = []
        """(expires_at, id, entry), a heap; entries that left already are skipped when popped."""
        self._running: dict[int, Entry] = {}
        """Unclaimed entries still running, by id."""

    # ---- epochs ----
    def epoch(self, session: str) -> int:
        return self._epochs.get(session, 0)

    # ---- adding and finishing runs ----
    def add(self, session: str, tool: str, cargs: str, args: dict[str, Any], *,
            reads: frozenset[str] | None, ttl: float, now: float) -> Entry:
        entry = Entry(next(self._ids), session, tool, cargs, args, self.epoch(session), reads, now, now + ttl,
                      world=self._world)
        self._entries.setdefault(session, {}).setdefault((tool, cargs), []).append(entry)
        heapq.heappush(self._expiry, (entry.expires_at, entry.id, entry))
        self._running[entry.id] = entry
        return entry

    def finish(self, entry: Entry, *, now: float, result: Any = None,
               error: BaseException | None = None) -> None:
        """Record the end of a run. A failed run is never served (the real call then runs normally)."""
        if entry.state is not State.RUNNING:
            return
        self._running.pop(entry.id, None)
        entry.finished_at = now
        if error is None:
            entry.state, entry.result = State.DONE, result
        else:
            entry.state, entry.error = State.FAILED, error

    def remove(self, entry: Entry) -> None:
        """Forget an entry (served, discarded, or never started)."""
        entry.stored = False
        self._running.pop(entry.id, None)
        by_key = self._entries.get(entry.session)
        if not by_key:
            return
        lst = by_key.get(entry.key)
        if lst and entry in lst:
            lst.remove(entry)
            if not lst:
                del by_key[entry.key]
        if not by_key:
            self._entries.pop(entry.session, None)

    # ---- the checks ----
    def servable(self, entry: Entry, now: float, *, check_ttl: bool = True) -> bool:
        """May this entry's result go to the agent? (A claimed, running entry: checked when it ends.)"""
        return (not entry.invalid
                and entry.state is not State.FAILED
                and entry.epoch == self.epoch(entry.session)
                and entry.world == self._world
                and (not check_ttl or now < entry.expires_at))

    def claim(self, session: str, tool: str, cargs: str, now: float) -> Entry | None:
        """The entry a real call with exactly this key may take over (finished first, then the oldest run)."""
        lst = self._entries.get(session, {}).get((tool, cargs), [])
        best = None
        for e in lst:
            if e.claimed or not self.servable(e, now):
                continue
            if best is None or (e.state is State.DONE and best.state is not State.DONE):
                best = e
        if best is not None:
            best.claimed = True
            self._running.pop(best.id, None)
        return best

    def live(self, session: str, now: float) -> Iterator[Entry]:
        """The session's unclaimed entries that could still be served."""
        for lst in self._entries.get(session, {}).values():
            for e in lst:
                if not e.claimed and self.servable(e, now):
                    yield e

    def covered(self, session: str, now: float) -> set[Key]:
        return {e.key for e in self.live(session, now)}

    def running(self, session: str | None = None) -> Iterator[Entry]:
        """Unclaimed entries still running (for budgets and for cancelling losers)."""
        for e in list(self._running.values()):
            if session is None or e.session == session:
                yield e

    def entries(self, session: str | None = None) -> list[Entry]:
        sessions = [session] if session is not None else list(self._entries)
        return [e for s in sessions for lst in self._entries.get(s, {}).values() for e in lst]

    # ---- invalidation and expiry: each returns the entries it took out (never served now) ----
    def invalidate(self, session: str | None, mutated: frozenset[str] | None) -> list[Entry]:
        """A state-changing call: None = undeclared effects, bump the epoch and drop everything.

        `session` None: the change is to state every session shares (runtime-wide resource keys)."""
        if mutated is None:
            if session is None:
                self._world += 1
            else:
                self._epochs[session] = self.epoch(session) + 1
            hit = self.entries(session)
        else:
            hit = [e for e in self.entries(session) if keys_overlap(mutated, e.reads)]
        return self._take_out(hit)

    def sweep(self, now: float) -> list[Entry]:
        """Take out every unclaimed entry past its freshness window, in any session: O(log n) each."""
        out = []
        while self._expiry and self._expiry[0][0] <= now:
            _, _, e = heapq.heappop(self._expiry)
            if e.stored and not e.claimed:
                out.append(e)
        return self._take_out(out)

    def expire(self, now: float, session: str | None = None) -> list[Entry]:
        """Drop entries past their freshness window, and failed ones (never servable)."""
        stale = [e for e in self.entries(session)
                 if (now >= e.expires_at or e.state is State.FAILED) and not e.claimed]
        return self._take_out(stale)

    def drop(self, entries: list[Entry]) -> list[Entry]:
        """Take these entries out (losers, pre-empted runs, a closed session)."""
        return self._take_out(entries)

    def drop_session(self, session: str) -> list[Entry]:
        out = self._take_out(self.entries(session))
        self._epochs.pop(session, None)
        return out

    def _take_out(self, entries: list[Entry]) -> list[Entry]:
        for e in entries:
            e.invalid = True
            self.remove(e)
        return entries
