"""Per-candidate tables of a session's kept pool, for `slot_rows` (the slot rows of a step in numpy).

What a slot row reads of a candidate is kept here per candidate number, in the session's state
(`candidates._State.slot_cache`): under each list of schema types its canonical form, fit,
value type and length bucket (they depend on the value id only) and its `SlotValue`; under one slot
featurizer its kind id, source tool, source event, `source_sig` and key tokens (they follow the newest
mention, through the pool's change log). `_Step` and `_Group` are one step's views: the pool order,
ranks and keys, and per list of types the ranking every slot of those types starts from. Kept per slot
featurizer across sessions (they depend on the model's vocabularies and the schema only): slot-name
tokens, p(source | tool, slot) buckets, each slot's constant and enum-member rows.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

import numpy as np

from toolcast.predictor.features import cues
from toolcast.predictor.features.ranking import (
    BACK_BUCKETS,
    EARLIER_TABLE,
    MISFIT_PENALTY,
    N_BACK,
    N_KINDS,
    N_LENGTHS,
    head_features,
    key_match,
    rank_term,
)
from toolcast.predictor.features.slots import SlotFeaturizer, SlotValue
from toolcast.predictor.features.values import (
    KIND_ENUM,
    bucket,
    canon,
    coerce,
    fits,
    source_sig,
    source_text,
    value_type,
)
from toolcast.predictor.session.interning import Intern, KeyIndex


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    """`a` with room for index n - 1 (doubling; new entries zero)."""
    if n <= len(a):
        return a
    return np.concatenate([a, np.zeros((max(n, 2 * len(a)) - len(a), *a.shape[1:]), a.dtype)])


class _Sources:
    """Per candidate, what its newest mention gives a row under one slot featurizer: kind id, source tool
    (0 none), source event, `source_sig` code, and the `SlotValue.source` text; follows the change log."""

    def __init__(self, sf: SlotFeaturizer) -> None:
        self.sf = sf
        self.kid = np.zeros(256, np.int64)
        self.tool = np.zeros(256, np.int64)
        self.event = np.zeros(256, np.int64)
        self.sig = np.zeros(256, np.int64)
        self.where: list[str] = []
        self.sigs = Intern()
        self.tools: dict[str, int] = {}
        self.key_ids = np.zeros((1, sf.max_name_tokens), np.int64)  # by key code ("" and unseen: 0)
        self.key_done = 0
        self.seen = 0

    def update(self, state, keys: KeyIndex) -> None:
        sf, log = self.sf, state.changed
        n = len(state.vids)
        if n > len(self.kid):
            self.kid, self.tool = _grown(self.kid, n), _grown(self.tool, n)
            self.event, self.sig = _grown(self.event, n), _grown(self.sig, n)
        while len(self.where) < n:
            self.where.append("")
        for cid in log[self.seen :]:
            s = state.src[cid]
            kid = sf.kinds.get(s.kind, 0)
            self.kid[cid] = kid if kid < N_KINDS else 0
            self.tool[cid] = 0 if s.tool is None else self.tools.setdefault(s.tool, len(self.tools) + 1)
            self.event[cid] = s.event
            self.sig[cid] = self.sigs.code(source_sig(s.kind, s.tool, s.path))
            self.where[cid] = source_text(s.kind, s.tool, s.path)
        self.seen = len(log)
        if len(keys.strs) > self.key_done:  # `_source_info`'s padded key ids, per key
            self.key_ids = _grown(self.key_ids, len(keys.strs))
            for c in range(self.key_done, len(keys.strs)):
                k = keys.strs[c]
                ids = sf.identifier_ids(k) if k else []
                self.key_ids[c] = 0
                self.key_ids[c, : len(ids)] = ids
            self.key_done = len(keys.strs)


_BY_VALUE: dict[tuple[tuple[str, ...], str], tuple[str, int, int, int]] = {}
"""(types, value id) -> canonical form, fit, value type, length bucket: pure, shared by all sessions (a
new session's values were mostly seen by earlier ones). Bounded; cleared when full."""
_BY_VALUE_SIZE = 200_000


class _Types:
    """Per candidate under one list of schema types: canonical form (interned), fit, value type, length
    bucket (depend on the value id only), and its `SlotValue` (remade when the newest mention changes).
    `dups`: two candidates share a canonical form ("12" and 12 for an integer slot); until then each
    value has one member, and a step's ranking needs no grouping."""

    def __init__(self, types: list[str]) -> None:
        self.types = types
        self.canons = Intern()
        self.table = np.zeros((4, 256), np.int64)  # code, fits, value type, length bucket
        self.cid_of: list[int] = []
        """Code -> the first candidate with that canonical form."""
        self.dups = False
        self.dup_cids: list[int] = []
        """Candidates whose canonical form another candidate has too (all of them, in order of sight)."""
        self._dup_codes: set[int] = set()
        self.values: dict[int, tuple[Any, SlotValue]] = {}
        self.done = 0

    def update(self, state) -> None:
        n = len(state.vids)
        if n <= self.done:
            return
        if n > self.table.shape[1]:
            t = np.zeros((4, max(n, 2 * self.table.shape[1])), np.int64)
            t[:, : self.table.shape[1]] = self.table
            self.table = t
        types, tkey, memo = self.types, tuple(self.types), _BY_VALUE
        ids, strs, cid_of = self.canons.ids, self.canons.strs, self.cid_of
        cols: list[tuple[int, int, int, int]] = []
        for cid in range(self.done, n):
            hit = memo.get((tkey, state.vids[cid]))
            if hit is None:
                v = coerce(state.src[cid].value, types)
                c = canon(v)
                text = v if isinstance(v, str) else c
                hit = (c, fits(v, types), value_type(v), bucket(len(text), N_LENGTHS))
                if len(memo) >= _BY_VALUE_SIZE:
                    memo.clear()
                memo[(tkey, state.vids[cid])] = hit
            code = ids.get(hit[0])
            if code is None:
                code = ids[hit[0]] = len(strs)
                strs.append(hit[0])
                cid_of.append(cid)
            else:
                self.dups = True
                if code not in self._dup_codes:
                    self._dup_codes.add(code)
                    self.dup_cids.append(cid_of[code])
                self.dup_cids.append(cid)
            cols.append((code, hit[1], hit[2], hit[3]))
        self.table[:, self.done : n] = np.array(cols, np.int64).T
        self.done = n

    def slot_value(self, state, cid: int, sources: _Sources) -> SlotValue:
        s = state.src[cid]
        hit = self.values.get(cid)
        if hit is None or hit[0] is not s:
            sv = SlotValue(
                coerce(s.value, self.types),
                sources.where[cid],
                self.canons.strs[self.table[0, cid]],
                sources.sigs.strs[sources.sig[cid]],
            )
            hit = self.values[cid] = (s, sv)
        return hit[1]


class _Step:
    """What every group and row of one step reads: the pool order, its inverse, ranks, keys."""

    def __init__(self, pool, keys: KeyIndex) -> None:
        self.order = pool.order_array
        self.n = n = len(self.order)
        self.inv = np.empty(n, np.int64)
        self.inv[self.order] = np.arange(n)
        self.ranks = np.asarray(pool.capped_ranks, np.int64)
        self.ranks_l: list[int] = pool.capped_ranks
        self.rank_term = rank_term(self.ranks)
        self.kcodes = keys.codes[self.order]
        self.kc_l: list[int] = self.kcodes.tolist()
        empty = keys.ids.get("")
        self.keyed = self.kcodes != (-1 if empty is None else empty)
        self._by_key: dict[int, np.ndarray] = {}

    def key_positions(self, code: int) -> np.ndarray:
        """Pool positions whose key has this code, in order."""
        hit = self._by_key.get(code)
        if hit is None:
            hit = self._by_key[code] = np.flatnonzero(self.kcodes == code)
        return hit


class _Group:
    """One step's pool under one list of types: the ranking every slot of these types starts from
    (`ranking.type_group`: best base priority per value, the first of equals; values by it, ties by their
    first position)."""

    def __init__(self, tt: _Types, st: _Step, any_slot) -> None:
        self.tt, self.st = tt, st
        cols = tt.table[:, st.order]
        codes, fits = cols[0], cols[1]
        self.cols = cols
        self.fits_l: list[int] = fits.tolist()
        n = st.n
        boosted = np.zeros(len(tt.canons.strs), bool)
        boosted[[c for c in map(tt.canons.ids.get, any_slot) if c is not None]] = True
        # The base priority (`ranking.type_group`'s): the earlier-use boost of a use in any slot, the fit.
        ints = np.where(fits == 2, MISFIT_PENALTY, 0)
        if any_slot:
            ints = ints + EARLIER_TABLE[np.where(boosted[codes], 3, 0)]
        neg = -(ints.astype(np.float64) - st.rank_term)
        self._dup_members: dict[int, list[int]] | None = None
        self._dup_sorted: tuple[np.ndarray, np.ndarray] | None = None
        if not tt.dups:  # one member per value: its position is its first and its best
            self.rank_order = np.argsort(neg, kind="stable")
            self.r_negs, self.r_firsts, self.r_codes = neg, np.arange(n), codes
            self.r_tops = self.r_firsts
        else:
            # Only the few values with several members need grouping: each keeps one entry, at its
            # first position, with its best member's priority (the first of equals); the others drop.
            dc = np.array(tt.dup_cids, np.int64)
            dpos, dcode = st.inv[dc], tt.table[0, dc]
            best = np.lexsort((dpos, neg[dpos], dcode))  # by value, then priority, then position
            by_pos = np.lexsort((dpos, dcode))  # by value, then position
            sc = dcode[by_pos]
            starts = np.flatnonzero(np.concatenate(([True], sc[1:] != sc[:-1])))
            d_tops, d_firsts = dpos[best[starts]], dpos[by_pos[starts]]
            keep = np.ones(n, bool)
            keep[dpos] = False
            keep[d_firsts] = True
            firsts = np.flatnonzero(keep)  # each value's first position, in pool order
            tops = firsts.copy()
            tops[np.searchsorted(firsts, d_firsts)] = d_tops
            self.r_negs, self.r_firsts, self.r_codes, self.r_tops = neg[tops], firsts, codes[firsts], tops
            self.rank_order = np.argsort(self.r_negs, kind="stable")  # ties by first position
            self._dup_sorted = (sc, dpos[by_pos])
        self.boosted = boosted
        self._prefix: tuple[list, ...] | None = None
        self.pairs: list[tuple[float, int]] = []
        self.pos_of: dict[int, int] = {}
        self.prefix = np.zeros((3, 0), np.int64)
        self._values: list[SlotValue] = []

    def members(self, code: int) -> list[int]:
        """Positions holding the value, in pool order (every interned value is in the session's pool)."""
        if self._dup_sorted is not None:
            if self._dup_members is None:
                self._dup_members = {}
                for c, p in zip(*(a.tolist() for a in self._dup_sorted), strict=True):
                    self._dup_members.setdefault(c, []).append(p)
            hit = self._dup_members.get(code)
            if hit is not None:
                return hit
        return [int(self.st.inv[self.tt.cid_of[code]])]

    def ranking(self, k: int) -> tuple[list, ...]:
        """The first k values, best first: -priority, first position, code, best position, whether the
        best has a key, whether the value was used in any slot (lists); also kept as `pairs` ((-priority,
        first position) of each, the order's sort key), `pos_of` (code -> its place) and `prefix` (rows of
        best position, key match and earlier use of each: what an untouched value gives a row)."""
        if self._prefix is None or len(self._prefix[0]) < min(k, len(self.rank_order)):
            o = self.rank_order[:k]
            tops = self.r_tops[o]
            codes = self.r_codes[o]
            keyed = self.st.keyed[tops]
            boosted = self.boosted[codes]
            self._prefix = (
                self.r_negs[o].tolist(), self.r_firsts[o].tolist(), codes.tolist(), tops.tolist(),
                keyed.tolist(), boosted.tolist(),
            )  # fmt: skip
            self.pairs = list(zip(self._prefix[0], self._prefix[1], strict=True))
            self.pos_of = {c: i for i, c in enumerate(self._prefix[2])}
            self.prefix = np.stack((tops, keyed, np.where(boosted, 3, 0)))
        return self._prefix

    def prefix_values(self, state, sources: _Sources, order_l: list[int]) -> list[SlotValue]:
        """`SlotValue` of each value of the current ranking prefix (the same in every row of the group)."""
        vals = self._values
        tops = self._prefix[3] if self._prefix is not None else []
        if len(vals) < len(tops):
            slot_value = self.tt.slot_value
            vals += [slot_value(state, order_l[tops[i]], sources) for i in range(len(vals), len(tops))]
        return vals


def key_matches(cache: dict, slot: str, keys: KeyIndex) -> tuple[np.ndarray, list[int], int, list[int]]:
    """`ranking.key_match` of each key (by code) with a slot name (an array, a list, their largest, the
    codes matching 2 or 3); grown as the session meets new keys."""
    hit = cache.get(("key_match", slot))
    if hit is None or len(hit[1]) < len(keys.strs):
        km = [] if hit is None else hit[1]
        km = km + [key_match(k, slot) for k in keys.strs[len(km) :]]
        matching = [c for c, v in enumerate(km) if v >= 2]
        hit = cache[("key_match", slot)] = (np.array(km, np.int64), km, max(km, default=0), matching)
    return hit


_BACK: list[int] = list(BACK_BUCKETS)
_BACK_TABLE = np.array(_BACK, np.int64)


def _back_table(n: int) -> np.ndarray:
    """Recency bucket of every distance up to n (`SlotFeaturizer.build`'s `BACK_BUCKETS` / `bucket`)."""
    global _BACK_TABLE
    if len(_BACK_TABLE) <= n:
        size = max(n + 1, 2 * len(_BACK))
        _BACK.extend(bucket(b, N_BACK) for b in range(len(_BACK), size))
        _BACK_TABLE = np.array(_BACK, np.int64)
    return _BACK_TABLE


_NAMES: WeakKeyDictionary[SlotFeaturizer, dict[str, tuple[int, ...]]] = WeakKeyDictionary()


def _names(sf: SlotFeaturizer) -> dict[str, tuple[int, ...]]:
    """Per slot featurizer: a slot name's token ids, padded to `max_name_tokens` (the `slot_name` row)."""
    d = _NAMES.get(sf)
    if d is None:
        d = _NAMES[sf] = {}
    elif len(d) >= 100_000:
        d.clear()
    return d


class _SigBuckets(dict):
    """`cues.p_bucket(p_source, sig)` by `source_sig`, for one p(source | tool, slot): made on demand."""

    def __init__(self, p_source) -> None:
        super().__init__()
        self.p_source = p_source

    def __missing__(self, sig: str) -> int:
        b = self[sig] = cues.p_bucket(self.p_source, sig)
        return b


_SIGS: WeakKeyDictionary[SlotFeaturizer, dict[tuple[str, str], _SigBuckets]] = WeakKeyDictionary()


def _sig_buckets(sf: SlotFeaturizer, tool: str, slot: str) -> _SigBuckets:
    """The bucket of p(source | tool, slot) of every source signature, kept per slot featurizer across
    sessions (the probabilities are the model's: `_source_probabilities` with nothing left out)."""
    d = _SIGS.get(sf)
    if d is None:
        d = _SIGS[sf] = {}
    hit = d.get((tool, slot))
    if hit is None:
        if len(d) >= 100_000:
            d.clear()
        hit = d[(tool, slot)] = _SigBuckets(sf.p_source(tool, slot, None))
    return hit


_EXTRAS: WeakKeyDictionary[SlotFeaturizer, dict[tuple, tuple[list, tuple]]] = WeakKeyDictionary()


def _extras(sf: SlotFeaturizer, tool: str, slot: str, types: list[str], enum: list) -> tuple[set[str], list]:
    """A slot's constants (canonical forms) and its constant and enum-member rows (`slot_extras`): (place,
    candidate, value, canon, constant, fit, its first features). Fixed per slot featurizer, tool, slot,
    types and enum: kept."""
    d = _EXTRAS.get(sf)
    if d is None:
        d = _EXTRAS[sf] = {}
    key = (tool, slot, tuple(types))
    members = [(v.__class__, v) for v in enum]  # 1, 1.0 and True are equal, not the same member
    hit = d.get(key)
    if hit is not None and hit[0] == members:
        return hit[1]
    const, rows = sf.slot_extras(tool, slot, types, enum)
    out = []
    for j, (cand, value, c, fit) in enumerate(rows):
        is_const = 1 if c in const or cand.kind == KIND_ENUM else 0
        head = head_features(sf.kinds, cand.kind, cand.rank, value, c)
        out.append((j, cand, value, c, is_const, fit, head))
    if len(d) >= 100_000:
        d.clear()
    d[key] = (members, (const, out))
    return const, out
