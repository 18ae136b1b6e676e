"""LangChain / LangGraph message dumps -> canonical traces.

Checked against LangChain's reference and LangGraph's docs (all of them: tests/fixtures/langchain/README.md):
https://reference.langchain.com/python/langchain-core/messages/utils/messages_from_dict,
https://reference.langchain.com/python/langchain-core/messages/tool/ToolMessage,
https://reference.langchain.com/python/langchain-core/messages/content,
https://langchain-ai.github.io/langgraph/concepts/persistence.

Messages come in three dumped forms: `messages_to_dict` {"type", "data"} (types human, ai, system, chat,
function, tool, remove, *MessageChunk), `dumpd` {"lc": 1, "type": "constructor", "id": [..., "AIMessage"],
"kwargs"} (LangChain.js ids too) and `model_dump()` (the fields inline with their `type`). A record is
{"messages": [...], "tools"?, "metadata"?}, a LangGraph state snapshot or API thread state
(`values.messages`), a checkpoint (`channel_values.messages`; a thread's first, input checkpoint holds
only `channel_values.__start__.messages`) or a checkpoint tuple (`checkpointer.list(config)` gives a list
of them); a file holds one per JSON line, a JSON list of them, or a bare message list. One record is one
trace, except LangGraph `stream_mode="updates"` chunks `{node: {"messages": [...]}}` (and `{"__interrupt__":
...}`) written one per line: the lines in a row are one trace, trace_id the file stem, holding only what the
nodes returned (the stream carries no input messages):
- trace_id / group: `metadata.id` / `metadata.group`, else `<file stem>:<line or index>`; a LangGraph
  record's group defaults to its thread id, so one thread's snapshots stay on one side of a split;
- an AI message becomes an assistant `Message` (text parts only; `thinking` / `reasoning` blocks go to
  extra) followed by its calls, one `turn`: `tool_calls`, `invalid_tool_calls` (args {} when they do not
  parse, the raw text in extra), then the content's call blocks that neither list holds (server tools);
  a pre-0.2 message without these gives its `additional_kwargs.tool_calls` / `function_call`;
- a ToolMessage fills the latest unanswered call with its `tool_call_id`; a call logged without an id
  takes the first ToolMessage whose id matches no call and whose `name` is the call's tool. `status:
  "error"` sets `error`; list content gives its text parts as output (the whole list kept in extra when
  it has other parts), or JSON text when it has none; `artifact` goes to extra. A FunctionMessage answers
  the latest `function_call` of its name;
- system / developer -> "system", human -> "user", chat by its `role` (unknown roles: "user", role kept);
  RemoveMessage ids go to `metadata["removed_message_ids"]`; fields with no canonical place stay in
  `extra` / `metadata` (empty defaults left out).
Messages saved as their str() (`json.dumps(state, default=str)`) lost their type and calls: such a file is
taken as LangChain's only to fail with an error that says so and how to save messages instead.
LangChain dumps list no tools: a top-level `tools` in OpenAI ({"type": "function", "function"}), function
({name, description, parameters}) or Anthropic (`input_schema`) form is read, else tools is [].
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, good_records, schema_error
from toolcast.data.formats.chat import record_ids
from toolcast.data.formats.langchain_messages import MessageReader, is_message, is_message_str
from toolcast.data.schema import Message, SchemaError, ToolSpec, Trace

SOURCE = "langchain"
MESSAGE_PATHS: tuple[tuple[str, ...], ...] = (  # record, state snapshot, checkpoint, checkpoint tuple
    ("messages",), ("values", "messages"), ("channel_values", "messages"),
    ("checkpoint", "channel_values", "messages"),
    # a thread's first checkpoint (source "input", step -1): the input, not yet in the messages channel
    ("channel_values", "__start__", "messages"), ("checkpoint", "channel_values", "__start__", "messages"))


def find_messages(rec: dict) -> tuple[Any, tuple[str, ...]] | None:
    """(message list, its key path) of a record, or None."""
    for keys in MESSAGE_PATHS:
        node: Any = rec
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return node, keys
    return None


def _is_record_list(record: Any) -> bool:
    return (isinstance(record, list) and bool(record) and isinstance(record[0], dict)
            and not is_message(record[0]) and find_messages(record[0]) is not None)


def _update_messages(record: Any) -> list[tuple[str, Any]] | None:
    """A LangGraph `stream_mode="updates"` chunk {node: {"messages": [...], ...} | None, "__interrupt__"?}:
    its (node, messages) pairs, or None when the record is no such chunk."""
    if not isinstance(record, dict) or not record or find_messages(record) is not None:
        return None
    out = []
    for node, update in record.items():
        if node == "__interrupt__" or update is None:
            continue
        if not isinstance(update, dict):
            return None
        messages = update.get("messages")
        if messages is not None:
            out.append((node, messages))
    listed = [m for _, ms in out for m in (ms if isinstance(ms, list) else [ms])]
    return out if all(is_message(m) for m in listed) else None


def sniff(record: Any) -> bool:
    """Records (or a bare list) whose messages are all LangChain-typed. Lists of {"role"} messages stay
    OpenAI's (chat.chat_dialect), even model_dump()s of ChatMessages."""
    if _update_messages(record):
        return True
    if _is_record_list(record):
        record = record[0]
    found = find_messages(record) if isinstance(record, dict) else (record, ())
    messages = found[0] if found else None
    if not isinstance(messages, list) or not messages:
        return False
    if all(is_message_str(m) for m in messages):  # json.dumps(default=str): taken, to say why it fails
        return True
    if not all(is_message(m) for m in messages):
        return False
    return not all(isinstance(m.get("role"), str) for m in messages)


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    """One trace per record (stream updates in a row: one together); a record that fails goes to
    `on_error` whole, never half-read."""
    updates: list[tuple[Location, dict]] = []
    for where, record in good_records(records, on_error):
        chunk = _update_messages(record)  # in a stream, also updates with no messages and interrupts
        if chunk is not None and (chunk or updates or "__interrupt__" in record):
            updates.append((where, record))
            continue
        yield from _updates_trace(updates, on_error)
        updates = []
        items = ([(where.child(f"[{i}]"), item, i) for i, item in enumerate(record)]
                 if _is_record_list(record) else [(where, record, None)])
        for at, item, index in items:
            try:
                yield _trace(at, item, index)
            except TraceFormatError as e:
                on_error(e)
            except SchemaError as e:
                on_error(schema_error(at, e))
    yield from _updates_trace(updates, on_error)


