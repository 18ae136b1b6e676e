"""The baselines a learned predictor must beat, and the call-building they share.

- `MarkovPredictor`: previous tool -> next tool (with `<start>`), and each slot's most frequent values;
  what today's open-source speculators run (toolahead, ggcode). A standard bigram, smoothed
  (Witten-Bell toward the unigram) and restricted to the tools the agent has, so it is a fair one.
- `PatternPoolPredictor` (in `pattern_pool.py`): PASTE's pattern pool.

`fit_baseline(name, traces)` is the one entry point (the eval and simulate commands use it). Both give
honest probabilities: p(tool) is a normalised distribution that includes `<respond>`, and
p(call) = p(tool) x p(argument-key signature | tool) x the product of the slot values' probabilities.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from toolcast.data.decisions import decision_positions
from toolcast.data.schema import RESPOND, Context, ToolSpec, Trace, canonical_args
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
from toolcast.predictor.protocol import CallPrediction, Predictor

log = logging.getLogger(__name__)

BaselineName = Literal["markov", "pattern"]
BASELINES: tuple[str, ...] = ("markov", "pattern")
UNKNOWN_SLOTS = "*"
"""The `free` entry of a call whose tool has no known argument names at all."""
FREE = object()

SlotOptions = list[tuple[Any, float, str]]
"""(value, probability, source) for one slot, best first; the rest of the mass is `<free>`."""


# ---- argument-key signatures ---------------------------------------------------------------------------


@dataclass
class SignatureModel:
    """p(which argument keys a call of the tool passes): optional slots decide whether a call matches."""

    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, tool: str, args: dict[str, Any]) -> None:
        self.counts[tool][tuple(sorted(args))] += 1

    def top(self, tool: str, spec: ToolSpec | None, n: int = 3,
            min_p: float = 0.05) -> list[tuple[tuple, float]]:
        """The likeliest signatures; for a tool never seen, its schema's required slots (p = 1)."""
        c = self.counts.get(tool)
        if not c:
            if spec is not None and isinstance(spec.parameters, dict) and "properties" in spec.parameters:
                required = spec.parameters.get("required") or []
                return [(tuple(sorted(r for r in required if isinstance(r, str))), 1.0)]
            return [((UNKNOWN_SLOTS,), 1.0)]
        total = sum(c.values())
        out = [(sig, k / total) for sig, k in c.most_common(n)]
        return [s for s in out if s[1] >= min_p] or out[:1]


# ---- from tool and slot distributions to ranked calls ---------------------------------------------------


def _k_best(options: list[list[tuple[Any, float, str]]], k: int) -> list[tuple[float, tuple[int, ...]]]:
    """The k index vectors with the largest product of option probabilities (lazy heap enumeration)."""
    if not options:
        return [(1.0, ())]
    if any(not o for o in options):
        return []

    def score(ix: tuple[int, ...]) -> float:
        s = 1.0
        for o, i in zip(options, ix, strict=True):
            s *= o[i][1]
        return s

    start = (0,) * len(options)
    heap = [(-score(start), start)]
    seen = {start}
    out = []
    while heap and len(out) < k:
        neg, ix = heapq.heappop(heap)
        out.append((-neg, ix))
        for d in range(len(ix)):
            if ix[d] + 1 < len(options[d]):
                nxt = ix[:d] + (ix[d] + 1,) + ix[d + 1:]
                if nxt not in seen:
                    seen.add(nxt)
                    heapq.heappush(heap, (-score(nxt), nxt))
    return out


