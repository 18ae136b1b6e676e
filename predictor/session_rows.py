"""Slot rows of a session step in numpy: `slots.SlotFeaturizer.build` over a kept candidate pool.

`SlotFeaturizer.build` ranks the pool once per slot in Python and writes each chosen value's features
one tuple at a time (~150 µs a slot, ~1.5 ms a step at history 64). Over a session's kept pool
(`session_candidates.CandidatePool`) almost everything a row reads of a candidate is fixed between
steps and is kept here per candidate number: its canonical form, fit, value type and length under each
list of schema types; its key, kind, source tool, source event and `source_sig` (those follow the
newest mention, through the pool's change log). A step then:

1. per list of schema types, ranks the pool by the priority every slot gives a value (fit, rank, a use
   in any slot), in numpy, as `session_slots.SessionPool.group` does;
2. per slot, rescores only the values its own boosts touch (earlier uses of this slot or slot name,
   its constants, keys matching its name) and merges them with the first untouched values of that
   ranking: `slots._rank`'s rule, term for term, so the same values in the same order;
3. gathers the features of every chosen value of every row at once (fancy indexing), and fills in the
   few rows' constants and enum members the context does not show, as `_rank` makes them.

`build` returns exactly `SlotFeaturizer.build(context, pool, tools, n_rows)` (arrays bitwise, rows
equal): tests/embedded/test_session_rows.py checks it over growing sample sessions and generated
schemas. It returns None when the pool's session went on since this step (the caller falls back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from toolcast.data.schema import Context, ToolSpec
from toolcast.predictor import cues
from toolcast.predictor.session_slots import PoolCandidate, _KeyIndex
from toolcast.predictor.slots import (
    _BACK_BUCKETS,
    _EARLIER_PRIO,
    _KEY_PRIO,
    _RANK_BUCKETS,
    _TYPES,
    CAND_FEATURE_SIZES,
    KIND_ENUM,
    SLOT_FEATURE_SIZES,
    SlotFeaturizer,
    SlotRow,
    SlotValue,
    _bucket,
    _canon,
    _fits,
    _Fixed,
    _key_words,
    _schema_types,
    _value_type,
    coerce,
    slot_names,
    source_sig,
)

_EMPTY: frozenset[str] = frozenset()
_RANK_TABLE = np.array(_RANK_BUCKETS, np.int64)
_N_KINDS, _N_LEN = CAND_FEATURE_SIZES[0], CAND_FEATURE_SIZES[4]


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    """`a` with room for index n - 1 (doubling; new entries zero)."""
    if n <= len(a):
        return a
    return np.concatenate([a, np.zeros((max(n, 2 * len(a)) - len(a), *a.shape[1:]), a.dtype)])


class _Intern:
    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.strs: list[str] = []

    def code(self, s: str) -> int:
        c = self.ids.get(s)
        if c is None:
            c = self.ids[s] = len(self.strs)
            self.strs.append(s)
        return c


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
        self.sigs = _Intern()
        self.tools: dict[str, int] = {}
        self.key_ids = np.zeros((1, sf.max_name_tokens), np.int64)  # by key code ("" and unseen: 0)
        self.key_done = 0
        self.seen = 0

    def update(self, state, keys: _KeyIndex) -> None:
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
            self.kid[cid] = kid if kid < _N_KINDS else 0
            self.tool[cid] = 0 if s.tool is None else self.tools.setdefault(s.tool, len(self.tools) + 1)
            self.event[cid] = s.event
            cand = PoolCandidate(s.value, s.event, s.tool, s.path, 0, s.kind, s)
            self.sig[cid] = self.sigs.code(source_sig(cand, s.kind))
            self.where[cid] = f"{s.kind}:{s.tool or ''}" + (f".{s.path}" if s.path else "")
        self.seen = len(log)
        if len(keys.strs) > self.key_done:  # `_source_info`'s padded key ids, per key
            self.key_ids = _grown(self.key_ids, len(keys.strs))
            for c in range(self.key_done, len(keys.strs)):
                k = keys.strs[c]
                ids = sf.identifier_ids(k) if k else []
                self.key_ids[c] = 0
                self.key_ids[c, : len(ids)] = ids
            self.key_done = len(keys.strs)


class _Types:
    """Per candidate under one list of schema types: canonical form (interned), fit, value type, length
    bucket (depend on the value id only), and its `SlotValue` (remade when the newest mention changes).
    `dups`: two candidates share a canonical form ("12" and 12 for an integer slot); until then each
    value has one member, and a step's ranking needs no grouping."""

    def __init__(self, types: list[str]) -> None:
        self.types = types
        self.canons = _Intern()
        self.table = np.zeros((4, 256), np.int64)  # code, fits, value type, length bucket
        self.cid_of: list[int] = []
        """Code -> the first candidate with that canonical form."""
        self.dups = False
        self.values: dict[int, tuple[Any, SlotValue]] = {}
        self.done = 0

    def update(self, state) -> None:
        n = len(state.vids)
        if n > self.table.shape[1]:
            t = np.zeros((4, max(n, 2 * self.table.shape[1])), np.int64)
            t[:, : self.table.shape[1]] = self.table
            self.table = t
        for cid in range(self.done, n):
            v = coerce(state.src[cid].value, self.types)
            canon = _canon(v)
            text = v if isinstance(v, str) else canon
            code = self.canons.code(canon)
            if code == len(self.cid_of):
                self.cid_of.append(cid)
            else:
                self.dups = True
            self.table[:, cid] = (code, _fits(v, self.types), _value_type(v), _bucket(len(text), _N_LEN))
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

    def __init__(self, pool, keys: _KeyIndex) -> None:
        self.order = np.asarray(pool.order, np.int64)
        self.n = n = len(self.order)
        self.inv = np.empty(n, np.int64)
        self.inv[self.order] = np.arange(n)
        self.ranks = np.asarray(pool.capped_ranks, np.int64)
        self.ranks_l: list[int] = pool.capped_ranks
        self.rank_term = 0.05 * np.minimum(self.ranks, 40)
        self.kcodes = keys.codes[self.order]
        self.kc_l: list[int] = self.kcodes.tolist()
        empty = keys.ids.get("")
        self.keyed = self.kcodes != (-1 if empty is None else empty)


