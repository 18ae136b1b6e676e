"""Slot rows of a session step in numpy: `slots.SlotFeaturizer.build` over a kept candidate pool.

`SlotFeaturizer.build` ranks the pool once per slot in Python and writes each chosen value's features
one tuple at a time (~150 µs a slot, ~1.5 ms a step at history 64). Over a session's kept pool
(`session_candidates.CandidatePool`) almost everything a row reads of a candidate is fixed between
steps and is kept per candidate number (`session_tables`): its canonical form, fit, value type and
length under each list of schema types; its key, kind, source tool, source event and `source_sig`
(those follow the newest mention, through the pool's change log). A step then:

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
from toolcast.predictor.session_slots import _KeyIndex
from toolcast.predictor.session_tables import (
    _N_KINDS,
    _N_LEN,
    _back_table,
    _Group,
    _key_match,
    _Sources,
    _Step,
    _Types,
)
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
    _schema_types,
    _value_type,
    coerce,
    slot_names,
)

_EMPTY: frozenset[str] = frozenset()
_RANK_TABLE = np.array(_RANK_BUCKETS, np.int64)


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
    # Per chosen value of the context, flat over rows: row, column, position, key match, earlier use,
    # constant, group.
    c_r: list[int] = []
    c_j: list[int] = []
    c_pos: list[int] = []
    c_key: list[int] = []
    c_early: list[int] = []
    c_const: list[int] = []
    c_g: list[int] = []
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
            ranked = _rank(sf, spec.name, slot, types, enum, group_list[gi], st, keys, cache, used)
            values: list = [b[2] for b in ranked]
            if all(v.__class__ is int for v in values):
                if ranked:
                    _n, _f, pos_, key_, early_, const_ = zip(*ranked, strict=True)
                    c_pos += pos_
                    c_key += key_
                    c_early += early_
                    c_const += const_
                    c_r += [r] * len(ranked)
                    c_j += range(len(ranked))
                    c_g += [gi] * len(ranked)
            else:
                for j, b in enumerate(ranked):
                    x = b[2]
                    if x.__class__ is int:
                        for col, v in zip((c_r, c_j, c_pos, c_key, c_early, c_const, c_g), (r, j, *b[2:], gi),
                                          strict=True):  # fmt: skip
                            col.append(v)
                    else:
                        cand, value, canon, feats = x
                        extras.append((r, j, feats, cand.kind))
                        values[j] = SlotValue(value, f"{cand.kind}:", canon, cand.kind)
            row_meta.append((spec.name, slot, gi))
            row_values.append(values)
            rows.append(SlotRow(spec.name, slot, values))
    if c_pos:  # features of every chosen value of the context, all rows at once
        er, ec, pos, key, early, const, gidx = (
            np.array(c, np.int64) for c in (c_r, c_j, c_pos, c_key, c_early, c_const, c_g)
        )
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
    order_l = st.order.tolist()
    src = state.src
    for r, values in enumerate(row_values):
        tt = group_list[row_meta[r][2]].tt
        made = tt.values
        for j, v in enumerate(values):
            if v.__class__ is int:
                cid = order_l[v]
                hit = made.get(cid)
                fresh = hit is not None and hit[0] is src[cid]
                values[j] = hit[1] if fresh else tt.slot_value(state, cid, sources)
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
    km, km_l, km_max = _key_match(cache, slot, keys)
    ids = g.tt.canons.ids
    touched: set[int] = set()
    for c in (*same_slot, *any_tool, *const):
        code = ids.get(c)
        if code is not None:
            touched.add(code)
    if n and km_max >= 2:
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
