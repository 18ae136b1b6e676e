"""Gemini `Content` lists -> canonical events: the part of the Gemini importer (gemini.py) that reads
`{"role", "parts": [Part]}` turns, whether they come from a request, an appended response or an ADK session.

The rules (a result's matching, outputs, errors, code execution, thoughts) are stated in gemini.py's
docstring; the field names follow https://ai.google.dev/api/caching#Content and the google-genai types.
Every key is read in camelCase or in snake_case (the SDK's `model_dump`), and a null value counts as absent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import expect
from toolcast.data.formats.chat import CallBook, output_text, parse_arguments
from toolcast.data.schema import Event, Message, ToolCall

CODE_TOOL = "code_execution"
_CALL_KINDS = ("functionCall", "executableCode")
_RESULT_KINDS = ("functionResponse", "codeExecutionResult")
_PART_KINDS = ("text", *_CALL_KINDS, *_RESULT_KINDS)


def snake(camel: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", camel).lower()


def get(d: dict, camel: str) -> tuple[str, Any]:
    """(the key the record used, its value) for a camelCase field or its snake_case twin; null = absent."""
    for key in (camel, snake(camel)):
        if d.get(key) is not None:
            return key, d[key]
    return camel, None


def typed(at: Location, d: dict, camel: str, types: type | tuple[type, ...], path: str) -> tuple[str, Any]:
    """`get`, with the value checked against `types` (an error names `path.key`) unless it is absent."""
    key, value = get(d, camel)
    return key, (expect(value, types, at, f"{path}{key}") if value is not None else None)


def rest(d: dict, known: tuple[str, ...]) -> dict[str, Any]:
    """The keys of `d` outside `known` (either spelling), without nulls."""
    names = {*known, *map(snake, known)}
    return {k: v for k, v in d.items() if k not in names and v is not None}


@dataclass
class Turn:
    """One content to read: where it sits, and what the record around it says about it."""

    path: str
    content: Any
    extra: dict[str, Any] = field(default_factory=dict)
    tokens: int | None = None
    role: str = "user"
    """The role of a content that names none: a request's are the user's, a candidate's the model's."""
    start: float | None = None
    end: float | None = None
    """Seconds: when the turn's producer started (ADK: the previous event's time) and when it was logged."""


@dataclass
class Parts:
    """What one content's parts held, sorted by what becomes of it."""

    texts: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (field path, kind, the part)
    results: list[tuple[str, str, dict]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def read_parts(at: Location, parts: Any, path: str) -> list[Parts]:
    """The parts sorted, in segments: a code execution result ends one (the model went on after it)."""
    segments = [Parts()]
    for i, part in enumerate(expect(parts, list, at, path) if parts is not None else []):
        ppath = f"{path}[{i}]"
        part = expect(part, dict, at, ppath)
        if segments[-1].results and segments[-1].results[-1][1] == "codeExecutionResult":
            segments.append(Parts())
        out = segments[-1]
        thought = typed(at, part, "thought", bool, f"{ppath}.")[1]
        if get(part, "thoughtSignature")[1] is not None:
            out.extra["thought_signatures"] = out.extra.get("thought_signatures", 0) + 1
        found = False
        for kind in _PART_KINDS:
            key, value = get(part, kind)
            if value is None:
                continue
            found = True
            if kind == "text":
                text = expect(value, str, at, f"{ppath}.{key}")
                (out.extra.setdefault("thinking", []) if thought else out.texts).append(text)
            else:
                entry = (f"{ppath}.{key}", kind, part)
                (out.calls if kind in _CALL_KINDS else out.results).append(entry)
        if not found and rest(part, ("thought", "thoughtSignature")):  # inlineData, fileData, ...: kept
            out.extra.setdefault("parts", []).append(rest(part, ()))
    return segments


def merged(segments: list[Parts]) -> Parts:
    out = Parts()
    for s in segments:
        out.texts += s.texts
        out.calls += s.calls
        out.results += s.results
        for k, v in s.extra.items():
            out.extra[k] = out.extra[k] + v if k in out.extra else v
    return out


class _Waiting:
    """The calls of one trace that have no result yet, in the order they were made."""

    def __init__(self) -> None:
        self.book = CallBook()  # unique call ids
        self.calls: list[tuple[str | None, ToolCall]] = []

    def add(self, source_id: str | None, synthetic: str, turn: int, tool: str, args: dict,
            extra: dict[str, Any]) -> ToolCall:
        call = self.book.add(source_id or synthetic, turn, tool, args, extra=extra)
        self.calls.append((source_id, call))
        return call

    def answer(self, rid: str | None, name: str, at: Location, path: str) -> ToolCall:
        """By id when a waiting call has it; else the earliest waiting call of that name."""
        if rid is not None:
            for i, (sid, _) in enumerate(self.calls):
                if sid == rid:
                    return self.calls.pop(i)[1]
            if self.book.knows(rid):
                raise TraceFormatError(at, f"a second result for call id {rid!r}", field=f"{path}.id")
        for i, (sid, call) in enumerate(self.calls):
            if call.tool == name and (rid is None or sid is None):
                return self.calls.pop(i)[1]
        what = f"id {rid!r} and name {name!r}" if rid is not None else f"name {name!r}"
        raise TraceFormatError(at, f"a result for {what}, but no earlier call is waiting for one",
                               field=f"{path}.{'id' if rid is not None else 'name'}")


def turn_events(at: Location, turns: list[Turn]) -> list[Event]:
    """The events of a conversation's turns, calls matched with their results."""
    events: list[Event] = []
    waiting = _Waiting()
    turn = -1
    for t in turns:
        content = expect(t.content, dict, at, t.path)
        rkey, role = typed(at, content, "role", str, f"{t.path}.")
        role = role or t.role
        pkey, parts = get(content, "parts")
        segments = read_parts(at, parts, f"{t.path}.{pkey}")
        content_extra = {**t.extra, **rest(content, ("role", "parts"))}
        if role == "model":
            for n, got in enumerate(segments):
                last = n == len(segments) - 1  # the response's usage and finish reason go with the last
                calls = [_call(at, part, path, kind, waiting, turn + 1, k) for k, (path, kind, part) in
                         enumerate(got.calls)]
                message = Message("assistant", "\n".join(got.texts), t_start=t.start if n == 0 else None,
                                  t_end=t.end if last else None, tokens=t.tokens if last else None,
                                  extra={**got.extra, **content_extra} if last else got.extra)
                if calls:
                    turn += 1
                    message.turn = turn
                events.append(message)
                for call in calls:
                    call.t_start = t.end
                events.extend(calls)
                for path, kind, part in got.results:
                    if kind == "functionResponse":
                        raise TraceFormatError(at, "a model content cannot hold a function response",
                                               field=path)
                    _fill(at, part, path, kind, waiting).t_end = t.end
            continue
        if role not in ("user", "function", "tool"):  # function, tool: roles other SDKs give responses
            raise TraceFormatError(at, f"unknown role {role!r} (expected user or model)",
                                   field=f"{t.path}.{rkey}")
        got = merged(segments)
        extra = {**got.extra, **content_extra}
        if got.calls:
            raise TraceFormatError(at, f"a {role} content cannot hold a call (only model contents do)",
                                   field=got.calls[0][0])
        filled = [_fill(at, part, path, kind, waiting) for path, kind, part in got.results]
        for call in filled:
            call.t_end = t.end
        if got.texts or "parts" in got.extra or not filled:
            if filled:  # sent with the results: one input, the LLM did not answer between them
                extra["with_tool_results"] = True
            events.append(Message("user", "\n".join(got.texts), t_end=t.end, extra=extra))
        elif extra:  # a content of results only: its other keys stay with the last result
            filled[-1].extra["content"] = extra
    return events


def _call(at: Location, part: dict, path: str, kind: str, waiting: _Waiting, turn: int, k: int) -> ToolCall:
    value = expect(get(part, kind)[1], dict, at, path)
    extra = {"part": other} if (other := rest(part, (kind, "thoughtSignature"))) else {}
    source_id = typed(at, value, "id", str, f"{path}.")[1]
    if kind == "executableCode":
        args = rest(value, ("id",))
        return waiting.add(source_id, f"code_{turn}_{k}", turn, CODE_TOOL, args, {**extra, "builtin": True})
    name = typed(at, value, "name", str, f"{path}.")[1]
    name = expect(name, str, at, f"{path}.name")  # required
    akey, args = get(value, "args")
    args = parse_arguments(args, at, f"{path}.{akey}")
    if other := rest(value, ("id", "name", "args")):  # partialArgs, willContinue (streamed calls)
        extra["call"] = other
    return waiting.add(source_id, f"call_{turn}_{k}", turn, name, args, extra)


def _fill(at: Location, part: dict, path: str, kind: str, waiting: _Waiting) -> ToolCall:
    value = expect(get(part, kind)[1], dict, at, path)
    rid = typed(at, value, "id", str, f"{path}.")[1]
    if kind == "codeExecutionResult":
        call = waiting.answer(rid, CODE_TOOL, at, path)
        outcome = typed(at, value, "outcome", str, f"{path}.")[1]
        call.output = output_text(get(value, "output")[1])
        call.error = outcome is not None and outcome != "OUTCOME_OK"
        if outcome is not None:
            call.extra["outcome"] = outcome
        return call
    nkey, name = typed(at, value, "name", str, f"{path}.")
    name = expect(name, str, at, f"{path}.{nkey}")  # required
    call = waiting.answer(rid, name, at, path)
    if call.tool != name:
        raise TraceFormatError(at, f"the result with id {rid!r} names {name!r}, but that call was to "
                               f"{call.tool!r}", field=f"{path}.{nkey}")
    response = typed(at, value, "response", dict, f"{path}.")[1]
    if response is not None:
        error = response.get("error")
        call.error = error is not None and error is not False and error != ""
        call.error |= response.get("status") == "error"  # ADK's convention: {"status", "error_message"}
        if set(response) == {"output"}:
            call.output = output_text(response["output"])
        elif set(response) == {"error"}:
            call.output = output_text(error)
        else:
            call.output = output_text(response)
    if other := rest(value, ("id", "name", "response")):  # multimodal parts, willContinue, scheduling
        call.extra["response_fields"] = other
    return call
