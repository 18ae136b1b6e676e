"""Symbolic argument extractors: the values in a context that a next call could copy.

An agent's next call mostly reuses values it has seen: an id from an earlier tool output, an earlier
argument, a file name or an order number the user typed. The extractors list those values, so that a
predictor (the pattern pool, the learned model's argument head) only has to *rank* them. This is PASTE's
value-mapping idea made into a candidate generator (arXiv 2603.18897).

Each extractor is a pure function of one event, registered in `EXTRACTORS` under its *kind*, returning
`(path, value)` pairs in reading order. Paths are `jsonpaths` paths (`reservations[0].id`) for JSON
values and `<field>[i:j]` spans for text (`text[12:20]`, `output[0:19]`, `result[3:9]` inside a JSON
string leaf). Because extractors see one event at a time, their results are cached per event object and a
context costs only a merge; contexts of one trace share their event objects, so a replay is linear.

`mentions(context)` adds where and when: event index, role or tool, rank in the kind's list (newest event
first, distinct values), recency. `extract_candidates(context)` merges mentions of equal values into
`Candidate`s: the unit a learned argument head scores. Nothing here imports torch.

Public name: `toolcast.runtime.extractors` (re-exported there); it lives on the predictor side because
the predictors consume it and dependencies point one way (runtime -> predictor -> data).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.schema import Context, Event, Message, ToolCall, canonical_args

Found = list[tuple[str, Any]]
"""(path, value) pairs an extractor found in one event, in reading order."""

MAX_TEXT = 20_000
"""Characters of one text read by the text extractors: a long document is not a list of arguments."""
MAX_LEAVES = 1_000
"""Leaves of one JSON tool output read by the extractors, in reading order: a 10,000-row listing is not
10,000 arguments, and every value read costs the first step ~25 us and each later step a share (a 1 MB
output took a 1 s step without it). In ../shared/data 53 outputs are longer (stock listings) and no later
argument comes from past their 1,000th leaf."""
MAX_WHOLE_OUTPUT = 256
"""A non-JSON tool output at most this long (one line) is itself a candidate value (an id, a path)."""


# ---- where text lives in an event ------------------------------------------------------------------


def _texts(event: Event) -> Iterator[tuple[str, str]]:
    """(field path, text) of the free text in an event: message text, a non-JSON output, long string
    leaves of a JSON output (sentences such as "'a.pdf' moved to 'temp/a.pdf'")."""
    if isinstance(event, Message):
        if event.text:
            yield "text", event.text[:MAX_TEXT]
        return
    if not event.output:
        return
    parsed = _output_json(event)
    if isinstance(parsed, dict | list):
        budget = MAX_TEXT  # for all of the output's sentences together, as for one text
        for path, value in itertools.islice(jsonpaths.leaves(parsed, with_keys=False), MAX_LEAVES):
            if isinstance(value, str) and len(value) >= 16 and " " in value:
                yield path, value[:budget]
                budget -= len(value)
                if budget <= 0:
                    return
    elif not isinstance(parsed, str):
        yield "output", event.output[:MAX_TEXT]
    else:
        yield "output", parsed[:MAX_TEXT]


_LAST_PARSE: tuple[str | None, Any] = (None, None)
"""The last output parsed and its value: the extractors of one event each ask for it (10 parses of a
5 MB output took 0.25 s). Keyed by the string's identity; the value is only read, never changed."""


def _output_json(call: ToolCall) -> Any:
    global _LAST_PARSE
    out = call.output
    if out is None or not out.strip() or out.lstrip()[0] not in '[{"':
        return None  # cheap guard: most non-JSON outputs fail here without an exception
    last = _LAST_PARSE  # one read: another thread may replace it meanwhile
    if last[0] is out:
        return last[1]
    try:  # `out` itself, as `ToolCall.output_json` would: call.output may be filled in meanwhile
        parsed = json.loads(out)
    except (ValueError, RecursionError):
        parsed = None
    _LAST_PARSE = (out, parsed)
    return parsed


def _spans(event: Event, pattern: re.Pattern, convert: Callable[[str], Any] = str,
           group: int = 0) -> Found:
    out: Found = []
    for base, text in _texts(event):
        for m in pattern.finditer(text):
            i, j = m.span(group)
            value = convert(m.group(group))
            if value is None or value == "":
                continue
            if isinstance(value, str) and text.startswith(value, i):
                j = i + len(value)  # the converter trimmed trailing punctuation: so does the span
            out.append((f"{base}[{i}:{j}]", value))
    return out


# ---- the extractors ---------------------------------------------------------------------------------


