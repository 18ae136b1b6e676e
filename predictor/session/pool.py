"""The slot featurizer's pool over a session's kept candidates: per-candidate work done once per session.

`slots._pool` / `slots._group` rebuild, at every step, what the ranking reads of each of the context's
few hundred values: its key, its value coerced to the slot's schema types, canonical form and fit, and
the per-type ranking (best priority per distinct value). Over a `session_candidates.CandidatePool` most
of that does not change between steps: a value's canonical form and fit depend on its value id only,
its key on its newest mention. This module keeps those per session (arrays indexed by candidate number)
and builds a step's ranking in numpy; it gives `slots._rank` the same `_Pool` / `_TypeGroup` interface,
read lazily, so the rows are identical (tests/embedded/test_session_candidates.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolcast.predictor.features.slots import (
    _EARLIER_PRIO,
    _canon,
    _fits,
    _key_words,
    _Pool,
    _TypeGroup,
    coerce,
    last_key,
)


@dataclass
class PoolCandidate:
    """A session pool's candidate as the ranking reads it (made only for the values it scores)."""

    value: Any
    source_event: int
    source_tool: str | None
    source_path: str
    rank: int
    kind: str
    src: Any
    """The `session_candidates.Source` (identity-hashed: the slot featurizer caches per source)."""


class _Cands(Sequence):
    def __init__(self, sources: list, ranks: list[int]):
        self.sources, self.ranks = sources, ranks
        self._made: dict[int, PoolCandidate] = {}

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i):  # type: ignore[override]
        c = self._made.get(i)
        if c is None:
            s = self.sources[i]
            c = self._made[i] = PoolCandidate(s.value, s.event, s.tool, s.path, self.ranks[i], s.kind, s)
        return c


class _Kinds(Sequence):
    def __init__(self, sources: list):
        self.sources = sources

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i):  # type: ignore[override]
        return self.sources[i].kind


class _Strs(Sequence):
    """strs[codes[i]]: a per-position view of interned strings."""

    def __init__(self, strs: list[str], codes: list[int]):
        self.strs, self.codes = strs, codes

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i):  # type: ignore[override]
        return self.strs[self.codes[i]]


class _Values(Sequence):
    def __init__(self, sources: list, types: list[str]):
        self.sources, self.types = sources, types
        self._made: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, i):  # type: ignore[override]
        if i in self._made:
            return self._made[i]
        v = self._made[i] = coerce(self.sources[i].value, self.types)
        return v


class _Intern:
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


class _Interned(_Intern):
    """Strings of one per-candidate property, interned, with each candidate's code (grown as the
    session's pool grows)."""

    def __init__(self) -> None:
        super().__init__()
        self.codes = np.zeros(256, np.int64)

    def set(self, cid: int, s: str) -> None:
        if cid >= len(self.codes):
            self.codes = np.concatenate([self.codes, np.zeros(max(cid + 1, 2 * len(self.codes)), np.int64)])
        self.codes[cid] = self.code(s)


class _KeyIndex(_Interned):
    """Each candidate's key (`last_key` of its newest mention's path); follows the session's change log."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0

    def update(self, state) -> None:
        log, src = state.changed, state.src
        for cid in log[self.seen :]:
            self.set(cid, last_key(src[cid].path))
        self.seen = len(log)


class _TypeIndex(_Interned):
    """Per schema types: each candidate's canonical form (coerced) and fit; depend on its value id only."""

    def __init__(self, types: list[str]) -> None:
        super().__init__()
        self.types = types
        self.fits = np.zeros(256, np.int64)
        self.done = 0

    def update(self, state) -> None:
        n = len(state.vids)
        if n > len(self.fits):
            self.fits = np.concatenate([self.fits, np.zeros(max(n, 2 * len(self.fits)), np.int64)])
        for cid in range(self.done, n):
            v = coerce(state.src[cid].value, self.types)
            self.set(cid, _canon(v))
            self.fits[cid] = _fits(v, self.types)
        self.done = n


class _Members:
    """Canonical value -> pool positions holding it, in pool order (the `_TypeGroup.members` reads)."""

    def __init__(self, ids: dict[str, int], by_code: np.ndarray, start: np.ndarray, count: np.ndarray):
        self.ids, self.by_code, self.start, self.count = ids, by_code, start, count
        self._memo: dict[str, list[int] | None] = {}  # the slots of a step ask for the same values

    def _members(self, canon: str) -> list[int] | None:
        if canon in self._memo:
            return self._memo[canon]
        c = self.ids.get(canon)
        out = None
        if c is not None and c < len(self.start) and self.start[c] >= 0:
            s = int(self.start[c])
            out = self.by_code[s : s + int(self.count[c])].tolist()
        self._memo[canon] = out
        return out

    def __contains__(self, canon: object) -> bool:
        return isinstance(canon, str) and self._members(canon) is not None

    def get(self, canon: str, default: Any = None) -> Any:
        out = self._members(canon)
        return default if out is None else out

    def __getitem__(self, canon: str) -> list[int]:
        out = self._members(canon)
        if out is None:
            raise KeyError(canon)
        return out


