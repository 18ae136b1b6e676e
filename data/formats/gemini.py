"""Google Gemini `generateContent` conversations (Gemini API, Vertex AI, google-genai SDK dumps) -> traces.

Written against the public references, field by field:
- Gemini API `models.generateContent` and `Content` / `Part` / `Tool`:
  https://ai.google.dev/api/generate-content, https://ai.google.dev/api/caching#Content
- Function calling (parallel calls, `functionResponse` with `name`, `response`, optional `id`):
  https://ai.google.dev/gemini-api/docs/function-calling and
  https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/function-calling
- Vertex AI batch prediction lines (`{"request": {...}, "response": {...}}`):
  https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-cloud-storage
- google-genai SDK types (snake_case `model_dump`: `function_call`, `system_instruction`, `config`):
  https://github.com/googleapis/python-genai/blob/main/google/genai/types.py
- Google ADK sessions (`Session {id, appName, userId, state, events}`, `Event {author, invocationId,
  content, timestamp, usageMetadata, partial, actions, ...}`): https://google.github.io/adk-docs/sessions/
  and https://github.com/google/adk-python/blob/main/src/google/adk/events/event.py

A request is `{"contents": [{"role": "user"|"model", "parts": [Part]}], "tools"?: [{"functionDeclarations":
[{"name", "description", "parameters" | "parametersJsonSchema"}]}, {"googleSearch": {}}, ...],
"systemInstruction"?: {"parts": [...]}, "generationConfig"?, ...}`. A Part holds one of `text` (with
`thought: true` for a thought summary), `functionCall {name, args, id?}`, `functionResponse {name, response,
id?}`, `executableCode {language, code}`, `codeExecutionResult {outcome, output}`, `inlineData`, `fileData`.
Every key is read in camelCase or in snake_case (the SDK's `model_dump`); keys whose value is null count as
absent (`model_dump` writes every field).

A file holds one record per JSON line, a JSON list of records, or a bare list of contents (or of ADK
events). A record is a request, a request with its response appended (`candidates` and `usageMetadata`
beside `contents`, or `{"request", "response"}` as Vertex batch prediction writes it), an SDK call dump
(`{"model", "contents", "config": {"system_instruction", "tools", ...}}`), or an ADK session. One trace each:
- a `model` content becomes an assistant `Message` (its text parts; thought parts go to
  `extra["thinking"]`, thought signatures are counted in `extra["thought_signatures"]`), with the `turn`
  of its calls, followed by one `ToolCall` per `functionCall` part (several = parallel calls, one turn)
  and per `executableCode` part (the built-in code execution tool: tool `code_execution`, args
  `{language, code}`, marked `extra["builtin"]`);
- a `functionResponse` fills the call it answers. Matching: by `id` when the response has one that a
  call has; otherwise by name, the earliest call of that name still waiting for a result. Ids are
  optional (the Gemini Developer API often returns none); the docs send the responses of a parallel turn
  back in one content, one per call, each naming its call's function (`FunctionResponse.name` "matches
  `FunctionCall.name`"), and state no rule for two id-less calls of one name: those pair up in call
  order, as the docs' examples list them. A response that matches no waiting call is an error.
  Calls without an id get `call_<turn>_<k>`. `codeExecutionResult` fills the earliest waiting
  `code_execution` call (the API puts it right after its `executableCode`);
- the result: `response.output` when the response holds only `output`; `response.error` (and
  `error=True`) when it holds only `error`; else the whole response as JSON text; `error` is True whenever
  `response.error` is set (the API's rule: "output" for output, "error" for error details) or
  `response.status` is "error" (the ADK docs' convention for function tools: `{"status": "error",
  "error_message"}`). Code execution fails when `outcome` is not `OUTCOME_OK`;
- user text sent in the same content as function responses becomes a user `Message` after them, marked
  `extra["with_tool_results"]` (one input: the LLM did not answer between them); roles `function` (older
  SDKs' role for function responses) and `tool` (google-adk's live runner sends responses so) read as user;
- an SDK response's `automatic_function_calling_history` (the calls and results the SDK ran itself)
  stands for the contents when it holds at least as many turns;
- the appended response's first candidate is the last assistant turn; its `usageMetadata` gives the
  message's `tokens` (`candidatesTokenCount` + `thoughtsTokenCount`), other candidates go to
  `metadata["other_candidates"]`, other response keys to `metadata["response"]`;
- tools: each function declaration becomes a `ToolSpec` (`parametersJsonSchema` as is; an OpenAPI
  `parameters` Schema with its type names lower-cased, as JSON Schema spells them); built-in tools
  (`googleSearch`, `codeExecution`, ...) are kept in `metadata["builtin_tools"]`, and `codeExecution`
  adds a `code_execution` tool;
- ADK sessions: each event's content is a turn (role from the content, else `model` unless the author is
  `user`); `timestamp` is the message's `t_end` (a model message starts at the previous event's time),
  its calls' `t_start` and its results' `t_end`; the author (when an agent) and other event keys go to
  `extra`; streamed `partial` events are left out and counted in `metadata["partial_events"]`, events
  with no content are kept in `metadata["events_without_content"]`;
- trace_id / group: `metadata.id` (an ADK session's `id`) / `metadata.group`, else the batch line's
  `key`, else `<file stem>:<line or index>`. `model` (or a `modelVersion`) becomes `agent_model`.
Anything else (inline data, file data, unknown part or content keys) stays in `extra` or `metadata`.
The contents themselves are read by gemini_contents.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import Location
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, schema_error
from toolcast.data.formats.chat import read_chat_records, record_ids
from toolcast.data.formats.gemini_contents import (
    CODE_TOOL,
    Turn,
    get,
    merged,
    read_parts,
    rest,
    snake,
    turn_events,
    typed,
)
from toolcast.data.schema import Message, SchemaError, ToolSpec, Trace

SOURCE = "gemini"
_REQUEST_KEYS = ("contents", "tools", "systemInstruction", "config", "metadata")
_RESPONSE_KEYS = ("candidates", "usageMetadata", "modelVersion", "responseId", "promptFeedback", "createTime",
                  "automaticFunctionCallingHistory", "sdkHttpResponse", "parsed")
_EMPTY: tuple[Any, ...] = ({}, [], "")

# ---- detection -----------------------------------------------------------------------------------


def _is_record(d: Any) -> bool:
    if not isinstance(d, dict):
        return False
    request = get(d, "request")[1]
    if isinstance(request, dict):
        return _is_record(request)
    contents, events = d.get("contents"), d.get("events")
    if isinstance(contents, list):
        return not contents or _is_content(contents[0]) or isinstance(contents[0], str)
    if isinstance(contents, str):  # an SDK call: generate_content(model=..., contents="...")
        return "model" in d or "config" in d
    if isinstance(events, list):  # an ADK session
        return bool(events) and _is_event(events[0])
    candidates = d.get("candidates")
    return isinstance(candidates, list) and bool(candidates) and isinstance(candidates[0], dict) and (
        "content" in candidates[0] or "finishReason" in candidates[0] or "finish_reason" in candidates[0])


def _is_content(d: Any) -> bool:
    return isinstance(d, dict) and isinstance(d.get("parts"), list) and "content" not in d


def _is_event(d: Any) -> bool:
    return isinstance(d, dict) and isinstance(d.get("author"), str) and any(
        k in d for k in ("content", "invocationId", "invocation_id"))


def sniff(record: Any) -> bool:
    """A record (`contents`, `request`, `candidates` or ADK `events`), a list of them, or a bare list of
    contents or ADK events."""
    if isinstance(record, list):
        return bool(record) and any(f(record[0]) for f in (_is_record, _is_content, _is_event))
    return _is_record(record)


# ---- reading -------------------------------------------------------------------------------------


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    """One trace per record; a record that fails goes to `on_error` whole (never a half-read trace)."""
    return read_chat_records(records, on_error, _trace, is_record=_is_record)


def _trace(at: Location, record: Any, index: int | None) -> Trace:
    metadata: dict[str, Any] = {}
    specs: list[ToolSpec] = []
    events: list = []
    if isinstance(record, list) and record and _is_event(record[0]):
        record = {"events": record}
    if isinstance(record, list):  # a bare list of contents
        events = turn_events(at, [Turn(f"[{j}]", c) for j, c in enumerate(record)])
    elif isinstance(expect(record, dict, at, "record").get("events"), list):
        metadata.update(typed(at, record, "metadata", dict, "")[1] or {})
        metadata.update(rest(record, ("events", "metadata")))
        events = turn_events(at, _session_turns(at, record["events"], metadata))
    else:
        metadata.update(typed(at, record, "metadata", dict, "")[1] or {})
        specs, events = _request(at, record, metadata)
    ids = {"id": metadata["key"], **metadata} if isinstance(metadata.get("key"), str) else metadata
    trace_id, group = record_ids(ids, at, index)
    if "agent_model" in ids:
        metadata["agent_model"] = ids["agent_model"]
    trace = Trace(trace_id, group, SOURCE, metadata=metadata, tools=specs, events=events)
    trace.validate()
    return trace


def _request(at: Location, record: dict, metadata: dict[str, Any]) -> tuple[list[ToolSpec], list]:
    """A request (or an SDK call) with the response appended to it, if any: (tools, events)."""
    key, request = get(record, "request")
    rkey, response = get(record, "response")
    rpath = f"{rkey}."
    if request is not None:  # {"request", "response"}: a Vertex / Gemini batch line
        request, prefix = expect(request, dict, at, key), f"{key}."
        metadata.update(rest(record, ("request", "response", "metadata")))
    else:
        request, prefix = record, ""
        if response is None and any(get(record, k)[1] is not None for k in _RESPONSE_KEYS):
            names = {*_RESPONSE_KEYS, *map(snake, _RESPONSE_KEYS)}  # the response beside the request
            response, rpath = {k: v for k, v in record.items() if k in names}, ""
    metadata.update(rest(request, (*_REQUEST_KEYS, "response", *_RESPONSE_KEYS)))
    ckey, config = typed(at, request, "config", dict, prefix)
    if config and (other := rest(config, ("systemInstruction", "tools"))):  # the SDK's GenerateContentConfig
        metadata["config"] = other

    def either(camel: str) -> tuple[str, Any]:
        key, value = get(request, camel)
        if value is None and config:
            key, value = get(config, camel)
            return f"{prefix}{ckey}.{key}", value
        return f"{prefix}{key}", value

    events: list = []
    spath, system = either("systemInstruction")
    if system is not None:
        events.append(_system(at, system, spath))
    tpath, tools = either("tools")
    specs = _tools(at, tools, tpath, metadata) if tools is not None else []
    ckey, contents = get(request, "contents")
    if isinstance(contents, str):  # the SDK takes a string (or a list of them) as user text
        contents = [contents]
    cpath = f"{prefix}{ckey}"
    contents = expect(contents, list, at, cpath) if contents is not None else []
    if response is not None:
        response = expect(response, dict, at, rpath.rstrip("."))
        hkey, history = typed(at, response, "automaticFunctionCallingHistory", list, rpath)
        if history and len(history) >= len(contents):  # the SDK's calls and results: the whole exchange
            contents, cpath = history, f"{rpath}{hkey}"
    turns: list[Turn] = []
    joined: dict | None = None
    for j, c in enumerate(contents):
        if not isinstance(c, str):
            joined = None
            turns.append(Turn(f"{cpath}[{j}]", c))
        elif joined is None:  # the SDK joins consecutive strings into one user content
            joined = {"role": "user", "parts": [{"text": c}]}
            turns.append(Turn(f"{cpath}[{j}]", joined))
        else:
            joined["parts"].append({"text": c})
    if response is not None:
        turns.extend(_response_turns(at, response, rpath, metadata))
    return specs, events + turn_events(at, turns)


def _system(at: Location, system: Any, path: str) -> Message:
    """systemInstruction: a Content, a single Part, a string, or a list of strings and parts (SDK)."""
    if isinstance(system, str):
        return Message("system", system)
    if isinstance(expect(system, (str, dict, list), at, path), dict) and get(system, "parts")[1] is None:
        system = [system]  # a single Part
    if isinstance(system, list):
        parts, ppath = [{"text": p} if isinstance(p, str) else p for p in system], path
        extra: dict[str, Any] = {}
    else:
        pkey, parts = get(system, "parts")
        ppath, extra = f"{path}.{pkey}", rest(system, ("parts", "role"))
    got = merged(read_parts(at, parts, ppath))
    return Message("system", "\n".join(got.texts), extra={**extra, **got.extra})


def _tokens(at: Location, usage: dict, path: str) -> int | None:
    """Output tokens of a usageMetadata: the candidates' and the thoughts'."""
    counts = [typed(at, usage, name, int, path)[1] for name in ("candidatesTokenCount", "thoughtsTokenCount")]
    return sum(n for n in counts if n is not None) if any(n is not None for n in counts) else None


def _response_turns(at: Location, response: dict, rpath: str, metadata: dict[str, Any]) -> list[Turn]:
    """The first candidate of an appended response, as the conversation's last model turn."""
    ukey, usage = typed(at, response, "usageMetadata", dict, rpath)
    read = ("candidates", "usageMetadata", "modelVersion", "automaticFunctionCallingHistory")
    if other := rest(response, read):
        metadata["response"] = other
    version = get(response, "modelVersion")[1]
    if isinstance(version, str) and "model" not in metadata:
        metadata["agent_model"] = version
    ckey, candidates = typed(at, response, "candidates", list, rpath)
    if not candidates:
        return []
    path = f"{rpath}{ckey}[0]"
    first = expect(candidates[0], dict, at, path)
    if len(candidates) > 1:
        metadata["other_candidates"] = candidates[1:]
    extra = rest(first, ("content",))
    tokens = None
    if usage is not None:
        extra["usage"], tokens = rest(usage, ()), _tokens(at, usage, f"{rpath}{ukey}.")
    key, content = get(first, "content")
    return [Turn(f"{path}.{key}", content if content is not None else {"parts": []}, extra, tokens, "model")]