def json_leaf(event: Event) -> Found:
    """Scalar leaves of a JSON tool output, with their paths; dict keys that name objects too."""
    if not isinstance(event, ToolCall):
        return []
    parsed = _output_json(event)
    if isinstance(parsed, dict | list):
        return list(itertools.islice(jsonpaths.leaves(parsed), MAX_LEAVES))
    return []


def output_text(event: Event) -> Found:
    """A short, one-line, non-JSON tool output as a whole (tau2's `find_user_id_by_email` -> the id)."""
    if not isinstance(event, ToolCall) or not event.output:
        return []
    parsed = _output_json(event)
    if isinstance(parsed, dict | list):
        return []
    text = parsed if isinstance(parsed, str) else event.output
    text = text.strip()
    if not text or len(text) > MAX_WHOLE_OUTPUT or "\n" in text:
        return []
    return [("output", text)]


def argument(event: Event) -> Found:
    """An earlier call's argument values: every scalar leaf, and each whole top-level slot value that
    is a list or an object (an agent often passes the same list on)."""
    if not isinstance(event, ToolCall):
        return []
    out: Found = []
    for slot, value in event.args.items():
        if isinstance(value, dict | list) and value:
            out.append((slot, value))
        out.extend(jsonpaths.leaves(value, slot, with_keys=False))
    return out


_URL = re.compile(r"https?://[^\s\"'<>()\[\]{}]+")
_TRAIL = ".,;:!?"


def url(event: Event) -> Found:
    """http(s) URLs in text."""
    return [(p, v) for p, v in _spans(event, _URL, lambda s: s.rstrip(_TRAIL))]


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def email(event: Event) -> Found:
    """E-mail addresses in text (user lookups take them verbatim)."""
    return _spans(event, _EMAIL)


_FILE = re.compile(
    r"(?<![\w@/.~-])(?:~|\.{1,2})?/?(?:[\w.-]+/)+[\w.-]*|(?<![\w@/.-])[\w-]+(?:\.[\w-]+)*\.[A-Za-z][A-Za-z0-9]{0,4}\b(?![@/])")


def file_path(event: Event) -> Found:
    """File paths and file names (`docs/a.md`, `/tmp/x`, `report.pdf`) in text."""
    return _spans(event, _FILE, lambda s: s.rstrip(_TRAIL) if len(s.rstrip(_TRAIL)) > 1 else None)


_TOKEN = re.compile(r"#?[A-Za-z0-9]+(?:[_\-][A-Za-z0-9]+)*")


def _id_like(token: str) -> str | None:
    core = token.lstrip("#")
    has_digit = any(c.isdigit() for c in core)
    has_alpha = any(c.isalpha() for c in core)
    if has_digit and has_alpha and len(core) >= 3:
        return token  # ZFA04Y, HAT170, #W4923227, user_6490
    if "_" in core and len(core) >= 5:
        return token  # credit_card_8897086, mia_li
    if has_alpha and not has_digit and 2 <= len(core) <= 8 and core.isupper():
        return token  # JFK, LAX, an all-caps code
    if token.startswith("#") and has_digit:
        return token
    return None


def ident(event: Event) -> Found:
    """ID-like tokens in text: letters with digits, snake_case names, all-caps codes, #-numbers."""
    return _spans(event, _TOKEN, _id_like)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w])")


def _number(s: str) -> int | float | None:
    s = s.replace(",", "")
    try:
        return int(s) if "." not in s else float(s)
    except ValueError:
        return None


def number(event: Event) -> Found:
    """Numbers standing alone in text ("$60.00" -> 60.0, "2 bags" -> 2), as JSON numbers."""
    return _spans(event, _NUMBER, _number)


_QUOTED = re.compile(r"""(?:(?<![\w])'([^'\n]{1,200})'(?![\w])|"([^"\n]{1,200})"|`([^`\n]{1,200})`"""
                     r"""|\u2018([^\u2019\n]{1,200})\u2019|\u201c([^\u201d\n]{1,200})\u201d)""")


def quoted(event: Event) -> Found:
    """Quoted strings in text ('temp', "budget analysis", `ls -l`): users quote what they mean literally."""
    out: Found = []
    for base, text in _texts(event):
        for m in _QUOTED.finditer(text):
            g = next(k for k in range(1, 6) if m.group(k) is not None)
            i, j = m.span(g)
            if m.group(g).strip():
                out.append((f"{base}[{i}:{j}]", m.group(g)))
    return out


