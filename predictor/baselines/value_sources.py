"""The sources a slot's value can come from, as the pattern pool's value-mapping functions name them.

A source is a tuple key: `("output", tool, shape)` (leaves of that tool's earlier outputs at a path
shape), `("argument", tool, shape)` (an earlier call's argument), `("text", kind, role, tool)` (values an
extractor kind found in text written by `role`), `("constant",)` and the generic ones (`GENERIC`) tried
for every slot. Here: how a mention is filed under its sources (`index_keys`), how a generic source
reads for one slot (`resolve`), how values are matched and converted to a slot's type.
"""

from __future__ import annotations

import json
from typing import Any

from toolcast.data import jsonpaths
from toolcast.predictor.features.extractors import path_shape, value_id

SourceKey = tuple[str, ...]
CONSTANT: SourceKey = ("constant",)
MIN_GROUPS = 2
"""A source (and a constant) must hold the right value in this many task groups to be kept."""
MAX_RANK = 4
"""Values a source offers per slot: the first `MAX_RANK` of its list."""
PRIOR_STRENGTH = 2.0
"""Pseudo-count of the prior when estimating a (source, rank)'s hit rate for one slot."""
MARK = "{{toolcast:path}}"
"""Stands for the path in a command template's JSON text (`("template", text)`, `templates.py`)."""
FRESH = "fresh"
"""Marks a variant of a list source that skips the values this slot already took (iterate a list)."""

_OUTPUT_KINDS = {"json_leaf", "output_text"}
USER_TEXT_KINDS: tuple[str, ...] = ("ident", "quoted", "number", "file_path", "email", "url", "capitalized",
                                    "word")

GENERIC: tuple[SourceKey, ...] = (
    ("same_slot",),  # this tool's own earlier value for the slot
    ("same_name",),  # an earlier argument of any tool under the same slot name
    ("any_argument",),  # any earlier argument value, newest first
    ("output_key",),  # an earlier output leaf whose key is the slot's name
    ("output_key", FRESH),
    *(("text", kind, "user", "") for kind in USER_TEXT_KINDS),
    CONSTANT,
)
"""Sources tried for every slot (with statistics pooled over slots as their prior), beside the specific
ones each slot's training calls reveal."""


def _last_key(path: str) -> str:
    shape = path_shape(path)
    return shape.rsplit(".", 1)[-1].replace("[*]", "")


def index_keys(kind: str, role: str, tool: str | None, path: str) -> tuple[SourceKey, ...]:
    """The sources a mention is an instance of (as the context index files it)."""
    if kind in _OUTPUT_KINDS:
        return (("output", tool or "", path_shape(path)), ("outkey", _last_key(path)))
    if kind == "argument":
        shape = path_shape(path)
        return (("argument", tool or "", shape), ("argument", "*", shape), ("argument", "*", "*"))
    return (("text", kind, role, tool or ""),)


def resolve(key: SourceKey, tool: str, slot: str) -> tuple[SourceKey, bool]:
    """(index key, fresh?) of a source for a given tool and slot."""
    head = key[0]
    fresh = key[-1] == FRESH
    if head == "same_slot":
        return ("argument", tool, slot), False
    if head == "same_name":
        return ("argument", "*", slot), False
    if head == "any_argument":
        return ("argument", "*", "*"), False
    if head == "output_key":
        return ("outkey", slot), fresh
    return (key[:-1] if fresh else key), fresh


def describe(key: SourceKey) -> str:
    """`get_user_details output reservations[*]`, `earlier argument cd.folder`, `ident in user text`."""
    fresh = " (not yet used)" if key[-1] == FRESH else ""
    head = key[0]
    if head == "template":
        try:
            shown = json.loads(key[1].replace(MARK, "{path}"))
        except ValueError:
            shown = key[1]
        return f"template {shown!r} filled with a listed path"
    if head == "output":
        return f"{key[1]} output {key[2] or '(whole)'}{fresh}"
    if head == "argument":
        return f"earlier argument {key[1]}.{key[2]}"
    if head == "text":
        where = f"{key[3]} output" if key[2] == "output" else f"{key[2]} text"
        return f"{key[1]} in {where}"
    return {"same_slot": "same slot, earlier call", "same_name": "same slot name, any earlier call",
            "any_argument": "any earlier argument", "output_key": f"earlier output key = slot name{fresh}",
            "constant": "constant"}[head]


def match_key(value: Any) -> str:
    """Loose identity used to *find* a value (12 == "12" == 12.0), as provenance labelling does."""
    if isinstance(value, dict | list) or value is None or isinstance(value, bool):
        return value_id(value)
    key = jsonpaths.value_key(value)
    return key if key is not None else value_id(value)


def type_name(value: Any) -> str:
    return type(value).__name__


def coerce(value: Any, type_: str | None) -> Any:
    """`value` as a value of the slot's JSON type, or None when it cannot be one losslessly."""
    if type_ is None or type_name(value) == type_:
        return value
    if isinstance(value, bool) or isinstance(value, dict | list):
        return None
    if type_ == "str":
        return jsonpaths.value_key(value)
    try:
        if type_ == "int":
            f = float(value)
            return int(f) if f.is_integer() else None
        if type_ == "float":
            return float(value)
    except (TypeError, ValueError):
        return None
    if type_ == "bool" and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None
