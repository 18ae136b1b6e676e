"""Traces -> training examples: the tokenizer, the vocabularies, and one padded example per decision point.

NumPy only (no torch): the arrays are exactly what the embedded predictor builds at serving time, plus
the targets. A trace's event rows are computed once and sliced for each of its decision points, and the
extractors cache per event, so building is linear in the log size.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from toolcast.data.schema import Context, Message, ToolCall, Trace, canonical_args, decision_positions
from toolcast.predictor.features import cues
from toolcast.predictor.features.catalog import Catalog, build_catalog
from toolcast.predictor.features.featurizer import (
    TOOL_ID_UNKNOWN,
    Extract,
    Featurizer,
    Vocabularies,
    agent_key,
    event_rows,
    tool_candidates,
)
from toolcast.predictor.features.slots import SourceCounts, kind_of, slot_targets
from toolcast.predictor.features.text import split_identifier

log = logging.getLogger(__name__)

TARGETS = ("tool_target", "tool_multi", "slot_target")
CONSTANT_MIN_GROUPS = 3
"""A slot value is a constant when at least this many task groups use it: one more than the two a
task's own data could supply with a single look-alike task, a cheap stand-in for leaving the task out."""
MAX_CONSTANTS = 16
CONSTANT_MIN_CHARS = 4
"""A text value this long only counts towards being a constant where the agent used it without it being
anywhere in the trace before the call (see `_constant_uses`); shorter ones ("1", "yes") are everywhere."""
CONSTANT_MAX_CHARS = 200


def _constant_uses(trace: Trace) -> Iterator[tuple[str, str, object, str]]:
    """(tool, slot, value, canonical) of the argument values that could be a slot constant: values the
    agent wrote without reading them in the trace before the call. A constant exists to propose what the
    context lacks; an order id that a frequent test user's tasks all read from a tool output is not one,
    and proposing it where that user is absent (it was the top answer for `get_order_details` before this
    rule) is wrong. Arrays and objects count too (`lockDoors(door=["driver", ...])`), by their canonical
    JSON."""
    seen: list[str] = []
    for e in trace.events:
        if isinstance(e, ToolCall):
            before = "\n".join(seen)
            for slot, v in e.args.items():
                c = canonical_args(v)
                if v is None or len(c) > CONSTANT_MAX_CHARS:
                    continue
                text = v if isinstance(v, str) else c
                if len(text) >= CONSTANT_MIN_CHARS and text in before:
                    continue
                yield e.tool, slot, v, c
            seen.append(canonical_args(e.args))
            if e.output:
                seen.append(e.output)
        elif isinstance(e, Message) and e.text:
            seen.append(e.text)


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


def transition_counts(traces: Iterable[Trace]) -> dict[str, dict[str, Counter]]:
    """Per task group: transition key -> next tool (or `<respond>`) -> count, over the decision points."""
    by_group: dict[str, dict[str, Counter]] = defaultdict(dict)
    for t in traces:
        for i, calls in decision_positions(t.events):
            cues.add_counts(by_group[t.group], Context(t.events[:i], t.tools, {}), cues.label_symbol(calls))
    return dict(by_group)


def value_source_counts(traces: Iterable[Trace], featurizer: Featurizer) -> dict[str, SourceCounts]:
    """Per task group: tool -> slot -> `source_sig` of the candidate equal to the value the agent passed.

    Uses the featurizer's own candidate rows, so a source means what it means at prediction time (the
    rows do not depend on the value-source counts themselves, only their features do)."""
    by_group: dict[str, SourceCounts] = {}
    for t in traces:
        counts = by_group.setdefault(t.group, {})
        for i, calls in decision_positions(t.events):
            if not calls:
                continue
            first = calls[0]
            context = Context(t.events[:i], t.tools, {})
            tools = tool_candidates(context, featurizer.cfg.max_tools)
            _arrays, rows = featurizer.slot_features(context, tools, [first.tool])
            for r, target in enumerate(slot_targets(rows, first.args, len(rows))):
                if target >= 2:
                    sig = rows[r].values[target - 2].sig
                    row = counts.setdefault(first.tool, {}).setdefault(rows[r].slot, {})
                    row[sig] = row.get(sig, 0) + 1
    return by_group


def merge_sources(parts: Iterable[SourceCounts]) -> SourceCounts:
    total: SourceCounts = {}
    for part in parts:
        for tool, slots in part.items():
            for slot, row in slots.items():
                dst = total.setdefault(tool, {}).setdefault(slot, {})
                for sig, n in row.items():
                    dst[sig] = dst.get(sig, 0) + n
    return total


