"""State a predictor keeps per conversation between its predictions (`KeptPerConversation`).

A session's predictions see the same context grow by a few events each time; a predictor that derives
something from the whole context (the fan-out's replay of its decision points, the pattern pool's
index of its values) keeps it per conversation and extends it by the new events. The conversation is
told by the identity of its context's first event; each entry holds that event, so the identity is never
reused while the entry is kept. What is kept must still check that a context continues it (an output
filled in, another conversation whose first event is the same object) and start over when not.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class KeptPerConversation(Generic[T]):
    """Up to `size` conversations' states, the least recently used dropped first. `take` hands a state out
    (no other thread gets it meanwhile, so two never extend one); `keep` puts it back."""

    def __init__(self, size: int):
        self.size = size
        self._kept: dict[int, tuple[Any, T]] = {}
        self._lock = threading.Lock()

    def take(self, events: Sequence[Any]) -> T | None:
        """The state kept for the conversation these events begin, taken out; None if there is none."""
        if not events:
            return None
        with self._lock:
            hit = self._kept.pop(id(events[0]), None)
        return hit[1] if hit is not None and hit[0] is events[0] else None

    def keep(self, events: Sequence[Any], state: T) -> None:
        """Keep `state` for the conversation these events begin (nothing for an empty context)."""
        if not events:
            return
        with self._lock:
            self._kept[id(events[0])] = (events[0], state)
            while len(self._kept) > self.size:
                self._kept.pop(next(iter(self._kept)))

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)
