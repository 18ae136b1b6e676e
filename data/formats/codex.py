"""OpenAI Codex CLI rollouts (~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl) -> canonical traces.

Written against the rollout types of github.com/openai/codex: codex-rs/protocol/src/protocol.rs
(`RolloutLine {timestamp, #[serde(flatten)] item: RolloutItem}`, `RolloutItem` tagged
`{"type": "session_meta" | "response_item" | "compacted" | "turn_context" | "event_msg", "payload"}`,
`SessionMetaLine` = `SessionMeta {id, timestamp, cwd, originator, cli_version, instructions?, source,
model_provider?, base_instructions?, ...}` + `git?`, `CompactedItem {message, replacement_history?}`),
codex-rs/protocol/src/models.rs (`ResponseItem`: Responses API items, `FunctionCallOutputPayload`
written as a string or a list of input_text / input_image items; read in its older `{content,
success}` spelling too) and codex-rs/core/src/tools (a shell call's output, `{"output", "metadata":
{"exit_code", "duration_seconds"}}` JSON or "Exit code: N\\nWall time: ...\\nOutput:\\n..." text). Older
rollouts (codex-rs/core/src/rollout.rs before RolloutItem) start with a bare `SessionMeta {id,
timestamp, instructions?}` (later with `git`) line, then bare items and `{"record_type": "state"}` lines;
they are read alike.

One rollout file is one session, one trace: trace_id = group = the session id (`session_meta.id`;
without one, the file's name). The items are read by the Responses item reader (openai_responses_items):
- Model items in a row (reasoning, assistant messages, function_call / custom_tool_call /
  local_shell_call / web_search_call) are one LLM generation: one assistant `Message` (reasoning
  summaries in `extra["reasoning"]`, never in the text) and its calls, with one `turn`.
- Results match calls by `call_id` (function_call_output, custom_tool_call_output). A call fails
  (`error`) when its output says a non-zero exit code (the shell outputs above), when an `exec_command_end`
  event names its call_id with a non-zero `exit_code`, or when an old `{content, success: false}` output
  says so. A call with no output stays unanswered.
- User messages are user messages, but those Codex writes itself (`<environment_context>`,
  `<user_instructions>`, AGENTS.md instructions: sent as user items, before the person's prompt in the same
  request) are system messages with `extra["role"] = "user"`, so that no decision point falls between them
  and the prompt; developer messages are system messages. `session_meta.instructions` (and
  `base_instructions.text`) open the trace as a system message: the prompt the model was given.
- Times: each line's ISO `timestamp` is when Codex wrote it: a call starts at its item's line and ends at
  its output's line; an assistant message ends at its last item's line; user messages are at their line.
  Older Codex wrote a call and its output at the same instant, after the tool ran: where every call of
  a file was written so (a fast tool alone can share its output's millisecond), a call starts
  where the model's reply ended (its last reasoning or message line before the call, when that is
  earlier; `extra["t_start_from"] = "reply_end"`), and the duration the tool reported (the output's
  `duration_seconds` / "Wall time") times it where nothing earlier was written (`data/active_time.py`).
- Not events: `turn_context` (cwd, approval and sandbox policy, model: the first one's `model` is
  `agent_model`) goes to `metadata["turn_context"]` (the first; later ones that differ are kept in
  `metadata["turn_context_changes"]`); `compacted` items to `metadata["compactions"]`; `event_msg` lines
  (the UI's copy of what the items say: user_message, agent_message, agent_reasoning, token_count,
  exec_command_end, ...) are counted by type in `metadata["event_msg_counts"]`; other item types
  (ghost_snapshot, compaction) go to `metadata["other_items"]` with their field path. The tool set is not
  in the file: `tools` is empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import PurePath
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, schema_error
from toolcast.data.formats.openai_responses_items import ItemReader
from toolcast.data.schema import Message, SchemaError, ToolCall, Trace

SOURCE = "codex"
LINE_TYPES = ("session_meta", "response_item", "compacted", "turn_context", "event_msg")
_LEGACY_META = frozenset(("id", "timestamp", "instructions", "git"))
# user messages Codex writes itself (the environment, AGENTS.md instructions), before the person's own
_CONTEXT_TAGS = ("<environment_context>", "<user_instructions>", "# AGENTS.md instructions")
_EXIT = re.compile(r"^(?:Exit code:|Process exited with code) (-?\d+)\s*$", re.MULTILINE)


def sniff(record: Any) -> bool:
    """A rollout line `{"timestamp", "type", "payload"}`, or an old rollout's first line: a bare
    `SessionMeta` `{"id", "timestamp", "instructions"?, "git"?}` and nothing else."""
    if not isinstance(record, dict):
        return False
    if record.get("type") in LINE_TYPES:
        return isinstance(record.get("payload"), dict) and isinstance(record.get("timestamp"), str)
    return (isinstance(record.get("id"), str) and isinstance(record.get("timestamp"), str)
            and set(record) <= _LEGACY_META)


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    """The file's one trace; a bad line fails it whole (a session is one conversation)."""
    lines = []
    for where, record in records:
        if isinstance(record, TraceFormatError):
            on_error(record)
            return
        lines.append((where, record))
    if not lines:
        return
    try:
        yield _trace(lines)
    except TraceFormatError as e:
        on_error(e)
    except SchemaError as e:
        on_error(schema_error(lines[0][0], e))


