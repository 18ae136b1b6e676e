"""otel importer (to be written)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from toolcast.data.formats.base import OnError, Records, TraceFormat
from toolcast.data.schema import Trace


def sniff(record: Any) -> bool:
    return False


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    raise NotImplementedError


FORMAT = TraceFormat("otel", "otel (not yet)", sniff, read)
