"""Argument slots -> fixed-rank arrays: for each (tool, slot), the value candidates and their features.

NumPy only, shared by training and the embedded predictor. The candidate values come from the symbolic
extractors (`toolcast.runtime.extractors`, passed in: the predictor package never imports the runtime)
plus, per slot, the slot's cross-task constants (learned from the training logs with each value counted
once per task group, so a user id of one task never becomes a "constant") and its JSON-schema enum.

A slot row scores `<free>` (the LLM will invent the value), `<absent>` (the call leaves the slot out) and
up to `max_candidates` values, pre-ranked by a cheap rule so the true value survives the cut. Values
are coerced to the slot's schema type first (a "12" read from text fills an integer slot as 12), since a
speculative call only counts when its canonical arguments match exactly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from toolcast.data.schema import Context, ToolCall, ToolSpec, canonical_args
from toolcast.predictor.features import cues
from toolcast.predictor.features.extractors import path_shape
from toolcast.predictor.features.text import split_identifier

SourceCounts = dict[str, dict[str, dict[str, int]]]
"""Tool -> slot -> `source_sig` -> how many of the slot's values came from that source."""

SLOT_FEATURE_SIZES: tuple[int, ...] = (3, 8, 2)
"""(required: 1 yes / 2 no, schema type, has enum)."""
CAND_FEATURE_SIZES: tuple[int, ...] = (48, 8, 10, 6, 12, 4, 4, 2, 3, 3, cues.N_P_BUCKETS)
"""(kind, rank, recency, value type, length, key match, earlier use, constant, same tool, type fits,
p(source | tool, slot)): the last is the share of the slot's values that came from this candidate's
source (`source_sig`) in the training logs, PASTE's mined value-mapping functions as a feature."""
_TYPES = {"string": 1, "integer": 2, "number": 3, "boolean": 4, "array": 5, "object": 6, "null": 7}
_INDEX = re.compile(r"\[\d+\]|\{key\}|\[\d*:\d*\]")
KIND_CONSTANT, KIND_ENUM = "constant", "enum"


class Candidate(Protocol):
    """What an extractor proposes: a value seen in the context, and where (`runtime.extractors.Candidate`
    fits; its kind is read from its newest mention as "kind:role", e.g. "json_leaf:output")."""

    value: Any
    source_event: int | None
    source_tool: str | None
    source_path: str | None
    rank: int


def kind_of(cand: Any) -> str:
    """ "extractor kind:role" of a candidate's newest mention ("word:user"), or its own `kind`."""
    ms = getattr(cand, "mentions", None)
    if ms:
        return f"{ms[0].kind}:{ms[0].role}"
    return str(getattr(cand, "kind", ""))


@dataclass
class SlotValue:
    """One scored value of one slot (what the predictor reports back for a chosen index)."""

    value: Any
    source: str
    canon: str
    sig: str = ""
    """`source_sig` of the candidate: where values of this kind come from, generalised."""


@dataclass
class SlotRow:
    tool: str
    slot: str
    values: list[SlotValue]


def _schema_types(prop: Any) -> list[str]:
    t = prop.get("type") if isinstance(prop, dict) else None
    return [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list) else []


def slot_names(spec: ToolSpec, context: Context, max_slots: int) -> list[str]:
    """The slots scored for a tool: required parameters first, then the others; else earlier calls' keys."""
    names = spec.param_names
    if not names:
        for e in reversed(context.events):
            if isinstance(e, ToolCall) and e.tool == spec.name:
                names = list(e.args)
                break
    required = spec.parameters.get("required") if isinstance(spec.parameters, dict) else None
    req = {r for r in required if isinstance(r, str)} if isinstance(required, list) else set()
    return sorted(names, key=lambda n: n not in req)[:max_slots]


def coerce(value: Any, types: list[str]) -> Any:
    """A candidate value in the slot's schema type when it converts losslessly; else unchanged."""
    if not types or not isinstance(value, str | int | float):
        return value
    if isinstance(value, str):
        s = value.strip()
        if "integer" in types and re.fullmatch(r"-?\d+", s):
            return int(s)
        if "number" in types and re.fullmatch(r"-?\d+(\.\d+)?", s):
            return float(s) if "." in s else int(s)
        if "boolean" in types and s.lower() in ("true", "false"):
            return s.lower() == "true"
        return value
    if isinstance(value, bool):
        return value
    if "string" in types and "integer" not in types and "number" not in types:
        return str(value)
    if "integer" in types and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _value_type(v: Any) -> int:
    if isinstance(v, bool):
        return 4
    if isinstance(v, int):
        return 2
    if isinstance(v, float):
        return 3
    if isinstance(v, str):
        return 1
    return 5


