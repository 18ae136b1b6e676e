"""Symbolic argument extractors: the values in a context that a next call could copy.

An agent's next call mostly reuses values it has seen: an id from an earlier tool output, an earlier
argument, a file name or an order number the user typed. The extractors list those values, so that a
predictor (the pattern pool, the learned model's argument head) only has to *rank* them. This is PASTE's
value-mapping idea made into a candidate generator (arXiv 2603.18897).

Each extractor is a pure function of one event (`extractor_kinds.py`; `path_kinds.py` for coding tools'
listings), registered in `EXTRACTORS` under its *kind*, returning `(path, value)` pairs in reading order.
Paths are `jsonpaths` paths (`reservations[0].id`) for JSON values and `<field>[i:j]` spans for text
(`text[12:20]`, `output[0:19]`, `result[3:9]` inside a JSON string leaf). Because extractors see one event
at a time, their results are cached per event object and a context costs only a merge; contexts of one
trace share their event objects, so a replay is linear.

`mentions(context)` adds where and when: event index, role or tool, rank in the kind's list (newest event
first, distinct values), recency. `extract_candidates(context)` merges mentions of equal values into
`Candidate`s: the unit a learned argument head scores. Nothing here imports torch.

It lives on the predictor side because the predictors consume the candidates and dependencies point one
way (runtime -> predictor -> data); the runtime imports it from here.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.schema import Context, Event, Message, ToolCall, canonical_args
from toolcast.predictor.features.extractor_kinds import (
    MAX_LEAVES,
    MAX_TEXT,
    Found,
    argument,
    capitalized,
    date,
    email,
    file_path,
    ident,
    json_leaf,
    number,
    output_text,
    quoted,
    url,
    word,
)
from toolcast.predictor.features.path_kinds import listed_path

__all__ = ["MAX_LEAVES", "MAX_TEXT"]  # the extractors' limits, read with the registry

@dataclass(frozen=True)
class Extractor:
    kind: str
    fn: Callable[[Event], Found]
    doc: str


EXTRACTORS: dict[str, Extractor] = {
    e.__name__: Extractor(e.__name__, e, (e.__doc__ or "").strip().splitlines()[0])
    for e in (json_leaf, output_text, argument, url, email, file_path, ident, number, date, quoted,
              capitalized, word, listed_path)
}
"""Every extractor, by kind. A test exercises each one; add a case there when you add one here."""

KINDS: tuple[str, ...] = tuple(EXTRACTORS)


# ---- per-event cache ---------------------------------------------------------------------------------


def event_key(event: Event) -> tuple:
    """What an event's findings and mentions depend on, to tell a changed event from the one cached.
    Events are mutable: the runtime appends a call and fills its `output` when it returns. Strings are
    compared by identity first (cheap); `args` is compared with a copy taken when the event was seen,
    so a dict changed in place is noticed too."""
    if isinstance(event, ToolCall):
        return (ToolCall, event.tool, event.output, event.args)
    return (Message, event.role, event.text)


def _frozen_key(event: Event) -> tuple:
    """`event_key` with a private deep copy of the arguments (the one kept beside the cached results)."""
    key = event_key(event)
    return (*key[:3], copy.deepcopy(key[3])) if key[0] is ToolCall else key


class _EventCache:
    """Extraction results per event object. Keyed by id() with the event kept alive (and compared by
    identity, then by `event_key`: an output filled in after the event was first seen is extracted
    again), because events are mutable dataclasses and so unhashable; bounded, cleared when full."""

    def __init__(self, size: int = 100_000):
        self._size = size
        self._d: dict[int, tuple[Event, tuple, dict[str, list[tuple[str, Any, str]]]]] = {}
        self._lock = threading.Lock()

    def get(self, event: Event) -> dict[str, list[tuple[str, Any, str]]]:
        hit = self._d.get(id(event))
        if hit is not None and hit[0] is event and hit[1] == event_key(event):
            return hit[2]
        key = _frozen_key(event)
        found = {kind: [(p, v, value_id(v)) for p, v in ex.fn(event)] for kind, ex in EXTRACTORS.items()}
        with self._lock:
            if len(self._d) >= self._size:
                self._d.clear()
            self._d[id(event)] = (event, key, found)
        return found

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


_CACHE = _EventCache()


def clear_event_cache() -> None:
    """Forget every event's findings. The cache keeps its events alive, texts and outputs included, so a
    pass over many traces (training's featurizing) clears it after each trace: a trace's decision points
    share its events, no two traces share one."""
    _CACHE.clear()


def extract_event(event: Event) -> dict[str, list[tuple[str, Any, str]]]:
    """All extractors' findings in one event, by kind, as (path, value, value id); cached, do not mutate."""
    return _CACHE.get(event)


# ---- mentions and candidates -------------------------------------------------------------------------


def role_of(event: Event) -> str:
    """Who wrote the text or value: a message role, "output" (a tool result) or "call" (arguments)."""
    return event.role if isinstance(event, Message) else "output"


_SPAN = re.compile(r"\[\d+:\d+\]")


@lru_cache(maxsize=8192)
def path_shape(path: str) -> str:
    """The shape a rule is written in: list indexes and text spans generalised
    (`reservations[3].id` -> `reservations[*].id`, `text[12:20]` -> `text`); memoised (pure)."""
    return jsonpaths.generalize(_SPAN.sub("", path))


def value_id(value: Any) -> str:
    """Type-exact identity of a value: 12 and "12" are different candidates (the call must match)."""
    return canonical_args(value)


@dataclass(frozen=True)
class Mention:
    """One place a value was found."""

    value: Any
    kind: str
    event: int
    """Index in context.events."""
    role: str
    """"user", "assistant", "system" (message text), "output" (tool result) or "call" (arguments)."""
    tool: str | None
    """The tool whose output or arguments hold the value; None for messages."""
    path: str
    rank: int
    """Rank in this kind's list for the context: newest event first, distinct values, from 0."""
    recency: int
    """Events between the source and the decision point: 0 = the latest event."""

    @property
    def shape(self) -> str:
        return path_shape(self.path)


def _role(kind: str, event: Event) -> str:
    return "call" if kind == "argument" else role_of(event)


def mentions(context: Context, kinds: Iterable[str] | None = None) -> list[Mention]:
    """Every mention in the context, newest event first, then kind, then reading order."""
    return [m for m, _vid in _mentions_with_ids(context, kinds)]


def _mentions_with_ids(context: Context, kinds: Iterable[str] | None) -> list[tuple[Mention, str]]:
    """`mentions`, each with its value id (computed once per event by the cache, not per context)."""
    wanted = tuple(kinds) if kinds is not None else KINDS
    unknown = [k for k in wanted if k not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown extractor kind(s) {unknown}; known: {', '.join(KINDS)}")
    ranks: dict[str, dict[str, int]] = {k: {} for k in wanted}  # kind -> value id -> rank
    out: list[tuple[Mention, str]] = []
    n = len(context.events)
    for idx in range(n - 1, -1, -1):
        event = context.events[idx]
        found = extract_event(event)
        tool = event.tool if isinstance(event, ToolCall) else None
        for kind in wanted:
            kind_ranks = ranks[kind]
            for path, value, vid in found[kind]:
                rank = kind_ranks.setdefault(vid, len(kind_ranks))
                m = Mention(value, kind, idx, _role(kind, event), tool, path, rank, n - 1 - idx)
                out.append((m, vid))
    return out


@dataclass(frozen=True)
class Candidate:
    """A distinct value in the context, with every place it was found (newest first)."""

    value: Any
    mentions: tuple[Mention, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.kind for m in self.mentions))

    @property
    def source_event(self) -> int:
        return self.mentions[0].event

    @property
    def source_tool(self) -> str | None:
        return self.mentions[0].tool

    @property
    def source_path(self) -> str:
        return self.mentions[0].path

    @property
    def rank(self) -> int:
        """Best rank over the kinds that proposed it."""
        return min(m.rank for m in self.mentions)

    @property
    def recency(self) -> int:
        return self.mentions[0].recency


def extract_candidates(context: Context, kinds: Iterable[str] | None = None) -> list[Candidate]:
    """Distinct values of the context (type-exact), ordered by their newest mention. From scratch: the
    specification `session.candidates.SessionCandidates` (a session's pool kept across steps) matches."""
    groups: dict[str, list[Mention]] = {}
    for m, vid in _mentions_with_ids(context, kinds):
        groups.setdefault(vid, []).append(m)
    return [Candidate(ms[0].value, tuple(ms)) for ms in groups.values()]
