"""The registry of log formats, detected by content. Every format here has an importer test."""

from __future__ import annotations

from toolcast.data.formats import (
    anthropic,
    claude_code,
    codex,
    gemini,
    langchain,
    langfuse,
    langsmith,
    openai,
    openai_responses,
    openinference,
    otel,
    tau2,
    toolcast_jsonl,
)
from toolcast.data.formats.base import TraceFormat

# Order matters for detection only where two sniffers could both match; the most specific goes first.
FORMATS: dict[str, TraceFormat] = {
    f.name: f for f in (langsmith.FORMAT, toolcast_jsonl.FORMAT, claude_code.FORMAT, codex.FORMAT,
                        tau2.FORMAT, openinference.FORMAT, otel.FORMAT, langfuse.FORMAT, gemini.FORMAT,
                        openai_responses.FORMAT, anthropic.FORMAT, langchain.FORMAT, openai.FORMAT)
}

__all__ = ["FORMATS", "TraceFormat"]