def _fits(v: Any, types: list[str]) -> int:
    if not types:
        return 0
    t = _value_type(v)
    ok = {1: "string", 2: "integer", 4: "boolean", 5: "array"}.get(t)
    fits = (
        (ok in types)
        or (t == 2 and "number" in types)
        or (t == 3 and "number" in types)
        or (t == 5 and ("object" in types or "array" in types))
    )
    return 1 if fits else 2


@lru_cache(maxsize=65536)
def last_key(path: str | None) -> str:
    """The key a value sits under (`reservations[0].id` -> `id`); "" for text spans. Memoised (pure)."""
    if not path or path.startswith("text["):
        return ""
    return _INDEX.sub("", path).rsplit(".", 1)[-1]


def key_text(name: str) -> str:
    """A key or slot name as singular words: `orders` and `order_id` share "order", `file_names` and
    `file_name` are equal. A list's key is plural where the argument that takes one of its elements is
    singular, the commonest way a value moves from an output into the next call."""
    return " ".join(_singular(w) for w in split_identifier(name).split())


@lru_cache(maxsize=16384)
def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _key_match(key: str, slot_words: set[str], slot_text: str) -> int:
    if not key:
        return 0
    words = key_text(key)
    if words == slot_text:
        return 3
    return 2 if set(words.split()) & slot_words else 1


def _bucket(n: int, size: int) -> int:
    return 0 if n <= 0 else min(size - 1, 1 + int(math.log2(n)))


_NONE: frozenset[str] = frozenset()
_EARLIER_PRIO = {1: 8, 2: 3, 3: 1}
_BACK_BUCKETS = tuple(_bucket(b, CAND_FEATURE_SIZES[2]) for b in range(64))
_RANK_BUCKETS = tuple(_bucket(r + 1, CAND_FEATURE_SIZES[1]) for r in range(64))
_KEY_PRIO = {3: 6, 2: 3}


@dataclass
class _Pool:
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
    key_words: dict[str, tuple[str, set[str]]]
    """Last key -> its words (`split_identifier`) and their set: what `_key_match` compares."""
    enums: list[int]
    """Candidates of the enum kind (boosted like constants; extractors never make them)."""
    groups: dict[Any, tuple[Any, _TypeGroup]]
    """(types, id of the used-anywhere set) -> (that set, the type group)."""
    make_group: Callable[[list[str], set[str] | frozenset[str]], _TypeGroup] | None = None
    """Builds a type group instead of `_group`'s loop (a session pool: `session_slots.SessionPool`)."""


@dataclass
class _TypeGroup:
    """The pool coerced to one list of schema types: values, canonical forms, fit, and the ranking every
    slot of these types starts from (a value's best priority before slot-specific boosts)."""

    values: list[Any]
    canons: list[str]
    fits: list[int]
    base: list[float]
    members: dict[str, list[int]]
    """Canonical value -> candidate indices holding it, in pool order."""
    ranking: list[tuple[float, int, str, int]]
    """(-best base priority, first position, canon, index of the best member), best first."""
    rows: dict[tuple[int, str], tuple] = field(default_factory=dict)
    """(position, tool) -> the ranked row of a value no slot boost touched (`_rank`)."""


