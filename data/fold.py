"""Fold request logs into conversations: drop each trace that is a prefix of a longer one in its file.

An LLM proxy or SDK hook (LiteLLM, Langfuse, provider request logging) writes one record per LLM call,
each holding the whole conversation so far, often with the response appended. Every importer turns a
record into a trace, so a conversation of N calls arrives as N traces, each a prefix of the next. Left
alone, that counts each early step up to N times in training and eval, and, each record getting its own
`group`, puts prefixes of one conversation on both sides of the task-grouped split (test leakage).

The rule, applied within one source file (one log file holds one logger's records; never across files):
- Two traces are compared on their events' *content*: a message's role and text; a call's tool name,
  canonical arguments and whether it opens a new turn; a result's output and error flag. Call ids,
  timestamps, token counts, turn numbers, `extra` and metadata are left out: loggers fill them
  differently per request (the response's assistant message has usage tokens, its copy in the next
  request's input has none). Tool sets must have the same names.
- A call's result is its own item, placed after all calls of its turn. Record k ends with the calls of
  its response, no results yet; record k+1 holds the same calls and then their results, so record k is
  a prefix of record k+1 (parallel calls too).
- A trace whose content equals a prefix of a longer trace is dropped; the longest keeps its own ids.
  So is a trace identical to an earlier one, but only in a file where some trace is a strict prefix of
  another (evidently a request log): elsewhere two equal traces may be two runs that agree.
- Never folded: two traces that both time an event of the shared prefix, at different times. They are
  separate runs that happen to agree (repeated trials of a deterministic agent: 17 tau2 "no-user"
  simulations of ../shared/data); a request's input carries no times.
- A conversation whose system prompt changed between calls does not fold: its records differ from
  their first event.
- Branching (retries, regenerations: two records share a prefix, then diverge) drops nothing. Two kept
  traces are one conversation, and get one `group` (the earliest's, so the split keeps them on one
  side), when (1) a dropped record is a prefix of both, (2) they part where the LLM spoke (an assistant
  message or a call: a regenerated answer; where the user or a tool said different things, they are two
  conversations), and (3) they share at least half of the shorter one (else what they share is an
  opening many conversations have: a system prompt, a scripted greeting, a first "Hi"). Measured on
  ../shared/data's tau2 runs written as request logs (33 files, 1,037 runs, 13,987 records): grouping on
  any shared record merged 5 of 5 unrelated airline runs (their system prompt + greeting); (1)+(3) merged
  14 groups of different tasks, (1)+(2) 19, all three 7 (telecom tasks whose runs agree on most of the
  shorter one, then the LLM chose differently: without ids, that is what a regeneration looks like).
  Grouping on the first user message and system text would merge 146 task groups into 25.

Linear in the size of the file's traces: each event's content is hashed once, prefix hashes roll, and
a dict maps each prefix hash to the longest trace holding it. The decisions need only each trace's
`Fingerprint` (hashes, times, id, group: ~100 bytes per event, whatever its text: measured 500 bytes
per record of a request log of 4.7 events per record), not the trace:
`toolcast.data.load` folds a large file in two passes, fingerprints first, then the kept traces read
again, so its memory is the file's fingerprints, never its traces (`fold_plan`).
"""

from __future__ import annotations

import hashlib
import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from toolcast.data.schema import Message, ToolCall, Trace, canonical_args

_DIGEST = 16  # bytes of blake2b: collisions are out of reach at any log size


@dataclass
class FoldResult:
    """What folding one file's traces gave: the kept traces (in file order) and what was merged."""

    traces: list[Trace]
    folded: int = 0
    """Traces dropped because a longer (or an earlier identical) trace holds all of their content."""
    conversations: int = 0
    """Kept traces that absorbed at least one dropped trace."""
    regrouped: list[str] = field(default_factory=list)
    """trace_ids of kept traces whose `group` changed to their branch-mates' (branching conversations)."""


def content_items(trace: Trace) -> Iterator[bytes]:
    """The trace's content as a sequence of items, each a digest; see the module docstring."""
    for _, digest in _items(trace):
        yield digest


def _items(trace: Trace) -> Iterator[tuple[bool, bytes]]:
    """(written by the LLM?, digest) of each content item: assistant messages and calls are the LLM's."""
    for by_llm, digest, _ in _sized_items(trace):
        yield by_llm, digest