def _session_turns(at: Location, events: list, metadata: dict[str, Any]) -> list[Turn]:
    """An ADK session's events as turns: the user's, the agents' model turns and their function results."""
    turns: list[Turn] = []
    previous = None
    for j, event in enumerate(events):
        path = f"events[{j}]"
        event = expect(event, dict, at, path)
        if typed(at, event, "partial", bool, f"{path}.")[1]:  # a streamed chunk; the final event repeats it
            metadata["partial_events"] = metadata.get("partial_events", 0) + 1
            continue
        time = typed(at, event, "timestamp", (int, float), f"{path}.")[1]
        author = typed(at, event, "author", str, f"{path}.")[1]
        ukey, usage = typed(at, event, "usageMetadata", dict, f"{path}.")
        extra = {k: v for k, v in rest(event, ("content", "timestamp", "usageMetadata", "partial")).items()
                 if v not in _EMPTY and not (k == "author" and v == "user")}
        actions = extra.pop("actions", None)
        if isinstance(actions, dict) and (actions := {k: v for k, v in actions.items()
                                                      if v not in (*_EMPTY, None, False)}):
            extra["actions"] = actions  # ADK writes every action field, mostly empty
        version = get(event, "modelVersion")[1]
        if isinstance(version, str):
            metadata.setdefault("agent_model", version)
        ckey, content = get(event, "content")
        if content is None:
            metadata.setdefault("events_without_content", []).append(extra)
        else:
            tokens = _tokens(at, usage, f"{path}.{ukey}.") if usage is not None else None
            if usage is not None:
                extra["usage"] = rest(usage, ())
            role = "user" if author == "user" else "model"
            turns.append(Turn(f"{path}.{ckey}", content, extra, tokens, role, start=previous,
                              end=float(time) if time is not None else None))
        previous = float(time) if time is not None else previous
    return turns


