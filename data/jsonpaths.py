"""JSON leaves with their paths, and the textual key two values share when one was copied from the other.

Paths read like `reservations[0].flight_number`; a dict key used as a value (tau2's payment methods are
keyed by their id) is a leaf of its own with path `payment_methods{key}`. The provenance labeller and
the runtime's extractors share these, so a path means the same thing at training and serving time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_INDEX = re.compile(r"\[\d+\]")
KEY_SUFFIX = "{key}"


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def leaves(obj: Any, path: str = "", *, with_keys: bool = True) -> Iterator[tuple[str, Any]]:
    """Yield (path, value) for every scalar leaf (str, number, bool; not null) of a JSON value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            child = join(path, k)
            if with_keys and isinstance(v, dict | list):
                yield f"{path}{KEY_SUFFIX}" if path else KEY_SUFFIX, k
            yield from leaves(v, child, with_keys=with_keys)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from leaves(v, join(path, i), with_keys=with_keys)
    elif obj is not None:
        yield path, obj


def generalize(path: str) -> str:
    """`reservations[3].id` -> `reservations[*].id`: the shape a value-mapping rule is written in."""
    return _INDEX.sub("[*]", path)


def value_key(value: Any) -> str | None:
    """The text two copies of a value share: "12" for 12, 12.0 and "12"; None for values never copied."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value if value.strip() else None
    return None
