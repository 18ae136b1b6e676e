"""Claude Code session transcripts (~/.claude/projects/<project>/<session-id>.jsonl) -> canonical traces.

Claude Code documents where sessions live (https://code.claude.com/docs/en/sessions) but calls the
entry format internal; the shapes here are the ones its own messages carry (the Anthropic Messages API
blocks, read by `anthropic.py`: https://docs.claude.com/en/api/messages) inside the envelope that
community parsers agree on: github.com/skillsynchq/txcript docs/formats/claude-code.md,
github.com/DRMacIver/claude-reliability notes/transcript-format.md, github.com/majiayu000/ccstats
docs/algorithm/authoritative-token-accounting.md, and github.com/xintaofei/codeg pull 586 ("Claude Code
writes one assistant JSONL record per content block").

A file holds one entry per line (a JSON list of entries is read alike): `{"type": "user" | "assistant"
| "system" | "summary" | "file-history-snapshot" | "queue-operation" | ..., "message"?: {"role",
"content": str | [blocks], "id"?, "model"?, "usage"?}, "uuid", "parentUuid", "sessionId", "timestamp",
"cwd", "version", "gitBranch", "isSidechain", "requestId"?, "toolUseResult"?, ...}`. The rules:
- Conversations: one trace per `sessionId` (trace_id = group = the sessionId) from the entries with
  `isSidechain` false, in file order. Sidechain entries (a Task subagent: its own prompt, its own LLM
  context) are traces of their own, so that no decision point mixes two LLMs' contexts: one per
  `agentId`, or, where entries carry none, per parentUuid chain (a sidechain entry whose parent is no
  sidechain entry starts one); trace_id `<sessionId>/<agentId or sidechain-k>`, group the sessionId (a
  subagent stays in its session's split), `metadata["sidechain"] = True` (and its `agentId`). Group is
  the session, not `cwd`: one project is often all a user has, and `cwd` is kept in metadata.
- One LLM turn: Claude Code writes each content block of a response on its own assistant line, with
  the same `message.id` (or `requestId`). Consecutive assistant lines of one id, with nothing between
  them but tool results, are one assistant `Message` (text blocks joined; thinking in
  `extra["thinking"]`, never in the text) followed by its calls, all with one `turn` (parallel calls).
  `message.usage.output_tokens` (the largest of its lines) becomes the message's tokens.
- Tool results are user entries with tool_result blocks; each fills the call with its `tool_use_id`
  (output text, `is_error`), the entry's `toolUseResult` (Claude Code's structured result) goes to the
  call's `extra["toolUseResult"]`. A result whose call is not in the file (the history before a
  compaction or a resume) is kept in `metadata["unmatched_results"]`, not an error. User text sent with
  results is marked `extra["with_tool_results"]`. A user entry marked `isMeta` (Claude Code's own note
  sent as user text, e.g. a local-command caveat) is a system message with `extra["role"] = "user"`.
- Times: an entry's ISO `timestamp` is when it was written: a call starts at its tool_use line and ends
  at its result's line; an assistant message ends at its last line (its start is not logged).
- Not events: `summary`, `system` (Claude Code's own notices, compaction boundaries, slash-command
  output), `custom-title` and other entries go to `metadata["other_entries"]` with their line;
  `file-history-snapshot`, `progress` and `queue-operation` entries (file backups, streaming progress,
  input queue) are counted in `metadata["entry_counts"]`. `cwd`, `version`, `gitBranch`, `userType` and
  the model come from the first entry carrying them. The tool set is not in the file: `tools` is empty.
- Branches (a rewound conversation keeps its abandoned entries) are read in file order, not resolved.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.anthropic import _blocks, fill_result
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, schema_error
from toolcast.data.formats.chat import CallBook, parse_arguments
from toolcast.data.schema import Event, Message, SchemaError, ToolCall, Trace

SOURCE = "claude_code"
_MESSAGE_TYPES = ("user", "assistant")
_COUNTED = ("file-history-snapshot", "progress", "queue-operation")
# envelope keys every entry repeats: the session's, not a message's
_ENVELOPE = ("type", "message", "uuid", "parentUuid", "sessionId", "timestamp", "cwd", "version",
             "gitBranch", "userType", "isSidechain", "requestId", "agentId", "toolUseResult", "slug")
_SESSION_KEYS = ("cwd", "version", "gitBranch", "userType", "agentId")


def sniff(record: Any) -> bool:
    """A Claude Code entry (or a JSON list of them): a typed entry of a session, or a summary /
    file-history-snapshot line, which carry no sessionId and may open a file."""
    if isinstance(record, list):
        return bool(record) and sniff(record[0])
    if not isinstance(record, dict) or not isinstance(record.get("type"), str) or "role" in record:
        return False
    kind = record["type"]
    if kind == "summary":
        return isinstance(record.get("summary"), str) and "leafUuid" in record
    if kind == "file-history-snapshot":
        return "snapshot" in record and "messageId" in record
    return isinstance(record.get("sessionId"), str) and ("uuid" in record or kind == "queue-operation")


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    """One trace per conversation of the file; a bad entry fails its conversation only, a line that is
    not JSON (or no object with a type) the whole file (it could belong to any of them)."""
    entries: list[tuple[Location, Any]] = []
    for where, record in records:
        if isinstance(record, TraceFormatError):
            on_error(record)
            return
        if isinstance(record, list):
            entries.extend((where.child(f"[{i}]"), e) for i, e in enumerate(record))
        else:
            entries.append((where, record))
    try:
        convs, shared = _conversations(entries)
    except TraceFormatError as e:
        on_error(e)
        return
    for conv in convs:
        try:
            yield _trace(conv, shared)
        except TraceFormatError as e:
            on_error(e)
        except SchemaError as e:
            on_error(schema_error(conv.entries[0][0], e))


# ---- conversations -----------------------------------------------------------------------------------


@dataclass
class _Conversation:
    session: str
    sidechain: str | None  # agentId or sidechain-k; None for the main conversation
    entries: list[tuple[Location, dict]] = field(default_factory=list)


@dataclass
class _Shared:
    """What the file says outside its sessions' entries."""

    other: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _conversations(entries: list[tuple[Location, Any]]) -> tuple[list[_Conversation], _Shared]:
    convs: dict[tuple[str, str | None], _Conversation] = {}
    chain: dict[str, tuple[str, str | None]] = {}  # sidechain uuid -> its conversation
    shared = _Shared()
    seen: set[str] = set()
    for where, entry in entries:
        entry = expect(entry, dict, where, "entry")
        kind = expect(entry.get("type"), str, where, "type")
        uuid = entry.get("uuid")
        if isinstance(uuid, str):
            if uuid in seen:  # the same entry written twice (a resumed session rewrites its history)
                shared.counts["duplicate"] = shared.counts.get("duplicate", 0) + 1
                continue
            seen.add(uuid)
        session = entry.get("sessionId")
        if kind in _COUNTED or not isinstance(session, str):
            if kind in _COUNTED:
                shared.counts[kind] = shared.counts.get(kind, 0) + 1
            else:
                shared.other.append({"line": where.line, **entry})
            continue
        if entry.get("isSidechain") is True:
            parent = entry.get("parentUuid")
            if isinstance(entry.get("agentId"), str):
                key = (session, entry["agentId"])
            elif isinstance(parent, str) and parent in chain:
                key = chain[parent]
            else:
                key = (session, f"sidechain-{sum(1 for s, c in convs if s == session and c)}")
            if isinstance(uuid, str):
                chain[uuid] = key
        else:
            key = (session, None)
        conv = convs.setdefault(key, _Conversation(session, key[1]))
        conv.entries.append((where, entry))
    return list(convs.values()), shared


