"""The item lists of the OpenAI Responses API -> canonical events, for `openai_responses.py`.

One `ItemReader` reads the items of one record in order (instructions, input, output) and keeps what
the trace needs besides its events: tools listed by MCP servers, results of calls made in earlier
requests, and items that are no events. The rules (what is one LLM generation, which item is a call,
how results find their call) are stated in `openai_responses.py`'s docstring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import expect, schema_error
from toolcast.data.formats.chat import RESPONSES_PARTS, CallBook, output_text, parse_arguments
from toolcast.data.schema import Event, Message, SchemaError, ToolCall, ToolSpec

# item type -> (tool name, the key holding its arguments); hosted calls carry their own result
_HOSTED = {"web_search_call": ("web_search", "action"), "file_search_call": ("file_search", "queries"),
           "code_interpreter_call": ("code_interpreter", "code"),
           "image_generation_call": ("image_generation", "")}
_CLIENT = {"computer_call": ("computer", "action"), "local_shell_call": ("local_shell", "action"),
           "shell_call": ("shell", "action"), "apply_patch_call": ("apply_patch", "operation")}
_NAMED = ("function_call", "custom_tool_call", "mcp_call", "mcp_approval_request")
_OUTPUTS = ("function_call_output", "custom_tool_call_output", "computer_call_output",
            "local_shell_call_output", "shell_call_output", "apply_patch_call_output")  # call id required
_OTHER = ("message", "reasoning", "mcp_list_tools", "mcp_approval_response", "item_reference", "compaction",
          "tool_search_call", "tool_search_output", "program_output", "additional_tools",
          "configuration_update", "compaction_trigger")
# the OpenAI Agents SDK for JavaScript (`result.history`) names a few items its own way
_JS_TYPES = {"function_call_result": "function_call_output", "computer_call_result": "computer_call_output",
             "program": "program_call", "hosted_tool_call": "hosted_tool_call", "unknown": "unknown"}
ITEM_TYPES = frozenset((*_HOSTED, *_CLIENT, *_NAMED, *_OUTPUTS, *_OTHER, *_JS_TYPES))
__all__ = ["ITEM_TYPES", "RESPONSES_PARTS", "ItemReader"]
_ROLES = ("user", "assistant", "system", "developer")
# what the Agents SDK (Python's default_tool_error_function; the JS SDK adds " Error: ...") sends the model
# as the output of a tool that raised: the only mark of a failed call in its histories and sessions
AGENTS_TOOL_ERROR = "An error occurred while running the tool. Please try again."


# ---- items -------------------------------------------------------------------------------------------


def _key(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _from_js(item: dict) -> dict:
    """An item of the JS Agents SDK's protocol (packages/agents-core/src/types/protocol.ts in
    github.com/openai/openai-agents-js) in the API's spelling: `callId` -> `call_id`,
    function_call_result / computer_call_result -> *_output, a program item -> program_call with its code as
    arguments, reasoning `content` / `rawContent` -> `summary` / `content`, a hosted_tool_call whose
    `providerData` is the API's own item -> that item."""
    if "callId" in item and "call_id" not in item:
        item = {("call_id" if k == "callId" else k): v for k, v in item.items()}
    kind = item.get("type")
    if not isinstance(kind, str):
        return item
    if kind == "hosted_tool_call":
        raw = item.get("providerData")
        if isinstance(raw, dict) and _key(raw.get("type")) in (*_HOSTED, "mcp_call"):
            return raw
    elif kind == "program":
        item = {**item, "type": "program_call", "arguments": {"code": item.get("code")}}
        item.pop("code")
    elif kind in _JS_TYPES:
        item = {**item, "type": _JS_TYPES[kind]}
    elif kind == "reasoning" and "summary" not in item:
        item = {**item, "summary": item.get("content"), "content": item.get("rawContent")}
        item.pop("rawContent", None)
    return item


def _parts(output: Any) -> list | None:
    """A tool output that is content parts; the JS SDK's one {"type": "text" | "image" | "file"} is a list
    of one. Anything else (a string, a JSON value) is not."""
    if isinstance(output, dict) and output.get("type") in ("text", "image", "file"):
        return [output]
    return output if isinstance(output, list) else None


def _rest(item: dict, used: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in used and v is not None}


def _content(at: Location, content: Any, path: str) -> tuple[str, dict[str, Any]]:
    """Text of message content (a string or parts) and what else it held."""
    if content is None or isinstance(content, str):
        return content or "", {}
    texts: list[str] = []
    extra: dict[str, Any] = {}
    for i, part in enumerate(expect(content, (str, list), at, path)):
        part = expect(part, dict, at, f"{path}[{i}]")
        kind = expect(part.get("type"), str, at, f"{path}[{i}].type")
        if kind in ("input_text", "output_text", "text"):
            texts.append(expect(part.get("text"), str, at, f"{path}[{i}].text"))
            for key, value in _rest(part, ("type", "text")).items():  # annotations, logprobs
                if value != []:
                    extra.setdefault(key, []).extend(value if isinstance(value, list) else [value])
        elif kind == "refusal":
            extra["refusal"] = expect(part.get("refusal"), str, at, f"{path}[{i}].refusal")
        else:  # input_image, input_file, ...: not text, but never silently dropped
            extra.setdefault("parts", []).append(part)
    return "\n".join(texts), extra