_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                                             "oct", "nov", "dec"))}
_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DATE = re.compile(
    r"(?<![\w-])(\d{4})-(\d{2})-(\d{2})(?![\w-])"  # 2024-05-15 (also inside "2024-05-15 15:00:00")
    rf"|(?i:\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b)"  # May 5th, 2024
    rf"|(?i:\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+(\d{{4}})\b)"  # 5 May 2024
)


def _iso(year: str, month: int, day: str) -> str | None:
    m, d = int(month), int(day)
    return f"{int(year):04d}-{m:02d}-{d:02d}" if 1 <= m <= 12 and 1 <= d <= 31 else None


def date(event: Event) -> Found:
    """Calendar dates in text as ISO strings: "2024-05-15" as written, "May 5th, 2024" and "5 May 2024"
    as "2024-05-05" (date slots take ISO; `ident` and `number` do not see a date whole)."""
    out: Found = []
    for base, text in _texts(event):
        for m in _DATE.finditer(text):
            g = m.groups()
            if g[0]:
                value = _iso(g[0], int(g[1]), g[2])
            elif g[3]:
                value = _iso(g[5], _MONTHS[g[3].lower()[:3]], g[4])
            else:
                value = _iso(g[8], _MONTHS[g[7].lower()[:3]], g[6])
            if value:
                out.append((f"{base}[{m.start()}:{m.end()}]", value))
    return out


_CAPS_RUN = re.compile(r"[A-Z][\w'-]*(?:[ \t]+[A-Z][\w'-]*)*")


def capitalized(event: Event) -> Found:
    """Capitalised words of a user message, each run ("Crescent Hollow") and each of its words: names,
    cities, product names."""
    if not isinstance(event, Message) or event.role != "user":
        return []
    out: Found = []
    for m in _CAPS_RUN.finditer(event.text[:MAX_TEXT]):
        run = m.group(0)
        words = list(re.finditer(r"\S+", run))
        if len(words) > 1:
            out.append((f"text[{m.start()}:{m.end()}]", run))
        for w in words:
            if len(w.group(0)) >= 2:
                out.append((f"text[{m.start() + w.start()}:{m.start() + w.end()}]", w.group(0)))
    return out


_WORD = re.compile(r"[A-Za-z0-9][\w.-]*[A-Za-z0-9]|[A-Za-z0-9]")


def word(event: Event) -> Found:
    """Every word of a user message: names and plain nouns the agent copies ("go to document")."""
    if not isinstance(event, Message) or event.role != "user":
        return []
    return [(p, v) for p, v in _spans(event, _WORD) if len(v) >= 2]


@dataclass(frozen=True)
class Extractor:
    kind: str
    fn: Callable[[Event], Found]
    doc: str


EXTRACTORS: dict[str, Extractor] = {
    e.__name__: Extractor(e.__name__, e, (e.__doc__ or "").strip().splitlines()[0])
    for e in (json_leaf, output_text, argument, url, email, file_path, ident, number, date, quoted,
              capitalized, word)
}
"""Every extractor, by kind. A test exercises each one; add a case there when you add one here."""

KINDS: tuple[str, ...] = tuple(EXTRACTORS)


# ---- per-event cache ---------------------------------------------------------------------------------


def event_key(event: Event) -> tuple:
    """What an event's findings and mentions depend on, to tell a changed event from the one cached.
    Events are mutable: the runtime appends a call and fills its `output` when it returns. Strings are
    compared by identity first (cheap); `args` is compared with a copy taken when the event was seen,
    so a dict changed in place is noticed too."""
    if isinstance(event, ToolCall):
        return (ToolCall, event.tool, event.output, event.args)
    return (Message, event.role, event.text)


def _frozen_key(event: Event) -> tuple:
    """`event_key` with a private deep copy of the arguments (the one kept beside the cached results)."""
    key = event_key(event)
    return (*key[:3], copy.deepcopy(key[3])) if key[0] is ToolCall else key


class _EventCache:
    """Extraction results per event object. Keyed by id() with the event kept alive (and compared by
    identity, then by `event_key`: an output filled in after the event was first seen is extracted
    again), because events are mutable dataclasses and so unhashable; bounded, cleared when full."""

    def __init__(self, size: int = 100_000):
        self._size = size
        self._d: dict[int, tuple[Event, tuple, dict[str, list[tuple[str, Any, str]]]]] = {}
        self._lock = threading.Lock()

    def get(self, event: Event) -> dict[str, list[tuple[str, Any, str]]]:
        hit = self._d.get(id(event))
        if hit is not None and hit[0] is event and hit[1] == event_key(event):
            return hit[2]
        key = _frozen_key(event)
        found = {kind: [(p, v, value_id(v)) for p, v in ex.fn(event)] for kind, ex in EXTRACTORS.items()}
        with self._lock:
            if len(self._d) >= self._size:
                self._d.clear()
            self._d[id(event)] = (event, key, found)
        return found


    def clear(self) -> None:
        with self._lock:
            self._d.clear()


