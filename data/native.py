"""`context_from_record`: a predictor context straight from the agent's own request body.

An agent keeps its conversation in its provider's format (an OpenAI chat `{"messages", "tools"}`, a
Responses `{"input", "tools"}` or item list, an Anthropic `{"system", "messages", "tools"}`, a Gemini
`{"contents", "tools", "systemInstruction"}`, a LangChain message list). The importers already read
every one of them from log files; here one such record, the body the agent is about to send to its LLM,
becomes the `Context` of the decision point at its end: everything that happened, nothing generated yet.

Why it is done this way:
- The record goes through the very importer `toolcast import` uses (chosen by the same sniffers in the
  same order as `load.detect_format`), so the context the predictor sees at run time is the one it was
  trained on: same events, same tool specs, same metadata keys.
- The metadata is built as `Trace.decision_points` builds it, `{"source": ..., **trace.metadata}`: the
  featurizer's agent key reads `source` (and `agent_model`, which the importers copy from a request's
  `model`), so a context without it would look like an unknown agent. The caller's `metadata` wins.
- Errors are `TraceFormatError`s located at "request" (`Location("request")`), naming the field inside
  the record (`request, field 'messages[3].tool_call_id': ...`), never a file and line. A record that
  holds several conversations (a list of records, a tau2 results file) is an error: one call, one
  decision point. So is one with no events: no decision point lies before the first message.
- An importer that trips over input it never expected (a `TypeError` deep inside) is logged with its
  traceback and answered as a `TraceFormatError` too: the record comes from outside, and a caller (the
  HTTP route) must answer "your record cannot be read", not crash.
- Base install only: the formats need the standard library; no torch, no datasets.
"""

from __future__ import annotations

import logging
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats import FORMATS
from toolcast.data.formats.base import TraceFormat
from toolcast.data.schema import Context, SchemaError, Trace

log = logging.getLogger(__name__)

REQUEST = Location("request")
"""Where a record handed over in a call sits: errors read `request, field 'messages[2].role': ...`."""

NATIVE_FORMAT_NAMES: tuple[str, ...] = ("auto", *FORMATS)
"""`format=` values: "auto" (sniff the record) or a format's name."""

_IMPORTER_SLIPS = (TypeError, KeyError, IndexError, AttributeError, ValueError, RecursionError)
"""What an importer raises on input it never expected, besides its own TraceFormatError."""


def context_from_record(record: Any, format: str = "auto", metadata: dict[str, Any] | None = None) -> Context:
    """The context at the end of one conversation in an agent's native format (the LLM about to generate).

    `record` is one request body or message list as the agent holds it, e.g.
    `{"messages": messages, "tools": tools}`; `format` is "auto" or one of `NATIVE_FORMAT_NAMES`;
    `metadata` is merged over what the record gives (`{"agent_model": "gpt-4.1"}`).
    Raises `TraceFormatError` naming the field, and ValueError for an unknown `format` name.
    """
    return context_of(trace_from_record(record, format), metadata)


def context_of(trace: Trace, metadata: dict[str, Any] | None = None) -> Context:
    """The context after all of `trace`'s events, with metadata as its decision points have it."""
    return Context(events=trace.events, tools=trace.tools,
                   metadata={"source": trace.source, **trace.metadata, **(metadata or {})})


def trace_from_record(record: Any, format: str = "auto") -> Trace:
    """The one trace a record holds, read by the named format or the one whose sniffer accepts it."""
    if format not in NATIVE_FORMAT_NAMES:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(NATIVE_FORMAT_NAMES)}")
    fmt = detect_record_format(record) if format == "auto" else FORMATS[format]

    def on_error(e: TraceFormatError) -> None:
        raise e

    try:
        traces = list(fmt.read([(REQUEST, record)], on_error))
    except TraceFormatError:
        raise
    except SchemaError as e:  # formats turn these into TraceFormatErrors; in case one slips through
        raise TraceFormatError(REQUEST, str(e).split(": ", 1)[-1], field=e.field) from None
    except _IMPORTER_SLIPS as e:
        log.warning("the %s importer failed on a request record", fmt.name, exc_info=True)
        reason = "nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {e}"
        raise TraceFormatError(REQUEST, f"cannot be read as {fmt.name} ({reason})") from None
    if len(traces) != 1:
        what = "no conversation" if not traces else f"{len(traces)} conversations"
        raise TraceFormatError(REQUEST, f"holds {what} (read as {fmt.name}); expected exactly one: the "
                               "conversation so far, as the agent sends it to its LLM")
    if not traces[0].events:  # a named format that found nothing it knows (gemini keeps the rest as metadata)
        raise TraceFormatError(REQUEST, f"holds no messages (read as {fmt.name}); expected the conversation "
                               "so far, as the agent sends it to its LLM")
    return traces[0]


def detect_record_format(record: Any) -> TraceFormat:
    """The first format (in `FORMATS` order, as for files) whose sniffer accepts the record."""
    for fmt in FORMATS.values():
        if fmt.sniff(record):
            return fmt
    if isinstance(record, dict):
        keys = sorted(str(k) for k in record)
        seen = "an object with keys " + ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "") if keys \
            else "an empty object"
        if any(f.sniff([record]) for f in FORMATS.values()):
            seen += " (one message: send the list of the conversation's messages)"
    elif isinstance(record, list):
        seen = f"a list of {len(record)} items" if record else "an empty list"
    else:
        seen = f"a JSON {type(record).__name__}"
    raise TraceFormatError(REQUEST, f"no known format: found {seen}; expected one of " + ", ".join(FORMATS)
                           + " (a request body such as {\"messages\": [...], \"tools\": [...]})")
