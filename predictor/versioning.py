"""Which featurizer made a model: a digest of what the featurizer *does*, not of its source text.

A model is only as good as the agreement between the featurizer that trained it and the one that feeds
it. Shape changes are caught at load (`onnx.predictor.OnnxPredictor._check_shapes`); a change of meaning
with the same shapes (how candidates are ranked, which values count as constants) is not. Training
records `featurizer_digest()` in the metrics card and `modeldir.read_parts` warns when a model was made
by a featurizer that behaves differently.

The digest hashes the arrays and slot rows that the reference featurizer (`features/`) makes for a fixed
set of contexts (`CONTEXTS`, with a fixed tokenizer vocabulary and fixed vocabularies), and the training
targets it gives them. So a refactor that keeps every array bit for bit keeps the digest, and models
trained before it stay "made by this featurizer"; a change of behaviour on these contexts changes it
(tests/embedded/test_versioning.py pins the value, so such a change is a conscious one). Computed once
per process, in a few milliseconds, with numpy only.

Caches of featurized training examples must follow any code change, behaviour on these few contexts or
not: they are keyed by `source_digest()`, the source text of the featurizer and of training's example
building.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from typing import Any

import numpy as np

from toolcast.data.schema import Context, Event, Message, ToolCall, ToolSpec
from toolcast.predictor.config import tiny_config
from toolcast.predictor.features.extractors import extract_candidates
from toolcast.predictor.features.featurizer import Featurizer
from toolcast.predictor.features.slots import kind_of, slot_targets
from toolcast.predictor.features.text import CONTINUATION, SPECIALS, TextEncoder
from toolcast.predictor.features.vocab import Vocabularies

_OBJ = {"type": "object"}
TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec("get_user_details", "Get the details of a user, with their reservations.",
             {**_OBJ, "properties": {"user_id": {"type": "string"}}, "required": ["user_id"]}),
    ToolSpec("get_reservation_details", "Get a reservation's flights and passengers.",
             {**_OBJ, "properties": {"reservation_id": {"type": "string"}}, "required": ["reservation_id"]}),
    ToolSpec("search_flights", "Search direct flights between two cities on a date.",
             {**_OBJ, "properties": {"origin": {"type": "string"}, "destination": {"type": "string"},
                                     "date": {"type": "string"}, "cabin": {"enum": ["economy", "business"]},
                                     "max_stops": {"type": "integer"}}, "required": ["origin", "date"]}),
    ToolSpec("readFile", "Read a file from the workspace.",
             {**_OBJ, "properties": {"file_path": {"type": "string"},
                                     "limit": {"type": ["integer", "null"]}}}),
    ToolSpec("send_email", "",
             {**_OBJ, "properties": {"to": {"type": "string"}, "urgent": {"type": "boolean"}}}),
)
"""The tools of the digest's contexts: required and optional slots, enums, typed and untyped slots."""

_USER_JSON = json.dumps({"user_id": "mia_li_3668", "name": {"first": "Mia", "last": "Li"},
                         "reservations": ["NO6JO3", "AIXC49"], "membership": "gold", "savings": 1250.5})
EVENTS: tuple[Event, ...] = (
    Message("system", "You are an airline agent. Today is 2024-05-15.", t_start=0.0, t_end=0.0),
    Message("user", "Hi, I'm Mia Li (user id mia_li_3668). Please look at reservation NO6JO3 and "
            "email me at mia.li@example.com; see https://example.com/help or 'Terms v2'.", t_start=1.0),
    ToolCall("c1", 1, "get_user_details", {"user_id": "mia_li_3668"}, _USER_JSON, t_start=2.0, t_end=2.3),
    Message("assistant", "Let me check your reservation NO6JO3.", t_start=2.5, t_end=3.0),
    ToolCall("c2", 2, "get_reservation_details", {"reservation_id": "NO6JO3"},
             json.dumps([{"flight": "HAT170", "origin": "SFO", "date": "2024-05-20", "seats": 2}]),
             t_start=3.1, t_end=3.2),
    ToolCall("c3", 2, "get_reservation_details", {"reservation_id": "AIXC49"}, "Error: not found",
             error=True, t_start=3.1, t_end=3.9),
    Message("user", "Search flights from SFO to JFK on May 22, economy, at most 1 stop.", t_start=10.0),
    ToolCall("c4", 3, "search_flights", {"origin": "SFO", "destination": "JFK", "date": "2024-05-22",
                                         "max_stops": 1}, "[]", t_start=11.0, t_end=12.5),
    ToolCall("c5", 4, "readFile", {"file_path": "/tmp/notes/todo.txt"}, "line 1: call 555-0100\n42",
             t_start=13.0, t_end=None),
    Message("user", "thanks! send it to mia.li@example.com", t_start=20.0),
)
"""One session touching every extractor kind, output kind, time gap, error and earlier use."""
CUTS: tuple[int, ...] = (1, 2, 3, 5, 6, 8, 9, 10)
"""Decision points: contexts of the first n events (the labels are the events at n, when calls)."""
METADATA = {"source": "digest", "agent_implementation": "airline", "agent_model": "m1", "domain": "d"}


