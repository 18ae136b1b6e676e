"""OpenAI Responses API items (requests, responses, OpenAI Agents SDK histories) -> canonical traces.

Written against the API reference (https://platform.openai.com/docs/api-reference/responses) as the
generated SDK types spell it (github.com/openai/openai-python, src/openai/types/responses/:
response_input_item_param.py, response_item.py, response.py, response_output_message.py,
response_function_web_search.py, response_file_search_tool_call.py, response_computer_tool_call.py,
response_code_interpreter_tool_call.py, response_custom_tool_call*.py, response_tool_search_*.py,
response_function_shell_tool_call*.py, response_apply_patch_tool_call*.py), the function-calling,
web-search, file-search, reasoning and conversation-state guides
(https://platform.openai.com/docs/guides/function-calling, .../tools-web-search, .../tools-file-search,
.../reasoning, .../conversation-state) and the Agents SDK docs on `result.to_input_list()` and sessions
(https://openai.github.io/openai-agents-python/results/, https://openai.github.io/openai-agents-python/sessions/),
whose items are the API's input items. The JS Agents SDK's `result.history` (its protocol.ts spelling:
`callId`, function_call_result, hosted_tool_call, ...) is read as the same items.

A file holds one record per JSON line, a JSON list of records, or a bare list of items. A record is a
request/response pair or saved conversation `{"input": str | [items], "output"?: [items],
"instructions"?: str | [items], "tools"?, "model"?, "metadata"?, ...}`, a Response object
`{"object": "response", "id", "output", "instructions", "tools", "usage", ...}`, a bare item list
(`to_input_list()`, `session.get_items()`), a page of items `{"object": "list", "data": [items], ...}`
(`client.responses.input_items.list()`, `client.conversations.items.list()`: newest first by default, so
a list where a result precedes its call, or a page from an assistant message back to a user message, is
read reversed, `metadata["item_order"] = "desc"`), or an Agents SDK RunState (`to_state().to_json()`:
`original_input`, then each `generated_items[].raw_item`; a call waiting for approval is kept in
`metadata["pending_approvals"]`). A JSONL of streaming events (`{"type": "response.…", "sequence_number",
...}`) gives one trace per `response.completed` / `.incomplete` / `.failed` event (its `response`, a Response
object; the other events only repeat parts of it); a stream with no such event is an error. One record is
one trace: instructions, input, then output. Null
top-level fields (a `model_dump()` without exclude_none) are left out of metadata.
- trace_id / group: `metadata.id` / `metadata.group`, else the Response's `id`, else `<file stem>:<line
  or index>`; other top-level keys go to metadata (a `model` also to `agent_model`).
- Model items that follow each other with no result or user/system message between are one LLM
  generation (a request's output starts a new one): one assistant `Message` (the texts of its assistant
  messages joined; reasoning summaries in `extra["reasoning"]`, never in the text; encrypted reasoning
  only counted) followed by its calls, all with one `turn` (parallel calls). A hosted call carries its
  own result (web_search_call, file_search_call, code_interpreter_call, image_generation_call, mcp_call),
  so what the model generates after it is a new turn.
- Calls: function_call and custom_tool_call (args `{"input": text}`) by name; mcp_call and
  mcp_approval_request by name, with `server_label` in extra; built-in calls as tools named web_search,
  file_search, computer, code_interpreter, image_generation, local_shell, shell, apply_patch, with their
  `action` / `operation` / `queries` / `code` as args (null fields left out: an SDK `model_dump()` writes
  every unset field so); a computer_call with a batch of `actions` (the computer_use tool) has args
  `{"actions": [...]}`. Any other `*_call` item (tool_search_call, ...):
  a call named by its type, answered by its `*_output` item (with no call_id: the latest such call).
- Results match calls by `call_id` (local_shell_call_output: `call_id`, or `id` as the spec has it); an
  mcp_approval_response records the decision on its request, and the mcp_call that ran after it
  (`approval_request_id`) fills that call. A result for no earlier call is an error naming the field,
  unless the record continues stored state (`previous_response_id`, `conversation`, an item_reference):
  then it is kept in `metadata["earlier_call_outputs"]`. Structured outputs become JSON text; output
  content parts give their text, other parts go to `extra["result"]`.
- `error` is True for an mcp_call `error`, a `failed` status, a shell timeout or non-zero exit code, a
  boolean `is_error` / `error` on a function_call_output (the API has none), or the Agents SDK's fixed
  text for a tool that raised ("An error occurred while running the tool. Please try again."); never
  guessed from other text.
- User text right after results, with no model item between, was sent with them:
  `extra["with_tool_results"]`. developer messages become role "system" with `extra["role"]`.
- Programmatic tool calling: a `program` item is a call of tool "program" (args `{"code"}`) answered by
  its `program_output`'s `result`; the function calls its code made (`caller.type` "program") follow it in
  the same turn.
- Tools: function and custom declarations, built-in tools under the names above (their configs in
  `metadata["builtin_tools"]`), the tools of mcp_list_tools items (with their annotations) and the
  function tools of `additional_tools` items. Unknown
  item types go to `metadata["other_items"]` with their field path; item keys with no canonical field go
  to `extra`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, good_records, schema_error
from toolcast.data.formats.chat import record_ids
from toolcast.data.formats.openai_responses_items import ITEM_TYPES, RESPONSES_PARTS, ItemReader
from toolcast.data.schema import Event, Message, SchemaError, ToolSpec, Trace

SOURCE = "openai_responses"
_RECORD_KEYS = ("input", "output", "instructions", "tools", "metadata")


# ---- detection ---------------------------------------------------------------------------------------


def sniff(record: Any) -> bool:
    if _is_stream_event(record):
        return True
    if isinstance(record, list):
        if record and isinstance(record[0], dict) and _is_record(record[0]):
            return True
        return bool(record) and _is_item_list(record)
    return isinstance(record, dict) and _is_record(record)


def _is_record(d: dict) -> bool:
    """{"object": "response", "output": [...]}, {"input": ..., ...}, an item page {"object": "list", "data":
    [items]} or an Agents SDK RunState; never a chat {"messages": ...}."""
    if "messages" in d or not isinstance(d.get("output", []), list):
        return False
    if d.get("object") == "response":
        return "output" in d
    if _is_page(d):
        return True
    if _is_run_state(d):
        return True
    value = d.get("input")
    if isinstance(value, str):  # {"input": "...", "output": "..."} instruction data is not a log of ours
        return any(k in d for k in ("output", "instructions", "model", "tools"))
    return isinstance(value, list) and _is_item_list(value, signed=False)


def _is_stream_event(d: Any) -> bool:
    """A streaming event (`client.responses.create(stream=True)` / `.stream()`) as its model_dump_json()."""
    return (isinstance(d, dict) and isinstance(d.get("type"), str) and d["type"].startswith("response.")
            and "sequence_number" in d)


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _is_page(d: dict) -> bool:
    """`client.responses.input_items.list()` / `client.conversations.items.list()` dumped: ResponseItemList,
    ConversationItemList {"object": "list", "data": [items], "first_id", "last_id", "has_more"}."""
    data = d.get("data")
    return d.get("object") == "list" and isinstance(data, list) and bool(data) and _is_item_list(data, False)


def _is_run_state(d: dict) -> bool:
    """The Agents SDK's `result.to_state().to_json()` (a run kept to resume after a tool approval)."""
    return "$schemaVersion" in d and isinstance(d.get("generated_items"), list) and "original_input" in d


