"""Reading OpenInference spans: Phoenix's own span JSON, flattened attributes, and the message lists.

OpenInference (https://github.com/Arize-ai/openinference, spec/semantic_conventions.md, spec/traces.md,
spec/tool_calling.md) writes lists of objects as flattened attributes: `llm.input_messages.0.message.role`,
`llm.output_messages.0.message.tool_calls.1.tool_call.function.arguments`. Phoenix shows the same spans
with the lists nested (`"llm.input_messages": [{"message.role": ...}]`, spec/traces.md) or fully nested
(`{"llm": {"input_messages": ...}}`); `flatten` turns all three into the flattened keys, so the importer
reads one shape. The OTLP decoding itself lives in `otlp.py`.

Phoenix's REST API `GET /v1/projects/{id}/spans` (Arize-ai/phoenix src/phoenix/server/api/routers/v1/spans.py)
answers `{"data": [span], "next_cursor"}` with a span `{name, context: {trace_id, span_id}, span_kind,
parent_id, start_time, end_time (ISO 8601), status_code ("OK" | "ERROR" | "UNSET"), status_message,
attributes (flattened), events}`; spec/traces.md shows the same span object with nested attributes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import expect, schema_error
from toolcast.data.formats.otlp import Span
from toolcast.data.schema import SchemaError, ToolSpec

log = logging.getLogger(__name__)

KIND = "openinference.span.kind"
_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}
# Values that are whole JSON objects, kept as they are when a nested export holds them as objects.
_OPAQUE = ("json_schema", "arguments", "parameters", "metadata", "invocation_parameters")


def is_phoenix_span(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("context"), dict)
            and "trace_id" in value["context"] and ("span_kind" in value or "attributes" in value))


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested attribute objects and lists of objects as flattened `a.b.0.c` keys."""
    out: dict[str, Any] = {}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for k, v in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        nested = (isinstance(v, dict) and v) or (isinstance(v, list) and v
                                                 and all(isinstance(x, dict) for x in v))
        if nested and not str(k).endswith(_OPAQUE):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def phoenix_span(at: Location, span: Any, path: str) -> Span:
    """A Phoenix span object as a `Span` (ids as Phoenix wrote them; times from ISO 8601)."""
    span = expect(span, dict, at, path)
    context = expect(span.get("context"), dict, at, f"{path}.context")
    status = span.get("status_code") or "UNSET"
    if not isinstance(status, str) or status not in _STATUS:
        raise TraceFormatError(at, f"expected OK, ERROR or UNSET, got {status!r}",
                               field=f"{path}.status_code")
    attrs = flatten(expect(span.get("attributes") or {}, dict, at, f"{path}.attributes"))
    kind = span.get("span_kind")
    if kind is not None:
        attrs.setdefault(KIND, expect(kind, str, at, f"{path}.span_kind"))
    parent = span.get("parent_id")
    return Span(
        trace_id=_id(at, context.get("trace_id"), f"{path}.context.trace_id"),
        span_id=_id(at, context.get("span_id"), f"{path}.context.span_id"),
        parent_id=expect(parent, str, at, f"{path}.parent_id") if parent is not None else "",
        name=expect(span.get("name", ""), str, at, f"{path}.name"),
        start=_iso(at, span.get("start_time"), f"{path}.start_time"),
        end=_iso(at, span.get("end_time"), f"{path}.end_time"),
        attrs=attrs, status_code=_STATUS[status],
        status_message=expect(span.get("status_message") or "", str, at, f"{path}.status_message"),
        resource={}, where=at, path=path,
    )


def _id(at: Location, value: Any, field: str) -> str:
    if not expect(value, str, at, field):
        raise TraceFormatError(at, "is missing", field=field)
    return value


def _iso(at: Location, value: Any, field: str) -> float | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(expect(value, str, at, field).replace("Z", "+00:00"))
    except ValueError:
        raise TraceFormatError(at, f"expected an ISO 8601 time, got {value!r}", field=field) from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


# ---- flattened lists -----------------------------------------------------------------------------------


def indexed(attrs: dict[str, Any], prefix: str) -> list[tuple[int, dict[str, Any]]]:
    """The objects of a flattened list `prefix.{i}.rest`, as (i, {rest: value}) in index order."""
    head, groups = prefix + ".", {}
    for k, v in attrs.items():
        if k.startswith(head):
            i, _, rest = k[len(head):].partition(".")
            if i.isdigit() and rest:
                groups.setdefault(int(i), {})[rest] = v
    return sorted(groups.items())


@dataclass
class Call:
    """A tool call an LLM span asked for in its output messages."""

    call_id: str | None
    name: str
    args: Any
    field: str


@dataclass
class Msg:
    role: str
    text: str
    extra: dict[str, Any]
    calls: list[Call] = field(default_factory=list)
    tool_call_id: str | None = None


_MESSAGE_KEYS = ("message.role", "message.content", "message.tool_call_id", "message.function_call_name",
                 "message.function_call_arguments_json")


