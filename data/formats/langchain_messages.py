"""LangChain messages -> canonical events: the message-level half of the `langchain` format.

Kept apart from `langchain.py` (records, LangGraph shapes, detection) so each file reads top to bottom;
the rules (which fields become what, how results find their calls) are in that module's docstring.
Field names and block types follow langchain-core's messages and v1 content blocks (the URLs are in
langchain.py and tests/fixtures/langchain/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import expect
from toolcast.data.formats.chat import CallBook, output_text, parse_arguments
from toolcast.data.schema import Event, Message, ToolCall

_BASE = {"human": "user", "ai": "ai", "system": "system", "developer": "developer", "chat": "chat",
         "tool": "tool", "function": "function"}
CLASSES: dict[str, str] = {  # dumpd class name -> kind
    **{f"{t.capitalize()}Message": k for t, k in _BASE.items() if t != "ai"}, "AIMessage": "ai",
    **{f"{t.capitalize()}MessageChunk": k for t, k in _BASE.items() if t != "ai"}, "AIMessageChunk": "ai",
    "RemoveMessage": "remove"}
KINDS: dict[str, str] = {  # `type` field -> kind; chunks read like their message
    **_BASE, "remove": "remove", **{name: k for name, k in CLASSES.items() if name.endswith("Chunk")}}
_CALL_BLOCKS = ("tool_call", "tool_use", "server_tool_call", "server_tool_use", "mcp_tool_use",
                "invalid_tool_call")
_INPUT_BLOCKS = ("tool_use", "server_tool_use", "mcp_tool_use")  # arguments under `input`, not `args`
_CHAT_ROLES = {"user": "user", "human": "user", "assistant": "assistant", "ai": "assistant",
               "system": "system", "developer": "developer"}


def is_message(m: Any) -> bool:
    """A LangChain message in one of its three dumped forms."""
    if not isinstance(m, dict):
        return False
    if m.get("lc") == 1 and m.get("type") == "constructor":
        ids = m.get("id")
        return isinstance(ids, list) and bool(ids) and _name(ids[-1]) in CLASSES
    return _name(m.get("type")) in KINDS and (isinstance(m.get("data"), dict) or "content" in m)


def is_message_str(m: Any) -> bool:
    """A message's str() ("content='...' additional_kwargs={} response_metadata={} ..."), which
    `json.dumps(state, default=str)` writes for each message: recognised only to say why it cannot be read."""
    return isinstance(m, str) and m.startswith(("content='", 'content="', "content=[")) and any(
        f" {key}=" in m for key in ("additional_kwargs", "tool_call_id", "id"))


def _name(value: Any) -> str | None:
    """A string to look up in a table, or None (a list or dict from a broken log is unhashable)."""
    return value if isinstance(value, str) else None


# ---- content -----------------------------------------------------------------------------------------


@dataclass
class _Blocks:
    """One message's content, sorted by what becomes of it."""

    texts: list[str] = field(default_factory=list)
    calls: list[tuple[str, dict]] = field(default_factory=list)  # (field path, block)
    results: list[tuple[str, dict]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _blocks(at: Location, content: Any, path: str) -> _Blocks:
    out = _Blocks()
    for i, block in enumerate([content] if isinstance(content, str) else expect(content, list, at, path)):
        bpath = f"{path}[{i}]"
        if isinstance(block, str):
            out.texts.append(block)
            continue
        kind = expect(expect(block, dict, at, bpath).get("type"), str, at, f"{bpath}.type")
        if kind == "text":
            out.texts.append(expect(block.get("text"), str, at, f"{bpath}.text"))
            if set(block) - {"type", "text", "id", "index"}:  # citations, annotations, extras
                out.extra.setdefault("blocks", []).append(block)
        elif kind in _CALL_BLOCKS:
            out.calls.append((bpath, block))
        elif kind.endswith("_tool_result"):
            out.results.append((bpath, block))
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            out.extra.setdefault("thinking", []).append(block["thinking"])
        elif kind == "reasoning" and _reasoning_text(block) is not None:
            out.extra.setdefault("reasoning", []).append(_reasoning_text(block))
        else:  # image, file, non_standard, tool_call_chunk, ...: not text, but never silently dropped
            out.extra.setdefault("blocks", []).append(block)
    return out


def _reasoning_text(block: dict) -> str | None:
    """A v1 reasoning block's `reasoning`, or an OpenAI Responses reasoning item's summary texts."""
    if isinstance(block.get("reasoning"), str):
        return block["reasoning"]
    summary = block.get("summary") if isinstance(block.get("summary"), list) else []
    texts = [s.get("text") if isinstance(s, dict) else None for s in summary]
    return "\n".join(texts) if texts and all(isinstance(t, str) for t in texts) else None


def _tool_output(content: Any) -> tuple[str | None, Any]:
    """A tool result's content as output text, and the whole list when its other parts are not in it."""
    if content is None or isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        return output_text(content), None
    texts = [p if isinstance(p, str) else p["text"] for p in content if isinstance(p, str) or (
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str))]
    if len(texts) == len(content):
        return "\n".join(texts), None
    return ("\n".join(texts), content) if texts else (output_text(content), None)