# ---- one conversation --------------------------------------------------------------------------------


@dataclass
class _Turn:
    """The assistant lines of one response read so far."""

    key: str
    message: Message
    turn: int | None = None


class _Reader:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.book = CallBook()
        self.turn = -1
        self.open: _Turn | None = None
        self.metadata: dict[str, Any] = {}

    def entry(self, at: Location, entry: dict) -> None:
        kind = entry["type"]
        for key in _SESSION_KEYS:
            if entry.get(key) is not None:
                self.metadata.setdefault(key, entry[key])
        if kind not in _MESSAGE_TYPES:  # system notices, titles, compaction boundaries
            self.metadata.setdefault("other_entries", []).append({"line": at.line, **entry})
            return
        message = expect(entry.get("message"), dict, at, "message")
        if "content" not in message:
            raise TraceFormatError(at, "is missing", field="message.content")
        when = _time(at, entry.get("timestamp"))
        if kind == "assistant":
            self._assistant(at, entry, message, when)
        else:
            self._user(at, entry, message, when)

    def _assistant(self, at: Location, entry: dict, message: dict, when: float | None) -> None:
        key = message.get("id") if isinstance(message.get("id"), str) else entry.get("requestId")
        blocks = _blocks(at, message["content"], "message.content")
        if self.open is None or key is None or self.open.key != key:
            extra = {"uuid": entry["uuid"]} if isinstance(entry.get("uuid"), str) else {}
            for k, v in entry.items():  # isApiErrorMessage, ...: flags of this response
                if k not in _ENVELOPE:
                    extra[k] = v
            turn_key = key if isinstance(key, str) else f"line:{at.line}"
            self.open = _Turn(turn_key, Message("assistant", extra=extra))
            self.events.append(self.open.message)
            if isinstance(message.get("model"), str) and message["model"] != "<synthetic>":
                self.metadata.setdefault("agent_model", message["model"])
        gen = self.open
        msg = gen.message
        for k in ("stop_reason", "stop_sequence"):  # set on the response's last line
            if message.get(k) is not None:
                msg.extra[k] = message[k]
        msg.text = "\n".join(t for t in (msg.text, *blocks.texts) if t)
        for k, v in blocks.extra.items():  # thinking / blocks lists add up over the lines, counts too
            msg.extra[k] = msg.extra[k] + v if k in msg.extra else v
        msg.t_end = when
        tokens = _output_tokens(at, message.get("usage"))
        if tokens is not None:
            msg.tokens = max(tokens, msg.tokens or 0)
        for path, block in blocks.calls:
            if gen.turn is None:
                self.turn += 1
                gen.turn = msg.turn = self.turn
            call_id = expect(block.get("id"), str, at, f"{path}.id")
            name = expect(block.get("name"), str, at, f"{path}.name")
            args = parse_arguments(block.get("input"), at, f"{path}.input")
            extra = {"block": block["type"]} if block["type"] != "tool_use" else {}
            self.events.append(self.book.add(call_id, gen.turn, name, args, extra=extra, t_start=when))
        for path, block in blocks.results:  # server tools: the result sits in the response
            self._result(at, block, path, when, None)

    def _user(self, at: Location, entry: dict, message: dict, when: float | None) -> None:
        blocks = _blocks(at, message["content"], "message.content")
        if blocks.calls:
            raise TraceFormatError(at, "a user message cannot hold a tool call",
                                   field=f"{blocks.calls[0][0]}.type")
        single = entry.get("toolUseResult") if len(blocks.results) == 1 else None
        filled = [self._result(at, b, p, when, single) for p, b in blocks.results]
        extra = {k: v for k, v in entry.items() if k not in _ENVELOPE}
        if isinstance(entry.get("uuid"), str):
            extra["uuid"] = entry["uuid"]
        if len(blocks.results) > 1 and entry.get("toolUseResult") is not None:
            extra["toolUseResult"] = entry["toolUseResult"]
        if blocks.texts or "blocks" in blocks.extra or not blocks.results:
            self.open = None  # the user spoke: the next response is a new turn
            if blocks.results:
                extra["with_tool_results"] = True
            extra.update(blocks.extra)
            text = "\n".join(blocks.texts)
            role = "user"
            if entry.get("isMeta") is True:  # Claude Code's own note (a caveat), not the person's words
                role, extra["role"] = "system", "user"
            self.events.append(Message(role, text, t_start=when, t_end=when, extra=extra))
        elif any(c is not None for c in filled):
            call = next(c for c in reversed(filled) if c is not None)
            extra.pop("uuid", None)
            if extra:
                call.extra["entry"] = extra

    def _result(self, at: Location, block: dict, path: str, when: float | None,
                structured: Any) -> ToolCall | None:
        source_id = expect(block.get("tool_use_id"), str, at, f"{path}.tool_use_id")
        call = self.book.answer(source_id)
        if call is None:
            self.metadata.setdefault("unmatched_results", []).append({"line": at.line, "block": block})
            return None
        fill_result(at, block, path, call)
        call.t_end = when
        if structured is not None:
            call.extra["toolUseResult"] = structured
        return call


