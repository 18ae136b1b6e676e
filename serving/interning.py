"""Event interning: the same event JSON in successive requests becomes the same event object.

The embedded predictor caches its work per event *object* (tokenized event rows, extracted argument
values, a session's candidate pool), so an agent process that re-sends its history plus one new event
pays only for the new event. Over HTTP each request parses into new objects and every one of those
caches misses (BENCHMARKS.md, Serving: ~4x the predictor CPU per request). `EventInterner` keeps the
events of recent requests in a bounded LRU keyed by their JSON text and hands back the object built
the first time, so a session's requests share their events again.

Why the key is what it is:
- `json.dumps` of the request's event dict as parsed, keys in the order sent (not sorted): equal text
  means equal content, type included (`1`, `1.0` and `true` serialise differently), and the same key
  order, so the object handed back is exactly what converting this dict would build. An agent re-sends
  the same JSON for the same event, so keeping the order costs no hits.
- plus the occurrence number of that text within the request: two identical events in one history stay
  two objects, as without interning (the predictor's caches then see what they always saw).
An event whose content changed (an output filled in, a flag flipped) has another key, so it is built
afresh and never served the old object.

The objects handed out are shared between requests and threads: nothing in the server may mutate them
(the predictor's caches also check each event's content, not only its identity). Only conversion
successes are kept; a bad event raises as it would without interning.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from toolcast.data.schema import Event

Convert = Callable[[Any, str], Event]
"""Builds one event from its dict; the second argument is the field path for errors (`events[3].`)."""


class EventInterner:
    """A thread-safe LRU of recently built events, keyed by their JSON text. `size` >= 1 entries."""

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"EventInterner size must be >= 1, got {size}")
        self.size = size
        self._d: OrderedDict[str, Event] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        """Events served from the LRU since start (read by the /metrics collector)."""
        self.misses = 0
        """Events built (and remembered) since start."""

    def __len__(self) -> int:
        return len(self._d)

    def events(self, dicts: Sequence[Any], convert: Convert, path: str = "") -> list[Event]:
        """The events of one request, in order: interned where their JSON was seen recently."""
        out: list[Event] = []
        seen: dict[str, int] = {}
        hits = misses = 0
        for i, d in enumerate(dicts):
            where = f"{path}events[{i}]."
            key = _key(d)
            if key is None:  # not JSON-serialisable: convert as without interning (it will likely fail)
                out.append(convert(d, where))
                continue
            n = seen.get(key, 0)
            seen[key] = n + 1
            if n:
                key = f"{key}\x00{n}"
            with self._lock:
                event = self._d.get(key)
                if event is not None:
                    self._d.move_to_end(key)
            if event is None:
                built = convert(d, where)  # outside the lock: conversion may raise, and takes time
                with self._lock:
                    # Another thread may have built the same event meanwhile: keep one object.
                    event = self._d.setdefault(key, built)
                    self._d.move_to_end(key)
                    while len(self._d) > self.size:
                        self._d.popitem(last=False)
                misses += 1
            else:
                hits += 1
            out.append(event)
        with self._lock:
            self.hits += hits
            self.misses += misses
        return out


def _key(d: Any) -> str | None:
    try:
        return json.dumps(d, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None
