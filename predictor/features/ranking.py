"""Which values a slot row keeps: the priority rule, defined once, and the reference ranking over a pool.

A slot row keeps `max_candidates` of a context's few hundred values, so the true value must survive a
cheap pre-ranking. The rule (every fast copy imports it from here):

    priority = earlier use (same slot 8, same slot name 3, any slot 1) + key match (same words 6, a shared
               word 3) + 4 if a cross-task constant or enum member - 6 if its type does not fit
               - 0.05 per rank (capped at 40)

`int_priority` is the integer part (it sums exactly in any order), `rank_term` the rest; a value's
priority is `int_priority(...) - rank_term(rank)`. Equal values keep the best of their mentions (the
first of equals), ties keep pool order. `key_match` says how a value's key relates to the slot's name.

`rank` is the reference ranking: it scores only the values a slot's own boosts touch and merges them with
the type group's ranking (`type_group`: every value's priority without slot-specific boosts), which gives the
same rows as scoring every value (tests/predictor/test_slot_ranking.py checks it against that plain loop).
The session fast path (`session/slot_rows.py`, `session/tables.py`) imports the same rule (`EARLIER_TABLE`
for numpy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toolcast.predictor.features.values import (
    KIND_ENUM,
    bucket,
    canon,
    coerce,
    fits,
    key_words,
    kind_of,
    last_key,
    value_type,
)

EARLIER_BOOST: dict[int, int] = {1: 8, 2: 3, 3: 1}
"""Earlier use (1 same slot of the same tool, 2 same slot name, 3 any slot, 0 none) -> its boost."""
KEY_BOOST: dict[int, int] = {3: 6, 2: 3}
"""Key match (3 same words, 2 a shared word, 1 another key, 0 no key) -> its boost."""
CONSTANT_BOOST, MISFIT_PENALTY, RANK_STEP, RANK_LIMIT = 4, -6, 0.05, 40
EARLIER_TABLE = np.array([EARLIER_BOOST.get(i, 0) for i in range(4)], np.int64)
N_KINDS, N_RANKS, N_BACK, N_LENGTHS = 48, 8, 10, 12
"""Sizes of the candidate features kind, rank, recency and length (`slots.CAND_FEATURE_SIZES`)."""
RANK_BUCKETS = tuple(bucket(r + 1, N_RANKS) for r in range(64))
BACK_BUCKETS = tuple(bucket(b, N_BACK) for b in range(64))
_NONE: frozenset[str] = frozenset()


def earlier_use(c: str, same_slot: Any, same_name: Any, any_slot: Any) -> int:
    """1 the slot of this tool already took the value `c` (canonical), 2 a slot of this name did, 3 any
    slot, else 0."""
    return 1 if c in same_slot else 2 if c in same_name else 3 if c in any_slot else 0


def key_match(key: str, slot: str) -> int:
    """How a value's key matches the slot's name: 3 the same words (`orders` ~ `order`), 2 a shared word,
    1 another key, 0 no key (a text span)."""
    if not key:
        return 0
    (words, word_set), (slot_text, slot_words) = key_words(key), key_words(slot)
    return 3 if words == slot_text else 2 if word_set & slot_words else 1


def int_priority(earlier: int, key: int, is_const: int, fit: int) -> int:
    """The integer terms of a value's priority (`fit` 2: its type does not fit the slot)."""
    return (
        EARLIER_BOOST.get(earlier, 0)
        + KEY_BOOST.get(key, 0)
        + CONSTANT_BOOST * is_const
        + (MISFIT_PENALTY if fit == 2 else 0)
    )


def rank_term(rank: Any) -> Any:
    """What a value's rank takes off its priority (a number, or an array of ranks)."""
    if isinstance(rank, np.ndarray):
        return RANK_STEP * np.minimum(rank, RANK_LIMIT)
    return RANK_STEP * min(rank, RANK_LIMIT)