def merge_counts(parts: Iterable[dict[str, Counter]]) -> dict[str, dict[str, int]]:
    total: dict[str, Counter] = defaultdict(Counter)
    for part in parts:
        for key, row in part.items():
            total[key].update(row)
    return {key: dict(row) for key, row in sorted(total.items())}


# Merging counts of consecutive shards of the traces, in shard order, gives what one pass over all of them
# gives, dict order included: a key first seen in shard k is inserted after every key of shards < k.
def merge_sources_by_group(parts: Iterable[dict[str, SourceCounts]]) -> dict[str, SourceCounts]:
    total: dict[str, SourceCounts] = {}
    for part in parts:
        for group, counts in part.items():
            total[group] = merge_sources([total[group], counts]) if group in total else counts
    return total


Transitions = dict[str, dict[str, Counter]]
"""Per task group: transition key -> next tool -> count (`transition_counts`)."""


def add_transitions(total: Transitions, part: Transitions) -> None:
    """Add `part`'s counts into `total` (its own counters: `part` is not changed)."""
    for group, counts in part.items():
        dst = total.setdefault(group, {})
        for key, row in counts.items():
            dst.setdefault(key, Counter()).update(row)


def pack_group_counts(transitions_by_group: Transitions | None,
                      sources_by_group: dict[str, SourceCounts] | None) -> dict[str, bytes]:
    """Each task group's own transition and value-source counts as one JSON blob (`unpack_group_counts`).

    The featurizing processes are forked and each reads the counts of the groups of its traces. As
    dicts of dicts, every read wrote to the objects it passed (reference counts), so each process got
    its own copy of the pages holding them, which grow with the logs' groups (at 16x the logs, the
    largest featurizing process held 1.35x the 1x heap); one bytes object per group is only read."""
    transitions_by_group = transitions_by_group or {}
    sources_by_group = sources_by_group or {}
    return {g: json.dumps([transitions_by_group.get(g), sources_by_group.get(g)],
                          separators=(",", ":")).encode()
            for g in dict.fromkeys([*transitions_by_group, *sources_by_group])}


def unpack_group_counts(blob: bytes | None) -> tuple[dict[str, dict[str, int]] | None, SourceCounts | None]:
    """(transition counts, value-source counts) of one group from `pack_group_counts`; (None, None)
    for a group with none."""
    if blob is None:
        return None, None
    transitions, sources = json.loads(blob)
    return transitions, sources


@dataclass
class TraceCounts:
    """What the vocabularies are made of, counted over the training traces; counts of consecutive shards
    merge (`merge`, in shard order) into what one pass over all of them counts."""

    tools: Counter[str] = field(default_factory=Counter)
    agents: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    constant_groups: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    """(tool, slot, canonical value) -> the task groups that used the value without reading it first."""
    constant_values: dict[str, object] = field(default_factory=dict)
    """canonical value -> the value (its last use)."""
    transitions_by_group: Transitions = field(default_factory=dict)
    chars: set[str] = field(default_factory=set)
    """Every character of the tokenizer's corpus (`corpus_texts`): see `text.train_tokenizer`."""

    @classmethod
    def merge(cls, parts: Iterable[TraceCounts]) -> TraceCounts:
        """One pass over `parts` (a generator of shards' counts is let go shard by shard)."""
        out = cls()
        for p in parts:
            out.tools.update(p.tools)
            out.agents.update(p.agents)
            out.kinds.update(p.kinds)
            for key, groups in p.constant_groups.items():
                out.constant_groups.setdefault(key, set()).update(groups)
            out.constant_values.update(p.constant_values)
            out.chars |= p.chars
            add_transitions(out.transitions_by_group, p.transitions_by_group)
        return out


def count_traces(traces: Iterable[Trace], extract: Extract | None) -> TraceCounts:
    """Tools, agents, extractor kinds, slot-constant uses, transitions per task group and the corpus's
    characters of `traces`."""
    out = TraceCounts()
    for t in traces:
        for text in corpus_texts([t]):
            out.chars.update(text)
        out.agents[agent_key({"source": t.source, **t.metadata})] += 1
        for spec in t.tools:
            out.tools[spec.name] += 0
        for call in t.calls:
            out.tools[call.tool] += 1
        for tool, slot, v, c in _constant_uses(t):
            out.constant_values[c] = v
            out.constant_groups.setdefault((tool, slot, c), set()).add(t.group)
        if extract is not None and t.events:  # the full trace's candidates: every kind:role it yields
            out.kinds.update(kind_of(c) for c in extract(Context(t.events, t.tools, t.metadata)))
        for i, calls in decision_positions(t.events):  # as `transition_counts` counts them
            by_group = out.transitions_by_group.setdefault(t.group, {})
            cues.add_counts(by_group, Context(t.events[:i], t.tools, {}), cues.label_symbol(calls))
    return out