def _is_item_list(items: list, signed: bool = True) -> bool:
    """Items (typed, or messages with a role); `signed`: one of them is Responses-only, so no chat
    message list (which chat.chat_dialect reads) is taken."""
    sign = not signed
    for item in items:
        if not isinstance(item, dict):
            return False
        kind = item.get("type")
        if isinstance(kind, str) and (kind in ITEM_TYPES or kind.endswith(("_call", "_output"))):
            sign |= kind != "message" or _has_parts(item)
        elif kind is None and isinstance(item.get("role"), str):
            sign |= _has_parts(item)
        else:
            return False
    return sign


def _has_parts(item: dict) -> bool:
    content = item.get("content")
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") in RESPONSES_PARTS
                                             for p in content)


# ---- records -----------------------------------------------------------------------------------------


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    """One trace per record; a record that fails goes to `on_error` whole (no half-read trace)."""
    open_streams: dict[str, Location] = {}  # response id -> where its stream started, until it ends
    for where, record in good_records(records, on_error):
        if _is_stream_event(record):  # only an ending event holds the whole Response; the rest is skipped
            response = record.get("response")
            rid = response.get("id") if isinstance(response, dict) else None
            if record["type"] in _TERMINAL and isinstance(response, dict):
                open_streams.pop(rid, None)
                try:
                    yield _trace(where, response, None)
                except (TraceFormatError, SchemaError) as e:  # its fields sit under the event's "response"
                    e = e if isinstance(e, TraceFormatError) else schema_error(where, e)
                    field = f"response.{e.field}" if e.field else "response"
                    on_error(TraceFormatError(e.where, e.reason, field=field))
            elif isinstance(rid, str):
                open_streams.setdefault(rid, where)
            continue
        many = isinstance(record, list) and record and isinstance(record[0], dict) and _is_record(record[0])
        for i, item in enumerate(record) if many else [(None, record)]:
            at = where.child(f"[{i}]") if i is not None else where
            try:
                yield _trace(at, item, i)
            except TraceFormatError as e:
                on_error(e)
            except SchemaError as e:
                on_error(schema_error(at, e))
    for rid, where in open_streams.items():
        on_error(TraceFormatError(where, f"the stream of response {rid!r} has no response.completed, "
                                  "response.incomplete or response.failed event: the log was cut off"))


