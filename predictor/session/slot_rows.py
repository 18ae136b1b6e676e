"""Slot rows of a session step in numpy: `slots.SlotFeaturizer.build` over a kept candidate pool.

`SlotFeaturizer.build` ranks the pool once per slot in Python and writes each chosen value's features
one tuple at a time (~150 µs a slot, ~1.5 ms a step at history 64). Over a session's kept pool
(`candidates.CandidatePool`) almost everything a row reads of a candidate is fixed between
steps and is kept per candidate number (`tables.py`): its canonical form, fit, value type and
length under each list of schema types; its key, kind, source tool, source event and `source_sig`
(those follow the newest mention, through the pool's change log). A step then:

1. per list of schema types, ranks the pool by the priority every slot gives a value (fit, rank, a use
   in any slot), in numpy, as `ranking.type_group` does;
2. per slot, rescores only the values its own boosts touch (earlier uses of this slot or slot name,
   its constants, keys matching its name) and merges them with the first untouched values of that
   ranking (both sorted: each touched value's column by bisection): `ranking.rank`'s rule, with its
   `int_priority` and `key_match`, so the same values in the same order. An untouched value's
   features and `SlotValue` are the same in every row of the group: taken from the group's ranking
   prefix;
3. gathers the features of every chosen value of every row at once (fancy indexing), and fills in the
   few rows' constants and enum members the context does not show, as `ranking.rank` makes them
   (kept per slot featurizer, tool, slot, types and enum, as are the p(source | tool, slot) buckets).

`build` returns exactly `SlotFeaturizer.build(context, pool, tools, n_rows)` (arrays bitwise, rows
equal): tests/embedded/test_session_rows.py checks it over growing sample sessions and generated
schemas. It returns None when the pool's session went on since this step (the caller falls back).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

import numpy as np

from toolcast.data.schema import Context, ToolSpec
from toolcast.predictor.features.ranking import (
    BACK_BUCKETS,
    RANK_BUCKETS,
    earlier_use,
    int_priority,
    rank_term,
)
from toolcast.predictor.features.slots import (
    SlotFeaturizer,
    SlotRow,
    SlotValue,
    slot_specs,
)
from toolcast.predictor.session.interning import KeyIndex
from toolcast.predictor.session.tables import (
    _back_table,
    _extras,
    _Group,
    _names,
    _sig_buckets,
    _Sources,
    _Step,
    _Types,
    key_matches,
)

_EMPTY: frozenset[str] = frozenset()
_PREFIX_SLACK = 16
"""A group's ranking prefix is made for at least max_candidates + this many values: a slot needs its
first max_candidates untouched ones, past the (usually few) values its boosts touched."""
_RANK_TABLE = np.array(RANK_BUCKETS, np.int64)


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
    arr = sf.empty_arrays(n_rows, len(tools))
    s_max, tk = len(arr["slot_mask"]), sf.max_name_tokens
    rows: list[SlotRow] = []
    if not tools:
        return arr, rows
    cache = state.slot_cache
    keys = cache.get("keys")
    if keys is None:
        keys = cache["keys"] = KeyIndex()
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
    # Per chosen value a slot boost touched, flat over rows: row, column, pool position, key match,
    # earlier use, constant, group. The untouched ones: row, column, group, place in its ranking prefix.
    t_rows: list[tuple[int, int, int, int, int, int, int]] = []
    u_r: list[int] = []
    u_j: list[int] = []
    u_g: list[int] = []
    u_i: list[int] = []
    extras: list[tuple[int, int, tuple, str]] = []  # row, column, features, kind (not in the context)
    row_meta: list[tuple[str, str, int]] = []  # tool, slot, group
    slot_tool: list[int] = []
    slot_num: list[tuple[int, int, int]] = []
    names = _names(sf)
    order_l: list[int] = st.order.tolist()
    for tool_index, spec in tools:
        for slot, types, enum, num in slot_specs(spec, context, sf.max_slots):
            r = len(rows)
            if r >= s_max:
                break
            slot_tool.append(tool_index)
            slot_num.append(num)
            name_ids = names.get(slot)
            if name_ids is None:
                ids = sf.identifier_ids(slot)
                name_ids = names[slot] = (*ids, *(0 for _ in range(tk - len(ids))))
            arr["slot_name"][r] = name_ids
            tkey = tuple(types)
            gi = groups.get(tkey)
            if gi is None:
                tt = cache.get(("row_types", tkey))
                if tt is None:
                    tt = cache[("row_types", tkey)] = _Types(types)
                tt.update(state)
                gi = groups[tkey] = len(group_list)
                group_list.append(_Group(tt, st, any_slot))
            g = group_list[gi]
            placed, untouched = _rank(sf, spec.name, slot, types, enum, g, st, keys, cache, used)
            pv = g.prefix_values(state, sources, order_l)
            values: list = [pv[i] for i in untouched]
            if placed:
                cols = set()
                for col, x, key, early, const in placed:
                    cols.add(col)
                    if x.__class__ is int:
                        t_rows.append((r, col, x, key, early, const, gi))
                        values.insert(col, g.tt.slot_value(state, order_l[x], sources))
                    else:
                        cand, value, canon, feats = x
                        extras.append((r, col, feats, cand.kind))
                        values.insert(col, SlotValue(value, f"{cand.kind}:", canon, cand.kind))
                u_j += [j for j in range(len(values)) if j not in cols]
            else:
                u_j += range(len(untouched))
            u_r += [r] * len(untouched)
            u_g += [gi] * len(untouched)
            u_i += untouched
            row_meta.append((spec.name, slot, gi))
            rows.append(SlotRow(spec.name, slot, values))
    if rows:
        arr["slot_tool"][: len(rows)] = slot_tool
        arr["slot_num"][: len(rows)] = slot_num
        arr["slot_mask"][: len(rows)] = True
    if t_rows or u_r:  # features of every chosen value of the context, all rows at once
        offsets = np.cumsum([0] + [g.prefix.shape[1] for g in group_list[:-1]])
        u = np.array((u_r, u_j, u_g, u_i), np.int64).reshape(4, -1)
        prefixes = np.concatenate([g.prefix for g in group_list], axis=1)[:, offsets[u[2]] + u[3]]
        # Every chosen value's row, column, pool position, key match, earlier use, constant, group.
        flat = np.concatenate(
            (
                np.array(t_rows, np.int64).reshape(-1, 7).T,
                np.stack((u[0], u[1], *prefixes, np.zeros(u.shape[1], np.int64), u[2])),
            ),
            axis=1,
        )
        er, ec, pos, key, early, const, gidx = flat
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
        arr["cand_num"][r, j] = (*feats[:2], BACK_BUCKETS[0], *feats[3:], _sig_buckets(sf, tool, slot)[kind])
        arr["cand_mask"][r, j] = True
    return arr, rows


def _p_buckets(sf: SlotFeaturizer, sources: _Sources, row_meta, cache: dict) -> np.ndarray:
    """Per row, p(source | tool, slot)'s bucket of every source_sig code (rows x codes); the last step's
    kept while its rows and the session's signatures are the same (a session's steps mostly are)."""
    n_sigs = len(sources.sigs.strs)
    rows = tuple((tool, slot) for tool, slot, _g in row_meta)
    last = cache.get("p_rows")
    if last is not None and last[0] is sf and last[1] == rows and last[2] == n_sigs:
        return last[3]
    out = np.zeros((len(row_meta), max(1, n_sigs)), np.int64)
    for r, (tool, slot, _g) in enumerate(row_meta):
        key = ("p_bucket", id(sf), tool, slot)
        t = cache.get(key)
        if t is None or len(t) < n_sigs:
            buckets = _sig_buckets(sf, tool, slot)
            done = 0 if t is None else len(t)
            new = np.array([buckets[s] for s in sources.sigs.strs[done:n_sigs]], np.int64)
            t = cache[key] = new if t is None else np.concatenate([t, new])
        out[r, :n_sigs] = t[:n_sigs]
    cache["p_rows"] = (sf, rows, n_sigs, out)
    return out


def _rank(sf, tool, slot, types, enum, g: _Group, st: _Step, keys, cache, used) -> tuple[list, list[int]]:
    """`ranking.rank` over a step's group: the slot's best values as (placed, untouched).
    placed: the values a slot boost touches, each as (column, pool position, key match, earlier use,
    constant), or (column, (candidate, value, canon, features), 0, 0, 0) for a constant or enum member
    the context does not show; untouched: the group's ranking prefix indices filling the other columns,
    in order (`_Group.prefix` gives their pool position, key match and earlier use)."""
    m, n = sf.max_candidates, st.n
    any_slot = used.get(("", ""), _EMPTY)
    same_slot = used.get((tool, slot), _EMPTY)
    any_tool = used.get(("", slot), _EMPTY)
    const, extra_rows = _extras(sf, tool, slot, types, enum)
    _km, km_l, km_max, km_hits = key_matches(cache, slot, keys)
    ids = g.tt.canons.ids
    touched: set[int] = set()
    for c in (*same_slot, *any_tool, *const):
        code = ids.get(c)
        if code is not None:
            touched.add(code)
    if n and km_max >= 2:
        at = [st.key_positions(c) for c in km_hits]
        hits = at[0] if len(at) == 1 else np.concatenate(at)
        if len(hits):
            touched.update(g.cols[0, hits].tolist())
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
        earlier = earlier_use(canon, same_slot, any_tool, any_slot)
        is_const = 1 if canon in const else 0
        top = None
        members = g.members(code)
        for i in members:
            key = km_l[kc_l[i]]
            prio = int_priority(earlier, key, is_const, fits_l[i]) - rank_term(ranks_l[i])
            if top is None or prio > top[0]:
                top = (prio, i, key)
        assert top is not None
        best.append((-top[0], members[0], top[1], top[2], earlier, is_const))
    for canon, extras in extra_by_canon.items():
        earlier = earlier_use(canon, same_slot, any_tool, any_slot)
        row = None
        for _j, cand, value, _c, is_const, fit, head in extras:
            prio = int_priority(earlier, 0, is_const, fit) - rank_term(cand.rank)
            if row is None or prio > row[0]:
                row = (prio, (cand, value, canon, (*head, 0, earlier, is_const, 0, fit)))
        assert row is not None
        best.append((-row[0], n + extras[0][0], row[1], 0, 0, 0))
    # The rest keep the group's order: the first m values no slot boost touched (key match 0 or 1,
    # earlier use 3 or 0, not constant). Both lists are sorted by (-priority, first position), unique
    # keys: each touched value's column is its place in the touched list plus the untouched values
    # ahead of it (found by bisection in the group's prefix, less the touched ones there).
    codes = g.ranking(m + max(len(touched), _PREFIX_SLACK))[2]  # one prefix serves most rows
    n_pre = len(codes)
    if not best:
        return [], list(range(min(m, n_pre)))
    best.sort()
    pos_of = g.pos_of
    skip = sorted(i for i in map(pos_of.get, touched) if i is not None)
    if skip:
        sk = set(skip)
        untouched = [i for i in range(n_pre) if i not in sk][:m]
    else:
        untouched = list(range(min(m, n_pre)))
    n_u = len(untouched)
    pairs = g.pairs
    placed: list[tuple] = []
    for q, b in enumerate(best):
        p = bisect_left(pairs, (b[0], b[1]))
        ahead = p - bisect_left(skip, p)
        col = q + (ahead if ahead < n_u else n_u)
        if col >= m:
            break
        placed.append((col, *b[2:]))
    del untouched[m - len(placed) :]
    return placed, untouched
