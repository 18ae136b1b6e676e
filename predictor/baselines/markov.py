"""The Markov baseline: previous tool -> next tool (with `<start>`), and each slot's most frequent values.

What today's open-source speculators run (toolahead, ggcode). A standard bigram, smoothed (Witten-Bell
toward the unigram) and restricted to the tools the agent has, so it is a fair one. `state="call+reacting"`
also keys on what the LLM is reacting to (a user message or a tool result), backing off to the bigram: on
runs of a harness it never saw that adds about +0.08 tool top-1 on ../shared/data, but on the bundled
sample (a few hundred traces) it loses 0.13 tool top-1 and doubles the ECE, so the classic table stays
the default (BENCHMARKS.md, "Generalization").
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from toolcast.data.schema import Context, Trace, canonical_args
from toolcast.predictor.baselines.calls import (
    SignatureModel,
    SlotOptions,
    decision_contexts,
    rank_calls,
    spec_of,
    tool_calls,
)
from toolcast.predictor.baselines.io import (
    at,
    count,
    get,
    obj,
    read_state,
    seq,
    state_file,
    text,
    write_state,
)
from toolcast.predictor.baselines.ngram import (
    START,
    Example,
    InterpolatedNGram,
    Toolsets,
    action_history,
    choose_smoothing,
    fit_ngram,
    label_symbols,
    last_call_tool,
)
from toolcast.predictor.features.cues import reacting_to
from toolcast.predictor.protocol import CallPrediction

log = logging.getLogger(__name__)
FILE = "markov.json.gz"
"""The fitted table's file in a model directory (`save`, `load`)."""
FORMAT = "toolcast.markov"
STATES = ("call", "action", "call+reacting")


@dataclass
class SlotFrequencies:
    """(tool, slot) -> value id -> (value, count): a slot's most frequent values, as speculators keep."""

    table: dict[tuple[str, str], dict[str, list]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, tool: str, args: dict[str, Any]) -> None:
        for slot, value in args.items():
            entry = self.table[(tool, slot)].setdefault(canonical_args(value), [value, 0])
            entry[1] += 1

    def options(self, tool: str, slot: str, n: int = 3) -> SlotOptions:
        values = self.table.get((tool, slot))
        if not values:
            return []
        total = sum(c for _, c in values.values())
        top = sorted(values.values(), key=lambda vc: (-vc[1], canonical_args(vc[0])))[:n]
        return [(v, c / total, "frequent") for v, c in top]

    def to_dict(self) -> list[list[Any]]:
        """[[tool, slot, [[value, count], ...]], ...]."""
        return [[tool, slot, [list(vc) for vc in values.values()]]
                for (tool, slot), values in self.table.items()]

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SlotFrequencies:
        out = cls()
        for i, item in enumerate(seq(d, where)):
            w = at(where, i)
            tool, slot, entries = seq(item, w, 3)
            values = out.table[(text(tool, at(w, 0)), text(slot, at(w, 1)))]
            for j, entry in enumerate(seq(entries, at(w, 2))):
                value, n = seq(entry, at(at(w, 2), j), 2)
                values[canonical_args(value)] = [value, count(n, at(at(at(w, 2), j), 1))]
        return out


class MarkovPredictor:
    """Previous tool -> next tool bigram with `<start>`; arguments = each slot's most frequent values.

    `state="call"` (the classic table, default) keys on the last tool called; `state="action"` on the
    agent's last action, `<respond>` included; `state="call+reacting"` on the agent's last action and
    what the LLM reacts to (`cues.reacting_to`: a user message, a tool result), backing off to the last
    action alone, then the unigram.
    """

    name = "markov"

    def __init__(self, state: Literal["call", "action", "call+reacting"] = "call"):
        self.state = state
        self.ngram = InterpolatedNGram(levels=3 if state == "call+reacting" else 2)
        self.signatures = SignatureModel()
        self.values = SlotFrequencies()
        self.toolsets = Toolsets()

    def _prev(self, context: Context) -> str:
        if self.state == "call":
            return last_call_tool(context)
        history = action_history(context)
        return history[-1] if history else START

    def _chain(self, context: Context) -> tuple:
        prev = self._prev(context)
        if self.state == "call+reacting":
            return ((), (prev,), (prev, reacting_to(context)))
        return ((), (prev,))

    def fit(self, traces: Iterable[Trace]) -> MarkovPredictor:
        """Count transitions, signatures and slot values; choose the smoothing on held-out groups."""
        traces = list(traces)
        for trace in traces:
            self.toolsets.add(trace)
            for call in trace.calls:
                self.signatures.add(call.tool, call.args)
                self.values.add(call.tool, call.args)
        examples = [Example(self._chain(ctx), label_symbols(calls), self.toolsets.allowed(ctx), set(),
                            t.group) for t in traces for ctx, calls in decision_contexts(t)]
        levels = len(self._chain(Context(events=[], tools=[])))
        beta, _ = choose_smoothing(examples, levels=levels)
        self.ngram = fit_ngram(examples, levels=levels, beta=beta)
        log.info("markov: %d transitions counted, beta %.1f", len(examples), beta)
        return self

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        probs = self.ngram.distribution(self._chain(context), self.toolsets.allowed(context))

        def make(tool: str, p: float) -> list[CallPrediction]:
            return tool_calls(tool, p, self.signatures.top(tool, spec_of(context, tool)),
                              lambda slot: self.values.options(tool, slot))

        return rank_calls(probs, make, k)

    # ---- saved and loaded: one JSON file, no logs needed ----------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"state": self.state, "ngram": self.ngram.to_dict(), "signatures": self.signatures.to_dict(),
                "values": self.values.to_dict(), "toolsets": self.toolsets.to_dict()}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> MarkovPredictor:
        state, ws = get(obj(d, where), "state", where)
        if state not in STATES:
            raise ValueError(f"{ws}: expected one of {', '.join(STATES)}, got {state!r:.60}")
        model = cls(state)
        model.ngram = InterpolatedNGram.from_dict(*get(d, "ngram", where), levels=len(model.ngram.counts))
        model.signatures = SignatureModel.from_dict(*get(d, "signatures", where))
        model.values = SlotFrequencies.from_dict(*get(d, "values", where))
        model.toolsets = Toolsets.from_dict(*get(d, "toolsets", where))
        return model

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted table as JSON: to `path/markov.json.gz` when `path` is a (model) directory,
        else to `path` itself (a .json or .json.gz name). Returns the file written."""
        return write_state(state_file(path, FILE), FORMAT, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> MarkovPredictor:
        """The table `save` wrote (a model directory or the file); ValueError naming the file and field."""
        file = state_file(path, FILE)
        return cls.from_dict(read_state(file, FORMAT), str(file))