def _rest(m: dict, used: tuple[str, ...]) -> dict[str, Any]:
    """The fields not read into the canonical trace; empty defaults (None, {}, [], "", example=False)
    say nothing and are left out."""
    return {k: v for k, v in m.items() if k not in used and v is not None and (k, v) != ("example", False)
            and not (isinstance(v, (dict, list, str)) and not v)}


# ---- messages ----------------------------------------------------------------------------------------


class MessageReader:
    """Reads one record's messages in order, matching results to calls."""

    def __init__(self, at: Location, metadata: dict[str, Any]):
        self.at, self.metadata = at, metadata
        self.book = CallBook()
        self.idless: list[ToolCall] = []  # calls logged without an id, waiting for a result
        self.legacy: list[ToolCall] = []  # function_call calls waiting for their FunctionMessage
        self.turn = -1

    def events(self, messages: list, prefix: str) -> list[Event]:
        events: list[Event] = []
        for j, raw in enumerate(messages):
            kind, m, path = self._unwrap(raw, f"{prefix}[{j}]")
            if "content" not in m and kind != "remove":
                raise TraceFormatError(self.at, "is missing", field=f"{path}.content")
            if kind == "ai":
                events.extend(self._ai(m, path, j))
            elif kind in ("tool", "function"):
                self._result(kind, m, path)
            elif kind == "remove":
                self.metadata.setdefault("removed_message_ids", []).append(m.get("id"))
            else:
                events.append(self._plain(kind, m, path))
        return events

    def _unwrap(self, raw: Any, path: str) -> tuple[str, dict, str]:
        """(kind, message fields, field path of those fields) of a message in any of its three forms."""
        if is_message_str(raw):
            raise TraceFormatError(self.at, "is a message's str(), as json.dumps(..., default=str) writes "
                                   "it: its type, tool calls and ids are lost; save messages with "
                                   "messages_to_dict(), dumpd() or model_dump() (e.g. default=lambda o: "
                                   "o.model_dump())", field=path)
        m = expect(raw, dict, self.at, path)
        if m.get("lc") == 1 and m.get("type") == "constructor":
            ids, kw = expect(m.get("id"), list, self.at, f"{path}.id"), f"{path}.kwargs"
            if not ids or _name(ids[-1]) not in CLASSES:
                raise TraceFormatError(self.at, f"unknown message class {ids[-1:]}", field=f"{path}.id")
            return CLASSES[ids[-1]], expect(m.get("kwargs"), dict, self.at, kw), kw
        kind = _name(m.get("type"))
        if kind not in KINDS:
            raise TraceFormatError(self.at, f"not a LangChain message type: {kind!r} (expected one of "
                                   f"{', '.join(KINDS)}, or a dumpd constructor)", field=f"{path}.type")
        if "data" in m and "content" not in m:  # messages_to_dict
            return KINDS[kind], expect(m["data"], dict, self.at, f"{path}.data"), f"{path}.data"
        return KINDS[kind], m, path

    def _plain(self, kind: str, m: dict, path: str) -> Message:
        role, extra = kind, {}
        if kind == "chat":
            source_role = expect(m.get("role"), str, self.at, f"{path}.role")
            role = _CHAT_ROLES.get(source_role, "user")
            if source_role not in _CHAT_ROLES:  # another agent or a custom role: input to the LLM
                extra["role"] = source_role
        if role == "developer":
            role, extra["role"] = "system", "developer"
        blocks = _blocks(self.at, m["content"], f"{path}.content")
        extra.update(blocks.extra)
        for _, b in blocks.calls + blocks.results:  # only an AI message issues calls: kept, not read
            extra.setdefault("blocks", []).append(b)
        extra.update(_rest(m, ("type", "content", "role")))
        return Message(role, "\n".join(blocks.texts), extra=extra)

    def _ai(self, m: dict, path: str, j: int) -> list[Event]:
        at, turn = self.at, self.turn + 1
        blocks = _blocks(at, m["content"], f"{path}.content")
        extra = {**blocks.extra, **_rest(m, ("type", "content", "tool_calls", "invalid_tool_calls",
                                             "tool_call_chunks", "additional_kwargs"))}
        calls: list[ToolCall] = []
        items = [(tc, f"{path}.{key}[{k}]", key == "invalid_tool_calls")
                 for key in ("tool_calls", "invalid_tool_calls")
                 for k, tc in enumerate(expect(m.get(key) or [], list, at, f"{path}.{key}"))]
        known = {tc["id"] for tc, _, _ in items if isinstance(tc, dict) and isinstance(tc.get("id"), str)}
        items += [(b, p, b["type"] == "invalid_tool_call") for p, b in blocks.calls
                  if not (isinstance(b.get("id"), str) and b["id"] in known)]
        for tc, p, invalid in items:  # the same call in content and in tool_calls is read once
            call = self._call(expect(tc, dict, at, p), p, turn, f"call:{j}:{len(calls)}", invalid)
            if call is None:  # an invalid call without a name
                extra.setdefault("invalid_tool_calls", []).append(tc)
            else:
                calls.append(call)
        kwargs = _rest(expect(m.get("additional_kwargs") or {}, dict, at, f"{path}.additional_kwargs"), ())
        if not items:
            calls = self._legacy_calls(kwargs, f"{path}.additional_kwargs", turn, j)
        for p, b in blocks.results:  # server tools: their results sit in the same AI message
            self._fill_server(b, p)
        if items or calls:  # the provider's raw form of the same calls
            kwargs = {k: v for k, v in kwargs.items()
                      if k != "tool_calls" and (items or k != "function_call")}
        if kwargs:
            extra["additional_kwargs"] = kwargs
        usage = expect(m.get("usage_metadata") or {}, dict, at, f"{path}.usage_metadata")
        tokens = usage.get("output_tokens")
        if tokens is not None:
            tokens = expect(tokens, int, at, f"{path}.usage_metadata.output_tokens")
        meta = m.get("response_metadata")
        model = (meta.get("model_name") or meta.get("model")) if isinstance(meta, dict) else None
        if isinstance(model, str) and model:
            self.metadata.setdefault("agent_model", model)
        message = Message("assistant", "\n".join(blocks.texts), tokens=tokens, extra=extra)
        if calls:
            self.turn = message.turn = turn
        return [message, *calls]

    def _call(self, tc: dict, path: str, turn: int, fallback_id: str, invalid: bool) -> ToolCall | None:
        """A tool_calls / invalid_tool_calls item or a call block; None for an invalid call with no name."""
        at, kind = self.at, tc.get("type")
        if invalid and tc.get("name") is None:
            return None
        name = expect(tc.get("name"), str, at, f"{path}.name")
        source_id = expect(tc["id"], str, at, f"{path}.id") if tc.get("id") is not None else None
        key = "input" if kind in _INPUT_BLOCKS else "args"
        extra = _rest(tc, ("type", "name", "id", "args", "input", "index", "error"))
        if kind not in (None, "tool_call", "tool_use", "invalid_tool_call"):
            extra["block"] = kind
        try:
            args = parse_arguments(tc.get(key), at, f"{path}.{key}")
        except TraceFormatError:
            if not invalid:
                raise
            args = {}  # the LLM's broken arguments: the call was made, its raw text is kept
        if invalid:
            extra["invalid_tool_call"] = {"args": tc.get(key), "error": tc.get("error")}
        if source_id is None:
            call = self.book.add(fallback_id, turn, name, args, extra={**extra, "no_call_id": True})
            self.idless.append(call)
            return call
        return self.book.add(source_id, turn, name, args, extra=extra)

    def _legacy_calls(self, kwargs: dict, path: str, turn: int, j: int) -> list[ToolCall]:
        """Calls of a message dumped before `tool_calls` existed: OpenAI's raw form in additional_kwargs."""
        at, calls = self.at, []
        for k, tc in enumerate(expect(kwargs.get("tool_calls") or [], list, at, f"{path}.tool_calls")):
            p = f"{path}.tool_calls[{k}]"
            fn = expect(expect(tc, dict, at, p).get("function"), dict, at, f"{p}.function")
            name = expect(fn.get("name"), str, at, f"{p}.function.name")
            args = parse_arguments(fn.get("arguments"), at, f"{p}.function.arguments")
            calls.append(self.book.add(expect(tc.get("id"), str, at, f"{p}.id"), turn, name, args))
        if kwargs.get("function_call") is not None:
            fc = expect(kwargs["function_call"], dict, at, f"{path}.function_call")
            name = expect(fc.get("name"), str, at, f"{path}.function_call.name")
            args = parse_arguments(fc.get("arguments"), at, f"{path}.function_call.arguments")
            calls.append(self.book.add(f"function_call:{j}", turn, name, args, extra={"function_call": True}))
            self.legacy.append(calls[-1])
        return calls

    def _result(self, kind: str, m: dict, path: str) -> None:
        """A ToolMessage (by tool_call_id) or a FunctionMessage (by name) fills its call."""
        at = self.at
        if kind == "function":
            name = expect(m.get("name"), str, at, f"{path}.name")
            call = next((c for c in reversed(self.legacy) if c.tool == name), None)
            if call is None:
                raise TraceFormatError(at, f"function result for {name!r}, but no earlier function_call of "
                                       "that name is waiting for one", field=f"{path}.name")
            self.legacy.remove(call)
        else:
            call_id = expect(m.get("tool_call_id"), str, at, f"{path}.tool_call_id")
            call = self.book.answer(call_id)
            if call is None and not self.book.knows(call_id):  # a call logged without an id
                call = next((c for c in self.idless if c.tool == m.get("name")), None)
            if call is None:
                call = self.book.answer_or_fail(call_id, at, f"{path}.tool_call_id")
            self.idless = [c for c in self.idless if c is not call]
            if m.get("status") is not None:
                status = expect(m["status"], str, at, f"{path}.status")
                if status not in ("success", "error"):
                    raise TraceFormatError(at, f"expected 'success' or 'error', got {status!r}",
                                           field=f"{path}.status")
                call.error = status == "error"
        call.output, parts = _tool_output(m.get("content"))
        if parts is not None:
            call.extra["result_content"] = parts
        same_name = "name" if m.get("name") == call.tool else ""
        rest = _rest(m, ("type", "content", "tool_call_id", "status", same_name))
        if "artifact" in rest:
            call.extra["artifact"] = rest.pop("artifact")
        if rest:
            call.extra["result"] = rest

    def _fill_server(self, block: dict, path: str) -> None:
        """A `server_tool_result` {tool_call_id, status, output} or a provider `*_tool_result` block."""
        key = "tool_call_id" if block["type"] == "server_tool_result" else "tool_use_id"
        source_id = expect(block.get(key), str, self.at, f"{path}.{key}")
        call = self.book.answer_or_fail(source_id, self.at, f"{path}.{key}")
        if key == "tool_call_id":
            call.output, call.error = output_text(block.get("output")), block.get("status") == "error"
        else:
            call.output, parts = _tool_output(block.get("content"))
            call.error = block.get("is_error") is True
            if parts is not None:
                call.extra["result_content"] = parts