def vocabularies_from(counts: TraceCounts, catalog: Catalog) -> Vocabularies:
    """Tool and agent ids, extractor kinds, slot constants and tool transitions from the training traces'
    counts and their tool catalogue (`catalog.build_catalog`)."""
    consts: dict[str, dict[str, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    for (tool, slot, c), gs in counts.constant_groups.items():
        if len(gs) >= CONSTANT_MIN_GROUPS:
            consts[tool][slot].append((len(gs), c))
    values = counts.constant_values
    constants = {
        tool: {
            slot: [values[c] for _n, c in sorted(vs, key=lambda x: (-x[0], x[1]))[:MAX_CONSTANTS]]
            for slot, vs in slots.items()
        }
        for tool, slots in consts.items()
    }
    kinds = counts.kinds
    kind_names = ["constant", "enum", *sorted(k for k in kinds if k not in ("constant", "enum"))]
    return Vocabularies(
        tools={name: TOOL_ID_UNKNOWN + 1 + i for i, name in enumerate(sorted(counts.tools))},
        agents={a: 1 + i for i, a in enumerate(sorted(counts.agents))},
        kinds={k: 1 + i for i, k in enumerate(kind_names)},
        constants=constants,
        transitions=merge_counts(counts.transitions_by_group.values()),
        catalog=catalog,
    )


def build_vocabularies(traces: Sequence[Trace], extract: Extract | None) -> Vocabularies:
    """Tool and agent ids, extractor kinds, slot constants and tool transitions of the training traces."""
    return vocabularies_from(count_traces(traces, extract), build_catalog(traces))


@dataclass
class Examples:
    """Stacked arrays of many decision points, in memory: model inputs, targets, and which trace each came
    from. For a few traces (tests, tools); training writes them to Arrow instead (`example_store`)."""

    arrays: dict[str, np.ndarray]
    trace_index: np.ndarray

    def __len__(self) -> int:
        return len(self.trace_index)


def trace_examples(
    trace: Trace,
    featurizer: Featurizer,
    minus: cues.Counts | None = None,
    minus_sources: SourceCounts | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """One example (inputs + targets) per decision point of `trace`; `minus` / `minus_sources`: its
    group's own transition / value-source counts, left out of the statistics (cross-fitting, see
    `predictor.cues`)."""
    cfg = featurizer.cfg
    rows = event_rows(trace.events, featurizer.encoder, cfg)
    metadata = {"source": trace.source, **trace.metadata}
    for i, calls in decision_positions(trace.events):
        context = Context(events=trace.events[:i], tools=trace.tools, metadata=metadata)
        first: ToolCall | None = calls[0] if calls else None
        feats = featurizer.featurize(
            context,
            slot_tools=[first.tool] if first else [],
            n_slot_rows=cfg.max_slots,
            rows=rows[:i],
            minus=minus,
            minus_sources=minus_sources,
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


def build_examples(
    traces: Sequence[Trace],
    featurizer: Featurizer,
    progress: bool = False,
    transitions_by_group: dict[str, dict[str, Counter]] | None = None,
    sources_by_group: dict[str, SourceCounts] | None = None,
) -> Examples:
    """All decision points of `traces`, stacked; integer inputs stored as int32 to halve the memory.
    `*_by_group`: for the traces the statistics were counted on (training), each group's own counts,
    left out of its examples' features (cross-fitting)."""
    by_group = transitions_by_group or {}
    sources_by_group = sources_by_group or {}
    items: list[dict[str, np.ndarray]] = []
    origin: list[int] = []
    it: Iterable = traces
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(traces, desc="featurize", unit="trace", leave=False)
    for k, t in enumerate(it):
        for ex in trace_examples(t, featurizer, by_group.get(t.group), sources_by_group.get(t.group)):
            items.append(ex)
            origin.append(k)
    if not items:
        raise ValueError("no decision points in the given traces")
    arrays = {}
    for key in items[0]:
        stacked = np.stack([e[key] for e in items])
        arrays[key] = stacked.astype(np.int32) if stacked.dtype == np.int64 else stacked
    return Examples(arrays, np.asarray(origin, np.int64))
