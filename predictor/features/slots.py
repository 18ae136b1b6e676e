"""Argument slots -> fixed-rank arrays: for each (tool, slot), the value candidates and their features.

NumPy only, shared by training and the embedded predictor. The candidate values come from the symbolic
extractors (`extractors.extract_candidates`, or the session's kept candidates, passed in)
plus, per slot, the slot's cross-task constants (learned from the training logs with each value counted
once per task group, so a user id of one task never becomes a "constant") and its JSON-schema enum.

A slot row scores `<free>` (the LLM will invent the value), `<absent>` (the call leaves the slot out) and
up to `max_candidates` values, pre-ranked by a cheap rule so the true value survives the cut. Values
are coerced to the slot's schema type first (a "12" read from text fills an integer slot as 12), since a
speculative call only counts when its canonical arguments match exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from toolcast.data.schema import Context, ToolCall, ToolSpec, canonical_args
from toolcast.predictor.features import cues
from toolcast.predictor.features.ranking import (
    BACK_BUCKETS,
    N_BACK,
    N_KINDS,
    N_LENGTHS,
    N_RANKS,
    Pool,
    rank,
)
from toolcast.predictor.features.values import (
    KIND_CONSTANT,
    KIND_ENUM,
    Fixed,
    bucket,
    canon,
    coerce,
    earlier_uses,
    fits,
    kind_of,
    last_key,
    schema_types,
    source_sig,
    source_text,
)

SourceCounts = dict[str, dict[str, dict[str, int]]]
"""Tool -> slot -> `source_sig` -> how many of the slot's values came from that source."""

SLOT_FEATURE_SIZES: tuple[int, ...] = (3, 8, 2)
"""(required: 1 yes / 2 no, schema type, has enum)."""
CAND_FEATURE_SIZES: tuple[int, ...] = (
    N_KINDS, N_RANKS, N_BACK, 6, N_LENGTHS, 4, 4, 2, 3, 3, cues.N_P_BUCKETS
)
"""(kind, rank, recency, value type, length, key match, earlier use, constant, same tool, type fits,
p(source | tool, slot)): the last is the share of the slot's values that came from this candidate's
source (`source_sig`) in the training logs, PASTE's mined value-mapping functions as a feature."""
_TYPES = {"string": 1, "integer": 2, "number": 3, "boolean": 4, "array": 5, "object": 6, "null": 7}
__all__ = ["KIND_CONSTANT", "KIND_ENUM", "kind_of"]  # re-exported: where a candidate's kind is read


class Candidate(Protocol):
    """What an extractor proposes: a value seen in the context, and where (`extractors.Candidate` fits;
    its kind is read from its newest mention as "kind:role", e.g. "json_leaf:output")."""

    value: Any
    source_event: int | None
    source_tool: str | None
    source_path: str | None
    rank: int


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


def slot_specs(
    spec: ToolSpec, context: Context, max_slots: int
) -> Iterator[tuple[str, list[str], list[Any], tuple[int, int, int]]]:
    """Each scored slot of a tool (`slot_names`) with its schema types, its enum (or []) and its features
    (`SLOT_FEATURE_SIZES`)."""
    params = spec.parameters if isinstance(spec.parameters, dict) else {}
    props = params.get("properties")
    props = props if isinstance(props, dict) else {}
    required = params.get("required")
    for slot in slot_names(spec, context, max_slots):
        prop = props.get(slot, {})
        types = schema_types(prop)
        enum = prop.get("enum") if isinstance(prop, dict) and isinstance(prop.get("enum"), list) else []
        num = (
            1 if isinstance(required, list) and slot in required else 2,
            _TYPES.get(types[0], 0) if types else 0,
            1 if enum else 0,
        )
        yield slot, types, enum, num


