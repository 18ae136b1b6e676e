"""What a log format is: a content sniffer and a reader from records to canonical traces."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.schema import SchemaError, Trace

OnError = Callable[[TraceFormatError], None]
Records = Iterable[tuple[Location, Any]]


@dataclass(frozen=True)
class TraceFormat:
    """A log format. `sniff` sees the first record of a file; `read` turns all its records into traces.

    `read` reports a bad record through `on_error` (which raises, or counts it and lets the reader go on
    with the next record) and never yields a half-read trace.
    """

    name: str
    description: str
    sniff: Callable[[Any], bool]
    read: Callable[[Records, OnError], Iterator[Trace]]


def good_records(records: Records, on_error: OnError) -> Iterator[tuple[Location, Any]]:
    """Records that parsed; JSON lines that did not arrive as errors and go to `on_error`."""
    for where, record in records:
        if isinstance(record, TraceFormatError):
            on_error(record)
        else:
            yield where, record


def schema_error(where: Location, e: SchemaError) -> TraceFormatError:
    return TraceFormatError(where, str(e).split(": ", 1)[-1], field=e.field)


def expect(value: Any, types: type | tuple[type, ...], where: Location, field: str) -> Any:
    """`value` if it has the type, else an error naming the field."""
    if isinstance(value, types) and not (isinstance(value, bool) and types in (int, float, (int, float))):
        return value
    names = " or ".join(t.__name__ for t in types) if isinstance(types, tuple) else types.__name__
    raise TraceFormatError(where, f"expected {names}, got {type(value).__name__}", field=field)