def _trace(at: Location, record: Any, index: int | None) -> Trace:
    rec: dict[str, Any] = {} if isinstance(record, list) else expect(record, dict, at, "record")
    if isinstance(record, list) or _is_page(rec) or _is_run_state(rec):
        return _item_trace(at, record, index)
    if "input" not in rec and "output" not in rec:
        raise TraceFormatError(at, "is missing (expected a Responses API record with input or output items)",
                               field="input")
    raw_metadata = rec.get("metadata")
    metadata = dict(expect(raw_metadata, dict, at, "metadata")) if raw_metadata is not None else {}
    for key, value in rec.items():
        if key not in _RECORD_KEYS and value is not None:  # model_dump() writes every field, null or not
            metadata.setdefault(key, value)
    trace_id, group = record_ids(metadata, at, index)
    tools, builtin = _tools(at, rec.get("tools"))
    reader = ItemReader(at, continues=rec.get("previous_response_id") is not None
                     or rec.get("conversation") is not None)
    instructions = rec.get("instructions")
    if isinstance(instructions, str):
        reader.events.append(Message("system", instructions, extra={"instructions": True}))
    elif instructions is not None:
        reader.items(expect(instructions, (str, list), at, "instructions"), "instructions")
    if isinstance(rec.get("input"), str):
        reader.close()
        reader.events.append(Message("user", rec["input"]))
    elif rec.get("input") is not None:
        reader.items(expect(rec["input"], (str, list), at, "input"), "input")
    if rec.get("output") is not None:
        reader.close()  # one response: a generation of its own
        start = len(reader.events)
        reader.items(expect(rec["output"], list, at, "output"), "output")
        reader.close()
        _response_timing(at, rec, reader.events[start:])
    return _finish(at, reader, metadata, trace_id, group, tools, builtin)


def _item_trace(at: Location, record: dict | list, index: int | None) -> Trace:
    """A bare item list, an item page (maybe newest first) or a RunState: items with no request around."""
    metadata: dict[str, Any] = {}
    reader = ItemReader(at, continues=False)
    if isinstance(record, list):
        items, prefix = _in_order(record, False, metadata), ""
    elif _is_page(record):
        metadata.update({k: v for k, v in record.items() if k != "data" and v is not None})
        items, prefix = _in_order(record["data"], True, metadata), "data"
    else:  # RunState: the run's input, then the items it generated ({"type": "..._item", "raw_item": item})
        metadata.update({k: record[k] for k in ("$schemaVersion", "current_turn", "current_agent")
                         if record.get(k) is not None})
        original = record["original_input"]
        if isinstance(original, str):
            reader.events.append(Message("user", original))
        else:
            reader.items(expect(original, list, at, "original_input"), "original_input")
        items, prefix = [], ""
        for i, generated in enumerate(record["generated_items"]):
            path = f"generated_items[{i}]"
            generated = expect(generated, dict, at, path)
            if generated.get("type") == "tool_approval_item":  # the call again, waiting for approval
                metadata.setdefault("pending_approvals", []).append(generated.get("raw_item"))
                continue
            reader.item(expect(generated.get("raw_item"), dict, at, f"{path}.raw_item"), f"{path}.raw_item")
    if items:
        order = metadata.get("item_order")
        for i, item in enumerate(items):  # field paths name the item where the file has it
            reader.item(item, f"{prefix}[{len(items) - 1 - i if order == 'desc' else i}]")
    trace_id, group = record_ids(metadata, at, index)
    return _finish(at, reader, metadata, trace_id, group, [], [])


