"""PASTE's pattern pool (arXiv 2603.18897): context patterns -> next tool, value-mapping functions -> args.

A pattern is the agent's last one or two tool calls and what it is reacting to (a user message, a tool
result, a failed call, ...): `(t[-2], t[-1], event) -> next tool`, with the empirical distribution of
what followed, smoothed by Witten-Bell interpolation down to `(t[-1], event)`, `(event)` and the unigram
(a back-off trigram). One text cue is added: a tool whose name words the user's latest message uses gets
its probability multiplied by exp(w) and the distribution renormalised ("sort the file" -> `sort`);
w and the smoothing strength are chosen on held-out task groups of the training logs (w = 0 if the cue
does not help). Measured ablations are in BENCHMARKS.md.

Each slot of a predicted tool is filled by the value-mapping functions mined from the logs
(`toolcast.predictor.baselines.value_maps`): earlier output by key and position, earlier argument, an ID or a
quoted string in the user's text, a cross-task constant; ranked and weighted by empirical success.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Any

from toolcast.data.schema import RESPOND, Context, Event, ToolCall, Trace
from toolcast.predictor.baselines.calls import (
    SignatureModel,
    decision_contexts,
    rank_calls,
    spec_of,
    tool_calls,
)
from toolcast.predictor.baselines.io import get, number, obj, read_state, state_file, write_state
from toolcast.predictor.baselines.kept import KeptPerConversation
from toolcast.predictor.baselines.ngram import (
    START,
    Example,
    InterpolatedNGram,
    Toolsets,
    action_history,
    boosted,
    choose_smoothing,
    cued_tools,
    fit_ngram,
    label_symbols,
    last_event_kind,
)
from toolcast.predictor.baselines.value_maps import ContextIndex, ValueMaps, mine_value_maps
from toolcast.predictor.protocol import CallPrediction

log = logging.getLogger(__name__)

LEVELS = 4
FILE = "pattern_pool.json.gz"
"""The fitted pool's file in a model directory (`save`, `load`)."""
FORMAT = "toolcast.pattern_pool"
CUE_WEIGHTS: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


MAX_KEPT_INDEXES = 256
"""Conversations whose context index a pattern pool keeps (a served process sees many sessions)."""


class _KeptIndex:
    """A context index over a conversation's first events, with what each event held when it was added."""

    def __init__(self) -> None:
        self.index = ContextIndex()
        self.seen: list[tuple[Event, Any]] = []
        """(event, its output or text when added)."""

    def continues(self, events: Sequence[Event]) -> bool:
        return len(events) >= len(self.seen) and all(
            e is e0 and _content(e) == c0 for e, (e0, c0) in zip(events, self.seen, strict=False))

    def extend(self, events: Sequence[Event]) -> None:
        for e in events[len(self.seen):]:
            self.index.add(e)
            self.seen.append((e, _content(e)))


def _content(event: Event) -> Any:
    return (event.output, event.error, event.args) if isinstance(event, ToolCall) else event.text


def pattern_chain(context: Context) -> tuple[Hashable, ...]:
    """The contexts of the back-off chain, most general first."""
    tools = [a for a in action_history(context) if a != RESPOND]
    t1 = tools[-1] if tools else START
    t2 = tools[-2] if len(tools) > 1 else START
    ev = last_event_kind(context)
    return ((), (ev,), (t1, ev), (t2, t1, ev))


