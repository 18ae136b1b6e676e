"""LangSmith runs (SDK `client.list_runs` dumps, the REST `runs/query` page, bulk JSON/JSONL) -> traces.

Checked against (all of them: tests/fixtures/langsmith/README.md): the SDK's Run model
(langchain-ai/langsmith-sdk python/langsmith/schemas.py: id, name, run_type, start_time, end_time, extra,
error, inputs, outputs, parent_run_id, tags, trace_id, session_id = the project, child_runs, dotted_order),
https://reference.langchain.com/javascript/langsmith/_openapi_client/resources/RunQueryResponse
({"runs", "cursors", ...}), https://docs.langchain.com/langsmith/run-data-format,
https://docs.langchain.com/langsmith/threads (thread metadata keys), https://docs.langchain.com/langsmith/
log-llm-trace (llm runs in LangChain, OpenAI or Anthropic message format), and
langchain-core's tracer (libs/core/langchain_core/tracers/core.py, langchain.py: a chat model's llm run has
`inputs.messages` = [[dumpd(message), ...]] and `outputs.generations[i][j].message` = dumpd(AIMessage); a
tool run has `inputs.input` = str(args) and `outputs.output` = the tool's return, a ToolMessage).

A file holds runs one per JSON line, a JSON list of runs, or runs/query pages; runs may nest their
children in `child_runs`. All runs of a file are read, then grouped by trace:
- one trace per LangSmith `trace_id` (else the root id from `dotted_order`, else the run's own id); runs
  are put in execution order by `dotted_order` (then `start_time`); group = the thread (`thread_id`,
  `session_id` or `conversation_id` in a run's `extra.metadata`), else the trace id;
- the conversation is the one of the llm run that saw the most messages: its input messages and its
  output message, read by the langchain importer (dumpd / messages_to_dict / model_dump messages) or,
  for role dicts (a wrapped OpenAI / Anthropic client), by the openai importer (`outputs` a chat
  completion) or the anthropic one (`outputs` a Message, `inputs.system`); a custom llm run's answer may
  also be the last of `outputs.messages` or `outputs.message`.
  Other llm runs are expected to hold a prefix of it (the agent loop); one that does not (a subagent, a
  trimmed history) is listed in `metadata["other_llm_runs"]`. Each assistant message gets the times and
  run id of the llm run that produced it (matched by its text and call ids);
- a tool run (`run_type == "tool"`) is the execution of a call: matched by the `tool_call_id` of its
  output ToolMessage (or `extra.metadata.tool_call_id`), else (an erroring run has no output) to the first
  unmatched call of its name in conversation order whose id no tool run of the file carries. It gives the
  call its times, `error` (the run's `error`: the traceback goes to extra), and the output when no
  ToolMessage in the conversation did. Tool runs matching no call are kept in
  `metadata["unmatched_tool_runs"]`; a trace with no llm conversation is its tool runs, one turn each;
- a thread's later trace repeats the earlier turns (the graph state) without their runs: those calls and
  assistant messages take the times the thread's other traces in the file gave them, so request-log folding
  (data/fold.py) drops the earlier trace, a prefix of the later one, and loses nothing;
- tools: `extra.invocation_params.tools` of the llm runs (OpenAI, function or Anthropic form; a wrapped
  OpenAI client's `inputs.tools`), the first declaration of each name;
- metadata: the root run's name, tags, `extra.metadata`, project (`session_id`), error; `agent_model`
  from `ls_model_name` / `invocation_params.model`. Other runs (chain, retriever, prompt, parser, custom
  run_type strings) add nothing else.
Parquet bulk exports converted to JSON (their object fields as JSON text) are read. Not read:
`inputs.prompts` of completion-model llm runs (text, no messages), batched prompts past the first, and
Parquet itself. A trace's runs must be in one file (pages of one trace: write them as JSON lines).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, good_records, schema_error
from toolcast.data.formats.chat import output_text
from toolcast.data.formats.langsmith_llm import (
    Run,
    conversation,
    dict_field,
    message_body,
    run_time,
    source_id,
    sub,
    tool_specs,
    turn_ids,
)
from toolcast.data.schema import Message, SchemaError, ToolCall, Trace

SOURCE = "langsmith"
THREAD_KEYS = ("thread_id", "session_id", "conversation_id")
_JSON_FIELDS = ("inputs", "outputs", "extra", "events", "tags", "serialized", "child_runs")


def is_run(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("run_type"), str) and "id" in value
            and any(k in value for k in ("trace_id", "dotted_order", "start_time")))


def sniff(record: Any) -> bool:
    """A run, a list of runs, or a runs/query page {"runs": [...], ...}."""
    if isinstance(record, dict) and isinstance(record.get("runs"), list):
        record = record["runs"]
    if isinstance(record, list):
        return bool(record) and is_run(record[0])
    return is_run(record)


# ---- reading runs --------------------------------------------------------------------------------------


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    by_trace: dict[str, list[Run]] = {}
    for where, record in good_records(records, on_error):
        try:
            for at, run in _runs(where, record):
                by_trace.setdefault(_trace_key(at, run), []).append((at, run))
        except TraceFormatError as e:
            on_error(e)
    file_tools = {cid: (at, run) for runs in by_trace.values() for at, run in runs
                  if run.get("run_type") == "tool" and (cid := _tool_call_id(run))}
    traces = []
    for trace_id, runs in by_trace.items():
        try:
            traces.append(_trace(trace_id, runs, file_tools))
        except TraceFormatError as e:
            on_error(e)
        except SchemaError as e:
            on_error(schema_error(runs[0][0], e))
    _share_times(traces)
    yield from traces


def _share_times(traces: list[Trace]) -> None:
    """A thread's later trace repeats the earlier turns (the graph state) without their runs: those calls
    and assistant messages take the times (and run ids) the thread's other traces gave them, so that `fold`
    sees one run, drops the earlier trace and keeps a later one that lost nothing."""
    seen: dict[tuple, tuple] = {}
    keyed = [(event, (trace.group, *key)) for trace in traces for event, key in _event_keys(trace)]
    for event, key in keyed:
        if event.t_start is not None or event.t_end is not None:
            seen.setdefault(key, (event.t_start, event.t_end, event.extra.get("run_id")))
    for event, key in keyed:
        if event.t_start is None and event.t_end is None and key in seen:
            event.t_start, event.t_end, run_id = seen[key]
            if run_id is not None:
                event.extra["run_id"] = run_id


def _event_keys(trace: Trace) -> Iterator[tuple[Message | ToolCall, tuple]]:
    """(event, what identifies it across a file's traces): a call by its id; an assistant message by
    its text and the ids of the calls it made."""
    for i, event in enumerate(trace.events):
        if isinstance(event, ToolCall):
            if not event.extra.get("no_call_id"):  # ids made up for calls logged without one differ
                yield event, ("call", source_id(event))
        elif event.role == "assistant":
            yield event, ("message", event.text, turn_ids(trace.events, i))


def _runs(where: Location, record: Any) -> Iterator[Run]:
    """Every run of a record, child_runs flattened (a run listed twice counts once, see `_trace`)."""
    if isinstance(record, dict) and "runs" in record and "run_type" not in record:
        items, prefix = expect(record["runs"], list, where, "runs"), "runs"
    elif isinstance(record, list):
        items, prefix = record, ""
    else:
        items, prefix = [record], None
    stack = [(where if prefix is None else where.child(f"{prefix}[{i}]"), run) for i, run in enumerate(items)]
    while stack:
        at, run = stack.pop(0)
        run = _decoded(expect(run, dict, at, "run"))
        expect(run.get("run_type"), str, at, "run_type")  # any string: other types add nothing
        expect(run.get("id"), str, at, "id")
        yield at, run
        children = expect(run.get("child_runs") or [], list, at, "child_runs")
        stack[:0] = [(at.child(f".child_runs[{i}]"), child) for i, child in enumerate(children)]


def _decoded(run: dict) -> dict:
    """The run with its object fields parsed where they hold JSON text, as a Parquet bulk export converted
    to JSON (pandas, DuckDB) leaves them."""
    out = dict(run)
    for key in _JSON_FIELDS:
        value = run.get(key)
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                out[key] = json.loads(value)
            except (ValueError, RecursionError):
                pass  # left as it was: the field's type check names it
    return out


def _trace_key(at: Location, run: dict) -> str:
    if run.get("trace_id") is not None:
        return expect(run["trace_id"], str, at, "trace_id")
    dotted = run.get("dotted_order")
    if isinstance(dotted, str) and len(dotted.split(".")[0]) > 36:
        return dotted.split(".")[0][-36:]  # {time}{uuid} of the root
    return run["id"]


# ---- one trace -----------------------------------------------------------------------------------------


def _trace(trace_id: str, runs: list[Run], file_tools: dict[str, Run]) -> Trace:
    unique: dict[str, Run] = {}
    for at, run in runs:  # the same run twice (a page item and a child, a started and an ended copy)
        known = {k: v for k, v in run.items() if v is not None}  # fields the later copy knows win
        unique[run["id"]] = (at, {**unique.get(run["id"], (at, {}))[1], **known})
    ordered = sorted(unique.values(), key=lambda r: (str(r[1].get("dotted_order") or ""),
                                                      run_time(*r, "start_time") or 0.0))
    root_at, root = next(((at, r) for at, r in ordered if not r.get("parent_run_id")), ordered[0])
    metadata = _metadata(root_at, root, ordered)
    group = next((str(m[k]) for at, r in ordered for k in THREAD_KEYS
                  if (m := sub(dict_field(at, r, "extra"), "metadata")).get(k)), trace_id)
    llms = [(at, r) for at, r in ordered if r["run_type"] in ("llm", "chat_model")]
    tool_runs = [(at, r) for at, r in ordered if r["run_type"] == "tool"]
    events, tools = conversation(llms, metadata)
    events, unmatched = _match_tool_runs(events, tool_runs, file_tools)
    if unmatched:
        metadata["unmatched_tool_runs"] = [{k: r.get(k) for k in ("id", "name", "inputs", "outputs", "error")}
                                           for _, r in unmatched]
    trace = Trace(trace_id=trace_id, group=group, source=SOURCE, metadata=metadata,
                  tools=tool_specs(llms) or tools, events=events)
    trace.validate()
    return trace


def _metadata(at: Location, root: dict, runs: list[Run]) -> dict[str, Any]:
    extra = dict_field(at, root, "extra")
    metadata: dict[str, Any] = dict(expect(extra.get("metadata") or {}, dict, at, "extra.metadata"))
    for key in ("name", "tags", "session_id", "session_name", "error", "reference_example_id"):
        if root.get(key):
            metadata.setdefault(f"run_{key}" if key in ("name", "error") else key, root[key])
    for r_at, run in runs:
        r_extra = dict_field(r_at, run, "extra")
        meta, params = sub(r_extra, "metadata"), sub(r_extra, "invocation_params")
        model = (meta.get("ls_model_name") or params.get("model") or params.get("model_name")
                 or sub(run, "inputs").get("model"))
        if run["run_type"] in ("llm", "chat_model") and isinstance(model, str) and model:
            metadata.setdefault("agent_model", model)
    return metadata


# ---- tool runs -----------------------------------------------------------------------------------------


def _tool_call_id(run: dict) -> str | None:
    out = sub(run, "outputs").get("output")
    value = message_body(out).get("tool_call_id") if isinstance(out, dict) else None
    value = value or sub(sub(run, "extra"), "metadata").get("tool_call_id")
    return value if isinstance(value, str) and value else None


def _match_tool_runs(events: list, tool_runs: list[Run],
                     file_tools: dict[str, Run]) -> tuple[list, list[Run]]:
    calls = [e for e in events if isinstance(e, ToolCall)]
    by_id = {source_id(c): c for c in calls}
    matched: set[int] = set()
    unmatched: list[Run] = []
    for at, run in tool_runs:
        cid = _tool_call_id(run)
        call = by_id.get(cid) if cid else None
        if call is None or id(call) in matched:
            # by name: the first waiting call of that name that has no tool run of its own
            call = next((c for c in calls if id(c) not in matched and c.tool == run.get("name")
                         and source_id(c) not in file_tools), None)
        if call is None:
            unmatched.append((at, run))
            continue
        matched.add(id(call))
        _fill(at, run, call)
    if not calls and unmatched:  # no conversation: the tool runs are the trace, one turn each
        events = [_fill(at, run, ToolCall(run["id"], turn, expect(run.get("name"), str, at, "name"),
                                          _args(at, run))) for turn, (at, run) in enumerate(unmatched)]
        unmatched = []
    return events, unmatched


def _fill(at: Location, run: dict, call: ToolCall) -> ToolCall:
    call.t_start, call.t_end = run_time(at, run, "start_time"), run_time(at, run, "end_time")
    call.extra["run_id"] = run["id"]
    if run.get("error") is not None:
        call.error = True
        call.extra["run_error"] = expect(run["error"], str, at, "error")
    outputs = dict_field(at, run, "outputs")
    if call.output is None and "output" in outputs:
        status = _tool_output(call, outputs["output"])
        call.error = call.error or status == "error"
    args = _args(at, run)
    if args and args != call.args:
        call.extra["run_args"] = args
    return call


def _tool_output(call: ToolCall, out: Any) -> Any:
    """Fill the call's output from a tool run's output (a ToolMessage, model_dump or dumpd, or any value);
    the ToolMessage's status. Content parts give their text, the whole list kept in extra when it has
    other parts (as the langchain importer reads a ToolMessage)."""
    body = message_body(out) if isinstance(out, dict) else {}
    if not (body.get("type") == "tool" or "tool_call_id" in body):
        call.output = output_text(out)
        return None
    content = body.get("content")
    parts = content if isinstance(content, list) else []
    texts = [p["text"] for p in parts if isinstance(p, dict) and p.get("type") == "text"
             and isinstance(p.get("text"), str)]
    call.output = "\n".join(texts) if texts else output_text(content)
    if texts and len(texts) < len(parts):
        call.extra["result_content"] = parts
    return body.get("status")


def _args(at: Location, run: dict) -> dict[str, Any]:
    """A tool run's arguments: `inputs.input` is str(args) (a Python repr) or JSON or a dict; @traceable
    tools log their keyword arguments as the inputs themselves."""
    inputs = dict_field(at, run, "inputs")
    if set(inputs) != {"input"}:
        return inputs
    value = inputs["input"]
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        for parse in (json.loads, ast.literal_eval):
            try:
                parsed = parse(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(parsed, dict):
                return parsed
    return {"input": value}


# ---- tools ---------------------------------------------------------------------------------------------


FORMAT = TraceFormat(
    "langsmith",
    "LangSmith runs: list_runs dumps (run.dict() / run.json()), runs/query pages ({runs, cursors}) and bulk "
    "JSON/JSONL exports, nested child_runs or flat; one trace per trace_id",
    sniff,
    read,
)