def tool_calls(tool: str, p_tool: float, signatures: Sequence[tuple[tuple, float]],
               slot_options: Callable[[str], SlotOptions], per_tool: int = 3,
               values_per_slot: int = 3) -> list[CallPrediction]:
    """The best `per_tool` calls of one tool. A slot offers its top values plus `<free>` (the rest of
    its mass); a call with a free slot is still listed (it names the tool) but has p_call = 0."""
    scored: list[tuple[float, CallPrediction]] = []
    for sig, p_sig in signatures:
        slots = [s for s in sig if s != UNKNOWN_SLOTS]
        opts: list[list[tuple[Any, float, str]]] = []
        for slot in slots:
            vals = slot_options(slot)[:values_per_slot]
            p_free = max(0.0, 1.0 - sum(p for _, p, _ in vals))
            o = [*vals, (FREE, p_free, "")] if p_free > 1e-9 else list(vals)
            opts.append(sorted(o, key=lambda x: -x[1]))
        for s, ix in _k_best(opts, per_tool):
            args, free, sources = {}, [], {}
            for slot, o, i in zip(slots, opts, ix, strict=True):
                value, _, src = o[i]
                if value is FREE:
                    free.append(slot)
                else:
                    args[slot], sources[slot] = value, src
            if UNKNOWN_SLOTS in sig:
                free.append(UNKNOWN_SLOTS)
            p_call = 0.0 if free else p_tool * p_sig * s
            scored.append((p_tool * p_sig * s, CallPrediction(tool, args, free, p_tool, p_call, sources)))
    scored.sort(key=lambda x: -x[0])
    return [c for _, c in scored[:per_tool]]


def rank_calls(tool_probs: dict[str, float], make_calls: Callable[[str, float], list[CallPrediction]],
               k: int, max_tools: int = 8, min_p: float = 1e-6) -> list[CallPrediction]:
    """Calls of the likeliest tools, best first by p_call, then p_tool; `<respond>` is a candidate."""
    tools = sorted(tool_probs.items(), key=lambda x: (-x[1], x[0]))[:max_tools]
    out: list[CallPrediction] = []
    for tool, p in tools:
        if p < min_p and out:
            break
        if tool == RESPOND:
            out.append(CallPrediction(RESPOND, {}, [], p, p, {}))
        else:
            out.extend(make_calls(tool, p))
    out.sort(key=lambda c: (-c.p_call, -c.p_tool, c.tool, canonical_args(c.args)))
    return out[:k]


def spec_of(context: Context, tool: str) -> ToolSpec | None:
    return next((t for t in context.tools if t.name == tool), None)


# ---- Markov ----------------------------------------------------------------------------------------------


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


class MarkovPredictor:
    """Previous tool -> next tool bigram with `<start>`; arguments = each slot's most frequent values.

    `state="call"` (the classic table) keys on the last tool called; `state="action"` on the agent's
    last action, `<respond>` included.
    """

    name = "markov"

    def __init__(self, state: Literal["call", "action"] = "call"):
        self.state = state
        self.ngram = InterpolatedNGram(levels=2)
        self.signatures = SignatureModel()
        self.values = SlotFrequencies()
        self.toolsets = Toolsets()

    def _prev(self, context: Context) -> str:
        if self.state == "call":
            return last_call_tool(context)
        history = action_history(context)
        return history[-1] if history else START

    def _chain(self, context: Context) -> tuple:
        return ((), (self._prev(context),))

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
        beta, _ = choose_smoothing(examples, levels=2)
        self.ngram = fit_ngram(examples, levels=2, beta=beta)
        log.info("markov: %d transitions counted, beta %.1f", len(examples), beta)
        return self

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        probs = self.ngram.distribution(self._chain(context), self.toolsets.allowed(context))

        def make(tool: str, p: float) -> list[CallPrediction]:
            return tool_calls(tool, p, self.signatures.top(tool, spec_of(context, tool)),
                              lambda slot: self.values.options(tool, slot))

        return rank_calls(probs, make, k)


def decision_contexts(trace: Trace) -> Iterable[tuple[Context, list]]:
    """(context, the calls of the label) at each decision point of a trace: what the baselines fit on."""
    for i, calls in decision_positions(trace.events):
        yield Context(events=trace.events[:i], tools=trace.tools,
                      metadata={"source": trace.source, **trace.metadata}), calls


def fit_baseline(name: BaselineName, traces: Iterable[Trace], progress: bool = False) -> Predictor:
    """Fit the named baseline ("markov" or "pattern") on training traces."""
    traces = list(traces)
    if name == "markov":
        return MarkovPredictor().fit(traces)
    if name == "pattern":
        from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor

        return PatternPoolPredictor().fit(traces, progress=progress)
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
