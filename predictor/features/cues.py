"""Per-tool cues the tool head gets as features: tool-transition statistics and the user naming a tool.

- Transitions: how often each next tool (or `<respond>`) followed the agent's last tool (bigram) and its
  last two tools (trigram), keyed also by what the LLM reacts to (a user message or a tool result). The
  pattern pool and the Markov baseline are built on exactly these counts; as features, the model learns
  how far to trust them beside the text. While training, a trace's own task group is subtracted from the
  counts (cross-fitting): otherwise the many runs of one task would make the feature look better than it
  is on a new task, and the model would over-trust it.
- Text cues: how many words of a tool's name the latest user message (and the agent's latest text)
  contains: "move 'a.txt' to temp" names `mv` no, but "post a tweet" names `post_tweet`. Works for tools
  never seen in training.

Pure Python (the embedded predictor uses it); the counts live in `vocab.json`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

from toolcast.data.schema import RESPOND, Context, Message, ToolCall
from toolcast.predictor.features.text import split_identifier

START = "<start>"
P_EDGES: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8)
N_P_BUCKETS = len(P_EDGES) + 3
"""0: no statistics for the key; 1: never followed; 2+: probability buckets."""
N_OVERLAP = 4
N_DESC_OVERLAP = 6
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    {
        "get",
        "set",
        "the",
        "and",
        "for",
        "with",
        "from",
        "into",
        "all",
        "info",
        "details",
        "data",
        "api",
        "tool",
        "by",
        "to",
        "of",
        "a",
        "an",
        "in",
        "on",
        "is",
        "id",
    }
)

Counts = Mapping[str, Mapping[str, int]]
"""Transition key -> next symbol (tool name or `<respond>`) -> count."""


def reacting_to(context: Context) -> str:
    """What the LLM is answering: "user" (a user message), "tool" (a result) or "other"."""
    for e in reversed(context.events):
        if isinstance(e, ToolCall):
            return "tool"
        if isinstance(e, Message) and e.role in ("user", "system"):
            return "user"
        if isinstance(e, Message) and e.role == "assistant" and e.text:
            return "other"
    return "user"


def transition_keys(context: Context) -> tuple[str, str]:
    """(bigram key, trigram key) of a context: its last one / two tools and what it reacts to."""
    tools = [e.tool for e in context.events if isinstance(e, ToolCall)][-2:]
    tools = [START] * (2 - len(tools)) + tools
    r = reacting_to(context)
    return f"{tools[1]}|{r}", f"{tools[0]}>{tools[1]}|{r}"


def label_symbol(calls: Iterable[ToolCall]) -> str:
    first = next(iter(calls), None)
    return RESPOND if first is None else first.tool


def add_counts(counts: dict[str, Counter], context: Context, symbol: str) -> None:
    for key in transition_keys(context):
        counts.setdefault(key, Counter())[symbol] += 1


def probabilities(counts: Counts, key: str, minus: Counts | None = None) -> dict[str, float] | None:
    """p(next | key), with `minus` (a task group's own counts) taken out; None when no statistics."""
    row = dict(counts.get(key, {}))
    if minus and key in minus:
        for sym, n in minus[key].items():
            left = row.get(sym, 0) - n
            if left > 0:
                row[sym] = left
            else:
                row.pop(sym, None)
    total = sum(row.values())
    if total <= 0:
        return None
    return {sym: n / total for sym, n in row.items()}


def p_bucket(probs: dict[str, float] | None, symbol: str) -> int:
    if probs is None:
        return 0
    p = probs.get(symbol, 0.0)
    if p <= 0:
        return 1
    return 2 + sum(p > e for e in P_EDGES)


def _norm(w: str) -> str:
    return w[:-1] if len(w) > 3 and w.endswith("s") else w


def words(text: str) -> frozenset[str]:
    return frozenset(_norm(w) for w in _WORD.findall(text.lower()))


def latest_texts(context: Context) -> tuple[frozenset[str], frozenset[str]]:
    """Words of the latest user message and of the agent's latest non-empty text."""
    user = assistant = None
    for e in reversed(context.events):
        if isinstance(e, Message) and e.text:
            if user is None and e.role == "user":
                user = words(e.text)
            elif assistant is None and e.role == "assistant":
                assistant = words(e.text)
            if user is not None and assistant is not None:
                break
    return user or frozenset(), assistant or frozenset()


def name_words(name: str) -> frozenset[str]:
    """The informative words of a tool name (`get_flight_status` -> flight, status)."""
    return frozenset(_norm(w) for w in split_identifier(name).split() if w not in _STOP and len(w) >= 2)


def overlap(name: frozenset[str], text: frozenset[str]) -> int:
    return min(N_OVERLAP - 1, len(name & text))


_COMMON = frozenset(
    {
        "this",
        "that",
        "with",
        "from",
        "have",
        "will",
        "your",
        "which",
        "when",
        "then",
        "they",
        "them",
        "there",
        "their",
        "would",
        "could",
        "should",
        "about",
        "into",
        "only",
        "also",
        "each",
        "some",
        "more",
        "most",
        "other",
        "than",
        "what",
        "were",
        "been",
        "being",
        "does",
        "given",
        "using",
        "used",
        "based",
        "returns",
        "return",
        "specified",
        "provided",
    }
)


def description_words(text: str) -> frozenset[str]:
    """The content words (4+ letters, not common) of a tool's description."""
    return frozenset(w for w in words(text[:600]) if len(w) >= 4 and w not in _COMMON and not w.isdigit())


def desc_overlap(desc: frozenset[str], text: frozenset[str]) -> int:
    return min(N_DESC_OVERLAP - 1, len(desc & text))
