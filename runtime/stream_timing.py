"""The stream timing model: where in a streamed assistant message its text and each call sit.

The LLM's time at a decision point (the log's, else the latency profile's) ends with the message's output
tokens at the profile's per-token rate; whatever came before is time to first token and hidden
reasoning. Text comes first, then the calls in order; a call's arguments are complete at its last token.
Tokens are counted as the profile counts them (characters / chars_per_token), a call's as its name and
canonical arguments plus `CALL_OVERHEAD_TOKENS` of framing. If the message could not have been written
in the time at the profile's rate, it is spread evenly over the whole time. So stream speculation is
measured on the log's own messages, not assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from toolcast.data.schema import ToolCall, canonical_args
from toolcast.runtime.latency import LLMTiming

CALL_OVERHEAD_TOKENS = 8
"""Tokens of a call's framing (name, id, JSON punctuation) beyond its name and arguments."""


@dataclass(frozen=True)
class StreamSchedule:
    text_chunks: list[tuple[float, str]]
    """(seconds after the decision point, text delta), in order."""
    calls: list[tuple[float, float]]
    """Per call of the turn: (its first token, its arguments complete), seconds after the decision point."""


def stream_schedule(text: str, calls: Sequence[ToolCall], think_s: float, llm: LLMTiming,
                    chunk_tokens: int = 4) -> StreamSchedule:
    """When each part of a message streams out, for a generation of `think_s` seconds in all."""
    text_tokens = llm.tokens_for(len(text)) if text else 0
    call_tokens = [llm.tokens_for(len(c.tool) + len(canonical_args(c.args))) + CALL_OVERHEAD_TOKENS
                   for c in calls]
    total = text_tokens + sum(call_tokens)
    if total == 0:
        return StreamSchedule([], [])
    rate = min(llm.per_token, think_s / total)
    start = think_s - rate * total
    chunks = []
    step = max(1, int(chunk_tokens * llm.chars_per_token))
    for j in range(0, len(text), step):
        end_tok = min(text_tokens, (j + step) / llm.chars_per_token)
        chunks.append((start + rate * end_tok, text[j:j + step]))
    at = start + rate * text_tokens
    times = []
    for n in call_tokens:
        times.append((at, at + rate * n))
        at += rate * n
    return StreamSchedule(chunks, times)