def messages(span: Span, key: str) -> list[Msg]:
    """`llm.input_messages` / `llm.output_messages` of a span; content parts other than text go to extra."""
    out = []
    for i, m in indexed(span.attrs, key):
        path = f"{span.field(key)}.{i}"
        role = m.get("message.role", "assistant" if key == "llm.output_messages" else "")
        role = expect(role, str, span.where, f"{path}.message.role")
        content = m.get("message.content")
        texts = [expect(content, str, span.where, f"{path}.message.content")] if content is not None else []
        extra: dict[str, Any] = {}
        for _, part in indexed(m, "message.contents"):
            kind, text = part.get("message_content.type"), part.get("message_content.text")
            if kind in ("text", None) and isinstance(text, str):
                texts.append(text)
            elif kind == "reasoning":
                extra.setdefault("reasoning", []).append(text)
            else:
                extra.setdefault("contents", []).append(part)
        msg = Msg(role, "\n".join(texts), extra)
        for j, call in indexed(m, "message.tool_calls"):
            cpath = f"{path}.message.tool_calls.{j}.tool_call"
            name = expect(call.get("tool_call.function.name"), str, span.where, f"{cpath}.function.name")
            call_id = call.get("tool_call.id")
            if call_id is not None:
                call_id = expect(call_id, str, span.where, f"{cpath}.id").strip() or None
            msg.calls.append(Call(call_id, name, call.get("tool_call.function.arguments"),
                                  f"{cpath}.function.arguments"))
        legacy = m.get("message.function_call_name")  # deprecated single function call
        if legacy is not None:
            msg.calls.append(Call(None, expect(legacy, str, span.where, f"{path}.message.function_call_name"),
                                  m.get("message.function_call_arguments_json"),
                                  f"{path}.message.function_call_arguments_json"))
        call_id = m.get("message.tool_call_id")
        if call_id is not None:
            msg.tool_call_id = str(call_id).strip()
        rest = {k: v for k, v in m.items() if k not in _MESSAGE_KEYS
                and not k.startswith(("message.contents.", "message.tool_calls."))}
        if rest:
            extra["attributes"] = rest
        out.append(msg)
    return out


# ---- tools ---------------------------------------------------------------------------------------------


def tool_name(t: Span) -> str:
    name = t.attrs.get("tool.name") or t.attrs.get("tool_call.function.name") or t.name
    if not isinstance(name, str) or not name:
        raise TraceFormatError(t.where, "is missing (a TOOL span names its tool)", field=t.field("tool.name"))
    return name


def tool_specs(llms: list[Span], tools: list[Span], skipped: list[dict[str, Any]]) -> list[ToolSpec]:
    """The tools the LLM spans list (llm.tools), then those only seen running. A listed tool whose schema
    names no tool (`{}`, as some instrumentations write for a tool they cannot describe) is skipped: it
    is logged and listed in `skipped` ({"field", "schema"}), and the trace is read without it."""
    specs: dict[str, ToolSpec] = {}
    for s in llms:
        for i, tool in indexed(s.attrs, "llm.tools"):
            path = f"{s.field('llm.tools')}.{i}.tool.json_schema"
            d = _json_object(s, tool.get("tool.json_schema"), path)
            if d.get("name") is None and not isinstance(d.get("function"), dict):
                log.warning("%s, field %r: a tool schema that names no tool (%s): skipped", s.where, path,
                            json.dumps(d)[:80])
                skipped.append({"field": path, "schema": d})
                continue
            if isinstance(d.get("function"), dict):  # the OpenAI tool format the spec recommends
                d, path = d["function"], f"{path}.function"
            spec = {"name": d.get("name"), "description": d.get("description"),
                    "parameters": d.get("parameters", d.get("input_schema"))}
            _add_spec(specs, s, spec, f"{path}.")
    for t in tools:  # tools only seen running, described by their span
        name = tool_name(t)
        if name not in specs:
            try:  # "a dictionary JSON string" per the spec; instrumentations vary, so it is never an error
                params = _json_object(t, t.attrs.get("tool.parameters"), t.field("tool.parameters"))
            except TraceFormatError:
                params = None
            _add_spec(specs, t, {"name": name, "description": t.attrs.get("tool.description"),
                                 "parameters": params}, t.field("tool."))
    return list(specs.values())


def _add_spec(specs: dict[str, ToolSpec], s: Span, d: dict[str, Any], path: str) -> None:
    try:
        spec = ToolSpec.from_dict(d, path)
    except SchemaError as e:
        raise schema_error(s.where, e) from None
    specs.setdefault(spec.name, spec)


def _json_object(s: Span, value: Any, field: str) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise TraceFormatError(s.where, f"not valid JSON: {e.msg} (column {e.colno})",
                                   field=field) from None
    return expect(value, dict, s.where, field)


def trace_metadata(spans: list[Span], llms: list[Span]) -> dict[str, Any]:
    def first(key: str, among: list[Span]) -> Any:
        return next((s.attrs[key] for s in among if s.attrs.get(key) not in (None, "")), None)

    agents = [s for s in spans if isinstance(s.attrs.get(KIND), str) and s.attrs[KIND].upper() == "AGENT"]
    agent = first("agent.name", spans) or (agents[0].name if agents and agents[0].name else None)
    service = next((s.resource["service.name"] for s in spans if "service.name" in s.resource), None)
    found = {  # agent_model / agent_implementation: the keys the other importers and the featurizer use
        "agent_model": first("llm.model_name", llms) or first("llm.request.model_name", llms),
        "agent_implementation": agent or service,
        "agent_name": agent,
        "provider": first("llm.provider", llms) or first("llm.system", llms),
        "service": service,
        "session_id": first("session.id", spans),
        "user_id": first("user.id", spans),
        "span_metadata": first("metadata", spans),
    }
    if isinstance(found["span_metadata"], str):  # a JSON string per the spec
        try:
            found["span_metadata"] = json.loads(found["span_metadata"])
        except json.JSONDecodeError:
            pass
    return {k: v for k, v in found.items() if v is not None}
