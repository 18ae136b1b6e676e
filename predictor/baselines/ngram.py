"""Next-tool n-grams for the baselines: context symbols, candidate sets, interpolated smoothing.

Both baselines predict the next tool (or `<respond>`) from a few symbols of the context. The smoothing
is Witten-Bell interpolation (Chen & Goodman 1998, "An empirical study of smoothing techniques"): from
the most general context to the most specific, p(w | h) = (c(h, w) + β·T(h)·p(w | h')) / (c(h) + β·T(h)),
T(h) = distinct symbols seen after h. It needs no tuning data and gives every candidate a non-zero,
normalised probability, so a tool never seen after a context still gets a share.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import RESPOND, Context, Message, ToolCall, Trace, decision_positions
from toolcast.predictor.baselines.io import at, count, get, number, obj, seq, texts, tuple_key
from toolcast.predictor.features.catalog import toolset_key

START = "<start>"


# ---- context symbols ---------------------------------------------------------------------------------


def action_history(context: Context) -> list[str]:
    """The agent's earlier actions, oldest first: each earlier decision's tools in call order, or
    `<respond>` where it answered in text."""
    out: list[str] = []
    n = len(context.events)
    for i, calls in decision_positions(context.events):
        if i >= n:
            break
        if calls:
            out.extend(c.tool for c in calls)
        else:
            out.append(RESPOND)
    return out


def last_call_tool(context: Context) -> str:
    """The previous tool called, `<start>` before the first: the classic Markov state."""
    for e in reversed(context.events):
        if isinstance(e, ToolCall):
            return e.tool
    return START


def last_event_kind(context: Context) -> str:
    """What the LLM is reacting to: a user message, a tool result, a failed tool call, ... ."""
    if not context.events:
        return START
    e = context.events[-1]
    if isinstance(e, ToolCall):
        return "tool_error" if e.error else "tool"
    assert isinstance(e, Message)
    return e.role


@dataclass
class Toolsets:
    """The tools a context may call: the trace's tool list when it has one, else the tools seen in
    training for the same set-up, else every tool seen in training. `<respond>` always."""

    by_setup: dict[str, set[str]] = field(default_factory=dict)
    vocabulary: set[str] = field(default_factory=set)
    """The tools the training traces called (what the counts know)."""
    listed: set[str] | None = field(default_factory=set)
    """The tools the training traces listed or called: a listed tool never called is known too (as one
    the agents had and did not use). None when loaded from a file saved before it was kept."""

    def add(self, trace: Trace) -> None:
        tools = {c.tool for c in trace.calls}
        key = toolset_key({"source": trace.source, **trace.metadata})
        self.by_setup.setdefault(key, set()).update(tools)
        self.vocabulary.update(tools)
        if self.listed is not None:
            self.listed.update(tools, (s.name for s in trace.tools))

    @property
    def seen(self) -> set[str]:
        """Every tool the training traces listed or called (`vocabulary` for files saved before)."""
        return self.vocabulary if self.listed is None else self.listed | self.vocabulary

    def allowed(self, context: Context) -> list[str]:
        if context.tools:
            names = {t.name for t in context.tools}
        else:
            names = set(self.by_setup.get(toolset_key(context.metadata), ()) or self.vocabulary)
        names.update(c.tool for c in context.calls)
        names.add(RESPOND)
        return sorted(names)

    def to_dict(self) -> dict[str, Any]:
        out = {"by_setup": {k: sorted(v) for k, v in self.by_setup.items()},
               "vocabulary": sorted(self.vocabulary)}
        if self.listed is not None:
            out["listed"] = sorted(self.listed)
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Toolsets:
        by_setup, w = get(obj(d, where), "by_setup", where)
        vocabulary, wv = get(d, "vocabulary", where)
        listed = None
        if "listed" in d:  # kept since 2026-12-07; a file saved before has none
            listed = set(texts(*get(d, "listed", where)))
        return cls({k: set(texts(v, at(w, k))) for k, v in obj(by_setup, w).items()},
                   set(texts(vocabulary, wv)), listed)


# ---- the n-gram -----------------------------------------------------------------------------------


class InterpolatedNGram:
    """p(next | chain of contexts), Witten-Bell interpolated from the most general level to the most
    specific. A chain is a sequence of hashable contexts, one per level, general first; level 0 is
    usually `()` (the unigram)."""

    def __init__(self, levels: int, beta: float = 1.0):
        self.beta = beta
        self.counts: list[dict[Hashable, Counter]] = [{} for _ in range(levels)]
        self._totals: list[dict[Hashable, tuple[int, int]]] = [{} for _ in range(levels)]

    def add(self, chain: Sequence[Hashable], symbol: str) -> None:
        if len(chain) != len(self.counts):
            raise ValueError(f"expected {len(self.counts)} context levels, got {len(chain)}")
        for level, ctx in enumerate(chain):
            self.counts[level].setdefault(ctx, Counter())[symbol] += 1
            self._totals[level].pop(ctx, None)

    def _total(self, level: int, ctx: Hashable) -> tuple[Counter | None, int, int]:
        c = self.counts[level].get(ctx)
        if c is None:
            return None, 0, 0
        t = self._totals[level].get(ctx)
        if t is None:
            t = self._totals[level][ctx] = (sum(c.values()), len(c))
        return c, t[0], t[1]

    def distribution(self, chain: Sequence[Hashable], allowed: Iterable[str]) -> dict[str, float]:
        """A normalised distribution over `allowed` (mass of symbols not allowed is dropped)."""
        names = list(allowed)
        if not names:
            return {}
        p = dict.fromkeys(names, 1.0 / len(names))
        for level, ctx in enumerate(chain):
            c, total, types = self._total(level, ctx)
            if c is None:
                continue
            w = self.beta * types
            p = {s: (c.get(s, 0) + w * p[s]) / (total + w) for s in names}
        z = sum(p.values())
        return {s: v / z for s, v in p.items()}

    def to_dict(self) -> dict[str, Any]:
        """Per level, [context as a list, {symbol: count}] pairs (the totals are recomputed)."""
        return {"beta": self.beta,
                "counts": [[[list(ctx), dict(c)] for ctx, c in level.items()] for level in self.counts]}

    @classmethod
    def from_dict(cls, d: Any, where: str, levels: int | None = None) -> InterpolatedNGram:
        beta, wb = get(obj(d, where), "beta", where)
        levels_in, wc = get(d, "counts", where)
        seq(levels_in, wc, levels)
        model = cls(len(levels_in), number(beta, wb))
        for lv, level in enumerate(levels_in):
            for i, pair in enumerate(seq(level, at(wc, lv))):
                wp = at(at(wc, lv), i)
                ctx, symbols = seq(pair, wp, 2)
                ws = at(wp, 1)
                model.counts[lv][tuple_key(ctx, at(wp, 0))] = Counter(
                    {s: count(n, at(ws, s)) for s, n in obj(symbols, ws).items()})
        return model


def label_symbols(calls: list[ToolCall]) -> list[str]:
    """What a decision point's label counts as: each distinct tool of the turn, or `<respond>`."""
    return list(dict.fromkeys(c.tool for c in calls)) or [RESPOND]