def _updates_trace(updates: list[tuple[Location, dict]], on_error: OnError) -> Iterator[Trace]:
    """The `stream_mode="updates"` chunks of one run, written one per line: one trace (which holds no input
    messages: the stream gives only what the nodes returned). Nodes go to each message's extra["node"],
    interrupts to metadata["interrupts"]."""
    if not updates:
        return
    at = Location(updates[0][0].path)
    metadata: dict[str, Any] = {"stream_mode": "updates"}
    trace_id, group = record_ids(metadata, at, None)
    reader = MessageReader(at, metadata)
    events = []
    try:
        for where, record in updates:
            reader.at = where
            if "__interrupt__" in record:
                metadata.setdefault("interrupts", []).append(record["__interrupt__"])
            for node, messages in _update_messages(record) or []:
                listed = messages if isinstance(messages, list) else [messages]
                new = reader.events(listed, f"{node}.messages")
                for event in new:
                    if isinstance(event, Message):
                        event.extra["node"] = node
                events += new
        trace = Trace(trace_id=trace_id, group=group, source=SOURCE, metadata=metadata, events=events)
        trace.validate()
    except TraceFormatError as e:
        on_error(e)
        return
    except SchemaError as e:
        on_error(schema_error(at, e))
        return
    yield trace


def _trace(at: Location, record: Any, index: int | None) -> Trace:
    rec: dict[str, Any] = {}
    messages, keys = record, ()
    if not isinstance(record, list):
        rec = expect(record, dict, at, "record")
        found = find_messages(rec)
        if found is None:
            raise TraceFormatError(at, "is missing (expected a messages list, a LangGraph state's values."
                                   "messages or a checkpoint's channel_values.messages)", field="messages")
        messages, keys = found
        expect(messages, list, at, ".".join(keys))
    raw_metadata = rec.get("metadata")
    metadata = dict(expect(raw_metadata, dict, at, "metadata")) if raw_metadata is not None else {}
    for key, value in _without(rec, keys).items():
        if key not in ("metadata", "tools"):
            metadata.setdefault(key, value)
    trace_id, group = record_ids(metadata, at, index)
    config = rec["config"] if isinstance(rec.get("config"), dict) else {}
    # a snapshot's / checkpoint tuple's config, the API thread state's checkpoint, or the metadata
    for holder in (config.get("configurable"), rec.get("checkpoint"), metadata):
        thread = holder.get("thread_id") if isinstance(holder, dict) else None
        if isinstance(thread, str) and thread and "group" not in metadata:
            group = thread
            break
    events = MessageReader(at, metadata).events(messages, ".".join(keys))
    trace = Trace(trace_id=trace_id, group=group, source=SOURCE, metadata=metadata,
                  tools=_tools(at, rec.get("tools")), events=events)
    trace.validate()
    return trace


def _without(d: dict, keys: tuple[str, ...]) -> dict:
    """`d` with the message list at `keys` taken out (a container left empty goes too)."""
    out = dict(d)
    if len(keys) == 1:
        out.pop(keys[0])
    elif keys:
        inner = _without(d[keys[0]], keys[1:])
        if inner:
            out[keys[0]] = inner
        else:
            del out[keys[0]]
    return out


def _tools(at: Location, tools: Any) -> list[ToolSpec]:
    out = []
    for i, tool in enumerate(expect(tools, list, at, "tools") if tools is not None else []):
        path = f"tools[{i}]"
        tool = expect(tool, dict, at, path)
        if "function" in tool:  # OpenAI form, as bind_tools sends it
            tool, path = expect(tool["function"], dict, at, f"{path}.function"), f"{path}.function"
        key = "input_schema" if "input_schema" in tool else "parameters"
        d = {"name": tool.get("name"), "description": tool.get("description"), "parameters": tool.get(key),
             "annotations": tool.get("annotations")}
        try:
            out.append(ToolSpec.from_dict(d, f"{path}."))
        except SchemaError as e:
            e = SchemaError(e.field.replace(".parameters", f".{key}"), str(e).split(": ", 1)[-1])
            raise schema_error(at, e) from None
    return out


FORMAT = TraceFormat(
    "langchain",
    "LangChain / LangGraph messages: messages_to_dict, dumpd or model_dump message lists, bare or in "
    "{messages}, LangGraph state snapshots (values.messages) and checkpoints (channel_values.messages)",
    sniff,
    read,
)
