"""A step's event and tool arrays for the embedded predictor: `Featurizer.featurize`'s, built faster.

`featurize` writes each of the (up to 64) events' rows into five arrays one field at a time, at every
step, though only the newest event is new. Here each event's row is featurized once (`RowCache`, by
event object and what the row depends on) and kept packed in one vector (type, the three numeric
fields, key tokens, text tokens), so a step stacks the vectors of its recent events in one call; only
`ev_tool` (the tool's place in this step's tool candidates) is looked up again. The tool arrays are
`Featurizer._tools`' own. tests/embedded/test_event_arrays.py checks the arrays bitwise against
`Featurizer.featurize` over growing sessions.

The new event's text is encoded by `AsciiEncoder`: `TextEncoder.encode`'s BERT normalizer and
pre-tokenizer are a Python loop per character (~0.2 ms for a 600-character output); for ASCII text (the
logs' usual case) both are one `str.translate` and one regular expression, the same words.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from toolcast.data.schema import Context, Event, Message, ToolCall
from toolcast.predictor.featurize import EV_SUMMARY, EventRow, Features, Featurizer, agent_key, event_row
from toolcast.predictor.featurize import tool_candidates as _tool_candidates
from toolcast.predictor.text import MAX_TEXT_CHARS, TextEncoder

_ASCII_CLEAN = {cp: " " if chr(cp) in "\t\n\r" else None for cp in (*range(32), 127)}
"""`text._normalize` on ASCII: tab, newline, return -> space; the other control characters (category
Cc: 0-31, 127) dropped; no other ASCII character is changed but by lowercasing (no accents, no CJK)."""
_ASCII_PUNCT = r"!-/:-@\[-`{-~"
_ASCII_WORDS = re.compile(f"[^ {_ASCII_PUNCT}]+|[{_ASCII_PUNCT}]")
"""`text._pre_tokenize` on normalized ASCII (spaces its only whitespace): runs of other characters,
and each punctuation character (`_is_punct`'s ASCII ranges) as a word of its own."""


class AsciiEncoder:
    """`TextEncoder.encode` with a fast path for ASCII text (the same ids; its word cache shared);
    anything else goes to the encoder itself."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        head = text[:MAX_TEXT_CHARS]
        if not head.isascii():
            return self.encoder.encode(text, max_tokens)
        ids: list[int] = []
        word = self.encoder._word
        for w in _ASCII_WORDS.findall(head.translate(_ASCII_CLEAN).lower()):
            ids.extend(word(w))
            if max_tokens is not None and len(ids) >= max_tokens:
                return ids[:max_tokens]
        return ids

    def __getattr__(self, name: str) -> Any:
        return getattr(self.encoder, name)


def _fingerprint(e: Event, prev: Event | None) -> tuple:
    """What an event row depends on. Events are mutable (the runtime fills `output` when a call returns),
    so the cache compares this, not only identity; str hashes are cached by Python, so it is cheap."""
    gap = None if prev is None else (prev.t_start, prev.t_end)
    if isinstance(e, ToolCall):
        return (e.tool, hash(e.output), e.error, hash(tuple(e.args)), e.t_start, e.t_end, gap)
    assert isinstance(e, Message)
    return (e.role, hash(e.text), e.t_start, e.t_end, gap)


def pack(row: EventRow, key_tokens: int, text_tokens: int) -> np.ndarray:
    """(type, length bucket, output kind, gap bucket, key tokens, text tokens), zero-padded."""
    v = np.zeros(4 + key_tokens + text_tokens, np.int64)
    v[:4] = (row.type, row.out_len, row.out_kind, row.gap)
    v[4 : 4 + len(row.keys)] = row.keys
    v[4 + key_tokens : 4 + key_tokens + len(row.text)] = row.text
    return v


class RowCache:
    """`event_row` results (and their packed vectors) by event object: a session's contexts share their
    events, so each step featurizes only the events it added. Bounded; cleared when full."""

    def __init__(self, size: int = 50_000):
        self._size = size
        self._d: dict[int, tuple[Event, tuple, EventRow, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._enc: AsciiEncoder | None = None

    def rows(self, events: Sequence[Event], featurizer) -> list[EventRow]:
        return [hit[2] for hit in self._hits(events, featurizer)]

    def _hits(self, events: Sequence[Event], featurizer) -> list[tuple[Event, tuple, EventRow, np.ndarray]]:
        out = []
        cfg = featurizer.cfg
        enc = self._enc
        if enc is None or enc.encoder is not featurizer.encoder:
            enc = self._enc = AsciiEncoder(featurizer.encoder)
        for i, e in enumerate(events):
            fp = _fingerprint(e, events[i - 1] if i else None)
            hit = self._d.get(id(e))
            if hit is not None and hit[0] is e and hit[1] == fp:
                out.append(hit)
                continue
            row = event_row(events, i, enc, cfg)
            hit = (e, fp, row, pack(row, cfg.max_key_tokens, cfg.max_text_tokens))
            with self._lock:
                if len(self._d) >= self._size:
                    self._d.clear()
                self._d[id(e)] = hit
            out.append(hit)
        return out

    def features(self, fz: Featurizer, context: Context) -> Features:
        """`fz.featurize(context)` (no slot tools), its event arrays from the packed rows."""
        cfg = fz.cfg
        hits = self._hits(context.events, fz)
        tools = _tool_candidates(context, cfg.max_tools)
        n, k = cfg.max_events + 1, cfg.max_key_tokens
        recent = hits[-cfg.max_events :][::-1]
        m = np.zeros((n, 4 + k + cfg.max_text_tokens), np.int64)
        m[0, 0] = EV_SUMMARY
        ev_tool = np.zeros(n, np.int64)
        if recent:
            m[1 : len(recent) + 1] = [h[3] for h in recent]
            index = tools.index
            ev_tool[1 : len(recent) + 1] = [
                0 if h[2].tool is None else index.get(h[2].tool, -1) + 1 for h in recent
            ]
        ev_type = m[:, 0]
        out = {
            "ev_type": ev_type,
            "ev_tool": ev_tool,
            "ev_num": m[:, 1:4],
            "ev_keys": m[:, 4 : 4 + k],
            "ev_text": m[:, 4 + k :],
            "ev_mask": ev_type > 0,
            "agent": np.array(fz.vocab.agents.get(agent_key(context.metadata), 0), np.int64),
        }
        out.update(fz._tools(context, tools, None))
        slot_arrays, slot_rows = fz.slot_features(context, tools, ())
        out.update(slot_arrays)
        return Features(out, tools, slot_rows)