def _sized_items(trace: Trace) -> Iterator[tuple[bool, bytes, int]]:
    """`_items`, each with the length of the text it hashed."""
    pending: list[ToolCall] = []  # calls of the current turn, whose results follow them all
    prev_turn: int | None = None

    def flush() -> Iterator[tuple[bool, bytes, int]]:
        for call in pending:
            if call.output is not None or call.error:
                yield False, *_sized_digest(("result", call.output, call.error))
        pending.clear()

    for event in trace.events:
        if isinstance(event, ToolCall):
            new_turn = not pending or event.turn != prev_turn
            if new_turn:
                yield from flush()
            prev_turn = event.turn
            pending.append(event)
            yield True, *_sized_digest(("call", event.tool, canonical_args(event.args), new_turn))
        else:
            yield from flush()
            prev_turn = None
            assert isinstance(event, Message)
            yield event.role == "assistant", *_sized_digest(("message", event.role, event.text))
    yield from flush()


def _digest(item: tuple) -> bytes:
    return _sized_digest(item)[0]


def _sized_digest(item: tuple) -> tuple[bytes, int]:
    # repr of a tuple of str / bool / None is unambiguous and ASCII-safe where it matters (it escapes
    # lone surrogates), and twice as fast as json.dumps here, which was most of the fold's time.
    text = repr(item).encode()
    return hashlib.blake2b(text, digest_size=_DIGEST).digest(), len(text)


def prefix_hashes(trace: Trace) -> list[bytes]:
    """Rolling hashes of every prefix of the trace's content: [h(empty), h(item 1), h(items 1-2), ...].

    The tool set's names seed them: traces with other tools never share a prefix.
    """
    return _prefixes(trace)[0]


def _prefixes(trace: Trace) -> tuple[list[bytes], list[bool], int]:
    """`prefix_hashes`, for each item whether the LLM wrote it, and the content's size in characters."""
    h = _digest(("tools", *sorted(t.name for t in trace.tools)))
    hashes, llm, size = [h], [], 0
    for by_llm, item, n in _sized_items(trace):
        h = hashlib.blake2b(h + item, digest_size=_DIGEST).digest()
        hashes.append(h)
        llm.append(by_llm)
        size += n
    return hashes, llm, size


def _common_length(a: Sequence[bytes], b: Sequence[bytes], at_least: int) -> int:
    """How many items two traces share from their start, given their prefix hashes (binary search)."""
    lo, hi = at_least, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[mid - 1] == b[mid - 1]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class PackedHashes(Sequence[bytes]):
    """Prefix hashes packed into one bytes object: `_DIGEST` bytes each, not a Python object each."""

    __slots__ = ("blob",)

    def __init__(self, hashes: Sequence[bytes]):
        self.blob = b"".join(hashes)

    def __len__(self) -> int:
        return len(self.blob) // _DIGEST

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self.blob[i * _DIGEST : (i + 1) * _DIGEST]

    def __iter__(self) -> Iterator[bytes]:
        b = self.blob
        return (b[o : o + _DIGEST] for o in range(0, len(b), _DIGEST))


@dataclass(slots=True)
class Fingerprint:
    """What folding needs of one trace, without the trace itself: its content's prefix hashes, who wrote
    each item, its events' times, its id and group: ~100 bytes per event, whatever the events hold;
    `fold_plan` decides over these, so a file's traces need not all be in memory at once."""

    trace_id: str
    group: str
    keys: PackedHashes
    """Rolling hashes of the content's non-empty prefixes (`prefix_hashes` without the first)."""
    llm: bytes
    """1 where the LLM wrote the item, else 0."""
    times: array
    """t_start, t_end of each event, NaN where the log has none (see `distinct_runs`)."""
    size: int
    """Characters of content hashed: a measure of the trace's size in memory."""


def fingerprint(trace: Trace) -> Fingerprint:
    hashes, llm, size = _prefixes(trace)
    times = array("d", (math.nan if x is None else x for e in trace.events for x in (e.t_start, e.t_end)))
    return Fingerprint(trace.trace_id, trace.group, PackedHashes(hashes[1:]), bytes(llm), times, size)


