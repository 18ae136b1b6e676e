"""The one canonical form of a call's arguments, for matching calls and for filling resource keys.

A speculative result is served to a real call only when both have the same (tool, canonical arguments),
and a write invalidates the reads whose resource keys overlap its own: both decisions go through
`canonical()`, so two values are the same call's argument exactly when they name the same resource.

The form follows JSON's data model, since what an LLM's tool call carries is JSON:

- numbers compare by value: `1`, `1.0` and `1e0` are one JSON number (so `order_id=1` and `order_id=1.0`
  are one call and one resource), however Python typed them;
- `True`/`False` are JSON booleans, never the numbers 1 and 0; `None` is `null`;
- lists and tuples are both a JSON array (a tool behind JSON cannot tell them apart);
- an object's keys must be strings: `{1: x}` is not JSON and is never conflated with `{"1": x}`;
- anything else (NaN and infinities, sets, bytes, objects, int dict keys, nesting deeper than
  `MAX_DEPTH`) has no canonical form: `canonical()` returns None. Such a call still runs, normally; it
  is never matched to a speculative result, and in a resource key such a value is a wildcard (it may
  name any resource, so it invalidates and is invalidated conservatively).

The form is JSON text with sorted keys; integral numbers are written as integers (`1.0` -> `1`).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64
"""Deeper arguments have no canonical form (and are never matched): bounded work per call."""


class _NoForm(Exception):
    pass


def canonical(value: Any) -> str | None:
    """The canonical JSON text of `value`, or None when it has none (see the module docstring)."""
    try:
        return json.dumps(_normal(value, 0), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (_NoForm, RecursionError, ValueError, TypeError):
        return None


def _normal(value: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise _NoForm
    if value is None or value is True or value is False:
        return value
    if isinstance(value, bool):  # a bool subclass instance: still a boolean
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)  # a str subclass (an enum member) as the string JSON would write
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NoForm
        return int(value) if value.is_integer() else float(value)
    if isinstance(value, (list, tuple)):
        return [_normal(v, depth + 1) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise _NoForm
        return {str(k): _normal(v, depth + 1) for k, v in value.items()}
    raise _NoForm


def key_part(value: Any) -> str | None:
    """A value as it fills a resource-key placeholder: its canonical form, a string as its own text.

    Unquoted strings keep keys readable (`order:A1`) and make the string "1" and the number 1 the same
    resource: a conflation on the safe side (more invalidation, never less). None: no canonical form.
    """
    if isinstance(value, str):
        return str.__str__(value)
    return canonical(value)