class _Rollout:
    """The items of one rollout, read in order, with each line's time."""

    def __init__(self, at: Location) -> None:
        self.reader = ItemReader(at, continues=False)
        self.metadata: dict[str, Any] = {}
        self.started: dict[int, float | None] = {}  # id(call) -> the time of its item's line
        self.calls: dict[str, ToolCall] = {}  # call_id -> call, to time and fail it
        self.exit_codes: dict[str, int] = {}  # exec_command_end events by call_id
        self.events_seen = 0
        self.last_model_time: float | None = None
        self.reply_time: float | None = None  # the last reasoning / assistant message line of this reply
        self.reply_before: dict[int, float | None] = {}  # id(call) -> reply_time when its line came
        self.answered = 0
        self.same_instant: list[tuple[ToolCall, float | None]] = []  # calls written with their output

    def session_meta(self, at: Location, meta: dict, when: float | None) -> None:
        for key, value in meta.items():
            if value is not None and key not in ("instructions", "base_instructions"):
                self.metadata.setdefault(key, value)
        base = meta.get("base_instructions")
        texts = [expect(base.get("text"), str, at, "payload.base_instructions.text")
                 if isinstance(base, dict) else base, meta.get("instructions")]
        for key, text in zip(("base_instructions", "instructions"), texts, strict=True):
            if text is not None:
                text = expect(text, str, at, f"payload.{key}")
                message = Message("system", text, t_start=when, t_end=when, extra={key: True})
                self.reader.events.append(message)

    def item(self, at: Location, item: Any, path: str, when: float | None) -> None:
        item = expect(item, dict, at, path)
        kind = item.get("type")
        if kind in ("function_call_output", "custom_tool_call_output"):
            item = _output_item(item)
        elif kind == "web_search_call" and item.get("id") is None:  # Codex does not write the item id
            item = {**item, "id": f"web_search:{at.line}"}
        elif kind == "local_shell_call" and item.get("call_id") is None and item.get("id") is not None:
            item = {**item, "call_id": item["id"]}  # the Chat Completions spelling
        if kind == "reasoning" or str(kind).endswith("_call") or item.get("role") == "assistant":
            self.last_model_time = when  # generated by the model
            if not str(kind).endswith("_call"):
                self.reply_time = when
        elif kind is not None and (str(kind).endswith("_output") or item.get("role") == "user"):
            self.reply_time = None  # the next reply starts after this
        self.reader.at = at
        others = len(self.reader.other)
        self.reader.item(item, path)
        for other in self.reader.other[others:]:  # an item that is no event: where the file has it
            other["line"] = at.line
        call_id = item.get("call_id")
        if kind is not None and str(kind).endswith("_output") and isinstance(call_id, str):
            call = self.calls.get(call_id)
            if call is not None:
                call.t_end = when
                call.error |= _failed(call.output)
                self.answered += 1
                if call.t_start == when:
                    self.same_instant.append((call, self.reply_before.get(id(call))))
        self._timed(when)

    def _timed(self, when: float | None) -> None:
        """Times for the events the reader added: an assistant message ends at its last item's line."""
        events = self.reader.events
        new = events[self.events_seen:]
        self.events_seen = len(events)
        for e in new:
            if isinstance(e, Message) and e.role == "user" and e.text.lstrip().startswith(_CONTEXT_TAGS):
                e.role, e.extra["role"] = "system", "user"  # Codex's own context, not the person's words
            if isinstance(e, Message):
                if e.role == "assistant":
                    e.t_end = self.last_model_time if e.t_end is None else e.t_end
                elif e.t_start is None:
                    e.t_start = e.t_end = when
        calls = [e for e in new if isinstance(e, ToolCall)]
        for call in [*calls, *(self.reader.open.calls if self.reader.open is not None else [])]:
            if id(call) not in self.started:  # a call starts at its item's line
                self.started[id(call)] = when
                self.reply_before[id(call)] = self.reply_time
                call.t_start = when
            self.calls[call.extra.get("source_call_id", call.call_id)] = call

    def finish(self, trace_id: str) -> Trace:
        self.reader.close()
        self._timed(self.last_model_time)
        if self.same_instant and len(self.same_instant) == self.answered:
            self._reply_end_starts()
        for call_id, code in self.exit_codes.items():
            if code != 0 and call_id in self.calls:
                self.calls[call_id].error = True
        if self.reader.other:
            self.metadata["other_items"] = self.reader.other
        trace = Trace(trace_id=trace_id, group=trace_id, source=SOURCE, metadata=self.metadata, tools=[],
                      events=self.reader.events)
        trace.validate()
        return trace


    def _reply_end_starts(self) -> None:
        """Every call of the file was written with its output (older Codex, after the tool ran): each
        started where the model's reply ended, and so did its reply."""
        for call, reply in self.same_instant:
            if reply is None or call.t_end is None or reply >= call.t_end:
                continue
            call.t_start = reply
            call.extra["t_start_from"] = "reply_end"
            for e in reversed(self.reader.events):
                if isinstance(e, Message) and e.role == "assistant" and e.turn == call.turn:
                    e.t_end = min(e.t_end, reply) if e.t_end is not None else reply
                    break