_CACHE = _EventCache()


def clear_event_cache() -> None:
    """Forget every event's findings. The cache keeps its events alive, texts and outputs included, so a
    pass over many traces (training's featurizing) clears it after each trace: a trace's decision points
    share its events, no two traces share one."""
    _CACHE.clear()


def extract_event(event: Event) -> dict[str, list[tuple[str, Any, str]]]:
    """All extractors' findings in one event, by kind, as (path, value, value id); cached, do not mutate."""
    return _CACHE.get(event)


# ---- mentions and candidates -------------------------------------------------------------------------


def role_of(event: Event) -> str:
    """Who wrote the text or value: a message role, "output" (a tool result) or "call" (arguments)."""
    return event.role if isinstance(event, Message) else "output"


_SPAN = re.compile(r"\[\d+:\d+\]")


@lru_cache(maxsize=65536)
def path_shape(path: str) -> str:
    """The shape a rule is written in: list indexes and text spans generalised
    (`reservations[3].id` -> `reservations[*].id`, `text[12:20]` -> `text`); memoised (pure)."""
    return jsonpaths.generalize(_SPAN.sub("", path))


def value_id(value: Any) -> str:
    """Type-exact identity of a value: 12 and "12" are different candidates (the call must match)."""
    return canonical_args(value)


@dataclass(frozen=True)
class Mention:
    """One place a value was found."""

    value: Any
    kind: str
    event: int
    """Index in context.events."""
    role: str
    """"user", "assistant", "system" (message text), "output" (tool result) or "call" (arguments)."""
    tool: str | None
    """The tool whose output or arguments hold the value; None for messages."""
    path: str
    rank: int
    """Rank in this kind's list for the context: newest event first, distinct values, from 0."""
    recency: int
    """Events between the source and the decision point: 0 = the latest event."""

    @property
    def shape(self) -> str:
        return path_shape(self.path)


def _role(kind: str, event: Event) -> str:
    return "call" if kind == "argument" else role_of(event)


def mentions(context: Context, kinds: Iterable[str] | None = None) -> list[Mention]:
    """Every mention in the context, newest event first, then kind, then reading order."""
    return [m for m, _vid in _mentions_with_ids(context, kinds)]


def _mentions_with_ids(context: Context, kinds: Iterable[str] | None) -> list[tuple[Mention, str]]:
    """`mentions`, each with its value id (computed once per event by the cache, not per context)."""
    wanted = tuple(kinds) if kinds is not None else KINDS
    unknown = [k for k in wanted if k not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown extractor kind(s) {unknown}; known: {', '.join(KINDS)}")
    ranks: dict[str, dict[str, int]] = {k: {} for k in wanted}  # kind -> value id -> rank
    out: list[tuple[Mention, str]] = []
    n = len(context.events)
    for idx in range(n - 1, -1, -1):
        event = context.events[idx]
        found = extract_event(event)
        tool = event.tool if isinstance(event, ToolCall) else None
        for kind in wanted:
            kind_ranks = ranks[kind]
            for path, value, vid in found[kind]:
                rank = kind_ranks.setdefault(vid, len(kind_ranks))
                m = Mention(value, kind, idx, _role(kind, event), tool, path, rank, n - 1 - idx)
                out.append((m, vid))
    return out


@dataclass(frozen=True)
class Candidate:
    """A distinct value in the context, with every place it was found (newest first)."""

    value: Any
    mentions: tuple[Mention, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.kind for m in self.mentions))

    @property
    def source_event(self) -> int:
        return self.mentions[0].event

    @property
    def source_tool(self) -> str | None:
        return self.mentions[0].tool

    @property
    def source_path(self) -> str:
        return self.mentions[0].path

    @property
    def rank(self) -> int:
        """Best rank over the kinds that proposed it."""
        return min(m.rank for m in self.mentions)

    @property
    def recency(self) -> int:
        return self.mentions[0].recency


def extract_candidates(context: Context, kinds: Iterable[str] | None = None) -> list[Candidate]:
    """Distinct values of the context (type-exact), ordered by their newest mention. From scratch: the
    specification `session_candidates.SessionCandidates` (a session's pool kept across steps) matches."""
    groups: dict[str, list[Mention]] = {}
    for m, vid in _mentions_with_ids(context, kinds):
        groups.setdefault(vid, []).append(m)
    return [Candidate(ms[0].value, tuple(ms)) for ms in groups.values()]