def contexts() -> list[tuple[Context, dict[str, Any] | None, str]]:
    """(context, the next call's arguments, the next tool) at each cut; the last ones list no tools (the
    catalogue fills them in) and come from another agent."""
    out = []
    for n in CUTS:
        nxt = EVENTS[n] if n < len(EVENTS) else None
        call = nxt if isinstance(nxt, ToolCall) else None
        tools = list(TOOLS) if n < 9 else []
        meta = METADATA if n < 9 else {**METADATA, "agent_model": "m2"}
        out.append((Context(list(EVENTS[:n]), tools, meta), call.args if call else None,
                    call.tool if call else "<respond>"))
    return out


def _encoder() -> TextEncoder:
    words: set[str] = set()
    for e in EVENTS:
        words.update(re.findall(r"[a-z]+", (e.text if isinstance(e, Message) else e.output or "").lower()))
    for t in TOOLS:
        words.update(re.findall(r"[a-z]+", f"{t.name} {t.description} {' '.join(t.param_names)}".lower()))
    words = {w for w in words if len(w) > 2}  # short words go to word pieces and [UNK]
    pieces = sorted(words) + [CONTINUATION + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + list("abcz")
    return TextEncoder({w: i for i, w in enumerate([*SPECIALS, *pieces])})


def _vocabularies() -> Vocabularies:
    kinds = sorted({kind_of(c) for ctx, _a, _t in contexts() for c in extract_candidates(ctx)})
    return Vocabularies(
        tools={"get_user_details": 3, "search_flights": 4, "readFile": 5},
        agents={"digest|airline|m1": 1},
        kinds={k: i for i, k in enumerate(["constant", "enum", *kinds], start=1)},
        constants={"search_flights": {"origin": ["SFO", "LAX"], "cabin": ["economy"]},
                   "send_email": {"urgent": [False]}},
        transitions={"get_user_details|tool": {"get_reservation_details": 3, "<respond>": 1},
                     "<start>|user": {"get_user_details": 2, "search_flights": 1},
                     "get_reservation_details>get_reservation_details|user": {"search_flights": 2}},
        value_sources={"get_reservation_details": {"reservation_id": {
            "json_leaf:output|get_user_details|reservations[*]": 4, "id:user||": 1}}},
        catalog={"digest:d": [t.to_dict() for t in TOOLS[2:]]},
    )


@functools.cache
def featurizer_digest() -> str:
    """16 hex digits over the reference featurizer's arrays, slot rows and targets on `contexts()`."""
    fz = Featurizer(tiny_config(max_events=6, max_tools=8, max_slots=3, max_candidates=6), _encoder(),
                    _vocabularies(), extract_candidates)
    h = hashlib.sha256()
    for context, args, tool in contexts():
        f = fz.featurize(context, slot_tools=[t.name for t in TOOLS])
        for name in sorted(f.arrays):
            a = np.ascontiguousarray(f.arrays[name])
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode() + a.tobytes())
        rows = [[r.tool, r.slot, [[v.canon, v.source, v.sig] for v in r.values]] for r in f.slots]
        targets = slot_targets(f.slots, args, len(f.arrays["slot_mask"]))
        h.update(json.dumps([f.tools.names, rows, fz.tool_target(f.tools, tool)]).encode())
        h.update(targets.astype("<i8").tobytes())
    return h.hexdigest()[:16]


SOURCE_MODULES: tuple[str, ...] = (
    "toolcast.predictor.features.catalog", "toolcast.predictor.features.cues",
    "toolcast.predictor.features.extractors", "toolcast.predictor.features.featurizer",
    "toolcast.predictor.features.extractor_kinds", "toolcast.predictor.features.path_kinds",
    "toolcast.predictor.features.ranking", "toolcast.predictor.features.slots",
    "toolcast.predictor.features.text", "toolcast.predictor.features.vocab",
    "toolcast.training.examples",
)


@functools.cache
def source_digest() -> str:
    """16 hex digits over the source of `SOURCE_MODULES`, read without importing them (the torch-free
    install has the files but not training's dependencies); a module that cannot be found counts by name."""
    h = hashlib.sha256()
    for name in SOURCE_MODULES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        origin = spec.origin if spec is not None else None
        if origin and origin.endswith(".py"):
            with open(origin, "rb") as f:
                h.update(f.read())
        else:
            h.update(name.encode())
    return h.hexdigest()[:16]