def _in_order(items: list, page: bool, metadata: dict[str, Any]) -> list:
    """Items oldest first. The API lists a response's input items and a conversation's items newest first
    unless asked otherwise (`order="desc"`), and the dump does not say which: a list where some result
    comes before its call is reversed, and so is a page that starts with an assistant message and ends
    with a user message."""
    calls: dict[str, int] = {}
    reverse = False
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            continue
        call_id = item.get("call_id", item.get("callId"))
        answer = item["type"].endswith(("_output", "_result"))
        if answer and isinstance(call_id, str) and call_id not in calls:
            reverse |= any(isinstance(later, dict) and later.get("call_id", later.get("callId")) == call_id
                           and str(later.get("type")).endswith("_call") for later in items[i + 1:])
        elif item["type"].endswith("_call") and isinstance(call_id, str):
            calls[call_id] = i
    if not reverse and page and len(items) > 1:
        first, last = items[0], items[-1]
        reverse = (isinstance(first, dict) and isinstance(last, dict) and first.get("role") == "assistant"
                   and last.get("role") == "user")
    if reverse:
        metadata["item_order"] = "desc"
        return items[::-1]
    return items


def _finish(at: Location, reader: ItemReader, metadata: dict[str, Any], trace_id: str, group: str,
            tools: list[ToolSpec], builtin: list[dict]) -> Trace:
    reader.close()
    names = {t.name for t in tools}
    for spec in reader.listed:  # MCP servers' tools, once each
        if spec.name not in names:
            names.add(spec.name)
            tools.append(spec)
    for key, value in (("builtin_tools", builtin), ("mcp_list_tools", reader.servers),
                       ("earlier_call_outputs", reader.earlier), ("other_items", reader.other)):
        if value:
            metadata[key] = value
    trace = Trace(trace_id=trace_id, group=group, source=SOURCE, metadata=metadata, tools=tools,
                  events=reader.events)
    trace.validate()
    return trace


def _response_timing(at: Location, rec: dict, events: list[Event]) -> None:
    """A response that is one generation: its usage and times belong to its one assistant message."""
    messages = [e for e in events if isinstance(e, Message) and e.role == "assistant"]
    if len(messages) != 1:
        return
    usage = rec.get("usage")
    if isinstance(usage, dict) and usage.get("output_tokens") is not None:
        messages[0].tokens = expect(usage["output_tokens"], int, at, "usage.output_tokens")
    for key, attr in (("created_at", "t_start"), ("completed_at", "t_end")):
        if rec.get(key) is not None:
            setattr(messages[0], attr, float(expect(rec[key], (int, float), at, key)))


def _builtin_name(kind: str) -> str:
    """The tool name a built-in tool's calls carry: web_search_preview -> web_search, ..."""
    for stem in ("web_search", "computer"):
        if kind.startswith(stem):
            return stem
    return kind


def _tools(at: Location, tools: Any) -> tuple[list[ToolSpec], list[dict]]:
    out: list[ToolSpec] = []
    builtin: list[dict] = []
    for i, tool in enumerate(expect(tools, list, at, "tools") if tools is not None else []):
        path = f"tools[{i}]"
        tool = expect(tool, dict, at, path)
        kind = expect(tool.get("type", "function"), str, at, f"{path}.type")
        if kind == "function":
            if "function" in tool:  # the Chat Completions spelling, seen in hand-made logs
                tool, path = expect(tool["function"], dict, at, f"{path}.function"), f"{path}.function"
            d = {k: tool.get(k) for k in ("name", "description", "parameters")}
        else:
            builtin.append(tool)
            if kind == "mcp":  # its tools arrive in mcp_list_tools items
                continue
            custom = kind == "custom"  # its calls carry {"input": text}
            schema = {"type": "object", "properties": {"input": {"type": "string"}}} if custom else None
            d = {"name": tool.get("name", _builtin_name(kind)), "parameters": schema,
                 "description": tool.get("description", f"OpenAI built-in tool ({kind})")}
        try:
            out.append(ToolSpec.from_dict(d, f"{path}."))
        except SchemaError as e:
            raise schema_error(at, e) from None
    return out, builtin


FORMAT = TraceFormat(
    "openai_responses",
    "OpenAI Responses API items: request/response records ({input, output, instructions, tools}), Response "
    "objects, or bare item lists (OpenAI Agents SDK to_input_list(), sessions, the JS SDK's history)",
    sniff,
    read,
)