def empty_slot_arrays(n_rows: int, n_candidates: int, name_tokens: int) -> dict[str, np.ndarray]:
    """The slot arrays (`SLOT_INPUTS`) of `n_rows` rows, all padding."""
    s, m, tk = n_rows, n_candidates, name_tokens
    return {
        "slot_tool": np.zeros(s, np.int64),
        "slot_num": np.zeros((s, len(SLOT_FEATURE_SIZES)), np.int64),
        "slot_name": np.zeros((s, tk), np.int64),
        "slot_mask": np.zeros(s, bool),
        "cand_num": np.zeros((s, m, len(CAND_FEATURE_SIZES)), np.int64),
        "cand_key": np.zeros((s, m, tk), np.int64),
        "cand_event": np.zeros((s, m), np.int64),
        "cand_mask": np.zeros((s, m), bool),
    }


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
        self._p_buckets: dict[int, tuple[Any, dict[str, int]]] = {}
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
        arr = self.empty_arrays(n_rows, len(tools))
        s_max = len(arr["slot_mask"])
        rows: list[SlotRow] = []
        if not tools:
            return arr, rows
        used = earlier_uses(context)
        n_events = len(context.events)
        pool = Pool.of(candidates)
        for tool_index, spec in tools:
            for slot, types, enum, num in slot_specs(spec, context, self.max_slots):
                r = len(rows)
                if r >= s_max:
                    break
                arr["slot_tool"][r], arr["slot_mask"][r] = tool_index, True
                arr["slot_num"][r] = num
                ids = self.identifier_ids(slot)
                arr["slot_name"][r, : len(ids)] = ids
                chosen = rank(self, spec.name, slot, types, enum, pool, used)
                p_source = self.p_source(spec.name, slot, minus)
                p_buckets = self._p_buckets.setdefault(id(p_source), (p_source, {}))[1] if not minus else {}
                values = []
                feats, events, keys = [], [], []
                for score_row, cand, value, c in chosen:
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
                            BACK_BUCKETS[back] if back < 64 else bucket(back, N_BACK),
                            *score_row[3:],
                            pb,
                        )
                    )
                    values.append(SlotValue(value, where, c, sig))
                if chosen:
                    arr["cand_num"][r, : len(chosen)] = feats
                    arr["cand_key"][r, : len(chosen)] = keys
                    arr["cand_event"][r, : len(chosen)] = events
                    arr["cand_mask"][r, : len(chosen)] = True
                rows.append(SlotRow(spec.name, slot, values))
        return arr, rows

    def empty_arrays(self, n_rows: int | None, n_tools: int) -> dict[str, np.ndarray]:
        """The slot arrays, all padding: `n_rows` rows, default `max_slots` per tool."""
        n = n_rows if n_rows is not None else self.max_slots * max(1, n_tools)
        return empty_slot_arrays(n, self.max_candidates, self.max_name_tokens)

    def _source_info(self, cand: Any) -> tuple[list[int], str, str, str]:
        """What a candidate's source gives its slot rows: its key's token ids (padded), "kind:role",
        `source_sig` and where it was found (for `SlotValue`)."""
        if isinstance(cand, Fixed):  # a constant or enum member: no key, its kind is its source
            return [0] * self.max_name_tokens, cand.kind, cand.kind, f"{cand.kind}:"
        key = last_key(cand.source_path)
        key_ids = [0] * self.max_name_tokens
        if key:
            kid = self.identifier_ids(key)
            key_ids[: len(kid)] = kid
        kind = kind_of(cand)
        tool, path = cand.source_tool, cand.source_path
        return key_ids, kind, source_sig(kind, tool, path), source_text(kind, tool, path)

    def slot_constants(self, tool: str, slot: str, types: list[str]) -> tuple[set[str], list[tuple]]:
        """The slot's cross-task constants: their canonical forms, and each as (candidate, value coerced
        to `types`, canonical form, fit), in order; memoised (the vocabularies do not change)."""
        key = (tool, slot, tuple(types))
        hit = self._const_rows.get(key)
        if hit is None:
            consts = self.constants.get(tool, {}).get(slot, [])
            rows = []
            for i, v in enumerate(consts):
                value = coerce(v, types)
                rows.append((Fixed(v, KIND_CONSTANT, i), value, canon(value), fits(value, types)))
            if len(self._const_rows) >= 100_000:
                self._const_rows.clear()
            hit = self._const_rows[key] = ({canonical_args(v) for v in consts}, rows)
        return hit

    def slot_extras(
        self, tool: str, slot: str, types: list[str], enum: list[Any]
    ) -> tuple[set[str], list[tuple]]:
        """The slot's own candidates, not the context's: its cross-task constants, then the members of its
        JSON-schema enum, each as (candidate, value coerced to `types`, canonical form, fit); and the
        constants' canonical forms."""
        const, rows = self.slot_constants(tool, slot, types)
        enums = []
        for i, v in enumerate(enum):
            if isinstance(v, str | int | float):
                value = coerce(v, types)
                enums.append((Fixed(v, KIND_ENUM, i), value, canon(value), fits(value, types)))
        return const, [*rows, *enums]

    def p_source(
        self, tool: str, slot: str, minus: SourceCounts | None
    ) -> dict[str, float] | None:
        """`source_probabilities`, memoised when nothing is left out (the embedded predictor's case)."""
        if minus:
            return source_probabilities(self.sources, tool, slot, minus)
        key = (tool, slot)
        if key not in self._p_source:
            self._p_source[key] = source_probabilities(self.sources, tool, slot, None)
        return self._p_source[key]


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
