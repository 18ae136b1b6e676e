"""The argument extractors, one pure function per kind: `(path, value)` pairs found in one event.

Registered by kind in `extractors.EXTRACTORS` (the candidates' module); paths are `jsonpaths` paths for
JSON values (`reservations[0].id`) and `<field>[i:j]` spans for text (`text[12:20]`, `output[0:19]`,
`result[3:9]` inside a JSON string leaf), in reading order.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from toolcast.data import jsonpaths
from toolcast.data.schema import Event, Message, ToolCall

Found = list[tuple[str, Any]]
"""(path, value) pairs an extractor found in one event, in reading order."""

MAX_TEXT = 20_000
"""Characters of one text read by the text extractors: a long document is not a list of arguments."""
MAX_LEAVES = 1_000
"""Leaves of one JSON tool output read by the extractors, in reading order: a 10,000-row listing is not
10,000 arguments, and every value read costs the first step ~25 us and each later step a share (a 1 MB
output took a 1 s step without it). In the development logs (tau2-bench and BFCL runs) 53 outputs are
longer (stock listings) and no later argument comes from past their 1,000th leaf."""
MAX_WHOLE_OUTPUT = 256
"""A non-JSON tool output at most this long (one line) is itself a candidate value (an id, a path)."""


# ---- where text lives in an event ------------------------------------------------------------------


_LAST_TEXTS: tuple[Event | None, str | None, tuple[tuple[str, str], ...]] = (None, None, ())
"""The last event's texts: each text extractor of an event asks for them (walking a JSON output's leaves
again for each took a tenth of extraction). Keyed by the event's and its text's or output's identity (an
output filled in later is read again); the texts are only read."""


def _texts(event: Event) -> tuple[tuple[str, str], ...]:
    """(field path, text) of the free text in an event: message text, a non-JSON output, long string
    leaves of a JSON output (sentences such as "'a.pdf' moved to 'temp/a.pdf'")."""
    global _LAST_TEXTS
    source = event.text if isinstance(event, Message) else event.output
    last = _LAST_TEXTS  # one read: another thread may replace it meanwhile
    if last[0] is event and last[1] is source:
        return last[2]
    texts = tuple(_read_texts(event))
    _LAST_TEXTS = (event, source, texts)
    return texts


def _read_texts(event: Event) -> Iterator[tuple[str, str]]:
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
           group: int = 0, needs: str | re.Pattern | None = None) -> Found:
    """`needs`: a substring (or a pattern) every match contains: a text without it is not searched."""
    out: Found = []
    for base, text in _texts(event):
        if needs is not None and (needs not in text if isinstance(needs, str) else not needs.search(text)):
            continue
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
    return _spans(event, _EMAIL, needs="@")


_FILE = re.compile(
    r"(?<![\w@/.~-])(?:~|\.{1,2})?/?(?:[\w.-]+/)+[\w.-]*|(?<![\w@/.-])[\w-]+(?:\.[\w-]+)*\.[A-Za-z][A-Za-z0-9]{0,4}\b(?![@/])")


_FILE_NEEDS = re.compile(r"/|\.[A-Za-z]")
"""What every file path or name has: a slash, or a dot before a letter (its extension)."""


def file_path(event: Event) -> Found:
    """File paths and file names (`docs/a.md`, `/tmp/x`, `report.pdf`) in text."""
    return _spans(event, _FILE, lambda s: s.rstrip(_TRAIL) if len(s.rstrip(_TRAIL)) > 1 else None,
                  needs=_FILE_NEEDS)


_TOKEN = re.compile(r"#?[A-Za-z0-9]+(?:[_\-][A-Za-z0-9]+)*")


def _id_like(token: str) -> str | None:
    if token.isalpha():  # most words: only an all-caps code is one (exactly the rules below, faster)
        return token if 2 <= len(token) <= 8 and token.isupper() else None
    if token.isdigit():
        return None
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


_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?![\w])")


def _number(s: str) -> int | float | None:
    s = s.replace(",", "")
    try:
        return int(s) if "." not in s else float(s)
    except ValueError:
        return None


def number(event: Event) -> Found:
    """Numbers standing alone in text ("$60.00" -> 60.0, "2 bags" -> 2), as JSON numbers."""
    return _spans(event, _NUMBER, _number, needs=_DIGIT)


_QUOTED = re.compile(r"""(?:(?<![\w])'([^'\n]{1,200})'(?![\w])|"([^"\n]{1,200})"|`([^`\n]{1,200})`"""
                     r"""|\u2018([^\u2019\n]{1,200})\u2019|\u201c([^\u201d\n]{1,200})\u201d)""")


_QUOTE_MARK = re.compile("['\"`\u2018\u201c]")


def quoted(event: Event) -> Found:
    """Quoted strings in text ('temp', "budget analysis", `ls -l`): users quote what they mean literally."""
    out: Found = []
    for base, text in _texts(event):
        if not _QUOTE_MARK.search(text):
            continue
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


_YEAR = re.compile(r"\d{4}")


def _iso(year: str, month: int, day: str) -> str | None:
    m, d = int(month), int(day)
    return f"{int(year):04d}-{m:02d}-{d:02d}" if 1 <= m <= 12 and 1 <= d <= 31 else None


def date(event: Event) -> Found:
    """Calendar dates in text as ISO strings: "2024-05-15" as written, "May 5th, 2024" and "5 May 2024"
    as "2024-05-05" (date slots take ISO; `ident` and `number` do not see a date whole)."""
    out: Found = []
    for base, text in _texts(event):
        if not _YEAR.search(text):  # every form has a four-digit year
            continue
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
