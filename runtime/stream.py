"""Speculation from the LLM's stream: what the agent's model is writing narrows what it will call.

An agent that streams its LLM's output hands each streamed event to a `StreamFeeder` before (or while)
it renders it, then issues its calls through `runtime.call` as usual:

    feeder = StreamFeeder(runtime, session)
    try:
        async for chunk in await client.chat.completions.create(..., stream=True):
            feeder.openai_chunk(chunk)            # or .openai_response_event(ev) / .anthropic_event(ev)
            ...                                   # the agent's own handling of the chunk
    except BaseException:
        feeder.abort()                            # cancelled or failed: what it started is discarded
        raise
    calls = feeder.finish()                       # [(tool, args)] the stream completed
    results = await asyncio.gather(*(runtime.call(session, t, a) for t, a in calls))

What the feeder does with the deltas:

- A tool call's arguments arrive as JSON fragments (OpenAI chat `choices[].delta.tool_calls[].function.
  arguments`, Responses `response.function_call_arguments.delta`, Anthropic `content_block_delta` with an
  `input_json_delta`). The moment the fragments so far parse as a complete JSON object the call is known
  (p = 1): `runtime.stream_call` starts it if its tool may run ahead (the same contract, schema and budget
  checks as any candidate), and the agent's `call` of it, when the message ends, joins the run.
- Text and reasoning deltas are the LLM saying what it is about to do ("Let me look up reservation
  ZFA04Y"): every `throttle_s` seconds with at least `min_chars` new characters, and once when the first
  call begins, the runtime predicts again with that text in the context (`runtime.stream_text`).
- A stream that stops without finishing (the agent's `abort()`, a truncated message: OpenAI
  `finish_reason: "length"`, Responses `response.incomplete` / `response.failed`, Anthropic `stop_reason:
  "max_tokens"` or an `error` event) discards every run it started: nothing it began is ever served. A
  call whose arguments never parse (invalid JSON) is never started. Results are private to the session's
  cache either way: only a real call of exactly that (tool, canonical args) can take one.

Events may be dicts (the wire JSON) or SDK objects (anything with `model_dump()`). Call the feeder from
inside the event loop the runtime runs on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from toolcast.runtime.cache import Entry
from toolcast.runtime.runtime import SpeculativeRuntime

log = logging.getLogger("toolcast.runtime.stream")

TRUNCATED = {"length", "max_tokens", "content_filter", "refusal"}
"""Stop reasons of a message that did not end as the LLM meant it to: its calls are not trusted."""


@dataclass
class _PendingCall:
    name: str = ""
    arguments: str = ""
    args: dict[str, Any] | None = None
    """The parsed arguments, once complete."""
    entries: list[Entry] = field(default_factory=list)


def _as_dict(event: Any) -> dict[str, Any]:
    if isinstance(event, dict):
        return event
    dump = getattr(event, "model_dump", None)
    if callable(dump):
        return dump()
    raise TypeError(f"a stream event must be a dict or have model_dump(), got {type(event).__name__}")


def _parse_object(text: str) -> dict[str, Any] | None:
    """The arguments, if `text` is a complete JSON object (fragments so far are usually not)."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class StreamFeeder:
    """One assistant message's stream, fed to the runtime for one session."""

    def __init__(self, runtime: SpeculativeRuntime, session: str, *, throttle_s: float = 0.5,
                 min_chars: int = 24):
        self.runtime = runtime
        self.session = session
        self.throttle_s = throttle_s
        self.min_chars = min_chars
        self.text = ""
        self._calls: dict[Any, _PendingCall] = {}
        self._predicted_len = 0
        self._predicted_at: float | None = None
        self._ended = False

    # ---- provider-neutral feeding --------------------------------------------------------------------
    def text_delta(self, delta: str) -> None:
        """Text or reasoning the LLM produced."""
        if self._ended or not delta:
            return
        self.text += delta
        now = self.runtime._now()
        fresh = len(self.text) - self._predicted_len
        due = self._predicted_at is None or now - self._predicted_at >= self.throttle_s
        if fresh >= self.min_chars and due:
            self._predict(now)

    def call_delta(self, index: Any, *, name: str | None = None, arguments: str = "") -> None:
        """A fragment of the call at `index` (its name when first seen, then argument JSON)."""
        if self._ended:
            return
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _PendingCall()
            if self.text and self._predicted_len < len(self.text):
                self._predict(self.runtime._now())  # the text before the first call is complete
        if name:
            call.name = name
        if arguments:
            call.arguments += arguments
        if call.args is None and call.name and call.arguments:
            args = _parse_object(call.arguments)
            if args is not None:
                self._complete(call, args)

    def call_done(self, index: Any, arguments: str | None = None) -> None:
        """The call at `index` is complete (a stop event): `arguments` = the whole JSON where given."""
        call = self._calls.get(index)
        if call is None or self._ended:
            return
        if arguments is not None:
            call.arguments = arguments
        if call.args is None and call.name:
            args = _parse_object(call.arguments or "{}")
            if args is not None:
                self._complete(call, args)
            else:
                log.debug("stream call %s: arguments are not a JSON object; not run ahead", call.name)

    def finish(self) -> list[tuple[str, dict[str, Any]]]:
        """The stream ended normally: the (tool, args) of the calls it completed, in order."""
        if self._ended:
            return []
        for index, call in list(self._calls.items()):
            if call.args is None:
                self.call_done(index)
        self._ended = True
        done = [(c.name, c.args) for c in self._calls.values() if c.args is not None]
        bad = [c for c in self._calls.values() if c.args is None]
        self._discard(bad)
        return done

    def abort(self) -> None:
        """The stream ended without its calls (cancelled, failed, truncated): discard what it started."""
        if self._ended:
            return
        self._ended = True
        self._discard(list(self._calls.values()))

    # ---- provider shapes -----------------------------------------------------------------------------
    def openai_chunk(self, chunk: Any) -> None:
        """A Chat Completions `chat.completion.chunk`."""
        d = _as_dict(chunk)
        for choice in d.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # n > 1: only the first choice is the agent's message
            delta = choice.get("delta") or {}
            for key in ("reasoning_content", "reasoning", "content"):
                if isinstance(delta.get(key), str):
                    self.text_delta(delta[key])
            for tc in delta.get("tool_calls") or []:
                fn = tc.get("function") or {}
                self.call_delta(tc.get("index", 0), name=fn.get("name"), arguments=fn.get("arguments") or "")
            reason = choice.get("finish_reason")
            if reason in TRUNCATED:
                self.abort()
            elif reason is not None:
                for index in list(self._calls):
                    self.call_done(index)

    def openai_response_event(self, event: Any) -> None:
        """A Responses API streaming event."""
        d = _as_dict(event)
        kind = d.get("type", "")
        if kind in ("response.output_text.delta", "response.reasoning_text.delta",
                    "response.reasoning_summary_text.delta"):
            self.text_delta(d.get("delta") or "")
        elif kind == "response.output_item.added":
            item = d.get("item") or {}
            if item.get("type") == "function_call":
                self.call_delta(d.get("output_index"), name=item.get("name"),
                                arguments=item.get("arguments") or "")
        elif kind == "response.function_call_arguments.delta":
            self.call_delta(d.get("output_index"), arguments=d.get("delta") or "")
        elif kind == "response.function_call_arguments.done":
            self.call_done(d.get("output_index"), d.get("arguments"))
        elif kind in ("response.incomplete", "response.failed", "error"):
            self.abort()

    def anthropic_event(self, event: Any) -> None:
        """A Messages API streaming event."""
        d = _as_dict(event)
        kind = d.get("type", "")
        if kind == "content_block_start":
            block = d.get("content_block") or {}
            if block.get("type") in ("tool_use", "server_tool_use"):
                self.call_delta(d.get("index"), name=block.get("name"))
            elif block.get("type") == "text" and block.get("text"):
                self.text_delta(block["text"])
        elif kind == "content_block_delta":
            delta = d.get("delta") or {}
            if delta.get("type") == "input_json_delta":
                self.call_delta(d.get("index"), arguments=delta.get("partial_json") or "")
            elif delta.get("type") == "text_delta":
                self.text_delta(delta.get("text") or "")
            elif delta.get("type") == "thinking_delta":
                self.text_delta(delta.get("thinking") or "")
        elif kind == "content_block_stop":
            self.call_done(d.get("index"))
        elif kind == "message_delta":
            if (d.get("delta") or {}).get("stop_reason") in TRUNCATED:
                self.abort()
        elif kind == "error":
            self.abort()

    # ---- internals ----------------------------------------------------------------------------------
    def _predict(self, now: float) -> None:
        self._predicted_len, self._predicted_at = len(self.text), now
        self.runtime.stream_text(self.session, self.text)

    def _complete(self, call: _PendingCall, args: dict[str, Any]) -> None:
        call.args = args
        entry = self.runtime.stream_call(self.session, call.name, args)
        if entry is not None:
            call.entries.append(entry)

    def _discard(self, calls: list[_PendingCall]) -> None:
        self.runtime.stream_dropped(self.session, [e for c in calls for e in c.entries])
