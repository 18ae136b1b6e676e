"""Tool specs of a tau2-bench results file (tau2.py): read from `tool_defs` when the file has them,
otherwise synthesized from the calls observed in the file (parameter names, the JSON types seen,
`required` = present in every call), with empty description and annotations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from toolcast.data.errors import Location
from toolcast.data.formats.base import expect
from toolcast.data.schema import ToolSpec

_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    for py, name in _JSON_TYPES:
        if isinstance(value, py):
            return name
    return "string"


@dataclass
class Observed:
    """What the calls of one tool showed: how many, and per parameter the JSON types and how often."""

    calls: int = 0
    params: dict[str, tuple[set[str], list[int]]] = field(default_factory=dict)

    def add(self, args: dict[str, Any]) -> None:
        self.calls += 1
        for key, value in args.items():
            types, seen = self.params.setdefault(key, (set(), [0]))
            types.add(json_type(value))
            seen[0] += 1


def synthesize(observed: dict[str, Observed]) -> list[ToolSpec]:
    """Specs from the calls seen: parameter names, the JSON types seen, required = in every call."""
    specs = []
    for name, obs in observed.items():
        props: dict[str, Any] = {}
        for key, (types, _seen) in obs.params.items():
            kinds = sorted(types - {"integer"} if {"integer", "number"} <= types else types)
            props[key] = {"type": kinds[0] if len(kinds) == 1 else kinds}
        required = [key for key, (_types, seen) in obs.params.items() if seen[0] == obs.calls]
        specs.append(ToolSpec(name=name, parameters={"type": "object", "properties": props,
                                                     "required": required}))
    return specs


def tool_specs(where: Location, tool_defs: Any) -> list[ToolSpec]:
    """tau2's `tool_defs` ({name: {name, doc, params, returns}}) or an OpenAI-style tool list."""
    items = list(tool_defs.items()) if isinstance(tool_defs, dict) else list(enumerate(tool_defs))
    specs = []
    for key, d in items:
        path = f"info.environment_info.tool_defs[{key!r}]"
        expect(d, dict, where, path)
        fn = d.get("function") if isinstance(d.get("function"), dict) else d
        name = fn.get("name", key if isinstance(key, str) else None)
        expect(name, str, where, f"{path}.name")
        desc = fn.get("description", fn.get("doc")) or ""
        params = fn.get("parameters", fn.get("params")) or {}
        specs.append(ToolSpec(name=name, description=expect(desc, str, where, f"{path}.doc"),
                              parameters=expect(params, dict, where, f"{path}.params")))
    return specs