class _Ranking:
    """(-best base priority, first position, canonical value, best position), best first; lazily."""

    def __init__(self, negs: list[float], firsts: list[int], codes: list[int], tops: list[int], strs):
        self.negs, self.firsts, self.codes, self.tops, self.strs = negs, firsts, codes, tops, strs

    def __iter__(self):
        strs = self.strs
        for neg, first, code, top in zip(self.negs, self.firsts, self.codes, self.tops, strict=True):
            yield neg, first, strs[code], top


class SessionPool:
    """Builds the `_Pool` of one session step (`CandidatePool`); the type groups on demand."""

    def __init__(self, cp) -> None:
        state = cp.state
        cache = state.slot_cache
        keys = cache.get("keys")
        if keys is None:
            keys = cache["keys"] = _KeyIndex()
        keys.update(state)
        self.state, self.cache = state, cache
        self.sources = cp.sources
        self.order = np.asarray(cp.order, np.int64)
        self.ranks = np.asarray(cp.capped_ranks, np.int64)
        kcodes = keys.codes[self.order]
        self.kcodes = kcodes
        present = np.unique(kcodes).tolist()
        key_words = {"": _key_words("")}
        for c in present:
            key_words[keys.strs[c]] = _key_words(keys.strs[c])
        self.key_index = keys
        self.pool = _Pool(
            _Cands(self.sources, cp.capped_ranks),  # type: ignore[arg-type]
            [],  # values: read through the type groups
            _Kinds(self.sources),  # type: ignore[arg-type]
            cp.capped_ranks,
            _Strs(keys.strs, kcodes.tolist()),  # type: ignore[arg-type]
            _ByKey(keys.ids, kcodes),  # type: ignore[arg-type]
            key_words,
            [],  # extractors never make enum candidates
            {},
            make_group=self.group,
        )

    def group(self, types: list[str], used_anywhere: set[str] | frozenset[str]) -> _TypeGroup:
        key = ("types", tuple(types))
        index = self.cache.get(key)
        if index is None:
            index = self.cache[key] = _TypeIndex(types)
        with self.state.lock:  # another thread may be folding the next event into this state
            index.update(self.state)
        codes = index.codes[self.order]
        fits = index.fits[self.order]
        n = len(codes)
        # `slots._group`'s base priority, term for term: (earlier-use boost + fit) - 0.05 * rank.
        boosted = np.zeros(len(index.strs), bool)
        boosted[[c for c in map(index.ids.get, used_anywhere) if c is not None]] = True
        ints = np.where(fits == 2, -6, 0) + np.where(boosted[codes], _EARLIER_PRIO[3], 0)
        base = ints.astype(np.float64) - 0.05 * np.minimum(self.ranks, 40)
        pos = np.arange(n)
        by_code = np.argsort(codes, kind="stable")  # members of a value, in pool order
        sorted_codes = codes[by_code]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if n else pos
        ucodes = sorted_codes[starts]
        counts = np.diff(np.r_[starts, n])
        firsts = by_code[starts]
        best = np.lexsort((pos, -base, codes))  # per value: its best priority, the first of equals
        bstarts = np.flatnonzero(np.r_[True, codes[best][1:] != codes[best][:-1]]) if n else pos
        tops = best[bstarts]  # same value order as ucodes (both sorted by code)
        negs = -base[tops]
        rank_order = np.lexsort((firsts, negs))
        start = np.full(len(index.strs), -1, np.int64)
        count = np.zeros(len(index.strs), np.int64)
        start[ucodes] = starts
        count[ucodes] = counts
        return _TypeGroup(
            _Values(self.sources, types),  # type: ignore[arg-type]
            _Strs(index.strs, codes.tolist()),  # type: ignore[arg-type]
            fits.tolist(),
            [],  # base: folded into the ranking
            _Members(index.ids, by_code, start, count),  # type: ignore[arg-type]
            _Ranking(  # type: ignore[arg-type]
                negs[rank_order].tolist(),
                firsts[rank_order].tolist(),
                ucodes[rank_order].tolist(),
                tops[rank_order].tolist(),
                index.strs,
            ),
        )


class _ByKey:
    """Key -> pool positions under it (only the keys a slot name matches are asked for)."""

    def __init__(self, ids: dict[str, int], kcodes: np.ndarray):
        self.ids, self.kcodes = ids, kcodes

    def __getitem__(self, key: str) -> list[int]:
        c = self.ids.get(key)
        return [] if c is None else np.flatnonzero(self.kcodes == c).tolist()
