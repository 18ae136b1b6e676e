"""A step's event and tool arrays for the embedded predictor: `Featurizer.featurize`'s, built faster.

`featurize` writes each of the (up to 64) events' rows into five arrays one field at a time, at every
step, though only the newest event is new. Here each event's row is featurized once (`RowCache`, by
event object and what the row depends on) and kept packed in one vector (type, the three numeric
fields, key tokens, text tokens), so a step stacks the vectors of its recent events in one call; only
`ev_tool` (the tool's place in this step's tool candidates) is looked up again. The tool arrays are
`Featurizer._tools`', from what `ToolArrays` keeps per tool set. tests/embedded/test_event_arrays.py
checks the arrays bitwise against `Featurizer.featurize` over growing sessions.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from toolcast.data.schema import RESPOND, Context, Event, Message, ToolCall
from toolcast.predictor.features import cues
from toolcast.predictor.features.featurizer import (
    EV_SUMMARY,
    SPECIAL_TOOLS,
    TOOL_FEATURE_SIZES,
    TOOL_ID_RESPOND,
    TOOL_ID_UNKNOWN,
    TOOL_ID_UNSEEN,
    EventRow,
    Features,
    Featurizer,
    ToolSet,
    agent_key,
    call_history,
    event_row,
    tool_features,
)
from toolcast.predictor.features.featurizer import tool_candidates as _tool_candidates


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
        self._tool_arrays = ToolArrays()

    def _hits(self, events: Sequence[Event], featurizer) -> list[tuple[Event, tuple, EventRow, np.ndarray]]:
        out = []
        cfg = featurizer.cfg
        enc = featurizer.encoder
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
        out.update(self._tool_arrays.arrays(fz, context, tools))
        slot_arrays, slot_rows = fz.slot_features(context, tools, ())
        out.update(slot_arrays)
        return Features(out, tools, slot_rows)


class _Buckets(dict):
    """`cues.p_bucket(probs, tool)` by tool, for one transition key's probabilities: made on demand."""

    def __init__(self, probs: dict[str, float] | None) -> None:
        super().__init__()
        self.probs = probs

    def __missing__(self, tool: str) -> int:
        b = self[tool] = cues.p_bucket(self.probs, tool)
        return b


class ToolArrays:
    """`Featurizer._tools(context, tools, None)`, the same arrays: what depends on the tool set only (ids,
    name / description / parameter tokens, name and description words, listed or not) is kept per tool
    set; a step adds the call counts, transition-probability buckets (kept per transition key) and word
    overlaps with the latest texts (their words kept per text). Bounded; cleared when full."""

    SIZE = 4096

    def __init__(self) -> None:
        self._sets: dict[tuple, tuple] = {}
        self._buckets: dict[tuple[int, str], _Buckets] = {}
        self._words: dict[str, frozenset[str]] = {}
        self._lock = threading.Lock()

    def arrays(self, fz: Featurizer, context: Context, tools: ToolSet) -> dict[str, np.ndarray]:
        listed = {t.name for t in context.tools}
        fixed = self._fixed(fz, tools, listed)
        tool_id, name, desc, params, mask, rows = fixed
        count, last = call_history(context)
        bigram, trigram = (self._bucket(fz, key) for key in cues.transition_keys(context))
        user_words, agent_words = self._latest_texts(context)
        tool_num = np.zeros((fz.cfg.max_tools, len(TOOL_FEATURE_SIZES)), np.int64)
        tool_num[0, 4:6] = bigram[RESPOND], trigram[RESPOND]
        nums = [
            tool_features(tname, is_listed, count, last, bigram[tname], trigram[tname], nw, dw, user_words,
                          agent_words)
            for tname, is_listed, nw, dw in rows
        ]
        if nums:
            tool_num[2 : 2 + len(nums)] = nums
        return {
            "tool_id": tool_id.copy(),
            "tool_num": tool_num,
            "tool_name": name.copy(),
            "tool_desc": desc.copy(),
            "tool_params": params.copy(),
            "tool_mask": mask.copy(),
        }

    def _fixed(self, fz: Featurizer, tools: ToolSet, listed: set[str]) -> tuple:
        """Per tool set: tool ids, name / description / parameter tokens, mask, and per real tool (name,
        listed 1 / seen only 2, name words, description words)."""
        specs = tools.specs[len(SPECIAL_TOOLS) :]
        key = (
            id(fz),
            tuple(tools.names),
            tuple((s.description, tuple(s.param_names), s.name in listed) for s in specs if s is not None),
        )
        hit = self._sets.get(key)
        if hit is not None and hit[0] is fz:
            return hit[1]
        assert all(s is not None for s in specs) and tools.specs[: len(SPECIAL_TOOLS)] == [None] * len(
            SPECIAL_TOOLS
        ), "tool sets have the specials first, then a spec per tool"
        cfg = fz.cfg
        c = cfg.max_tools
        tool_id = np.zeros(c, np.int64)
        name = np.zeros((c, cfg.max_name_tokens), np.int64)
        desc = np.zeros((c, cfg.max_desc_tokens), np.int64)
        params = np.zeros((c, cfg.max_param_tokens), np.int64)
        tool_id[0], tool_id[1] = TOOL_ID_RESPOND, TOOL_ID_UNKNOWN
        rows = []
        for i, (tname, spec) in enumerate(zip(tools.names, tools.specs, strict=True)):
            if spec is None:
                continue
            tool_id[i] = fz.vocab.tools.get(tname, TOOL_ID_UNSEEN)
            nt, dt, pt = fz.tool_text(spec)
            name[i, : len(nt)], desc[i, : len(dt)], params[i, : len(pt)] = nt, dt, pt
            rows.append((tname, 1 if tname in listed else 2, cues.name_words(tname),
                         fz.description_words(spec.description)))  # fmt: skip
        mask = np.zeros(c, bool)
        mask[: len(tools.names)] = True
        fixed = (tool_id, name, desc, params, mask, rows)
        with self._lock:
            if len(self._sets) >= self.SIZE:
                self._sets.clear()
            self._sets[key] = (fz, fixed)
        return fixed

    def _bucket(self, fz: Featurizer, key: str) -> _Buckets:
        """p(next tool | transition key)'s bucket by tool (the vocabularies' counts, nothing left out)."""
        hit = self._buckets.get((id(fz), key))
        if hit is None:
            hit = _Buckets(cues.probabilities(fz.vocab.transitions, key, None))
            with self._lock:
                if len(self._buckets) >= self.SIZE:
                    self._buckets.clear()
                self._buckets[(id(fz), key)] = hit
        return hit

    def _latest_texts(self, context: Context) -> tuple[frozenset[str], frozenset[str]]:
        """`cues.latest_texts`, each text's words kept."""
        user = assistant = None
        for e in reversed(context.events):
            if isinstance(e, Message) and e.text:
                if user is None and e.role == "user":
                    user = self._text_words(e.text)
                elif assistant is None and e.role == "assistant":
                    assistant = self._text_words(e.text)
                if user is not None and assistant is not None:
                    break
        return user or frozenset(), assistant or frozenset()

    def _text_words(self, text: str) -> frozenset[str]:
        hit = self._words.get(text)
        if hit is None:
            hit = cues.words(text)
            with self._lock:
                if len(self._words) >= self.SIZE:
                    self._words.clear()
                self._words[text] = hit
        return hit
