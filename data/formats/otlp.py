"""Decoding OTLP JSON trace documents into plain spans (the GenAI mapping lives in `otel.py`).

Per the OTLP specification's JSON Protobuf encoding (opentelemetry-proto docs/specification.md):
`{"resourceSpans": [{"resource": {"attributes"}, "scopeSpans": [{"scope", "spans": [...]}]}]}`; traceId /
spanId / parentSpanId as case-insensitive hex (not base64); 64-bit integers (startTimeUnixNano,
intValue) as decimal strings, numbers accepted too; enums (status.code) as integers (the enum names are
tolerated); attributes as `[{"key", "value": AnyValue}]` with AnyValue one of stringValue, boolValue,
intValue, doubleValue, arrayValue, kvlistValue, bytesValue. `instrumentationLibrarySpans`, the pre-1.0
name of `scopeSpans`, is read too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, expect, good_records

_STATUS = {"STATUS_CODE_UNSET": 0, "UNSET": 0, "STATUS_CODE_OK": 1, "OK": 1,
           "STATUS_CODE_ERROR": 2, "ERROR": 2}
_HEX = frozenset("0123456789abcdef")
STATUS_ERROR = 2


@dataclass
class Span:
    """One span: ids in lower-case hex, times in seconds, attributes as plain JSON values."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    start: float | None
    end: float | None
    attrs: dict[str, Any]
    status_code: int
    status_message: str
    resource: dict[str, Any]
    where: Location
    path: str

    def field(self, key: str) -> str:
        """The field path of one of this span's attributes, for error messages."""
        return f"{self.path}.attributes.{key}"


SpanErrors = list[tuple[str | None, TraceFormatError]]
"""A document's bad spans: (trace id when known, error)."""


def read_traces(records: Records, on_error: OnError,
                spans: Callable[[Location, Any, SpanErrors], Iterator[Span]],
                build: Callable[[str, list[Span]], Any]) -> Iterator[Any]:
    """Every document of a file through `spans`, the spans gathered by trace id (a trace's spans may be
    spread over documents and lines), each trace through `build`. A trace with a bad span is skipped whole
    (reported once), never half-read; an error outside any trace goes to `on_error` at once."""
    by_trace: dict[str, list[Span]] = {}
    bad: dict[str, TraceFormatError] = {}
    for where, record in good_records(records, on_error):
        docs = record if isinstance(record, list) else [record]
        for d, doc in enumerate(docs):
            at = where.child(f"[{d}]") if isinstance(record, list) else where
            errors: SpanErrors = []
            try:
                for span in spans(at, doc, errors):
                    by_trace.setdefault(span.trace_id, []).append(span)
            except TraceFormatError as e:
                on_error(e)
            for trace_id, e in errors:
                if trace_id is None:
                    on_error(e)
                else:
                    bad.setdefault(trace_id, e)
    for trace_id, trace_spans in by_trace.items():
        if trace_id in bad:
            on_error(bad.pop(trace_id))
            continue
        try:
            yield build(trace_id, trace_spans)
        except TraceFormatError as e:
            on_error(e)
    for e in bad.values():
        on_error(e)


def parse_document(at: Location, doc: Any,
                   errors: list[tuple[str | None, TraceFormatError]]) -> Iterator[Span]:
    """The spans of one OTLP document. A bad span goes to `errors` with its traceId (None if unknown)."""
    doc = expect(doc, dict, at, "document")
    for i, rs in enumerate(expect(doc.get("resourceSpans"), list, at, "resourceSpans")):
        path = f"resourceSpans[{i}]"
        try:
            rs = expect(rs, dict, at, path)
            resource = expect(rs.get("resource") or {}, dict, at, f"{path}.resource")
            res_attrs = attributes(at, resource.get("attributes"), f"{path}.resource.attributes")
            key = "scopeSpans" if "scopeSpans" in rs else "instrumentationLibrarySpans"
            scopes = expect(rs.get(key) or [], list, at, f"{path}.{key}")
            for j, ss in enumerate(scopes):
                spans = expect(expect(ss, dict, at, f"{path}.{key}[{j}]").get("spans") or [], list, at,
                               f"{path}.{key}[{j}].spans")
                for k, span in enumerate(spans):
                    try:
                        yield _span(at, span, f"{path}.{key}[{j}].spans[{k}]", res_attrs)
                    except TraceFormatError as e:
                        tid = span.get("traceId") if isinstance(span, dict) else None
                        errors.append((tid.lower() if isinstance(tid, str) else None, e))
        except TraceFormatError as e:
            errors.append((None, e))


