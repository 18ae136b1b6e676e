"""Context -> fixed-rank numpy arrays: one encoder for training (torch) and the embedded predictor (ONNX).

NumPy only, on purpose: the agent process featurizes with this very code. One example is a dict of
arrays with fixed trailing shapes (see `FEATURE_SHAPES`); `collate` stacks examples into a batch.

Layout, chosen so one ONNX session serves every tool set and history length:
- events, most recent first: slot 0 is the summary position (the agent's identity; its output is the
  context state h), slot i >= 1 is the i-th most recent event. Position = recency, so a truncated history
  keeps its meaning. Right-padded to `max_events + 1` with `ev_mask`.
- tool candidates: 0 = `<respond>`, 1 = `<unknown>` (the true tool is not in the set), then the tools the
  context calls, then the tools it lists; each with its name / description / parameter-name tokens, its
  learned id (0 when unseen in training) and what the context did with it (count, recency, last error).
- argument slots (built in `slots.py`): rows of (tool candidate, slot) with value candidates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toolcast.data.schema import RESPOND, Context, Event, Message, ToolCall, ToolSpec
from toolcast.predictor.config import ModelConfig
from toolcast.predictor.features import cues
from toolcast.predictor.features.catalog import ToolFiller
from toolcast.predictor.features.slots import Candidate, SlotFeaturizer, SlotRow, SourceCounts
from toolcast.predictor.features.text import TextEncoder, split_identifier
from toolcast.predictor.features.vocab import TOOL_ID_RESPOND, TOOL_ID_UNKNOWN, TOOL_ID_UNSEEN, Vocabularies

# The arrays the model takes, in the order its methods take them; the ONNX contract names its graph
# inputs with these (torch-free here, so the exporter, the model and the contract share one list).
EVENT_INPUTS = ("ev_type", "ev_tool", "ev_num", "ev_keys", "ev_text", "ev_mask", "agent")
TOOL_INPUTS = ("tool_id", "tool_num", "tool_name", "tool_desc", "tool_params", "tool_mask")
SLOT_INPUTS = (
    "slot_tool",
    "slot_num",
    "slot_name",
    "slot_mask",
    "cand_num",
    "cand_key",
    "cand_event",
    "cand_mask",
)

UNKNOWN = "<unknown>"
SPECIAL_TOOLS: tuple[str, ...] = (RESPOND, UNKNOWN)

# Event types (0 = padding).
EV_SUMMARY, EV_SYSTEM, EV_USER, EV_ASSISTANT, EV_CALL, EV_CALL_ERROR = 1, 2, 3, 4, 5, 6
N_EVENT_TYPES = 7
_ROLE_TYPE = {"system": EV_SYSTEM, "user": EV_USER, "assistant": EV_ASSISTANT}
# Output kinds of an event (0 = not applicable).
OUT_NONE, OUT_OBJECT, OUT_LIST, OUT_SCALAR, OUT_TEXT, OUT_EMPTY = 0, 1, 2, 3, 4, 5
N_OUT_KINDS, N_LEN_BUCKETS, N_GAP_BUCKETS = 6, 12, 12
TOOL_FEATURE_SIZES: tuple[int, ...] = (
    6,
    8,
    4,
    3,
    cues.N_P_BUCKETS,
    cues.N_P_BUCKETS,
    cues.N_OVERLAP,
    cues.N_OVERLAP,
    cues.N_DESC_OVERLAP,
)
"""Tool-candidate context features: (calls so far, calls since its last call, listed / seen only, last
call failed, p(t | last tool), p(t | last two tools), words of its name in the latest user message / in
the agent's latest text, content words of its description in the latest user message)."""


def call_history(context: Context) -> tuple[dict[str, int], dict[str, tuple[int, bool]]]:
    """Per tool: how many calls the context made of it, and (calls since its last one + 1, whether that
    one failed)."""
    count: dict[str, int] = {}
    last: dict[str, tuple[int, bool]] = {}
    calls = [e for e in context.events if isinstance(e, ToolCall)]
    for k, call in enumerate(calls):
        count[call.tool] = count.get(call.tool, 0) + 1
        last[call.tool] = (len(calls) - k, call.error)
    return count, last


def tool_features(
    tool: str,
    listed: int,
    count: dict[str, int],
    last: dict[str, tuple[int, bool]],
    p_bigram: int,
    p_trigram: int,
    name_words: frozenset[str],
    desc_words: frozenset[str],
    user_words: frozenset[str],
    agent_words: frozenset[str],
) -> tuple[int, ...]:
    """A tool candidate's context features (`TOOL_FEATURE_SIZES`); `listed` 1, or 2 seen only, the
    transition probabilities already bucketed (`cues.p_bucket`)."""
    ago, err = last.get(tool, (0, False))
    return (
        min(count.get(tool, 0), TOOL_FEATURE_SIZES[0] - 1),
        0 if not ago else min(TOOL_FEATURE_SIZES[1] - 1, 1 + int(math.log2(ago))),
        listed,
        0 if not ago else 1 + int(err),
        p_bigram,
        p_trigram,
        cues.overlap(name_words, user_words),
        cues.overlap(name_words, agent_words),
        cues.desc_overlap(desc_words, user_words),
    )


def length_bucket(n: int) -> int:
    """0 for nothing, then log2 buckets: 1, 2-3, 4-7, ... capped."""
    return 0 if n <= 0 else min(N_LEN_BUCKETS - 1, 1 + int(math.log2(n)))


def gap_bucket(seconds: float | None) -> int:
    """0 unknown; 1 for <= 0.1 s, then doubling."""
    if seconds is None or seconds != seconds:
        return 0
    if seconds <= 0.1:
        return 1
    return min(N_GAP_BUCKETS - 1, 2 + int(math.log2(seconds / 0.1)))


def agent_key(metadata: dict[str, Any]) -> str:
    """Which agent wrote the log: harness + model. Agents differ in when they answer instead of calling."""
    return "|".join(str(metadata.get(k) or "") for k in ("source", "agent_implementation", "agent_model"))


# ---- per-event rows (independent of the tool set, so a trace's rows are computed once) -------------


@dataclass
class EventRow:
    type: int
    tool: str | None
    keys: list[int]
    text: list[int]
    out_len: int
    out_kind: int
    gap: int


def _output_kind(call: ToolCall) -> tuple[int, int]:
    if call.output is None or not call.output.strip():
        return OUT_EMPTY, 0
    text = call.output.lstrip()
    kind = OUT_TEXT
    if text[:1] in "{[":
        parsed = call.output_json()
        kind = OUT_OBJECT if isinstance(parsed, dict) else OUT_LIST if isinstance(parsed, list) else OUT_TEXT
    elif text[:1].isdigit() or text in ("true", "false", "null", "None", "True", "False"):
        kind = OUT_SCALAR
    return kind, length_bucket(len(call.output))


def event_row(events: Sequence[Event], i: int, encoder: TextEncoder, cfg: ModelConfig) -> EventRow:
    """Features of events[i]; depends on events[i] and events[i-1] (the time gap) only."""
    e = events[i]
    prev = events[i - 1] if i else None
    start = e.t_start if e.t_start is not None else e.t_end
    prev_end = None if prev is None else (prev.t_end if prev.t_end is not None else prev.t_start)
    gap = gap_bucket(None if start is None or prev_end is None else start - prev_end)
    if isinstance(e, ToolCall):
        kind, olen = _output_kind(e)
        keys = encoder.encode(" ".join(split_identifier(k) for k in e.args), cfg.max_key_tokens)
        text = encoder.encode(e.output or "", cfg.max_text_tokens)
        return EventRow(EV_CALL_ERROR if e.error else EV_CALL, e.tool, keys, text, olen, kind, gap)
    assert isinstance(e, Message)
    text = encoder.encode(e.text, cfg.max_text_tokens) if e.text else []
    return EventRow(
        _ROLE_TYPE.get(e.role, EV_USER), None, [], text, length_bucket(len(e.text)), OUT_NONE, gap
    )


def event_rows(events: Sequence[Event], encoder: TextEncoder, cfg: ModelConfig) -> list[EventRow]:
    return [event_row(events, i, encoder, cfg) for i in range(len(events))]


# ---- tool candidates -------------------------------------------------------------------------------


@dataclass
class ToolSet:
    """The candidate tools of one context, in model order, with their specs (None for the specials)."""

    names: list[str]
    specs: list[ToolSpec | None]
    index: dict[str, int]


def tool_candidates(context: Context, max_tools: int) -> ToolSet:
    """Specials, then tools the context called (most recent first), then the tools it lists."""
    names: list[str] = list(SPECIAL_TOOLS)
    by_name = {t.name: t for t in context.tools}
    index = {n: i for i, n in enumerate(names)}
    called = [c.tool for c in reversed(context.events) if isinstance(c, ToolCall)]
    for name in [*called, *by_name]:
        if name not in index and len(names) < max_tools:
            index[name] = len(names)
            names.append(name)
    return ToolSet(names, [None, None, *(by_name.get(n) or ToolSpec(n) for n in names[2:])], index)


def slot_requests(tools: ToolSet, slot_tools: Sequence[str]) -> list[tuple[int, ToolSpec]]:
    """(place in the tool set, spec) of each tool in `slot_tools` that gets slot rows: the specials and
    tools not in the set get none."""
    return [
        (tools.index[t], tools.specs[tools.index[t]])  # type: ignore[misc]  # a real tool has a spec
        for t in slot_tools
        if tools.index.get(t, 0) >= len(SPECIAL_TOOLS)
    ]


Extract = Callable[[Context], Sequence[Candidate]]
"""Argument-value candidates of a context: `extractors.extract_candidates` (or the session fast path's
`session.candidates.SessionCandidates`), passed in."""


@dataclass
class Features:
    arrays: dict[str, np.ndarray]
    tools: ToolSet
    slots: list[SlotRow]


class Featurizer:
    """Turns a context into the model's arrays. Holds the text encoder, vocabularies, config and the
    candidate extractor (without one, slot rows get no value candidates: `<free>` / `<absent>` only)."""

    def __init__(
        self, cfg: ModelConfig, encoder: TextEncoder, vocab: Vocabularies, extract: Extract | None = None
    ):
        self.cfg, self.encoder, self.vocab, self.extract = cfg, encoder, vocab, extract
        self.fill_tools = ToolFiller(vocab.catalog)
        """A context that lists no tools -> one listing its agent set-up's tools (`catalog`)."""
        self._tool_text: dict[tuple[str, str, tuple[str, ...]], tuple[list[int], list[int], list[int]]] = {}
        self._desc_words: dict[str, frozenset[str]] = {}
        self._name_words: dict[str, Any] = {}
        self.slot_featurizer = SlotFeaturizer(
            encoder,
            vocab.kinds,
            vocab.constants,
            cfg.max_slots,
            cfg.max_candidates,
            cfg.max_name_tokens,
            cfg.max_events,
            vocab.value_sources,
        )

    def description_words(self, description: str) -> frozenset[str]:
        hit = self._desc_words.get(description)
        if hit is None:
            hit = self._desc_words[description] = cues.description_words(description)
        return hit

    def tool_text(self, spec: ToolSpec) -> tuple[list[int], list[int], list[int]]:
        """(name, description, parameter-name) tokens; cached per tool, a tool set is embedded once."""
        key = (spec.name, spec.description, tuple(spec.param_names))
        hit = self._tool_text.get(key)
        if hit is None:
            cfg, enc = self.cfg, self.encoder
            hit = (
                enc.encode_identifier(spec.name, cfg.max_name_tokens),
                enc.encode(spec.description, cfg.max_desc_tokens),
                enc.encode(" ".join(split_identifier(p) for p in spec.param_names), cfg.max_param_tokens),
            )
            self._tool_text[key] = hit
        return hit

    def featurize(
        self,
        context: Context,
        slot_tools: Sequence[str] = (),
        n_slot_rows: int | None = None,
        rows: Sequence[EventRow] | None = None,
        minus: cues.Counts | None = None,
        minus_sources: SourceCounts | None = None,
    ) -> Features:
        """The arrays of one context (no batch axis), with slot rows for `slot_tools` (names in the tool
        set; `n_slot_rows` pads the slot axis, default `max_slots` per tool). `rows`: precomputed
        `event_rows(context.events)` (a trace's rows serve all its decision points). `minus`: transition
        counts (and `minus_sources` value-source counts) to leave out (training: the example's own task
        group)."""
        cfg = self.cfg
        context = self.fill_tools(context)
        if rows is None:
            rows = event_rows(context.events, self.encoder, cfg)
        tools = tool_candidates(context, cfg.max_tools)
        out = self._events(rows, tools, context.metadata)
        out.update(self._tools(context, tools, minus))
        slot_arrays, slot_rows = self.slot_features(context, tools, slot_tools, n_slot_rows, minus_sources)
        out.update(slot_arrays)
        return Features(out, tools, slot_rows)

    def slot_features(
        self,
        context: Context,
        tools: ToolSet,
        slot_tools: Sequence[str],
        n_rows: int | None = None,
        minus_sources: SourceCounts | None = None,
    ) -> tuple[dict[str, np.ndarray], list[SlotRow]]:
        """Slot rows (and their candidate values) of `slot_tools`; specials and tools not in the set are
        skipped."""
        wanted = slot_requests(tools, slot_tools)
        candidates = self.extract(context) if self.extract is not None and wanted else []
        n = n_rows if n_rows is not None else self.cfg.max_slots * max(1, len(slot_tools))
        return self.slot_featurizer.build(context, candidates, wanted, n, minus_sources)

    def _events(
        self, rows: Sequence[EventRow], tools: ToolSet, metadata: dict[str, Any]
    ) -> dict[str, np.ndarray]:
        cfg = self.cfg
        n = cfg.max_events + 1
        ev_type = np.zeros(n, np.int64)
        ev_tool = np.zeros(n, np.int64)
        ev_num = np.zeros((n, 3), np.int64)  # (length bucket, output kind, gap bucket)
        ev_keys = np.zeros((n, cfg.max_key_tokens), np.int64)
        ev_text = np.zeros((n, cfg.max_text_tokens), np.int64)
        ev_type[0] = EV_SUMMARY
        recent = rows[-cfg.max_events :][::-1]
        for j, r in enumerate(recent, start=1):
            ev_type[j] = r.type
            ev_tool[j] = tools.index.get(r.tool, -1) + 1 if r.tool is not None else 0
            ev_num[j] = (r.out_len, r.out_kind, r.gap)
            ev_keys[j, : len(r.keys)] = r.keys
            ev_text[j, : len(r.text)] = r.text
        return {
            "ev_type": ev_type,
            "ev_tool": ev_tool,
            "ev_num": ev_num,
            "ev_keys": ev_keys,
            "ev_text": ev_text,
            "ev_mask": ev_type > 0,
            "agent": np.array(self.vocab.agents.get(agent_key(metadata), 0), np.int64),
        }

    def _tools(self, context: Context, tools: ToolSet, minus: cues.Counts | None) -> dict[str, np.ndarray]:
        cfg = self.cfg
        c = cfg.max_tools
        tool_id = np.zeros(c, np.int64)
        tool_num = np.zeros((c, len(TOOL_FEATURE_SIZES)), np.int64)
        name = np.zeros((c, cfg.max_name_tokens), np.int64)
        desc = np.zeros((c, cfg.max_desc_tokens), np.int64)
        params = np.zeros((c, cfg.max_param_tokens), np.int64)
        tool_id[0], tool_id[1] = TOOL_ID_RESPOND, TOOL_ID_UNKNOWN
        listed = {t.name for t in context.tools}
        count, last = call_history(context)
        bigram, trigram = (
            cues.probabilities(self.vocab.transitions, key, minus) for key in cues.transition_keys(context)
        )
        user_words, agent_words = cues.latest_texts(context)
        tool_num[0, 4:6] = cues.p_bucket(bigram, RESPOND), cues.p_bucket(trigram, RESPOND)
        for i, (tname, spec) in enumerate(zip(tools.names, tools.specs, strict=True)):
            if spec is None:
                continue
            nw = self._name_words.get(tname)
            if nw is None:
                nw = self._name_words[tname] = cues.name_words(tname)
            tool_id[i] = self.vocab.tools.get(tname, TOOL_ID_UNSEEN)
            nt, dt, pt = self.tool_text(spec)
            name[i, : len(nt)], desc[i, : len(dt)], params[i, : len(pt)] = nt, dt, pt
            tool_num[i] = tool_features(
                tname, 1 if tname in listed else 2, count, last, cues.p_bucket(bigram, tname),
                cues.p_bucket(trigram, tname), nw, self.description_words(spec.description), user_words,
                agent_words,
            )
        mask = np.zeros(c, bool)
        mask[: len(tools.names)] = True
        return {
            "tool_id": tool_id,
            "tool_num": tool_num,
            "tool_name": name,
            "tool_desc": desc,
            "tool_params": params,
            "tool_mask": mask,
        }

    def tool_target(self, tools: ToolSet, tool: str) -> int:
        """Index of the true next tool in the candidate set; `<unknown>` when absent."""
        return tools.index.get(tool, 1)


def collate(examples: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack examples (same keys, same shapes) into one batch."""
    return {k: np.stack([e[k] for e in examples]) for k in examples[0]}