def distinct_runs(short: Trace, long: Trace) -> bool:
    """True when two traces of equal content up to `short`'s end are separate runs, not one logged twice.

    The sign: an event that both traces timestamp, at different times. A request's input carries no
    times, so a conversation's records never differ there, while repeated trials of a deterministic
    agent (tau2 "no-user" runs: same task, same calls, same texts) do. Events align by index: content
    items follow the events' order, results being extra items (see `content_items`).
    """
    return _distinct_times(fingerprint(short).times, fingerprint(long).times)


def _distinct_times(a: array, b: array) -> bool:
    # NaN (no time) compares unequal to itself: x == x skips it
    return any(x == x and y == y and abs(x - y) > 1e-6 for x, y in zip(a, b, strict=False))


@dataclass
class FoldPlan:
    """What folding decided for a file's traces, by their index in the file."""

    dropped: list[bool]
    groups: dict[int, str]
    """Kept traces whose `group` changes to their branch-mates' (branching conversations)."""
    folded: int = 0
    conversations: int = 0


def fold_traces(traces: Sequence[Trace]) -> FoldResult:
    """Drop each trace that is a prefix of a longer one (or repeats an earlier one); see the module doc.

    Call on the traces of ONE file. Kept traces keep their order and ids; only the `group` of branching
    conversations changes, to the group of the earliest branch.
    """
    plan = fold_plan([fingerprint(t) for t in traces])
    kept = []
    for i, trace in enumerate(traces):
        if not plan.dropped[i]:
            kept.append(trace)
        if i in plan.groups:
            trace.group = plan.groups[i]
    regrouped = [traces[i].trace_id for i in sorted(plan.groups)]
    return FoldResult(kept, plan.folded, plan.conversations, regrouped)


def fold_plan(prints: Sequence[Fingerprint]) -> FoldPlan:
    """`fold_traces`'s decisions from the traces' fingerprints alone (see `Fingerprint`)."""
    if len(prints) < 2:
        return FoldPlan([False] * len(prints), {})
    keys = [p.keys for p in prints]
    llm = [p.llm for p in prints]
    best: dict[bytes, int] = {}  # prefix hash -> the longest trace holding it (the earliest of equals)
    for i, ks in enumerate(keys):
        for k in ks:
            j = best.get(k)
            if j is None or len(keys[j]) < len(ks):
                best[k] = i

    def distinct(a: int, b: int) -> bool:
        return _distinct_times(prints[a].times, prints[b].times)

    into = [best[ks[-1]] if ks and best[ks[-1]] != i and not distinct(i, best[ks[-1]])
            else None for i, ks in enumerate(keys)]
    # An identical pair alone is ambiguous (a request logged twice, or two runs that happened to agree:
    # repeated examples, untimed trials), so identical traces fold only in a file that is evidently a
    # request log: one where some trace is a strict prefix of another.
    request_log = any(j is not None and len(keys[j]) > len(keys[i]) for i, j in enumerate(into))
    dropped = [j is not None and (request_log or len(keys[j]) > len(keys[i])) for i, j in enumerate(into)]
    absorbing = {into[i] for i in range(len(prints)) if dropped[i]}

    # Branches: see the module docstring, (1) to (3); and never separate runs by their times.
    # Union-find over the kept traces.
    ends = {keys[d][-1]: d for d in range(len(prints)) if dropped[d]}
    parent = list(range(len(prints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, ks in enumerate(keys):
        if dropped[i]:
            continue
        for k in ks:
            d = ends.get(k)  # (1)
            if d is None or into[d] == i or distinct(d, i):
                continue
            j = into[d]  # a dropped trace's `into` is never None
            n = _common_length(ks, keys[j], len(keys[d]))
            if n in (len(ks), len(keys[j])):
                continue  # one holds all of the other, and was kept: a separate run (by its times)
            if not (llm[i][n] or llm[j][n]):
                continue  # (2) they part where the user or a tool said different things
            if 2 * n < min(len(ks), len(keys[j])):
                continue  # (3) they share an opening, not most of the shorter one
            ri, rj = root(i), root(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)  # the root is the earliest trace
    groups = {}
    for i, p in enumerate(prints):
        r = root(i)
        if not dropped[i] and r != i and p.group != prints[r].group:
            groups[i] = prints[r].group
    return FoldPlan(dropped, groups, folded=sum(dropped), conversations=len(absorbing))