# ---- tools ---------------------------------------------------------------------------------------


def _tools(at: Location, tools: Any, path: str, metadata: dict[str, Any]) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for i, tool in enumerate(expect(tools, list, at, path)):
        tpath = f"{path}[{i}]"
        tool = expect(tool, dict, at, tpath)
        key, declarations = get(tool, "functionDeclarations")
        for j, fd in enumerate(expect(declarations, list, at, f"{tpath}.{key}") if declarations else []):
            specs.append(_declaration(at, fd, f"{tpath}.{key}[{j}]", metadata))
        builtin = rest(tool, ("functionDeclarations",))
        if builtin:
            metadata.setdefault("builtin_tools", []).append(builtin)
        if get(tool, "codeExecution")[1] is not None:
            specs.append(ToolSpec(CODE_TOOL, "Code execution: the model writes code, the API runs it",
                                  {"type": "object", "properties": {"language": {}, "code": {}}}))
    return specs


def _declaration(at: Location, fd: Any, path: str, metadata: dict[str, Any]) -> ToolSpec:
    fd = expect(fd, dict, at, path)
    pkey, params = get(fd, "parametersJsonSchema")
    if params is None:
        pkey, params = get(fd, "parameters")
        params = _json_schema(params)
    d = {"name": fd.get("name"), "description": fd.get("description"), "parameters": params}
    try:
        spec = ToolSpec.from_dict(d, f"{path}.")
    except SchemaError as e:
        raise schema_error(at, SchemaError(e.field.replace(".parameters", f".{pkey}"),
                                           str(e).split(": ", 1)[-1])) from None
    if other := rest(fd, ("name", "description", "parameters", "parametersJsonSchema")):
        metadata.setdefault("tool_fields", {})[spec.name] = other  # response schemas, behavior
    return spec


def _json_schema(schema: Any) -> Any:
    """An OpenAPI-subset Schema with JSON Schema's lower-case type names ("OBJECT" -> "object")."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "type" and isinstance(v, str):
            out[k] = v.lower()
        elif k == "properties" and isinstance(v, dict):
            out[k] = {name: _json_schema(s) for name, s in v.items()}
        elif k in ("items", "anyOf", "any_of"):
            out[k] = _json_schema(v)
        else:
            out[k] = v
    return out


FORMAT = TraceFormat(
    "gemini",
    "Google Gemini generateContent conversations: {contents, tools, systemInstruction} per JSON line "
    "(camelCase or the SDK's snake_case, with an appended candidates response or as {request, response} "
    "batch lines), a JSON list of them, a bare list of contents, or Google ADK sessions",
    sniff,
    read,
)