def _span(at: Location, span: Any, path: str, resource: dict[str, Any]) -> Span:
    span = expect(span, dict, at, path)
    status = expect(span.get("status") or {}, dict, at, f"{path}.status")
    code = status.get("code", 0)
    if isinstance(code, str) and code in _STATUS:
        code = _STATUS[code]
    if code not in (0, 1, 2) or isinstance(code, bool):
        raise TraceFormatError(at, f"expected a status code 0, 1 or 2, got {code!r}",
                               field=f"{path}.status.code")
    return Span(
        trace_id=_hex(at, span.get("traceId"), f"{path}.traceId"),
        span_id=_hex(at, span.get("spanId"), f"{path}.spanId"),
        parent_id=_hex(at, span.get("parentSpanId") or "", f"{path}.parentSpanId", required=False),
        name=expect(span.get("name", ""), str, at, f"{path}.name"),
        start=_seconds(at, span.get("startTimeUnixNano"), f"{path}.startTimeUnixNano"),
        end=_seconds(at, span.get("endTimeUnixNano"), f"{path}.endTimeUnixNano"),
        attrs=attributes(at, span.get("attributes"), f"{path}.attributes"),
        status_code=code,
        status_message=expect(status.get("message", ""), str, at, f"{path}.status.message"),
        resource=resource, where=at, path=path,
    )


def _hex(at: Location, value: Any, field: str, required: bool = True) -> str:
    value = expect(value, str, at, field).lower() if value is not None else None
    if not value and required:
        raise TraceFormatError(at, "is missing", field=field)
    if value and not set(value) <= _HEX:
        raise TraceFormatError(at, f"expected a hex id (OTLP JSON writes ids in hex, not base64), "
                               f"got {value!r}", field=field)
    return value or ""


def _seconds(at: Location, value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TraceFormatError(at, f"expected nanoseconds as a decimal string or integer, got {value!r}",
                               field=field)
    return value / 1e9


def attributes(at: Location, attrs: Any, path: str) -> dict[str, Any]:
    """`[{"key", "value"}]` as a dict of plain JSON values."""
    out: dict[str, Any] = {}
    for i, kv in enumerate(expect(attrs, list, at, path) if attrs is not None else []):
        kv = expect(kv, dict, at, f"{path}[{i}]")
        key = expect(kv.get("key"), str, at, f"{path}[{i}].key")
        out[key] = any_value(at, kv.get("value"), f"{path}[{i}].value")
    return out


def any_value(at: Location, value: Any, path: str) -> Any:
    """An OTLP AnyValue as plain JSON: kvlists become objects, arrays lists, int64 strings ints."""
    if value is None:
        return None
    value = expect(value, dict, at, path)
    if "stringValue" in value:
        return expect(value["stringValue"], str, at, f"{path}.stringValue")
    if "boolValue" in value:
        return expect(value["boolValue"], bool, at, f"{path}.boolValue")
    if "intValue" in value:
        raw = value["intValue"]
        if isinstance(raw, str) and raw.lstrip("-").isdigit():
            return int(raw)
        return expect(raw, int, at, f"{path}.intValue")
    if "doubleValue" in value:
        raw = value["doubleValue"]
        if isinstance(raw, str):  # proto3 JSON allows "NaN", "Infinity" and numbers as strings
            try:
                return float(raw)
            except ValueError:
                pass
        return expect(raw, (int, float), at, f"{path}.doubleValue")
    if "arrayValue" in value:
        array = expect(value["arrayValue"], dict, at, f"{path}.arrayValue")
        items = expect(array.get("values") or [], list, at, f"{path}.arrayValue.values")
        return [any_value(at, v, f"{path}.arrayValue.values[{i}]") for i, v in enumerate(items)]
    if "kvlistValue" in value:
        kvlist = expect(value["kvlistValue"], dict, at, f"{path}.kvlistValue")
        return attributes(at, kvlist.get("values") or [], f"{path}.kvlistValue.values")
    if "bytesValue" in value:
        return expect(value["bytesValue"], str, at, f"{path}.bytesValue")  # base64, kept as text
    return None
