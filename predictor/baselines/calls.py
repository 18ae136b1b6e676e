"""What the baselines share: argument-key signatures, and from tool and slot distributions to ranked calls.

Both baselines give honest probabilities: p(tool) is a normalised distribution that includes `<respond>`,
and p(call) = p(tool) x p(argument-key signature | tool) x the product of the slot values' probabilities.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import RESPOND, Context, ToolSpec, Trace, canonical_args, decision_positions
from toolcast.predictor.baselines.io import at, count, obj, seq, tuple_key
from toolcast.predictor.protocol import CallPrediction

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

    def to_dict(self) -> dict[str, Any]:
        """tool -> [[argument keys], count] in the order first seen (it breaks ties in `top`)."""
        return {tool: [[list(sig), k] for sig, k in c.items()] for tool, c in self.counts.items()}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> SignatureModel:
        model = cls()
        for tool, sigs in obj(d, where).items():
            wt = at(where, tool)
            for i, pair in enumerate(seq(sigs, wt)):
                sig, k = seq(pair, at(wt, i), 2)
                model.counts[tool][tuple_key(sig, at(at(wt, i), 0))] = count(k, at(at(wt, i), 1))
        return model


# ---- from tool and slot distributions to ranked calls ---------------------------------------------------


def k_best(options: list[list[tuple[Any, float, str]]], k: int) -> list[tuple[float, tuple[int, ...]]]:
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
        for s, ix in k_best(opts, per_tool):
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


def decision_contexts(trace: Trace) -> Iterable[tuple[Context, list]]:
    """(context, the calls of the label) at each decision point of a trace: what the baselines fit on."""
    for i, calls in decision_positions(trace.events):
        yield Context(events=trace.events[:i], tools=trace.tools,
                      metadata={"source": trace.source, **trace.metadata}), calls
