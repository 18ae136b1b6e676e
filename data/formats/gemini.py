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

A request is `{"contents": [{"role": "user"|"model", "parts": [Part]}], "tools"?: [{"functionDeclarations":
[{"name", "description", "parameters" | "parametersJsonSchema"}]}, {"googleSearch": {}}, ...],
"systemInstruction"?: {"parts": [...]}, "generationConfig"?, ...}`. A Part holds one of `text` (with
`thought: true` for a thought summary), `functionCall {name, args, id?}`, `functionResponse {name, response,
id?}`, `executableCode {language, code}`, `codeExecutionResult {outcome, output}`, `inlineData`, `fileData`.
Every key is read in camelCase or in snake_case (the SDK's `model_dump`); keys whose value is null count as
absent (`model_dump` writes every field).

A file holds one record per JSON line, a JSON list of records, or a bare list of contents. A record is a
request, a request with its response appended (`candidates` and `usageMetadata` beside `contents`, or
`{"request", "response"}` as Vertex batch prediction writes it), or an SDK call dump (`{"model", "contents",
"config": {"system_instruction", "tools", ...}}`). Per record, one trace:
- a `model` content becomes an assistant `Message` (its text parts; thought parts go to
  `extra["thinking"]`, thought signatures are counted in `extra["thought_signatures"]`), with the `turn`
  of its calls, followed by one `ToolCall` per `functionCall` part (several = parallel calls, one turn)
  and per `executableCode` part (the built-in code execution tool: tool `code_execution`, args
  `{language, code}`, marked `extra["builtin"]`);
- a `functionResponse` fills the call it answers. Matching: by `id` when the response has one that a
  call has; otherwise by name, the earliest call of that name still waiting for a result. Ids are
  optional in the API (the Gemini Developer API often returns none); the function-calling docs send the
  responses of parallel calls back together, one per call, naming each call's function, so equal names
  pair up in the order the calls were made. A response that matches no waiting call is an error.
  Calls without an id get `call_<turn>_<k>`. `codeExecutionResult` fills the earliest waiting
  `code_execution` call (the API puts it right after its `executableCode`);
- the result: `response.output` when the response holds only `output`; `response.error` (and
  `error=True`) when it holds only `error`; else the whole response as JSON text; `error` is True whenever
  `response.error` is set (the API's rule: "output" for output, "error" for error details). Code
  execution fails when `outcome` is not `OUTCOME_OK`;
- user text sent in the same content as function responses becomes a user `Message` after them, marked
  `extra["with_tool_results"]` (one input: the LLM did not answer between them); role `function` (older
  SDKs' role for function responses) reads as user;
- the appended response's first candidate is the last assistant turn; its `usageMetadata` gives the
  message's `tokens` (`candidatesTokenCount` + `thoughtsTokenCount`), other candidates go to
  `metadata["other_candidates"]`, other response keys to `metadata["response"]`;
- tools: each function declaration becomes a `ToolSpec` (`parametersJsonSchema` as is; an OpenAPI
  `parameters` Schema with its type names lower-cased, as JSON Schema spells them); built-in tools
  (`googleSearch`, `codeExecution`, ...) are kept in `metadata["builtin_tools"]`, and `codeExecution`
  adds a `code_execution` tool;
- trace_id / group: `metadata.id` / `metadata.group`, else the batch line's `key`, else
  `<file stem>:<line or index>`. `model` (or the response's `modelVersion`) becomes `agent_model`.
Anything else (inline data, file data, unknown part or content keys) stays in `extra` or `metadata`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, good_records, schema_error
from toolcast.data.formats.chat import CallBook, output_text, parse_arguments, record_ids
from toolcast.data.schema import Event, Message, SchemaError, ToolCall, ToolSpec, Trace

SOURCE = "gemini"
CODE_TOOL = "code_execution"
_REQUEST_KEYS = ("contents", "tools", "systemInstruction", "config", "metadata")
_RESPONSE_KEYS = ("candidates", "usageMetadata", "modelVersion", "responseId", "promptFeedback", "createTime")
_CALL_KINDS = ("functionCall", "executableCode")
_RESULT_KINDS = ("functionResponse", "codeExecutionResult")
_PART_KINDS = ("text", *_CALL_KINDS, *_RESULT_KINDS)


def _snake(camel: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", camel).lower()


def _get(d: dict, camel: str) -> tuple[str, Any]:
    """(the key the record used, its value) for a camelCase field or its snake_case twin; null = absent."""
    for key in (camel, _snake(camel)):
        if d.get(key) is not None:
            return key, d[key]
    return camel, None


def _rest(d: dict, known: tuple[str, ...]) -> dict[str, Any]:
    """The keys of `d` outside `known` (either spelling), without nulls."""
    names = {*known, *map(_snake, known)}
    return {k: v for k, v in d.items() if k not in names and v is not None}


# ---- detection -----------------------------------------------------------------------------------


def _is_record(d: Any) -> bool:
    if not isinstance(d, dict):
        return False
    request = _get(d, "request")[1]
    if isinstance(request, dict):
        return _is_record(request)
    contents = d.get("contents")
    if isinstance(contents, list):
        return not contents or _is_content(contents[0])
    candidates = d.get("candidates")
    return isinstance(candidates, list) and bool(candidates) and isinstance(candidates[0], dict) and (
        "content" in candidates[0] or "finishReason" in candidates[0] or "finish_reason" in candidates[0])


def _is_content(d: Any) -> bool:
    return isinstance(d, dict) and isinstance(d.get("parts"), list) and "content" not in d


def sniff(record: Any) -> bool:
    """A record (`contents`, `request`, or `candidates`), a list of records, or a bare list of contents."""
    if isinstance(record, list):
        return bool(record) and (_is_record(record[0]) or _is_content(record[0]))
    return _is_record(record)


# ---- reading -------------------------------------------------------------------------------------


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    """One trace per record; a record that fails goes to `on_error` whole (never a half-read trace)."""
    for where, record in good_records(records, on_error):
        if isinstance(record, list) and record and _is_record(record[0]):
            items = [(where.child(f"[{i}]"), item, i) for i, item in enumerate(record)]
        else:
            items = [(where, record, None)]
        for at, item, index in items:
            try:
                yield _trace(at, item, index)
            except TraceFormatError as e:
                on_error(e)
            except SchemaError as e:
                on_error(schema_error(at, e))


@dataclass
class _Turn:
    """One content to read: where it sits, and what the response around it adds to its message."""

    path: str
    content: Any
    extra: dict[str, Any] = field(default_factory=dict)
    tokens: int | None = None
    role: str = "user"
    """The role of a content that names none: a request's are the user's, a candidate's the model's."""


def _trace(at: Location, record: Any, index: int | None) -> Trace:
    metadata: dict[str, Any] = {}
    if isinstance(record, list):  # a bare list of contents
        request, prefix, response, rpath = {"contents": record}, "", None, ""
    else:
        record = expect(record, dict, at, "record")
        if record.get("metadata") is not None:
            metadata.update(expect(record["metadata"], dict, at, "metadata"))
        key, request = _get(record, "request")
        if request is not None:  # {"request", "response"}: a Vertex / Gemini batch line
            request, prefix = expect(request, dict, at, key), f"{key}."
            rkey, response = _get(record, "response")
            rpath = f"{rkey}."
            metadata.update(_rest(record, ("request", "response", "metadata")))
        else:
            request, prefix = record, ""
            rkey, response = _get(record, "response")
            rpath = f"{rkey}."
            if response is None and any(_get(record, k)[1] is not None for k in _RESPONSE_KEYS):
                names = {*_RESPONSE_KEYS, *map(_snake, _RESPONSE_KEYS)}  # the response beside the request
                response, rpath = {k: v for k, v in record.items() if k in names}, ""
        if response is not None:
            response = expect(response, dict, at, rpath.rstrip("."))
        metadata.update(_rest(request, (*_REQUEST_KEYS, "response", *_RESPONSE_KEYS)))
    config_key, config = _get(request, "config")
    config = expect(config, dict, at, f"{prefix}{config_key}") if config is not None else {}
    cpath = f"{prefix}{config_key}."
    if config:
        metadata["config"] = _rest(config, ("systemInstruction", "tools"))

    events: list[Event] = []
    skey, system = _get(request, "systemInstruction")
    spath = f"{prefix}{skey}"
    if system is None:
        skey, system = _get(config, "systemInstruction")
        spath = f"{cpath}{skey}"
    if system is not None:
        events.append(_system(at, system, spath))
    tkey, tools = _get(request, "tools")
    tpath = f"{prefix}{tkey}"
    if tools is None:
        tkey, tools = _get(config, "tools")
        tpath = f"{cpath}{tkey}"
    specs = _tools(at, tools, tpath, metadata) if tools is not None else []

    ckey, contents = _get(request, "contents")
    cprefix = f"{prefix}{ckey}" if not isinstance(record, list) else ""
    if isinstance(contents, str):  # the SDK takes a plain string as one user turn
        contents = [{"role": "user", "parts": [{"text": contents}]}]
    turns = [_Turn(f"{cprefix}[{j}]", c) for j, c in enumerate(
        expect(contents, list, at, cprefix) if contents is not None else [])]
    if response is not None:
        turns.extend(_response_turns(at, response, rpath, metadata))
    events.extend(_events(at, turns))

    ids = {"id": metadata["key"], **metadata} if isinstance(metadata.get("key"), str) else metadata
    trace_id, group = record_ids(ids, at, index)
    if "agent_model" in ids:
        metadata["agent_model"] = ids["agent_model"]
    trace = Trace(trace_id, group, SOURCE, metadata=metadata, tools=specs, events=events)
    trace.validate()
    return trace


def _system(at: Location, system: Any, path: str) -> Message:
    """systemInstruction: a Content, a single Part, a string, or a list of strings and parts (SDK)."""
    if isinstance(system, str):
        return Message("system", system)
    if isinstance(expect(system, (str, dict, list), at, path), dict) and _get(system, "parts")[1] is None:
        system = [system]  # a single Part
    if isinstance(system, list):
        parts, ppath = [{"text": p} if isinstance(p, str) else p for p in system], path
        extra: dict[str, Any] = {}
    else:
        pkey, parts = _get(system, "parts")
        ppath, extra = f"{path}.{pkey}", _rest(system, ("parts", "role"))
    sorted_parts = _merged(_parts(at, parts, ppath))
    return Message("system", "\n".join(sorted_parts.texts), extra={**extra, **sorted_parts.extra})


def _response_turns(at: Location, response: dict, rpath: str, metadata: dict[str, Any]) -> list[_Turn]:
    """The first candidate of an appended response, as the conversation's last model turn."""
    ukey, usage = _get(response, "usageMetadata")
    tokens = None
    if usage is not None:
        usage = expect(usage, dict, at, f"{rpath}{ukey}")
        for name in ("candidatesTokenCount", "thoughtsTokenCount"):
            key, n = _get(usage, name)
            if n is not None:
                tokens = (tokens or 0) + expect(n, int, at, f"{rpath}{ukey}.{key}")
    rest = _rest(response, ("candidates", "usageMetadata", "modelVersion"))
    if rest:
        metadata["response"] = rest
    _, version = _get(response, "modelVersion")
    if isinstance(version, str) and "model" not in metadata:
        metadata["agent_model"] = version
    ckey, candidates = _get(response, "candidates")
    candidates = expect(candidates, list, at, f"{rpath}{ckey}") if candidates is not None else []
    if not candidates:
        return []
    path = f"{rpath}{ckey}[0]"
    first = expect(candidates[0], dict, at, path)
    if len(candidates) > 1:
        metadata["other_candidates"] = candidates[1:]
    extra = _rest(first, ("content",))
    if usage is not None:
        extra["usage"] = usage
    key, content = _get(first, "content")
    return [_Turn(f"{path}.{key}", content if content is not None else {"parts": []}, extra, tokens, "model")]


# ---- tools ---------------------------------------------------------------------------------------


def _tools(at: Location, tools: Any, path: str, metadata: dict[str, Any]) -> list[ToolSpec]:
    specs: list[ToolSpec] = []
    for i, tool in enumerate(expect(tools, list, at, path)):
        tpath = f"{path}[{i}]"
        tool = expect(tool, dict, at, tpath)
        key, declarations = _get(tool, "functionDeclarations")
        for j, fd in enumerate(expect(declarations, list, at, f"{tpath}.{key}") if declarations else []):
            specs.append(_declaration(at, fd, f"{tpath}.{key}[{j}]", metadata))
        builtin = _rest(tool, ("functionDeclarations",))
        if builtin:
            metadata.setdefault("builtin_tools", []).append(builtin)
        if _get(tool, "codeExecution")[1] is not None:
            specs.append(ToolSpec(CODE_TOOL, "Code execution: the model writes code, the API runs it",
                                  {"type": "object", "properties": {"language": {}, "code": {}}}))
    return specs


def _declaration(at: Location, fd: Any, path: str, metadata: dict[str, Any]) -> ToolSpec:
    fd = expect(fd, dict, at, path)
    pkey, params = _get(fd, "parametersJsonSchema")
    if params is None:
        pkey, params = _get(fd, "parameters")
        params = _json_schema(params)
    d = {"name": fd.get("name"), "description": fd.get("description"), "parameters": params}
    try:
        spec = ToolSpec.from_dict(d, f"{path}.")
    except SchemaError as e:
        raise schema_error(at, SchemaError(e.field.replace(".parameters", f".{pkey}"),
                                           str(e).split(": ", 1)[-1])) from None
    rest = _rest(fd, ("name", "description", "parameters", "parametersJsonSchema"))
    if rest:  # response schemas, behavior: kept, by tool name
        metadata.setdefault("tool_fields", {})[spec.name] = rest
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


# ---- contents ------------------------------------------------------------------------------------


@dataclass
class _Parts:
    """What one content's parts held, sorted by what becomes of it."""

    texts: list[str] = field(default_factory=list)
    calls: list[tuple[str, str, dict]] = field(default_factory=list)  # (field path, kind, the part)
    results: list[tuple[str, str, dict]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _parts(at: Location, parts: Any, path: str) -> list[_Parts]:
    """The parts sorted, in segments: a code execution result ends one (the model went on after it)."""
    segments = [_Parts()]
    for i, part in enumerate(expect(parts, list, at, path) if parts is not None else []):
        ppath = f"{path}[{i}]"
        part = expect(part, dict, at, ppath)
        if segments[-1].results and segments[-1].results[-1][1] == "codeExecutionResult":
            segments.append(_Parts())
        out = segments[-1]
        tkey, thought = _get(part, "thought")
        thought = expect(thought, bool, at, f"{ppath}.{tkey}") if thought is not None else False
        if _get(part, "thoughtSignature")[1] is not None:
            out.extra["thought_signatures"] = out.extra.get("thought_signatures", 0) + 1
        found = False
        for kind in _PART_KINDS:
            key, value = _get(part, kind)
            if value is None:
                continue
            found = True
            if kind == "text":
                text = expect(value, str, at, f"{ppath}.{key}")
                (out.extra.setdefault("thinking", []) if thought else out.texts).append(text)
            else:
                entry = (f"{ppath}.{key}", kind, part)
                (out.calls if kind in _CALL_KINDS else out.results).append(entry)
        if not found and _rest(part, ("thought", "thoughtSignature")):
            # inlineData, fileData, ...: kept as they are
            out.extra.setdefault("parts", []).append({k: v for k, v in part.items() if v is not None})
    return segments


def _merged(segments: list[_Parts]) -> _Parts:
    out = _Parts()
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
        """By id when a waiting call has it; else the earliest waiting call of that name (see above)."""
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


def _events(at: Location, turns: list[_Turn]) -> list[Event]:
    events: list[Event] = []
    waiting = _Waiting()
    turn = -1
    for t in turns:
        content = expect(t.content, dict, at, t.path)
        rkey, role = _get(content, "role")
        role = expect(role, str, at, f"{t.path}.{rkey}") if role is not None else t.role
        pkey, parts = _get(content, "parts")
        segments = _parts(at, parts, f"{t.path}.{pkey}")
        content_extra = {**t.extra, **_rest(content, ("role", "parts"))}
        if role == "model":
            for n, got in enumerate(segments):
                last = n == len(segments) - 1  # the response's usage and finish reason go with the last
                extra = {**got.extra, **content_extra} if last else got.extra
                calls = [_call(at, part, path, kind, waiting, turn + 1, k) for k, (path, kind, part) in
                         enumerate(got.calls)]
                message = Message("assistant", "\n".join(got.texts), tokens=t.tokens if last else None,
                                  extra=extra)
                if calls:
                    turn += 1
                    message.turn = turn
                events.append(message)
                events.extend(calls)
                for path, kind, part in got.results:
                    if kind == "functionResponse":
                        raise TraceFormatError(at, "a model content cannot hold a function response",
                                               field=path)
                    _fill(at, part, path, kind, waiting)
            continue
        got = _merged(segments)
        extra = {**got.extra, **content_extra}
        if role in ("user", "function"):
            if got.calls:
                raise TraceFormatError(at, f"a {role} content cannot hold a call (only model contents do)",
                                       field=got.calls[0][0])
            filled = [_fill(at, part, path, kind, waiting) for path, kind, part in got.results]
            if got.texts or "parts" in got.extra or not filled:
                if filled:  # sent with the results: one input, the LLM did not answer between them
                    extra["with_tool_results"] = True
                events.append(Message("user", "\n".join(got.texts), extra=extra))
            elif extra:  # a content of results only: its other keys stay with the last result
                filled[-1].extra["content"] = extra
        else:
            raise TraceFormatError(at, f"unknown role {role!r} (expected user or model)",
                                   field=f"{t.path}.{rkey}")
    return events


def _call(at: Location, part: dict, path: str, kind: str, waiting: _Waiting, turn: int, k: int) -> ToolCall:
    value = expect(_get(part, kind)[1], dict, at, path)
    extra = {"part": rest} if (rest := _rest(part, (kind, "thoughtSignature"))) else {}
    ikey, source_id = _get(value, "id")
    source_id = expect(source_id, str, at, f"{path}.{ikey}") if source_id is not None else None
    if kind == "executableCode":
        args = _rest(value, ("id",))
        return waiting.add(source_id, f"code_{turn}_{k}", turn, CODE_TOOL, args, {**extra, "builtin": True})
    nkey, name = _get(value, "name")
    name = expect(name, str, at, f"{path}.{nkey}")
    akey, args = _get(value, "args")
    args = parse_arguments(args, at, f"{path}.{akey}")
    rest = _rest(value, ("id", "name", "args"))
    if rest:  # partialArgs, willContinue (streamed calls)
        extra["call"] = rest
    return waiting.add(source_id, f"call_{turn}_{k}", turn, name, args, extra)


def _fill(at: Location, part: dict, path: str, kind: str, waiting: _Waiting) -> ToolCall:
    value = expect(_get(part, kind)[1], dict, at, path)
    ikey, rid = _get(value, "id")
    rid = expect(rid, str, at, f"{path}.{ikey}") if rid is not None else None
    if kind == "codeExecutionResult":
        call = waiting.answer(rid, CODE_TOOL, at, path)
        okey, outcome = _get(value, "outcome")
        call.output = output_text(_get(value, "output")[1])
        call.error = outcome is not None and expect(outcome, str, at, f"{path}.{okey}") != "OUTCOME_OK"
        if outcome is not None:
            call.extra["outcome"] = outcome
        return call
    nkey, name = _get(value, "name")
    name = expect(name, str, at, f"{path}.{nkey}")
    call = waiting.answer(rid, name, at, path)
    if call.tool != name:
        raise TraceFormatError(at, f"the result with id {rid!r} names {name!r}, but that call was to "
                               f"{call.tool!r}", field=f"{path}.{nkey}")
    rkey, response = _get(value, "response")
    if response is not None:
        response = expect(response, dict, at, f"{path}.{rkey}")
        error = response.get("error")
        call.error = error is not None and error is not False and error != ""
        if set(response) == {"output"}:
            call.output = output_text(response["output"])
        elif set(response) == {"error"}:
            call.output = output_text(error)
        else:
            call.output = output_text(response)
    rest = _rest(value, ("id", "name", "response"))
    if rest:  # multimodal parts, willContinue, scheduling
        call.extra["response_fields"] = rest
    return call


FORMAT = TraceFormat(
    "gemini",
    "Google Gemini generateContent conversations: {contents, tools, systemInstruction} per JSON line "
    "(camelCase or the SDK's snake_case, with an appended candidates response or as {request, response} "
    "batch lines), a JSON list of them, or a bare list of contents",
    sniff,
    read,
)
