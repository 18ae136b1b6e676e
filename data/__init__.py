"""toolcast.data: canonical traces, importers for agent log formats, provenance, splits.

Importing this package needs only the standard library; `toolcast.data.splits` needs `datasets`.
"""

from toolcast.data.errors import ImportReport, Location, TraceFormatError
from toolcast.data.load import FORMAT_NAMES, iter_traces, load_traces
from toolcast.data.native import context_from_record
from toolcast.data.schema import (
    RESPOND,
    Context,
    Event,
    Label,
    Message,
    SchemaError,
    ToolCall,
    ToolSpec,
    Trace,
    canonical_args,
)

__all__ = [
    "FORMAT_NAMES", "RESPOND", "Context", "Event", "ImportReport", "Label", "Location", "Message",
    "SchemaError", "ToolCall", "ToolSpec", "Trace", "TraceFormatError", "canonical_args",
    "context_from_record", "iter_traces", "load_traces",
]