def head_features(kinds: dict[str, int], kind: str, rank: int, value: Any, canon_value: str) -> tuple:
    """A candidate's first features: kind id, rank bucket, recency (0: filled in by the row), value type,
    length bucket."""
    kid = kinds.get(kind, 0)
    text = value if isinstance(value, str) else canon_value
    return (
        kid if kid < N_KINDS else 0,
        RANK_BUCKETS[rank] if rank < 64 else bucket(rank + 1, N_RANKS),
        0,
        value_type(value),
        bucket(len(text), N_LENGTHS),
    )


@dataclass
class Pool:
    """One context's value candidates, with what does not depend on the slot computed once per build:
    a slot row ranks the same few hundred values again and again (its type, key, earlier uses and
    constants only lift a handful of them)."""

    cands: list[Any]
    values: list[Any]
    kinds: list[str]
    ranks: list[int]
    keys: list[str]
    """`last_key` of each candidate's source path ("" for text spans)."""
    by_key: dict[str, list[int]]
    """Last key -> candidate indices: a slot name matches a few keys, not every candidate."""
    enums: list[int]
    """Candidates of the enum kind (boosted like constants; extractors never make them)."""
    groups: dict[Any, tuple[Any, TypeGroup]] = field(default_factory=dict)
    """(types, id of the used-anywhere set) -> (that set, the type group)."""

    @classmethod
    def of(cls, candidates: Sequence[Any]) -> Pool:
        cands = list(candidates)
        keys = [last_key(c.source_path) for c in cands]
        by_key: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            by_key.setdefault(k, []).append(i)
        by_key.setdefault("", [])
        kinds = [kind_of(c) for c in cands]
        enums = [i for i, k in enumerate(kinds) if k == KIND_ENUM]
        return cls(cands, [c.value for c in cands], kinds, [c.rank for c in cands], keys, by_key, enums)


@dataclass
class TypeGroup:
    """The pool coerced to one list of schema types: values, canonical forms, fit, and the ranking every
    slot of these types starts from (a value's best priority before slot-specific boosts)."""

    values: list[Any]
    canons: list[str]
    fits: list[int]
    members: dict[str, list[int]]
    """Canonical value -> candidate indices holding it, in pool order."""
    ranking: list[tuple[float, int, str, int]]
    """(-best base priority, first position, canon, index of the best member), best first."""
    rows: dict[tuple[int, str], tuple] = field(default_factory=dict)
    """(position, tool) -> the ranked row of a value no slot boost touched (`rank`)."""


def type_group(pool: Pool, types: list[str], used_anywhere: set[str] | frozenset[str] = _NONE) -> TypeGroup:
    """The pool coerced to `types`, ranked by the priority every slot gives a value: type fit, rank, and
    the earlier-use boost for a value any call already passed (`used_anywhere`, the same for every slot
    of a context; the slot-specific boosts are added by `rank`)."""
    key = (tuple(types), id(used_anywhere))
    hit = pool.groups.get(key)
    if hit is not None:
        return hit[1]
    values = [coerce(v, types) for v in pool.values]
    canons = [canon(v) for v in values]
    fit = [fits(v, types) for v in values]
    # Enum-kind candidates are always rescored as touched, so no constant term here.
    base = [
        int_priority(3 if c in used_anywhere else 0, 0, 0, f) - rank_term(r)
        for f, r, c in zip(fit, pool.ranks, canons, strict=True)
    ]
    members: dict[str, list[int]] = {}
    for i, c in enumerate(canons):
        members.setdefault(c, []).append(i)
    ranking = []
    for c, idx in members.items():
        top = idx[0]
        for i in idx[1:]:
            if base[i] > base[top]:
                top = i
        ranking.append((-base[top], idx[0], c, top))
    ranking.sort(key=lambda t: (t[0], t[1]))
    group = TypeGroup(values, canons, fit, members, ranking)
    pool.groups[key] = (used_anywhere, group)  # the set kept: its id is the key
    return group


