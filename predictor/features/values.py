"""What a slot row reads of one candidate value: its type under a slot's schema, its key, where it came from.

Pure functions (memoised where they are hot), shared by the reference slot featurizer (`slots.py`,
`ranking.py`) and the session fast path (`session/`), so both read a value the same way:

- `coerce` / `fits` / `value_type`: a value in the slot's schema type when it converts losslessly (a "12"
  read from text fills an integer slot as 12: a speculative call only counts when its canonical
  arguments match exactly), and whether it fits;
- `last_key` / `key_words`: the key a value sits under (`reservations[0].id` -> `id`), as singular words,
  which `ranking.key_match` compares with the slot's name;
- `kind_of` / `source_sig` / `source_text`: the extractor kind and role of a value's newest mention, where
  such values come from generalised across contexts, and where this one was found.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from toolcast.data.schema import Context, ToolCall, canonical_args
from toolcast.predictor.features.extractors import path_shape
from toolcast.predictor.features.text import split_identifier

KIND_CONSTANT, KIND_ENUM = "constant", "enum"
_INDEX = re.compile(r"\[\d+\]|\{key\}|\[\d*:\d*\]")


def schema_types(prop: Any) -> list[str]:
    """The JSON-schema type names of a slot's property (`"type": "x"` or `"type": ["x", "null"]`)."""
    t = prop.get("type") if isinstance(prop, dict) else None
    return [t] if isinstance(t, str) else [x for x in t if isinstance(x, str)] if isinstance(t, list) else []


def coerce(value: Any, types: list[str]) -> Any:
    """A candidate value in the slot's schema type when it converts losslessly; else unchanged."""
    if not types or not isinstance(value, str | int | float):
        return value
    if isinstance(value, str):
        s = value.strip()
        if "integer" in types and re.fullmatch(r"-?\d+", s):
            return int(s)
        if "number" in types and re.fullmatch(r"-?\d+(\.\d+)?", s):
            return float(s) if "." in s else int(s)
        if "boolean" in types and s.lower() in ("true", "false"):
            return s.lower() == "true"
        return value
    if isinstance(value, bool):
        return value
    if "string" in types and "integer" not in types and "number" not in types:
        return str(value)
    if "integer" in types and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def value_type(v: Any) -> int:
    """1 string, 2 integer, 3 number, 4 boolean, 5 anything else."""
    if isinstance(v, bool):
        return 4
    if isinstance(v, int):
        return 2
    if isinstance(v, float):
        return 3
    if isinstance(v, str):
        return 1
    return 5


def fits(v: Any, types: list[str]) -> int:
    """0 the slot has no type, 1 the value fits it, 2 it does not."""
    if not types:
        return 0
    t = value_type(v)
    ok = {1: "string", 2: "integer", 4: "boolean", 5: "array"}.get(t)
    fit = (
        (ok in types)
        or (t == 2 and "number" in types)
        or (t == 3 and "number" in types)
        or (t == 5 and ("object" in types or "array" in types))
    )
    return 1 if fit else 2


def bucket(n: int, size: int) -> int:
    """0 for nothing, then log2 buckets (1, 2-3, 4-7, ...) capped at size - 1."""
    return 0 if n <= 0 else min(size - 1, 1 + int(math.log2(n)))


def canon(value: Any) -> str:
    """`canonical_args`, memoised for scalars (typed: 1, 1.0 and True are different values)."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return _canon_scalar(value)
    return canonical_args(value)


@lru_cache(maxsize=8192, typed=True)
def _canon_scalar(value: Any) -> str:
    return canonical_args(value)


@lru_cache(maxsize=8192)
def last_key(path: str | None) -> str:
    """The key a value sits under (`reservations[0].id` -> `id`); "" for text spans. Memoised (pure)."""
    if not path or path.startswith("text["):
        return ""
    return _INDEX.sub("", path).rsplit(".", 1)[-1]


def key_text(name: str) -> str:
    """A key or slot name as singular words: `orders` and `order_id` share "order", `file_names` and
    `file_name` are equal. A list's key is plural where the argument that takes one of its elements is
    singular, the commonest way a value moves from an output into the next call."""
    return " ".join(_singular(w) for w in split_identifier(name).split())


@lru_cache(maxsize=16384)
def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=16384)
def key_words(key: str) -> tuple[str, set[str]]:
    """`key_text` of a key or slot name and the set of its words (memoised: do not mutate)."""
    words = key_text(key)
    return words, set(words.split())


def kind_of(cand: Any) -> str:
    """ "extractor kind:role" of a candidate's newest mention ("word:user"), or its own `kind`."""
    ms = getattr(cand, "mentions", None)
    if ms:
        return f"{ms[0].kind}:{ms[0].role}"
    return str(getattr(cand, "kind", ""))


def source_sig(kind: str, tool: str | None, path: str | None) -> str:
    """Where a candidate comes from, generalised across contexts: kind:role, source tool, path shape
    (`json_leaf:output|get_user_details|reservations[*]`); constants and enum members by their kind."""
    if kind in (KIND_CONSTANT, KIND_ENUM):
        return kind
    return f"{kind}|{tool or ''}|{path_shape(path or '')}"


def source_text(kind: str, tool: str | None, path: str | None) -> str:
    """Where a value was found, as `SlotValue.source` reports it (`json_leaf:output:get_user.orders[0]`)."""
    return f"{kind}:{tool or ''}" + (f".{path}" if path else "")


@dataclass
class Fixed:
    """A candidate that comes from the slot itself (a constant or an enum member), not the context."""

    value: Any
    kind: str
    rank: int
    source_event: int | None = None
    source_tool: str | None = None
    source_path: str | None = None


def earlier_uses(context: Context) -> dict[tuple[str, str], set[str]]:
    """(tool, slot) / ("", slot) / ("", "") -> canonical values the context's calls already passed."""
    used: dict[tuple[str, str], set[str]] = {}
    for e in context.events:
        if isinstance(e, ToolCall):
            for slot, v in e.args.items():
                c = canonical_args(v)
                for key in ((e.tool, slot), ("", slot), ("", "")):
                    used.setdefault(key, set()).add(c)
    return used