class _Group:
    """One step's pool under one list of types: the ranking every slot of these types starts from
    (`slots._group`: best base priority per value, the first of equals; values by it, ties by their
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
        # The base priority, term for term: (earlier-use boost + fit) - 0.05 * rank.
        ints = np.where(fits == 2, -6, 0)
        if any_slot:
            ints = ints + np.where(boosted[codes], _EARLIER_PRIO[3], 0)
        neg = -(ints.astype(np.float64) - st.rank_term)
        if not tt.dups:  # one member per value: its position is its first and its best
            self.by_code = None
            self.rank_order = np.argsort(neg, kind="stable")
            self.r_negs, self.r_firsts, self.r_codes = neg, np.arange(n), codes
            self.r_tops = self.r_firsts
        else:
            pos = np.arange(n)
            by_code = np.argsort(codes, kind="stable")  # members of a value, in pool order
            sorted_codes = codes[by_code]
            starts = np.flatnonzero(np.concatenate(([True], sorted_codes[1:] != sorted_codes[:-1])))
            ucodes = sorted_codes[starts]
            firsts = by_code[starts]
            best = np.lexsort((pos, neg, codes))  # per value: its best priority, the first of equals
            bcodes = codes[best]
            tops = best[np.flatnonzero(np.concatenate(([True], bcodes[1:] != bcodes[:-1])))]
            self.rank_order = np.lexsort((firsts, neg[tops]))
            self.r_negs, self.r_firsts, self.r_codes, self.r_tops = neg[tops], firsts, ucodes, tops
            self.start = np.full(len(tt.canons.strs), -1, np.int64)
            self.count = np.zeros(len(tt.canons.strs), np.int64)
            self.start[ucodes] = starts
            self.count[ucodes] = np.diff(np.concatenate((starts, [n])))
            self.by_code = by_code
        self.boosted = boosted
        self._prefix: tuple[list, ...] | None = None

    def members(self, code: int) -> list[int]:
        """Positions holding the value, in pool order (every interned value is in the session's pool)."""
        if self.by_code is None:
            return [int(self.st.inv[self.tt.cid_of[code]])]
        s = int(self.start[code])
        return self.by_code[s : s + int(self.count[code])].tolist()

    def ranking(self, k: int) -> tuple[list, ...]:
        """The first k values, best first: -priority, first position, code, best position, whether the
        best has a key, whether the value was used in any slot (lists)."""
        if self._prefix is None or len(self._prefix[0]) < min(k, len(self.rank_order)):
            o = self.rank_order[:k]
            tops = self.r_tops[o]
            codes = self.r_codes[o]
            self._prefix = (
                self.r_negs[o].tolist(), self.r_firsts[o].tolist(), codes.tolist(), tops.tolist(),
                self.st.keyed[tops].tolist(), self.boosted[codes].tolist(),
            )  # fmt: skip
        return self._prefix


def _key_match(cache: dict, slot: str, keys: _KeyIndex) -> tuple[np.ndarray, list[int]]:
    """`_rank`'s key match of each key (by code) with a slot name: 0 none, 1 other, 2 shared word, 3 same
    (an array and a list); grown as the session meets new keys."""
    hit = cache.get(("key_match", slot))
    if hit is None or len(hit[1]) < len(keys.strs):
        text, words = _key_words(slot)
        km = [] if hit is None else hit[1]
        km = km + [
            0 if not k else 3 if w == text else 2 if ws & words else 1
            for k, (w, ws) in ((k, _key_words(k)) for k in keys.strs[len(km) :])
        ]
        hit = cache[("key_match", slot)] = (np.array(km, np.int64), km)
    return hit


_BACK: list[int] = list(_BACK_BUCKETS)
_BACK_TABLE = np.array(_BACK, np.int64)


def _back_table(n: int) -> np.ndarray:
    """Recency bucket of every distance up to n (`build`'s `_BACK_BUCKETS` / `_bucket`)."""
    global _BACK_TABLE
    if len(_BACK_TABLE) <= n:
        size = max(n + 1, 2 * len(_BACK))
        _BACK.extend(_bucket(b, CAND_FEATURE_SIZES[2]) for b in range(len(_BACK), size))
        _BACK_TABLE = np.array(_BACK, np.int64)
    return _BACK_TABLE


def build(
    sf: SlotFeaturizer,
    context: Context,
    pool: Any,
    tools: Sequence[tuple[int, ToolSpec]],
    n_rows: int | None = None,
) -> tuple[dict[str, np.ndarray], list[SlotRow]] | None:
    """`sf.build(context, pool, tools, n_rows)` for a `CandidatePool`; None when its session went on."""
    state = pool.state
    with state.lock:  # another thread may be folding the next event into this state
        if (
            len(state.changed) != pool._changed
            or len(state.events) != pool.n_events
            or len(pool.order) != len(state.vids)
        ):
            return None
        return _build(sf, context, pool, state, tools, n_rows)


def _build(sf, context, pool, state, tools, n_rows):
    s_max = n_rows if n_rows is not None else sf.max_slots * max(1, len(tools))
    m, tk = sf.max_candidates, sf.max_name_tokens
    arr = {
        "slot_tool": np.zeros(s_max, np.int64),
        "slot_num": np.zeros((s_max, len(SLOT_FEATURE_SIZES)), np.int64),
        "slot_name": np.zeros((s_max, tk), np.int64),
        "slot_mask": np.zeros(s_max, bool),
        "cand_num": np.zeros((s_max, m, len(CAND_FEATURE_SIZES)), np.int64),
        "cand_key": np.zeros((s_max, m, tk), np.int64),
        "cand_event": np.zeros((s_max, m), np.int64),
        "cand_mask": np.zeros((s_max, m), bool),
    }
    rows: list[SlotRow] = []
    if not tools:
        return arr, rows
    cache = state.slot_cache
    keys = cache.get("keys")
    if keys is None:
        keys = cache["keys"] = _KeyIndex()
    keys.update(state)
    sources = cache.get(("sources", id(sf)))
    if sources is None or sources.sf is not sf:
        sources = cache[("sources", id(sf))] = _Sources(sf)
    sources.update(state, keys)
    st = _Step(pool, keys)
    used = pool.used
    any_slot = used.get(("", ""), _EMPTY)
    groups: dict[tuple[str, ...], int] = {}
    group_list: list[_Group] = []
    chosen: list[tuple[int, ...]] = []  # row, column, position, key match, earlier use, constant, group
    extras: list[tuple[int, int, tuple, str]] = []  # row, column, features, kind (not in the context)
    row_meta: list[tuple[str, str, int]] = []  # tool, slot, group
    row_values: list[list] = []
    for tool_index, spec in tools:
        props = spec.parameters.get("properties") if isinstance(spec.parameters, dict) else None
        props = props if isinstance(props, dict) else {}
        required = spec.parameters.get("required") if isinstance(spec.parameters, dict) else None
        for slot in slot_names(spec, context, sf.max_slots):
            r = len(rows)
            if r >= s_max:
                break
            prop = props.get(slot, {})
            types = _schema_types(prop)
            enum = prop.get("enum") if isinstance(prop, dict) and isinstance(prop.get("enum"), list) else []
            arr["slot_tool"][r], arr["slot_mask"][r] = tool_index, True
            arr["slot_num"][r] = (
                1 if isinstance(required, list) and slot in required else 2,
                _TYPES.get(types[0], 0) if types else 0,
                1 if enum else 0,
            )
            ids = sf.identifier_ids(slot)
            arr["slot_name"][r, : len(ids)] = ids
            tkey = tuple(types)
            gi = groups.get(tkey)
            if gi is None:
                tt = cache.get(("row_types", tkey))
                if tt is None:
                    tt = cache[("row_types", tkey)] = _Types(types)
                tt.update(state)
                gi = groups[tkey] = len(group_list)
                group_list.append(_Group(tt, st, any_slot))
            values: list = []
            ranked = _rank(sf, spec.name, slot, types, enum, group_list[gi], st, keys, cache, used)
            for j, b in enumerate(ranked):
                x = b[2]
                if x.__class__ is int:
                    chosen.append((r, j, x, b[3], b[4], b[5], gi))
                    values.append(x)
                else:
                    cand, value, canon, feats = x
                    extras.append((r, j, feats, cand.kind))
                    values.append(SlotValue(value, f"{cand.kind}:", canon, cand.kind))
            row_meta.append((spec.name, slot, gi))
            row_values.append(values)
            rows.append(SlotRow(spec.name, slot, values))
    if chosen:  # features of every chosen value of the context, all rows at once
        er, ec, pos, key, early, const, gidx = np.array(chosen, np.int64).T
        cid = st.order[pos]
        per = np.stack([g.tt.table[1:, : len(state.vids)] for g in group_list])[gidx, :, cid]
        back = pool.n_events - sources.event[cid]
        row_tool = np.array([sources.tools.get(t, -1) for t, _s, _g in row_meta], np.int64)[er]
        stool = sources.tool[cid]
        arr["cand_num"][er, ec] = np.stack(
            [
                sources.kid[cid],
                _RANK_TABLE[st.ranks[pos]],
                _back_table(pool.n_events)[back],
                per[:, 1],  # value type
                per[:, 2],  # length
                key,
                early,
                const,
                np.where(stool == 0, 0, np.where(stool == row_tool, 2, 1)),  # same tool
                per[:, 0],  # fits
                _p_buckets(sf, sources, row_meta, cache)[er, sources.sig[cid]],
            ],
            axis=1,
        )
        arr["cand_key"][er, ec] = sources.key_ids[st.kcodes[pos]]
        arr["cand_event"][er, ec] = np.where(back <= sf.max_events, back, 0)
        arr["cand_mask"][er, ec] = True
    for r, j, feats, kind in extras:  # constants / enum members the context does not show
        tool, slot, _g = row_meta[r]
        p_source = sf._source_probabilities(tool, slot, None)
        arr["cand_num"][r, j] = (*feats[:2], _BACK_BUCKETS[0], *feats[3:], cues.p_bucket(p_source, kind))
        arr["cand_mask"][r, j] = True
    order = st.order
    for r, values in enumerate(row_values):
        tt = group_list[row_meta[r][2]].tt
        for j, v in enumerate(values):
            if v.__class__ is int:
                values[j] = tt.slot_value(state, int(order[v]), sources)
    return arr, rows


def _p_buckets(sf: SlotFeaturizer, sources: _Sources, row_meta, cache: dict) -> np.ndarray:
    """Per row, p(source | tool, slot)'s bucket of every source_sig code (rows x codes)."""
    n_sigs = len(sources.sigs.strs)
    out = np.zeros((len(row_meta), max(1, n_sigs)), np.int64)
    for r, (tool, slot, _g) in enumerate(row_meta):
        key = ("p_bucket", id(sf), tool, slot)
        t = cache.get(key)
        if t is None or len(t) < n_sigs:
            p_source = sf._source_probabilities(tool, slot, None)
            done = 0 if t is None else len(t)
            new = np.array([cues.p_bucket(p_source, s) for s in sources.sigs.strs[done:n_sigs]], np.int64)
            t = cache[key] = new if t is None else np.concatenate([t, new])
        out[r, :n_sigs] = t[:n_sigs]
    return out


def _rank(sf, tool, slot, types, enum, g: _Group, st: _Step, keys, cache, used) -> list[tuple]:
    """`SlotFeaturizer._rank` over a step's group: the slot's best values, best first, each as
    (-priority, first position, pool position, key match, earlier use, constant), or with
    (candidate, value, canon, features) for a constant or enum member the context does not show."""
    m, n = sf.max_candidates, st.n
    any_slot = used.get(("", ""), _EMPTY)
    same_slot = used.get((tool, slot), _EMPTY)
    any_tool = used.get(("", slot), _EMPTY)
    const, const_rows = sf._constants(tool, slot, types)
    km, km_l = _key_match(cache, slot, keys)
    ids = g.tt.canons.ids
    touched: set[int] = set()
    for c in (*same_slot, *any_tool, *const):
        code = ids.get(c)
        if code is not None:
            touched.add(code)
    if n and len(km) and max(km_l) >= 2:
        hits = np.flatnonzero(km[st.kcodes] >= 2)
        if len(hits):
            touched.update(g.cols[0, hits].tolist())
    extra_rows = [(n + j, *row) for j, row in enumerate(const_rows)]
    for j, v in enumerate(enum):
        if isinstance(v, str | int | float):
            value = coerce(v, types)
            extra_rows.append((n + len(extra_rows), _Fixed(v, KIND_ENUM, j), value, _canon(value),
                               _fits(value, types)))  # fmt: skip
    extra_by_canon: dict[str, list[tuple]] = {}
    for row in extra_rows:
        code = ids.get(row[3])
        if code is not None:
            touched.add(code)  # the context shows it: its mention stands for it
        else:
            extra_by_canon.setdefault(row[3], []).append(row)
    best: list[tuple] = []
    strs, kc_l, ranks_l, fits_l = g.tt.canons.strs, st.kc_l, st.ranks_l, g.fits_l
    for code in touched:
        canon = strs[code]
        earlier = 1 if canon in same_slot else 2 if canon in any_tool else 3 if canon in any_slot else 0
        e_prio = _EARLIER_PRIO.get(earlier, 0)
        is_const = 1 if canon in const else 0
        top = None
        members = g.members(code)
        for i in members:
            key = km_l[kc_l[i]]
            prio = (
                e_prio
                + _KEY_PRIO.get(key, 0)
                + 4 * is_const
                + (-6 if fits_l[i] == 2 else 0)
                - 0.05 * min(ranks_l[i], 40)
            )
            if top is None or prio > top[0]:
                top = (prio, i, key)
        assert top is not None
        best.append((-top[0], members[0], top[1], top[2], earlier, is_const))
    for canon, extras in extra_by_canon.items():
        earlier = 1 if canon in same_slot else 2 if canon in any_tool else 3 if canon in any_slot else 0
        row = None
        for _pos, cand, value, _c, fits in extras:
            is_const = 1 if canon in const or cand.kind == KIND_ENUM else 0
            prio = (
                _EARLIER_PRIO.get(earlier, 0) + 4 * is_const + (-6 if fits == 2 else 0)
                - 0.05 * min(cand.rank, 40)
            )  # fmt: skip
            if row is None or prio > row[0]:
                text = value if isinstance(value, str) else canon
                kid = sf.kinds.get(cand.kind, 0)
                rank = cand.rank
                feats = (
                    kid if kid < _N_KINDS else 0,
                    _RANK_BUCKETS[rank] if rank < 64 else _bucket(rank + 1, CAND_FEATURE_SIZES[1]),
                    0,
                    _value_type(value),
                    _bucket(len(text), _N_LEN),
                    0,
                    earlier,
                    is_const,
                    0,
                    fits,
                )
                row = (prio, (cand, value, canon, feats))
        assert row is not None
        best.append((-row[0], extras[0][0], row[1], 0, 0, 0))
    # The rest keep the group's order: the first m values no slot boost touched (key match 0 or 1,
    # earlier use 3 or 0, not constant).
    negs, firsts, codes, tops, keyed, boosted = g.ranking(m + len(touched))
    if best:
        k = 0
        for neg, first, code, top, kd, bo in zip(negs, firsts, codes, tops, keyed, boosted, strict=True):
            if k >= m:
                break
            if code not in touched:
                best.append((neg, first, top, 1 if kd else 0, 3 if bo else 0, 0))
                k += 1
        best.sort(key=lambda b: (b[0], b[1]))
        return best[:m]
    return [
        (neg, first, top, 1 if kd else 0, 3 if bo else 0, 0)
        for neg, first, top, kd, bo in zip(negs, firsts, tops, keyed, boosted, strict=False)
    ][:m]
