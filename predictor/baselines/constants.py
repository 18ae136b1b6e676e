"""A slot's constants: values that recur across task groups (`("constant",)`, one of the value maps' sources).

Mining counts each value's task groups, so that a value one task used (a user id, an order number) never
becomes a constant, and, while the maps measure their sources on the training calls, the task being
replayed can be left out (`leave_out`). A saved table (`to_dict`) keeps only the values that can be
constants and how many groups used each: enough to predict; the names of the groups, and the values of
one task, stay in the logs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import Trace
from toolcast.predictor.baselines.io import at, count, get, obj, seq, text
from toolcast.predictor.baselines.value_sources import MAX_RANK, MIN_GROUPS
from toolcast.predictor.features.extractors import value_id


@dataclass
class ConstantTable:
    """(tool, slot) -> value id -> (value, the task groups that used it, or, loaded, how many)."""

    table: dict[tuple[str, str], dict[str, tuple[Any, set[str] | int]]] = field(default_factory=dict)
    floor: int = 0
    """Values used by fewer groups were left out when saving (a loaded table): none can be asked for."""

    @classmethod
    def fit(cls, traces: Iterable[Trace]) -> ConstantTable:
        table: dict[tuple[str, str], dict[str, tuple[Any, set[str] | int]]] = defaultdict(dict)
        for trace in traces:
            for call in trace.calls:
                for slot, value in call.args.items():
                    entry = table[(call.tool, slot)].setdefault(value_id(value), (value, set()))
                    entry[1].add(trace.group)  # type: ignore[union-attr]
        return cls(dict(table))

    def values(self, tool: str, slot: str, leave_out: str | None = None, min_groups: int = MIN_GROUPS,
               limit: int = MAX_RANK) -> list[Any]:
        """Constants of a slot, most widespread first; `leave_out` = the group being predicted in
        training, whose own traces must not make a value a constant."""
        if min_groups < self.floor:
            raise ValueError(f"this constant table keeps values of {self.floor}+ task groups only, "
                             f"not {min_groups}")
        scored = []
        for value, groups in self.table.get((tool, slot), {}).values():
            if isinstance(groups, int):
                if leave_out is not None:
                    raise ValueError("a loaded constant table keeps how many groups used a value, not "
                                     "which: it cannot leave a group out")
                n = groups
            else:
                n = len(groups) - (leave_out in groups)
            if n >= min_groups:
                scored.append((-n, value_id(value), value))
        scored.sort(key=lambda s: s[:2])
        return [v for _, _, v in scored[:limit]]

    def to_dict(self, min_groups: int = MIN_GROUPS) -> dict[str, Any]:
        """The values of `min_groups`+ task groups, with how many: [[tool, slot, [[value, n], ...]], ...]."""
        slots = []
        for (tool, slot), entries in self.table.items():
            kept = [[v, n] for v, g in entries.values()
                    if (n := g if isinstance(g, int) else len(g)) >= min_groups]
            if kept:
                slots.append([tool, slot, kept])
        return {"min_groups": max(min_groups, self.floor), "slots": slots}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> ConstantTable:
        floor, wf = get(obj(d, where), "min_groups", where)
        slots, ws = get(d, "slots", where)
        table: dict[tuple[str, str], dict[str, tuple[Any, set[str] | int]]] = {}
        for i, item in enumerate(seq(slots, ws)):
            w = at(ws, i)
            tool, slot, entries = seq(item, w, 3)
            values = table.setdefault((text(tool, at(w, 0)), text(slot, at(w, 1))), {})
            for j, entry in enumerate(seq(entries, at(w, 2))):
                value, n = seq(entry, at(at(w, 2), j), 2)
                values[value_id(value)] = (value, count(n, at(at(at(w, 2), j), 1)))
        return cls(table, count(floor, wf))