# ---- the user's words naming a tool ---------------------------------------------------------------------

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORDS = re.compile(r"[a-z]+")
_STOP = frozenset({"get", "set", "the", "and", "for", "by", "id", "ids", "info", "details", "list", "to",
                   "of"})


def name_stems(tool: str) -> frozenset[str]:
    """Stems (first 5 letters) of a tool name's words: `cancel_reservation` -> {cance, reser}."""
    words = _CAMEL.sub(r"\1 \2", tool).replace("_", " ").replace("-", " ").lower().split()
    return frozenset(w[:5] for w in words if len(w) >= 3 and w not in _STOP)


def latest_user_text(context: Context) -> str:
    for e in reversed(context.events):
        if isinstance(e, Message) and e.role == "user":
            return e.text
    return ""


def cued_tools(context: Context, allowed: Iterable[str]) -> set[str]:
    """The tools whose name words the user's latest message uses ("please *sort* the file" -> sort):
    the cheapest text signal there is, and a strong one when tool names are verbs."""
    words = {w[:5] for w in _WORDS.findall(latest_user_text(context).lower()) if len(w) >= 3}
    return {t for t in allowed if t != RESPOND and name_stems(t) & words}


# ---- choosing the smoothing on held-out task groups ---------------------------------------------------


@dataclass
class Example:
    """One training decision point, as the n-gram sees it."""

    chain: tuple[Hashable, ...]
    symbols: list[str]
    """The label: the turn's distinct tools, or [`<respond>`]."""
    allowed: list[str]
    cued: set[str]
    group: str


def fit_ngram(examples: Iterable[Example], levels: int, beta: float) -> InterpolatedNGram:
    model = InterpolatedNGram(levels, beta)
    for ex in examples:
        for s in ex.symbols:
            model.add(ex.chain, s)
    return model


def boosted(p: dict[str, float], cued: set[str], weight: float) -> dict[str, float]:
    """p(t) x exp(weight) for the cued tools, renormalised (a one-feature log-linear model)."""
    if not weight or not cued:
        return p
    f = math.exp(weight)
    q = {s: v * f if s in cued else v for s, v in p.items()}
    z = sum(q.values())
    return {s: v / z for s, v in q.items()}


def choose_smoothing(examples: list[Example], levels: int, betas: Sequence[float] = (1.0, 2.0, 4.0, 8.0),
                     weights: Sequence[float] = (0.0,), folds: int = 3) -> tuple[float, float]:
    """(beta, cue weight) with the best held-out log-likelihood, folds by task group: counts seen in
    training would make every setting look sure of itself."""
    if len({ex.group for ex in examples}) < folds:
        return betas[0], weights[0]
    fold = [int(hashlib.sha256(ex.group.encode()).hexdigest()[:8], 16) % folds for ex in examples]
    ll: dict[tuple[float, float], float] = dict.fromkeys(((b, w) for b in betas for w in weights), 0.0)
    for k in range(folds):
        for beta in betas:
            model = fit_ngram((ex for ex, f in zip(examples, fold, strict=True) if f != k), levels, beta)
            for ex, f in zip(examples, fold, strict=True):
                if f != k:
                    continue
                p = model.distribution(ex.chain, ex.allowed)
                for w in weights:
                    q = boosted(p, ex.cued, w)
                    ll[(beta, w)] += math.log(max(1e-12, q.get(ex.symbols[0], 0.0)))
    return max(ll, key=lambda bw: (ll[bw], -bw[0], -bw[1]))