def _output_item(item: dict) -> dict:
    """An output as the item reader takes it: Codex's older `{content, success}` object is its content,
    failed when success is false."""
    output = item.get("output")
    if isinstance(output, dict) and "content" in output and set(output) <= {"content", "success",
                                                                              "content_items"}:
        item = {**item, "output": output.get("content_items") or output["content"]}
        if output.get("success") is False:
            item["is_error"] = True
    return item


def _failed(output: str | None) -> bool:
    """A shell call's output that reports a non-zero exit code (JSON metadata or the text header)."""
    if not output:
        return False
    if output.startswith("{"):
        try:
            parsed = json.loads(output)
        except ValueError:
            parsed = None
        meta = parsed.get("metadata") if isinstance(parsed, dict) else None
        code = meta.get("exit_code") if isinstance(meta, dict) else None
        return isinstance(code, int) and code != 0
    head = output.split("\nOutput:", 1)[0][:400]
    m = _EXIT.search(head)
    return m is not None and int(m.group(1)) != 0


def _trace(lines: list[tuple[Location, Any]]) -> Trace:
    first_at, first = lines[0]
    rollout = _Rollout(first_at)
    legacy = not (isinstance(first, dict) and first.get("type") in LINE_TYPES)
    for n, (at, line) in enumerate(lines):
        line = expect(line, dict, at, "line")
        when = _time(at, line.get("timestamp"), "timestamp")
        if legacy:
            if n == 0:
                rollout.session_meta(at, line, when)
            elif line.get("record_type") == "state":
                rollout.metadata.setdefault("state", []).append({k: v for k, v in line.items()
                                                                 if k != "record_type"})
            else:
                rollout.item(at, line, "item", when)
            continue
        kind = expect(line.get("type"), str, at, "type")
        payload = line.get("payload")
        if kind == "response_item":
            rollout.item(at, payload, "payload", when)
        elif kind == "session_meta":
            meta = expect(payload, dict, at, "payload")
            if "id" in rollout.metadata:  # a resumed or forked session repeats its meta
                rollout.metadata.setdefault("session_meta_repeats", []).append(meta)
            else:
                rollout.session_meta(at, meta, when)
        elif kind == "turn_context":
            context = expect(payload, dict, at, "payload")
            if "turn_context" not in rollout.metadata:
                rollout.metadata["turn_context"] = context
                if isinstance(context.get("model"), str):
                    rollout.metadata["agent_model"] = context["model"]
            elif context != rollout.metadata["turn_context"]:
                rollout.metadata.setdefault("turn_context_changes", []).append({"line": at.line, **context})
        elif kind == "compacted":
            compacted = expect(payload, dict, at, "payload")
            rollout.metadata.setdefault("compactions", []).append({"line": at.line, **compacted})
        elif kind == "event_msg":
            event = expect(payload, dict, at, "payload")
            name = str(event.get("type"))
            counts = rollout.metadata.setdefault("event_msg_counts", {})
            counts[name] = counts.get(name, 0) + 1
            if name == "exec_command_end" and isinstance(event.get("call_id"), str) \
                    and isinstance(event.get("exit_code"), int):
                rollout.exit_codes[event["call_id"]] = event["exit_code"]
        else:  # a line type newer than this reader: kept, not guessed at
            rollout.metadata.setdefault("other_lines", []).append({"line": at.line, **line})
    session = rollout.metadata.get("id")
    trace_id = session if isinstance(session, str) and session else _stem(first_at.path)
    return rollout.finish(trace_id)


def _stem(path: str) -> str:
    name = PurePath(path).name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def _time(at: Location, value: Any, field: str) -> float | None:
    """An ISO 8601 timestamp ("2025-10-29T00:59:38.317Z") as seconds since the epoch."""
    if value is None:
        return None
    text = expect(value, str, at, field)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise TraceFormatError(at, f"not an ISO 8601 time: {text!r}", field=field) from None


FORMAT = TraceFormat(
    "codex",
    "OpenAI Codex CLI rollouts (~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl, and the older bare-item "
    "rollouts): one trace per session",
    sniff,
    read,
)
