"""toolcast's own JSONL: one canonical trace per line. Round-trips exactly."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolcast.data.errors import TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, good_records, schema_error
from toolcast.data.schema import SchemaError, Trace


def sniff(record: Any) -> bool:
    # A LangSmith run also has "trace_id" and "events"; its "run_type" tells it apart.
    return (isinstance(record, dict) and "trace_id" in record and "events" in record
            and "run_type" not in record)


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    for where, record in good_records(records, on_error):
        items = record if isinstance(record, list) else [record]
        for i, item in enumerate(items):
            at = where.child(f"[{i}]") if isinstance(record, list) else where
            try:
                yield Trace.from_dict(item)
            except SchemaError as e:
                on_error(schema_error(at, e))
            except TraceFormatError as e:
                on_error(e)


FORMAT = TraceFormat("toolcast", "toolcast's canonical JSONL (one trace per line)", sniff, read)
