"""Logs written one message per JSON line, read as conversations.

Agents and logging hooks append each message (or Responses item, Gemini content, ADK event, LangChain
message) to a JSONL file as it happens. Every format already reads a bare JSON list of messages as one
conversation, so such a file is read as that list: once, here, for all formats, not in each of them.

- Which files: JSON lines (or a one-line file) whose first record is a dict that no format reads as a
  whole record but some format reads as a one-message list (`is_message_line`). Any file whose first
  record a format already reads is untouched, so no ordinary JSONL file changes.
- Which format: the one whose sniffer accepts all the file's messages as one list, as for a bare-list
  file; all of them, since one line cannot tell an Anthropic text message from an OpenAI one.
- Conversations: one per file, unless the lines carry a conversation key (`SPLIT_KEYS`, the first one
  found on any line): then one per value, in order of first appearance, however the lines interleave
  (hooks append every session to one file). Every line must then carry it. The key is taken off the
  messages (it is the conversation's, not the message's) and kept in the trace's metadata; trace_id is
  `<file stem>:<value>` (two files may both count sessions from 1, and a repeated trace_id is dropped as
  a duplicate downstream), group is the value. Without a key the trace is what the bare list gives:
  trace_id `<file stem>`.
- Errors name the file and the LINE of the bad message: the formats locate a field of a bare list as
  `[j].field` (Gemini's ADK events as `events[j].field`), which becomes line `lines[j]`, field `field`.
  A bad message fails its conversation only. A line that is not JSON fails the whole file (it could
  belong to any of its conversations; reading them without it would give half-read traces).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats import FORMATS
from toolcast.data.formats.base import OnError, Records, TraceFormat
from toolcast.data.formats.chat import default_trace_id
from toolcast.data.schema import Trace

SPLIT_KEYS: tuple[str, ...] = ("conversation_id", "conversationId", "session_id", "sessionId", "thread_id",
                               "threadId", "trace_id", "traceId")
"""Keys a per-message line may carry to say which conversation it belongs to, most specific first."""


def is_message_line(record: Any, where: Location | None = None) -> bool:
    """A dict that no format reads as a record, but some format reads as a list of one message.

    Given its location, a record that spans several lines (a pretty-printed JSON document, whose
    location has no line) is no line: a lone message document stays an unknown format, as before.
    """
    if where is not None and where.line is None:
        return False
    if not isinstance(record, dict) or any(f.sniff(record) for f in FORMATS.values()):
        return False
    return any(f.sniff([record]) for f in FORMATS.values())


@dataclass
class Conversation:
    """The messages of one conversation and the line each came from."""

    value: str | int | None = None
    """The conversation key's value on its lines (None: the file is one conversation)."""
    lines: list[int | None] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)


def split_key(records: list[tuple[Location, Any]]) -> str | None:
    """The first of `SPLIT_KEYS` that any line carries, or None."""
    present = {k for _, m in records if isinstance(m, dict) for k in SPLIT_KEYS if k in m}
    return next((k for k in SPLIT_KEYS if k in present), None)


def conversations(records: list[tuple[Location, Any]], key: str | None) -> list[Conversation]:
    """The lines grouped by `key`'s value (taken off the messages), or all of them as one conversation."""
    if key is None:
        return [Conversation(None, [w.line for w, _ in records], [m for _, m in records])]
    by_value: dict[str | int, Conversation] = {}
    for where, m in records:
        value = m.get(key) if isinstance(m, dict) else None
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            what = "is missing" if not isinstance(m, dict) or key not in m else f"is {value!r}"
            raise TraceFormatError(where, f"{what}; the file's other lines carry {key}, which says which "
                                   "conversation each belongs to (expected a string or integer)", field=key)
        conv = by_value.setdefault(value, Conversation(value))
        conv.lines.append(where.line)
        conv.messages.append({k: v for k, v in m.items() if k != key})
    return list(by_value.values())


def lines_format(path: Any, records: list[tuple[Location, Any]], format: str = "auto") -> TraceFormat:
    """The format that reads the file's lines as messages (`format` when not "auto"), as a `TraceFormat`
    whose `read` takes the file's records and yields one trace per conversation.

    Raises the first line that is not JSON, or an error when no format reads the lines together.
    """
    for _, m in records:
        if isinstance(m, TraceFormatError):
            raise m
    if format != "auto":
        fmt = FORMATS[format]
    else:  # a conversation key on the lines changes no sniffer's answer
        messages = [m for _, m in records]
        found = next((f for f in FORMATS.values() if f.sniff(messages)), None)
        if found is None:
            raise _no_format(path, records)
        fmt = found
    return TraceFormat(fmt.name, fmt.description, fmt.sniff, partial(read_lines, fmt, str(path)))


def _no_format(path: Any, records: list[tuple[Location, Any]]) -> TraceFormatError:
    """The first line that holds no message; else the lines mix formats."""
    for where, m in records[1:]:
        if not any(f.sniff([m]) for f in FORMATS.values()):
            seen = ("an object with keys " + ", ".join(sorted(m)[:8]) if isinstance(m, dict)
                    else f"a JSON {type(m).__name__}")
            return TraceFormatError(where, f"line {records[0][0].line or 1} holds one message, as in a log "
                                    f"written one message per line, but this line holds {seen}")
    return TraceFormatError(Location(str(path)), "each line holds one message, but no format reads them "
                            "as one conversation (messages of two formats mixed?)")


def read_lines(fmt: TraceFormat, path: str, records: Records, on_error: OnError) -> Iterator[Trace]:
    """One trace per conversation of the lines, read by `fmt` as a bare list; errors located by line."""
    records = list(records)
    for _, m in records:
        if isinstance(m, TraceFormatError):
            on_error(m)
            return
    key = split_key(records)
    try:
        convs = conversations(records, key)
    except TraceFormatError as e:
        on_error(e)
        return
    list_prefix = "events" if fmt.name == "gemini" and isinstance(records[0][1], dict) \
        and "author" in records[0][1] else ""  # gemini reads a list of ADK events as {"events": [...]}
    for conv in convs:
        mapped = partial(_on_line_error, on_error, conv.lines, list_prefix)
        for trace in fmt.read([(Location(path), conv.messages)], mapped):
            if conv.value is not None:
                trace.trace_id = f"{default_trace_id(Location(path), None)}:{conv.value}"
                trace.group = str(conv.value)
                trace.metadata.setdefault(key, conv.value)
            yield trace


def _on_line_error(on_error: OnError, lines: list[int | None], prefix: str, e: TraceFormatError) -> None:
    on_error(at_line(e, lines, prefix))


def at_line(e: TraceFormatError, lines: list[int | None], prefix: str = "") -> TraceFormatError:
    """`e` located at the line of the message its field names (`[j].field` -> line lines[j], `field`)."""
    if e.where.line is not None or e.where.record or not e.field:
        return e
    m = re.match(rf"{re.escape(prefix)}\[(\d+)\]\.?", e.field)
    if m is None or int(m.group(1)) >= len(lines):
        return e
    err = TraceFormatError(Location(e.where.path, lines[int(m.group(1))]), e.reason,
                           field=e.field[m.end():] or None)
    err.__cause__ = e.__cause__
    return err