def _trace(conv: _Conversation, shared: _Shared) -> Trace:
    reader = _Reader()
    for at, entry in conv.entries:
        reader.entry(at, entry)
    metadata: dict[str, Any] = {"sessionId": conv.session, **reader.metadata}
    if conv.sidechain is not None:
        metadata["sidechain"] = True
        trace_id = f"{conv.session}/{conv.sidechain}"
    else:
        trace_id = conv.session
        if shared.other:
            metadata["other_entries"] = shared.other + metadata.get("other_entries", [])
        if shared.counts:
            metadata["entry_counts"] = dict(shared.counts)
    trace = Trace(trace_id=trace_id, group=conv.session, source=SOURCE, metadata=metadata, tools=[],
                  events=reader.events)
    trace.validate()
    return trace


def _time(at: Location, value: Any) -> float | None:
    """An ISO 8601 timestamp ("2025-05-26T07:27:40.079Z") as seconds since the epoch."""
    if value is None:
        return None
    text = expect(value, str, at, "timestamp")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise TraceFormatError(at, f"not an ISO 8601 time: {text!r}", field="timestamp") from None


def _output_tokens(at: Location, usage: Any) -> int | None:
    if usage is None:
        return None
    tokens = expect(usage, dict, at, "message.usage").get("output_tokens")
    return expect(tokens, int, at, "message.usage.output_tokens") if tokens is not None else None


FORMAT = TraceFormat(
    "claude_code",
    "Claude Code session transcripts (~/.claude/projects/<project>/<session>.jsonl): one entry per line, "
    "a trace per session and per subagent sidechain",
    sniff,
    read,
)
