"""Strings interned to dense codes, per candidate of a session's kept pool (`session/tables.py` reads them).

A session's pool grows by a few values a step; what a slot row reads of a value (its canonical form
under a list of schema types, its key) is a string shared by many values. Interning them to codes lets a
step compare and gather them in numpy instead of Python loops.
"""

from __future__ import annotations

import numpy as np

from toolcast.predictor.features.values import last_key


class Intern:
    """Strings interned to dense codes (0, 1, ... in order of first sight)."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.strs: list[str] = []

    def code(self, s: str) -> int:
        c = self.ids.get(s)
        if c is None:
            c = self.ids[s] = len(self.strs)
            self.strs.append(s)
        return c


class KeyIndex(Intern):
    """Each candidate's key (`last_key` of its newest mention's path), interned, with each candidate's
    code; follows the session's change log (grown as the session's pool grows)."""

    def __init__(self) -> None:
        super().__init__()
        self.codes = np.zeros(256, np.int64)
        self.seen = 0

    def update(self, state) -> None:
        log, src = state.changed, state.src
        for cid in log[self.seen :]:
            if cid >= len(self.codes):
                grow = np.zeros(max(cid + 1, 2 * len(self.codes)), np.int64)
                self.codes = np.concatenate([self.codes, grow])
            self.codes[cid] = self.code(last_key(src[cid].path))
        self.seen = len(log)