@dataclass
class _Generation:
    """Model items in a row: one assistant message and the calls it issued."""

    texts: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)


class ItemReader:
    """The events of one record, item by item, with the calls waiting for their results."""

    def __init__(self, at: Location, continues: bool) -> None:
        self.at, self.continues = at, continues
        self.events: list[Event] = []
        self.book = CallBook()
        self.turn = -1
        self.open: _Generation | None = None
        self.after_results = False
        self.approvals: dict[str, ToolCall] = {}
        self.untyped: dict[str, list[tuple[str, ToolCall]]] = {}  # calls of new types, by tool, unanswered
        self.listed: list[ToolSpec] = []
        self.servers: list[dict] = []
        self.earlier: list[dict] = []
        self.other: list[dict] = []

    def items(self, items: list, prefix: str) -> None:
        for i, item in enumerate(items):
            self.item(item, f"{prefix}[{i}]")

    def item(self, item: Any, path: str) -> None:
        at = self.at
        item = _from_js(expect(item, dict, at, path))
        kind = expect(item.get("type", "message"), str, at, f"{path}.type")
        if kind == "message":
            self._message(item, path)
        elif kind == "reasoning":
            self._reasoning(item, path)
        elif kind == "mcp_call" and _key(item.get("approval_request_id")) in self.approvals:
            self.close()  # the approved request ran: its result, not a new decision of the model
            self._fill(self.approvals.pop(item["approval_request_id"]), item, path, kind)
            self.after_results = True
        elif kind in _NAMED or kind in _HOSTED or kind in _CLIENT or kind.endswith("_call"):
            self._call(item, path, kind)
        elif kind == "mcp_approval_response":
            self.close()
            request = expect(item.get("approval_request_id"), str, at, f"{path}.approval_request_id")
            call = self.approvals.get(request)
            if call is None:
                raise TraceFormatError(at, f"approval of request id {request!r}, but no earlier approval "
                                       "request has that id", field=f"{path}.approval_request_id")
            call.extra["approval"] = _rest(item, ("type", "approval_request_id"))
        elif kind in _OUTPUTS or kind.endswith("_output"):
            self._result(item, path, kind)
        elif kind == "mcp_list_tools":
            self._list_tools(item, path)
        elif kind == "additional_tools":  # tools made available from here on: function tools are the trace's
            self._more_tools(item, path)
        else:  # item_reference, compaction, ...: state the server keeps; not events of this trace
            self.continues |= kind == "item_reference"
            self.other.append({"path": path, "item": item})

    # ---- what the model generated ----
    def _generation(self) -> _Generation:
        if self.open is None:
            self.open = _Generation()
        self.after_results = False
        return self.open

    def close(self) -> None:
        gen, self.open = self.open, None
        if gen is None:
            return
        message = Message("assistant", "\n".join(gen.texts), extra=gen.extra)
        if gen.calls:
            self.turn += 1
            message.turn = self.turn
        self.events.append(message)
        self.events.extend(gen.calls)

    def _message(self, item: dict, path: str) -> None:
        role = expect(item.get("role"), str, self.at, f"{path}.role")
        if role not in _ROLES:
            raise TraceFormatError(self.at, f"unknown role {role!r} (expected {', '.join(_ROLES)})",
                                   field=f"{path}.role")
        if "content" not in item:
            raise TraceFormatError(self.at, "is missing", field=f"{path}.content")
        text, extra = _content(self.at, item["content"], f"{path}.content")
        rest = _rest(item, ("type", "role", "content"))
        if role == "assistant":
            gen = self._generation()
            gen.texts.append(text)
            for key, value in extra.items():  # lists (annotations, parts) add up over the messages
                joined = isinstance(value, list) and isinstance(gen.extra.get(key), list)
                gen.extra[key] = gen.extra[key] + value if joined else value
            if rest:
                gen.extra.setdefault("items", []).append({"type": "message", **rest})
            return
        self.close()
        extra.update(rest)
        if role == "developer":
            extra["role"] = "developer"
        if role == "user" and self.after_results:  # sent with the results: no generation in between
            extra["with_tool_results"] = True
        self.events.append(Message("user" if role == "user" else "system", text, extra=extra))

    def _reasoning(self, item: dict, path: str) -> None:
        gen = self._generation()
        for key, out in (("summary", "reasoning"), ("content", "reasoning_text")):
            for i, part in enumerate(expect(item.get(key) or [], list, self.at, f"{path}.{key}")):
                part = expect(part, dict, self.at, f"{path}.{key}[{i}]")
                text = expect(part.get("text"), str, self.at, f"{path}.{key}[{i}].text")
                gen.extra.setdefault(out, []).append(text)
        if item.get("encrypted_content") is not None:
            gen.extra["encrypted_reasoning"] = gen.extra.get("encrypted_reasoning", 0) + 1
        rest = _rest(item, ("type", "summary", "content", "encrypted_content"))
        if rest:
            gen.extra.setdefault("items", []).append({"type": "reasoning", **rest})

    def _call(self, item: dict, path: str, kind: str) -> None:
        at = self.at
        id_key = "id" if kind in _HOSTED or kind in ("mcp_call", "mcp_approval_request", "hosted_tool_call") \
            else "call_id"
        generic = kind not in _NAMED and kind not in _CLIENT and kind not in _HOSTED
        if generic and item.get(id_key) is None:
            id_key = "id"  # tool_search_call and other new call types may have no call_id
        if kind == "hosted_tool_call" and item.get("id") is None:  # the JS SDK's id is optional
            item = {**item, "id": f"hosted:{path}"}
        call_id = expect(item.get(id_key), str, at, f"{path}.{id_key}")
        used: tuple[str, ...] = ("type", id_key)
        hosted = kind in _HOSTED or kind in ("mcp_call", "hosted_tool_call")
        if kind == "hosted_tool_call":  # the JS SDK's: {name: "web_search_call", arguments?, output?}
            name = expect(item.get("name"), str, at, f"{path}.name")
            tool = _HOSTED[name][0] if name in _HOSTED else name.removesuffix("_call")
            args = parse_arguments(item.get("arguments"), at, f"{path}.arguments")
            used += ("name", "arguments")
        elif kind in _NAMED:
            tool = expect(item.get("name"), str, at, f"{path}.name")
            if kind == "custom_tool_call":
                args = {"input": expect(item.get("input", ""), str, at, f"{path}.input")}
                used += ("name", "input")
            else:
                args = parse_arguments(item.get("arguments"), at, f"{path}.arguments")
                used += ("name", "arguments")
        elif kind in _HOSTED or kind in _CLIENT:
            tool, key = _HOSTED.get(kind) or _CLIENT[kind]
            value = item.get(key) if key else None
            if kind == "web_search_call" and value is not None:  # action.sources are what the search found
                value = {k: v for k, v in expect(value, dict, at, f"{path}.action").items() if k != "sources"}
            if kind == "computer_call" and value is None and item.get("actions") is not None:
                actions = expect(item["actions"], list, at, f"{path}.actions")  # computer_use: a batch
                args = {"actions": [{k: v for k, v in expect(a, dict, at, f"{path}.actions[{i}]").items()
                                     if v is not None} for i, a in enumerate(actions)]}
                used += ("actions",)
            elif kind in _CLIENT:
                args = expect(value, dict, at, f"{path}.{key}")
            else:
                args = value if isinstance(value, dict) else {} if value is None else {key: value}
            # model_dump() writes unset action fields as null: the same call whichever way it was saved
            args = {k: v for k, v in args.items() if v is not None}
            used += (key,)
        else:  # a call type this reader does not know yet: named by its type, its arguments kept
            tool, value = kind.removesuffix("_call"), item.get("arguments", item.get("action"))
            args = value if isinstance(value, dict) else parse_arguments(value, at, f"{path}.arguments")
            used += ("arguments", "action")
        extra = {"item": kind} if kind != "function_call" else {}
        if kind == "custom_tool_call":
            extra["custom"] = True
        if item.get("server_label") is not None:  # MCP: which server the tool lives on
            extra["server_label"] = item["server_label"]
            used += ("server_label",)
        gen = self._generation()
        call = self.book.add(call_id, self.turn + 1, tool, args, extra=extra)
        gen.calls.append(call)
        if generic:  # its output may name no call id: then it answers the latest call of its tool
            self.untyped.setdefault(tool, []).append((call_id, call))
        if kind == "mcp_approval_request":
            self.approvals[call_id] = call
            call.extra.update(_rest(item, used))
        elif hosted:  # the result came with the call: the model saw it
            self.book.answer(call_id)
            self._fill(call, item, path, kind, used)
            self.close()
            self.after_results = True
        else:
            call.extra.update(_rest(item, used))

    # ---- results ----
    def _result(self, item: dict, path: str, kind: str) -> None:
        self.close()
        key = "call_id" if "call_id" in item or kind != "local_shell_call_output" else "id"
        waiting = self.untyped.get(kind.removesuffix("_output"))
        if item.get(key) is None and kind not in _OUTPUTS and waiting:
            call_id = waiting[-1][0]  # e.g. a tool_search_output of a server-side search: no call_id
        else:
            call_id = expect(item.get(key), str, self.at, f"{path}.{key}")
        call = self.book.answer(call_id)
        if call is None:
            if self.continues and not self.book.knows(call_id):  # a call made in an earlier request
                self.earlier.append({"path": path, "item": item})
                return
            self.book.answer_or_fail(call_id, self.at, f"{path}.{key}")
        self._fill(call, item, path, kind, ("type", key))
        self.after_results = True

    def _fill(self, call: ToolCall, item: dict, path: str, kind: str,
              used: tuple[str, ...] = ("type",)) -> None:
        """The result an item holds: its output, whether it failed, and its other keys in extra."""
        at = self.at
        for source_id, waiting in self.untyped.get(call.tool, [])[::-1]:
            if waiting is call:
                self.untyped[call.tool].remove((source_id, waiting))
        status = item.get("status")
        call.error = status == "failed"
        if kind in _HOSTED:  # web search sources, file search results, code interpreter outputs
            action = item.get("action")
            value = action.get("sources") if kind == "web_search_call" and isinstance(action, dict) else None
            value = item.get("results") if kind == "file_search_call" else value
            value = item.get("outputs") if kind == "code_interpreter_call" else value
            call.output = output_text(value)
            used += ("results", "outputs", "status")
        elif kind in ("mcp_call", "hosted_tool_call"):
            error = item.get("error")
            call.error |= error is not None
            output = item.get("output")
            call.output = output_text(output if output is not None else error)
            used += ("output", "error", "status", "approval_request_id")
        else:
            output = item.get("output")
            if kind == "shell_call_output":
                for i, chunk in enumerate(expect(output, list, at, f"{path}.output")):
                    # each chunk's outcome: {"type": "exit", "exit_code"} or {"type": "timeout"}
                    outcome = expect(expect(chunk, dict, at, f"{path}.output[{i}]").get("outcome"), dict, at,
                                     f"{path}.output[{i}].outcome")
                    code = outcome.get("exit_code", outcome.get("exitCode"))  # exitCode: the JS SDK
                    failed = outcome.get("type") == "timeout" or code not in (0, None)
                    call.error |= failed
                call.output = output_text(output)
            elif kind in ("function_call_output", "custom_tool_call_output") and _parts(output) is not None:
                call.output, parts = _content(at, _parts(output), f"{path}.output")
                if parts:
                    call.extra["result"] = parts
            else:  # strings as they are; computer screenshots, the tools a tool search loaded: JSON text
                value = {"tool_search_output": item.get("tools"), "program_output": item.get("result")}
                call.output = output_text(value.get(kind, output))
                used += ("tools", "result") if kind in value else ()
            if isinstance(output, str) and output.startswith(AGENTS_TOOL_ERROR):  # the Agents SDK's only mark
                call.error = True
            flags = tuple(flag for flag in ("is_error", "error") if isinstance(item.get(flag), bool))
            for flag in flags:  # not in the API; a harness's own mark of a failed call
                call.error = item[flag]
            used += ("output", "status", "name", *flags)  # name: the JS SDK repeats the call's
        rest = _rest(item, used)
        if status is not None and status != "completed":
            rest["status"] = status
        if rest:
            call.extra.setdefault("result", {}).update(rest)

    def _more_tools(self, item: dict, path: str) -> None:
        other = []
        for i, tool in enumerate(expect(item.get("tools") or [], list, self.at, f"{path}.tools")):
            tool = expect(tool, dict, self.at, f"{path}.tools[{i}]")
            if tool.get("type", "function") != "function":
                other.append(tool)
                continue
            d = {k: tool.get(k) for k in ("name", "description", "parameters")}
            try:
                self.listed.append(ToolSpec.from_dict(d, f"{path}.tools[{i}]."))
            except SchemaError as e:
                raise schema_error(self.at, e) from None
        self.other.append({"path": path, "item": {**item, "tools": other}})

    def _list_tools(self, item: dict, path: str) -> None:
        for i, tool in enumerate(expect(item.get("tools") or [], list, self.at, f"{path}.tools")):
            tool = expect(tool, dict, self.at, f"{path}.tools[{i}]")
            d = {"name": tool.get("name"), "description": tool.get("description"),
                 "parameters": tool.get("input_schema"), "annotations": tool.get("annotations")}
            try:
                self.listed.append(ToolSpec.from_dict(d, f"{path}.tools[{i}]."))
            except SchemaError as e:
                e = SchemaError(e.field.replace(".parameters", ".input_schema"), str(e).split(": ", 1)[-1])
                raise schema_error(self.at, e) from None
        self.servers.append(_rest(item, ("type", "tools")))