class PatternPoolPredictor:
    """Back-off trigram over the agent's tool calls (+ the user naming a tool) -> next tool; mined value
    maps -> arguments."""

    name = "pattern"

    def __init__(self, text_cue: bool = True):
        self.text_cue = text_cue
        self.cue_weight = 0.0
        self.ngram = InterpolatedNGram(LEVELS)
        self.signatures = SignatureModel()
        self.toolsets = Toolsets()
        self.value_maps: ValueMaps | None = None
        self._indexes: KeptPerConversation[_KeptIndex] = KeptPerConversation(MAX_KEPT_INDEXES)
        """Each conversation's context index (`_index`)."""

    def fit(self, traces: Iterable[Trace], progress: bool = False) -> PatternPoolPredictor:
        traces = list(traces)
        for trace in traces:
            self.toolsets.add(trace)
            for call in trace.calls:
                self.signatures.add(call.tool, call.args)
        examples = []
        for trace in traces:
            for ctx, calls in decision_contexts(trace):
                allowed = self.toolsets.allowed(ctx)
                cued = cued_tools(ctx, allowed) if self.text_cue else set()
                examples.append(Example(pattern_chain(ctx), label_symbols(calls), allowed, cued, trace.group))
        beta, self.cue_weight = choose_smoothing(examples, LEVELS,
                                                 weights=CUE_WEIGHTS if self.text_cue else (0.0,))
        self.ngram = fit_ngram(examples, LEVELS, beta)
        log.info("pattern pool: %d decision points, beta %.1f, cue weight %.1f", len(examples), beta,
                 self.cue_weight)
        self.value_maps = mine_value_maps(traces, progress=progress)
        return self

    def tool_distribution(self, context: Context) -> dict[str, float]:
        allowed = self.toolsets.allowed(context)
        p = self.ngram.distribution(pattern_chain(context), allowed)
        return boosted(p, cued_tools(context, allowed), self.cue_weight) if self.cue_weight else p

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        if self.value_maps is None:
            raise RuntimeError("PatternPoolPredictor.predict before fit")
        maps = self.value_maps
        index: ContextIndex | None = None

        def make(tool: str, p: float) -> list[CallPrediction]:
            nonlocal index
            if index is None:
                index = self._index(context)
            idx = index

            def options(slot: str) -> list[tuple[Any, float, str]]:
                return maps.candidates(idx, tool, slot)

            return tool_calls(tool, p, self.signatures.top(tool, spec_of(context, tool)), options)

        return rank_calls(self.tool_distribution(context), make, k)

    def _index(self, context: Context) -> ContextIndex:
        """`ContextIndex.of(context)`, kept per conversation and extended by the new events only (a
        session's step paid for its whole history again: ~7 ms of a pooled step at history 64). Keyed by
        the identity of the conversation's first event; taken out while it is extended, so two threads
        never extend one; a context that does not continue it (other events, an output changed) starts
        over, so the index is always what one built from scratch gives."""
        events = context.events
        kept = self._indexes.take(events)
        if kept is None or not kept.continues(events):
            kept = _KeptIndex()
        kept.extend(events)
        self._indexes.keep(events, kept)
        return kept.index

    # ---- saved and loaded: one JSON file, no logs needed ----------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        if self.value_maps is None:
            raise ValueError("PatternPoolPredictor: fit it before saving it")
        return {"text_cue": self.text_cue, "cue_weight": self.cue_weight, "ngram": self.ngram.to_dict(),
                "signatures": self.signatures.to_dict(), "toolsets": self.toolsets.to_dict(),
                "value_maps": self.value_maps.to_dict()}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> PatternPoolPredictor:
        text_cue, wt = get(obj(d, where), "text_cue", where)
        if not isinstance(text_cue, bool):
            raise ValueError(f"{wt}: expected true or false, got {text_cue!r:.60}")
        model = cls(text_cue)
        model.cue_weight = number(*get(d, "cue_weight", where))
        model.ngram = InterpolatedNGram.from_dict(*get(d, "ngram", where), levels=LEVELS)
        model.signatures = SignatureModel.from_dict(*get(d, "signatures", where))
        model.toolsets = Toolsets.from_dict(*get(d, "toolsets", where))
        model.value_maps = ValueMaps.from_dict(*get(d, "value_maps", where))
        return model

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted pool as JSON: to `path/pattern_pool.json.gz` when `path` is a (model)
        directory, else to `path` itself (a .json or .json.gz name). Returns the file written."""
        return write_state(state_file(path, FILE), FORMAT, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> PatternPoolPredictor:
        """The pool `save` wrote (a model directory or the file); ValueError naming the file and field."""
        file = state_file(path, FILE)
        return cls.from_dict(read_state(file, FORMAT), str(file))