def _canon(value: Any) -> str:
    """`canonical_args`, memoised for scalars (typed: 1, 1.0 and True are different values)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _canon_scalar(value)
    return canonical_args(value)


@lru_cache(maxsize=65536, typed=True)
def _canon_scalar(value: Any) -> str:
    return canonical_args(value)


def source_sig(cand: Any, kind: str) -> str:
    """Where a candidate comes from, generalised across contexts: kind:role, source tool, path shape
    (`json_leaf:output|get_user_details|reservations[*]`); constants and enum members by their kind."""
    if kind in (KIND_CONSTANT, KIND_ENUM):
        return kind
    return f"{kind}|{cand.source_tool or ''}|{path_shape(cand.source_path or '')}"


def source_probabilities(
    sources: SourceCounts, tool: str, slot: str, minus: SourceCounts | None
) -> dict[str, float] | None:
    """p(source | tool, slot) from the counts, `minus` (a task group's own counts) left out."""
    row = dict(sources.get(tool, {}).get(slot, {}))
    if minus:
        for sig, n in minus.get(tool, {}).get(slot, {}).items():
            if row.get(sig, 0) - n > 0:
                row[sig] -= n
            else:
                row.pop(sig, None)
    total = sum(row.values())
    return {k: v / total for k, v in row.items()} if total > 0 else None


class SlotFeaturizer:
    """Builds the slot rows of the tools asked for. `encoder` encodes key names, `kinds` / `constants`
    come from the vocabularies."""

    def __init__(
        self,
        encoder,
        kinds: dict[str, int],
        constants: dict[str, dict[str, list[Any]]],
        max_slots: int,
        max_candidates: int,
        max_name_tokens: int,
        max_events: int,
        sources: SourceCounts | None = None,
    ):
        self.encoder, self.kinds, self.constants = encoder, kinds, constants
        self.sources: SourceCounts = sources or {}
        self.max_slots, self.max_candidates = max_slots, max_candidates
        self.max_name_tokens, self.max_events = max_name_tokens, max_events
        self._ids: dict[str, list[int]] = {}
        self._p_source: dict[tuple[str, str], dict[str, float] | None] = {}
        self._sources: dict[Any, tuple[list[int], str, str, str]] = {}
        self._p_buckets: dict[int, tuple[Any, dict[str, int]]] = {}
        self._slot_text: dict[str, tuple[str, set[str]]] = {}
        self._const_rows: dict[tuple[str, str, tuple[str, ...]], tuple[set[str], list[tuple]]] = {}
        """id(p(source | tool, slot)) -> (it, source_sig -> bucket): memoised with nothing left out."""

    def identifier_ids(self, name: str) -> list[int]:
        """Token ids of a slot or key name; cached (a log has a bounded set of them)."""
        ids = self._ids.get(name)
        if ids is None:
            if len(self._ids) >= 100_000:
                self._ids.clear()
            ids = self._ids[name] = self.encoder.encode_identifier(name, self.max_name_tokens)
        return ids

    def build(
        self,
        context: Context,
        candidates: Sequence[Candidate],
        tools: Sequence[tuple[int, ToolSpec]],
        n_rows: int | None = None,
        minus: SourceCounts | None = None,
    ) -> tuple[dict[str, np.ndarray], list[SlotRow]]:
        """Arrays for `tools` ((candidate index, spec) pairs) and the rows' values, in row order;
        `minus`: source counts to leave out (training: the example's own task group)."""
        s_max = n_rows if n_rows is not None else self.max_slots * max(1, len(tools))
        m, tk = self.max_candidates, self.max_name_tokens
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
        earlier_uses = getattr(candidates, "earlier_uses", None)  # a session pool keeps them
        used = earlier_uses() if earlier_uses is not None else _earlier_uses(context)
        n_events = len(context.events)
        pool = _pool(candidates)
        for tool_index, spec in tools:
            props = spec.parameters.get("properties") if isinstance(spec.parameters, dict) else None
            props = props if isinstance(props, dict) else {}
            required = spec.parameters.get("required") if isinstance(spec.parameters, dict) else None
            for slot in slot_names(spec, context, self.max_slots):
                r = len(rows)
                if r >= s_max:
                    break
                prop = props.get(slot, {})
                types = _schema_types(prop)
                enum = (
                    prop.get("enum") if isinstance(prop, dict) and isinstance(prop.get("enum"), list) else []
                )
                arr["slot_tool"][r], arr["slot_mask"][r] = tool_index, True
                arr["slot_num"][r] = (
                    1 if isinstance(required, list) and slot in required else 2,
                    _TYPES.get(types[0], 0) if types else 0,
                    1 if enum else 0,
                )
                ids = self.identifier_ids(slot)
                arr["slot_name"][r, : len(ids)] = ids
                chosen = self._rank(spec.name, slot, types, enum, pool, used)
                p_source = self._source_probabilities(spec.name, slot, minus)
                p_buckets = self._p_buckets.setdefault(id(p_source), (p_source, {}))[1] if not minus else {}
                values = []
                feats, events, keys = [], [], []
                for score_row, cand, value, canon in chosen:
                    key_ids, kind, sig, where = self._source_info(cand)
                    keys.append(key_ids)
                    ev = cand.source_event
                    back = n_events - ev if ev is not None and 0 <= ev < n_events else 0
                    events.append(back if back <= self.max_events else 0)
                    pb = p_buckets.get(sig)
                    if pb is None:
                        pb = p_buckets[sig] = cues.p_bucket(p_source, sig)
                    feats.append(
                        (
                            *score_row[:2],
                            _BACK_BUCKETS[back] if back < 64 else _bucket(back, CAND_FEATURE_SIZES[2]),
                            *score_row[3:],
                            pb,
                        )
                    )
                    values.append(SlotValue(value, where, canon, sig))
                if chosen:
                    arr["cand_num"][r, : len(chosen)] = feats
                    arr["cand_key"][r, : len(chosen)] = keys
                    arr["cand_event"][r, : len(chosen)] = events
                    arr["cand_mask"][r, : len(chosen)] = True
                rows.append(SlotRow(spec.name, slot, values))
        return arr, rows

    def _source_info(self, cand: Any) -> tuple[list[int], str, str, str]:
        """What a candidate's source gives its slot rows: its key's token ids (padded), "kind:role",
        `source_sig` and where it was found (for `SlotValue`); kept per session-pool source."""
        if isinstance(cand, _Fixed):  # a constant or enum member: no key, its kind is its source
            return [0] * self.max_name_tokens, cand.kind, cand.kind, f"{cand.kind}:"
        src = getattr(cand, "src", None)
        if src is not None:
            hit = self._sources.get(src)
            if hit is not None:
                return hit
        key = last_key(cand.source_path)
        key_ids = [0] * self.max_name_tokens
        if key:
            kid = self.identifier_ids(key)
            key_ids[: len(kid)] = kid
        kind = kind_of(cand)
        where = f"{kind}:{cand.source_tool or ''}" + (f".{cand.source_path}" if cand.source_path else "")
        info = (key_ids, kind, source_sig(cand, kind), where)
        if src is not None:
            if len(self._sources) >= 100_000:
                self._sources.clear()
            self._sources[src] = info
        return info

    def _slot_words(self, slot: str) -> tuple[str, set[str]]:
        """`key_text` of a slot name and its words; memoised (do not mutate)."""
        hit = self._slot_text.get(slot)
        if hit is None:
            text = key_text(slot)
            hit = self._slot_text[slot] = (text, set(text.split()))
        return hit

    def _constants(self, tool: str, slot: str, types: list[str]) -> tuple[set[str], list[tuple]]:
        """The slot's cross-task constants: their canonical forms, and each as (candidate, value coerced
        to `types`, canonical form, fit), in order; memoised (the vocabularies do not change)."""
        key = (tool, slot, tuple(types))
        hit = self._const_rows.get(key)
        if hit is None:
            consts = self.constants.get(tool, {}).get(slot, [])
            rows = []
            for i, v in enumerate(consts):
                value = coerce(v, types)
                rows.append((_Fixed(v, KIND_CONSTANT, i), value, _canon(value), _fits(value, types)))
            if len(self._const_rows) >= 100_000:
                self._const_rows.clear()
            hit = self._const_rows[key] = ({canonical_args(v) for v in consts}, rows)
        return hit

    def _source_probabilities(
        self, tool: str, slot: str, minus: SourceCounts | None
    ) -> dict[str, float] | None:
        """`source_probabilities`, memoised when nothing is left out (the embedded predictor's case)."""
        if minus:
            return source_probabilities(self.sources, tool, slot, minus)
        key = (tool, slot)
        if key not in self._p_source:
            self._p_source[key] = source_probabilities(self.sources, tool, slot, None)
        return self._p_source[key]

    def _rank(
        self,
        tool: str,
        slot: str,
        types: list[str],
        enum: list[Any],
        pool: _Pool | None,
        used: dict[tuple[str, str], set[str]],
    ) -> list[tuple[tuple[int, ...], Candidate, Any, str]]:
        """The slot's best `max_candidates` values, best first, with their features.

        Priority of a value = earlier use (same slot 8, same slot name 3, any slot 1) + key match
        (exact 6, a shared word 3) + 4 if a cross-task constant or enum member - 6 if its type does not
        fit - 0.05 per rank; equal values keep the best of their mentions, ties keep pool order. Only the
        values a boost touches are scored here; the rest keep their place in the type group's ranking.
        """
        assert pool is not None
        slot_text, slot_words = self._slot_words(slot)
        any_slot = used.get(("", ""), _NONE)
        group = _group(pool, types, any_slot)
        n = len(pool.cands)
        const, const_rows = self._constants(tool, slot, types)
        enums = [_Fixed(v, KIND_ENUM, i) for i, v in enumerate(enum) if isinstance(v, str | int | float)]
        same_slot = used.get((tool, slot), set())
        any_tool = used.get(("", slot), set())
        key_of = {
            k: 0 if not k else 3 if words == slot_text else 2 if word_set & slot_words else 1
            for k, (words, word_set) in pool.key_words.items()
        }

        def earlier_of(canon: str) -> int:
            return 1 if canon in same_slot else 2 if canon in any_tool else 3 if canon in any_slot else 0

        # Values whose priority a slot's own boost may change: earlier uses in this slot / of this slot
        # name, constants, matching keys, the extras (a use in any slot is in the group's ranking).
        touched = {c for c in (*same_slot, *any_tool, *const) if c in group.members}
        touched.update(group.canons[i] for i in pool.enums)
        for k, kind in key_of.items():
            if kind >= 2:
                touched.update(group.canons[i] for i in pool.by_key[k])
        extra_rows = [(n + j, *row) for j, row in enumerate(const_rows)]
        for j, cand in enumerate(enums, start=len(const_rows)):
            value = coerce(cand.value, types)
            extra_rows.append((n + j, cand, value, _canon(value), _fits(value, types)))
        touched.update(row[3] for row in extra_rows)
        extra_by_canon: dict[str, list[tuple]] = {}
        for row in extra_rows:
            extra_by_canon.setdefault(row[3], []).append(row)

        def scored(pos: int, cand: Any, value: Any, canon: str, fits: int, kind: str, rank: int, key: int):
            earlier = earlier_of(canon)
            is_const = 1 if canon in const or kind == KIND_ENUM else 0
            prio = (
                _EARLIER_PRIO.get(earlier, 0)
                + _KEY_PRIO.get(key, 0)
                + 4 * is_const
                + (-6 if fits == 2 else 0)
                - 0.05 * min(rank, 40)
            )
            return prio, pos, cand, value, canon, fits, kind, rank, key, earlier, is_const

        # Values a boost touches: the best of their mentions (the first of equals), then any extras.
        # Priorities are the formula's, term for term (the integer terms sum exactly in any order).
        members, fits_of, keys, ranks, kinds = group.members, group.fits, pool.keys, pool.ranks, pool.kinds
        has_enums = bool(pool.enums)
        best: list[tuple] = []
        for canon in touched:
            earlier = 1 if canon in same_slot else 2 if canon in any_tool else 3 if canon in any_slot else 0
            e_prio = _EARLIER_PRIO.get(earlier, 0)
            const_c = canon in const
            top = None
            for i in members.get(canon, ()):
                key = key_of[keys[i]]
                is_const = 1 if const_c or (has_enums and kinds[i] == KIND_ENUM) else 0
                prio = (
                    e_prio
                    + _KEY_PRIO.get(key, 0)
                    + 4 * is_const
                    + (-6 if fits_of[i] == 2 else 0)
                    - 0.05 * min(ranks[i], 40)
                )
                if top is None or prio > top[0]:
                    top = (prio, i, key, is_const)
            row = None
            if top is not None:
                prio, i, key, is_const = top
                row = (prio, i, pool.cands[i], group.values[i], canon, fits_of[i], kinds[i], ranks[i], key,
                       earlier, is_const)  # fmt: skip
            # A constant or enum member that the context also shows is presented as the context's
            # mention (its kind says where it was seen; `is_const` still says it recurs): "Mei" in the
            # user's text must not look like "Lei", a constant nobody mentioned.
            for pos, cand, value, _c, fits in extra_by_canon.get(canon, ()) if top is None else ():
                r = scored(pos, cand, value, canon, fits, cand.kind, cand.rank, 0)
                if row is None or r[0] > row[0]:
                    row = r
            first = members[canon][0] if canon in members else extra_by_canon[canon][0][0]
            assert row is not None
            best.append((-row[0], first, row, canon))
        # The rest keep their type group's order (no slot boost: not constant, key below 2; earlier use
        # 3 or 0, already in the ranking).
        m = self.max_candidates
        for neg, first, canon, i in group.ranking:
            if len(best) >= len(touched) + m:
                break
            if canon not in touched:
                best.append((neg, first, i, canon))
        best.sort(key=lambda b: (b[0], b[1]))
        out = []
        for _neg, _first, row, canon in best[:m]:
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
                row = (None, i, pool.cands[i], group.values[i], canon, fits_of[i], kinds[i], ranks[i],
                       key_of[keys[i]], 3 if canon in any_slot else 0, 0)  # fmt: skip
            _p, _pos, cand, value, canon, fits, kind, rank, key, earlier, is_const = row
            text = value if isinstance(value, str) else canon
            kid = self.kinds.get(kind, 0)
            feats = (
                kid if kid < CAND_FEATURE_SIZES[0] else 0,
                _RANK_BUCKETS[rank] if rank < 64 else _bucket(rank + 1, CAND_FEATURE_SIZES[1]),
                0,
                _value_type(value),
                _bucket(len(text), CAND_FEATURE_SIZES[4]),
                key,
                earlier,
                is_const,
                0 if cand.source_tool is None else 2 if cand.source_tool == tool else 1,
                fits,
            )
            if memo is not None:
                group.rows[memo] = (feats, cand, value, canon)
            out.append((feats, cand, value, canon))
        return out


@lru_cache(maxsize=16384)
def _key_words(key: str) -> tuple[str, set[str]]:
    words = key_text(key)
    return words, set(words.split())


def _pool(candidates: Sequence[Candidate]) -> _Pool:
    """The pool of a context's candidates. A session's kept pool (`session_candidates.CandidatePool`)
    brings its own (`slot_pool`: per-candidate work kept across steps, `session_slots`)."""
    slot_pool = getattr(candidates, "slot_pool", None)
    if slot_pool is not None:
        pool = slot_pool()
        if pool is not None:
            return pool
    cands = list(candidates)
    keys = [last_key(c.source_path) for c in cands]
    by_key: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        by_key.setdefault(k, []).append(i)
    by_key.setdefault("", [])
    key_words = {k: _key_words(k) for k in by_key}
    kinds = [kind_of(c) for c in cands]
    enums = [i for i, k in enumerate(kinds) if k == KIND_ENUM]
    return _Pool(
        cands, [c.value for c in cands], kinds, [c.rank for c in cands], keys, by_key, key_words, enums, {}
    )


def _group(pool: _Pool, types: list[str], used_anywhere: set[str] | frozenset[str] = _NONE) -> _TypeGroup:
    """The pool coerced to `types`, ranked by the priority every slot gives a value: type fit, rank, and
    the earlier-use boost for a value any call already passed (`used_anywhere`, the same for every slot
    of a context; the slot-specific boosts are added by `_rank`)."""
    key = (tuple(types), id(used_anywhere))
    hit = pool.groups.get(key)  # type: ignore[call-overload]
    if hit is not None:
        return hit[1]
    if pool.make_group is not None:
        group = pool.make_group(types, used_anywhere)
        pool.groups[key] = (used_anywhere, group)  # type: ignore[index]  # the set kept: its id is the key
        return group
    values = [coerce(v, types) for v in pool.values]
    canons = [_canon(v) for v in values]
    fits = [_fits(v, types) for v in values]
    # Priority without a slot-specific boost (enum-kind candidates are always rescored as touched):
    # the formula's terms, the integer ones summed first as `_rank` sums them.
    base = [
        (_EARLIER_PRIO[3] + (-6 if f == 2 else 0) if c in used_anywhere else (-6 if f == 2 else 0))
        - 0.05 * min(r, 40)
        for f, r, c in zip(fits, pool.ranks, canons, strict=True)
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
    group = _TypeGroup(values, canons, fits, base, members, ranking)
    pool.groups[key] = (used_anywhere, group)  # type: ignore[index]
    return group


@dataclass
class _Fixed:
    """A candidate that comes from the slot itself (a constant or an enum member), not the context."""

    value: Any
    kind: str
    rank: int
    source_event: int | None = None
    source_tool: str | None = None
    source_path: str | None = None


def _earlier_uses(context: Context) -> dict[tuple[str, str], set[str]]:
    """(tool, slot) / ("", slot) / ("", "") -> canonical values the context's calls already passed."""
    used: dict[tuple[str, str], set[str]] = {}
    for e in context.events:
        if isinstance(e, ToolCall):
            for slot, v in e.args.items():
                c = canonical_args(v)
                for key in ((e.tool, slot), ("", slot), ("", "")):
                    used.setdefault(key, set()).add(c)
    return used


def slot_targets(rows: Iterable[SlotRow], args: dict[str, Any] | None, n_rows: int) -> np.ndarray:
    """Per row: 0 `<free>`, 1 `<absent>`, 2 + j the candidate equal to the true value; -100 padding."""
    out = np.full(n_rows, -100, np.int64)
    if args is None:
        return out
    for r, row in enumerate(rows):
        if row.slot not in args:
            out[r] = 1
            continue
        canon = canonical_args(args[row.slot])
        out[r] = next((2 + j for j, v in enumerate(row.values) if v.canon == canon), 0)
    return out