def rank(
    sf: Any,
    tool: str,
    slot: str,
    types: list[str],
    enum: list[Any],
    pool: Pool,
    used: dict[tuple[str, str], set[str]],
) -> list[tuple[tuple[int, ...], Any, Any, str]]:
    """The slot's best `sf.max_candidates` values, best first: (features, candidate, value, canon).
    `sf` is the `slots.SlotFeaturizer` (its kind ids, the slot's constants and enum members)."""
    any_slot = used.get(("", ""), _NONE)
    group = type_group(pool, types, any_slot)
    n = len(pool.cands)
    const, extras = sf.slot_extras(tool, slot, types, enum)
    same_slot = used.get((tool, slot), set())
    any_tool = used.get(("", slot), set())
    key_of = {k: key_match(k, slot) for k in pool.by_key}

    # Values whose priority a slot's own boost may change: earlier uses in this slot / of this slot
    # name, constants, matching keys, the extras (a use in any slot is in the group's ranking).
    touched = {c for c in (*same_slot, *any_tool, *const) if c in group.members}
    touched.update(group.canons[i] for i in pool.enums)
    for k, kind in key_of.items():
        if kind >= 2:
            touched.update(group.canons[i] for i in pool.by_key[k])
    extra_rows = [(n + j, *row) for j, row in enumerate(extras)]
    touched.update(row[3] for row in extra_rows)
    extra_by_canon: dict[str, list[tuple]] = {}
    for row in extra_rows:
        extra_by_canon.setdefault(row[3], []).append(row)

    # Values a boost touches: the best of their mentions (the first of equals), then any extras.
    members, fits_of, keys, ranks, kinds = group.members, group.fits, pool.keys, pool.ranks, pool.kinds
    has_enums = bool(pool.enums)
    best: list[tuple] = []
    for c in touched:
        earlier = earlier_use(c, same_slot, any_tool, any_slot)
        const_c = c in const
        row = None
        for i in members.get(c, ()):
            key = key_of[keys[i]]
            is_const = 1 if const_c or (has_enums and kinds[i] == KIND_ENUM) else 0
            prio = int_priority(earlier, key, is_const, fits_of[i]) - rank_term(ranks[i])
            if row is None or prio > row[0]:
                row = (prio, i, pool.cands[i], group.values[i], c, fits_of[i], kinds[i], ranks[i], key,
                       earlier, is_const)  # fmt: skip
        # A constant or enum member that the context also shows is presented as the context's
        # mention (its kind says where it was seen; `is_const` still says it recurs): "Mei" in the
        # user's text must not look like "Lei", a constant nobody mentioned.
        for pos, cand, value, _c, fit in extra_by_canon.get(c, ()) if row is None else ():
            is_const = 1 if const_c or cand.kind == KIND_ENUM else 0
            prio = int_priority(earlier, 0, is_const, fit) - rank_term(cand.rank)
            if row is None or prio > row[0]:
                row = (prio, pos, cand, value, c, fit, cand.kind, cand.rank, 0, earlier, is_const)
        first = members[c][0] if c in members else extra_by_canon[c][0][0]
        assert row is not None
        best.append((-row[0], first, row, c))
    # The rest keep their type group's order (no slot boost: not constant, key below 2; earlier use
    # 3 or 0, already in the ranking).
    m = sf.max_candidates
    for neg, first, c, i in group.ranking:
        if len(best) >= len(touched) + m:
            break
        if c not in touched:
            best.append((neg, first, i, c))
    best.sort(key=lambda b: (b[0], b[1]))
    out = []
    for _neg, _first, row, c in best[:m]:
        memo = None
        if isinstance(row, int):
            # Untouched: its row is the same in every slot of this group but for the tool (key
            # match 0 or 1, earlier use 3 or 0, not constant), so it is made once per step and tool.
            memo = (row, tool)
            hit = group.rows.get(memo)
            if hit is not None:
                out.append(hit)
                continue
            i = row
            row = (None, i, pool.cands[i], group.values[i], c, fits_of[i], kinds[i], ranks[i],
                   key_of[keys[i]], 3 if c in any_slot else 0, 0)  # fmt: skip
        _p, _pos, cand, value, c, fit, kind, r, key, earlier, is_const = row
        source_tool = cand.source_tool
        feats = (
            *head_features(sf.kinds, kind, r, value, c),
            key,
            earlier,
            is_const,
            0 if source_tool is None else 2 if source_tool == tool else 1,
            fit,
        )
        if memo is not None:
            group.rows[memo] = (feats, cand, value, c)
        out.append((feats, cand, value, c))
    return out
