"""Traces -> training examples: the tokenizer, the vocabularies, and one padded example per decision point.

NumPy only (no torch): the arrays are exactly what the embedded predictor builds at serving time, plus
the targets. A trace's event rows are computed once and sliced for each of its decision points, and the
extractors cache per event, so building is linear in the log size.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolcast.data.decisions import decision_positions
from toolcast.data.schema import Context, Message, ToolCall, Trace, canonical_args
from toolcast.predictor.featurize import (
    TOOL_ID_UNKNOWN,
    Extract,
    Featurizer,
    Vocabularies,
    agent_key,
    event_rows,
)
from toolcast.predictor.slots import kind_of, slot_targets
from toolcast.predictor.text import split_identifier

log = logging.getLogger(__name__)

TARGETS = ("tool_target", "tool_multi", "slot_target")
CONSTANT_MIN_GROUPS = 3
"""A slot value is a constant when at least this many task groups use it: one more than the two a
task's own data could supply with a single look-alike task, a cheap stand-in for leaving the task out."""
MAX_CONSTANTS = 16


def corpus_texts(traces: Iterable[Trace]) -> Iterator[str]:
    """What the tokenizer learns from: messages, outputs, tool names / descriptions / parameters, keys."""
    seen_tools: set[str] = set()
    for t in traces:
        for spec in t.tools:
            if spec.name not in seen_tools:
                seen_tools.add(spec.name)
                yield split_identifier(spec.name)
                yield spec.description
                yield " ".join(split_identifier(p) for p in spec.param_names)
        for e in t.events:
            if isinstance(e, Message):
                if e.text:
                    yield e.text
            else:
                yield split_identifier(e.tool) + " " + " ".join(split_identifier(k) for k in e.args)
                if e.output:
                    yield e.output


def build_vocabularies(traces: Sequence[Trace], extract: Extract | None) -> Vocabularies:
    """Tool and agent ids, extractor kinds and slot constants of the training traces."""
    tools: Counter[str] = Counter()
    agents: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    groups: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    values: dict[str, object] = {}
    for t in traces:
        agents[agent_key({"source": t.source, **t.metadata})] += 1
        for spec in t.tools:
            tools[spec.name] += 0
        for call in t.calls:
            tools[call.tool] += 1
            for slot, v in call.args.items():
                if isinstance(v, str | int | float | bool):
                    c = canonical_args(v)
                    values[c] = v
                    groups[(call.tool, slot, c)].add(t.group)
        if extract is not None and t.events:  # the full trace's candidates: every kind:role it yields
            kinds.update(kind_of(c) for c in extract(Context(t.events, t.tools, t.metadata)))
    consts: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    for (tool, slot, c), gs in groups.items():
        if len(gs) >= CONSTANT_MIN_GROUPS:
            consts[tool][slot].append((len(gs), c))
    constants = {
        tool: {
            slot: [values[c] for _n, c in sorted(vs, key=lambda x: (-x[0], x[1]))[:MAX_CONSTANTS]]
            for slot, vs in slots.items()
        }
        for tool, slots in consts.items()
    }
    kind_names = ["constant", "enum", *sorted(k for k in kinds if k not in ("constant", "enum"))]
    return Vocabularies(
        tools={name: TOOL_ID_UNKNOWN + 1 + i for i, name in enumerate(sorted(tools))},
        agents={a: 1 + i for i, a in enumerate(sorted(agents))},
        kinds={k: 1 + i for i, k in enumerate(kind_names)},
        constants=constants,
    )


@dataclass
class Examples:
    """Stacked arrays of many decision points: model inputs, targets, and which trace each came from."""

    arrays: dict[str, np.ndarray]
    trace_index: np.ndarray

    def __len__(self) -> int:
        return len(self.trace_index)

    def save(self, path: str | Path) -> None:
        np.savez(path, trace_index=self.trace_index, **self.arrays)

    @classmethod
    def load(cls, path: str | Path) -> Examples:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "trace_index"}
            return cls(arrays, z["trace_index"])


def trace_examples(trace: Trace, featurizer: Featurizer) -> Iterator[dict[str, np.ndarray]]:
    """One example (inputs + targets) per decision point of `trace`."""
    cfg = featurizer.cfg
    rows = event_rows(trace.events, featurizer.encoder, cfg)
    metadata = {"source": trace.source, **trace.metadata}
    for i, calls in decision_positions(trace.events):
        context = Context(events=trace.events[:i], tools=trace.tools, metadata=metadata)
        first: ToolCall | None = calls[0] if calls else None
        feats = featurizer.featurize(
            context, slot_tools=[first.tool] if first else [], n_slot_rows=cfg.max_slots, rows=rows[:i]
        )
        index = feats.tools.index
        multi = np.zeros(cfg.max_tools, bool)
        if first is None:
            multi[0] = True
        else:
            for c in calls:
                multi[index.get(c.tool, 1)] = True
        out = feats.arrays
        out["tool_target"] = np.array(0 if first is None else index.get(first.tool, 1), np.int64)
        out["tool_multi"] = multi
        out["slot_target"] = slot_targets(feats.slots, first.args if first else None, cfg.max_slots)
        yield out


def build_examples(traces: Sequence[Trace], featurizer: Featurizer, progress: bool = False) -> Examples:
    """All decision points of `traces`, stacked; integer inputs stored as int32 to halve the memory."""
    items: list[dict[str, np.ndarray]] = []
    origin: list[int] = []
    it: Iterable = traces
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(traces, desc="featurize", unit="trace", leave=False)
    for k, t in enumerate(it):
        for ex in trace_examples(t, featurizer):
            items.append(ex)
            origin.append(k)
    if not items:
        raise ValueError("no decision points in the given traces")
    arrays = {}
    for key in items[0]:
        stacked = np.stack([e[key] for e in items])
        arrays[key] = stacked.astype(np.int32) if stacked.dtype == np.int64 else stacked
    return Examples(arrays, np.asarray(origin, np.int64))
