"""The tools an agent set-up has, learned from its training logs, for contexts that list none.

Many logs carry no tool schemas: LangChain message dumps, chat logs saved without the request's `tools`,
coding-agent transcripts (Claude Code, Codex). The featurizer's candidates are the tools a context lists
plus the ones it already called, so on such logs a tool the agent had not called yet in the session could
never be predicted: on the bundled sample with the tool lists removed, tool top-1 fell from 0.627 to
0.116 (the pattern pool, which keeps its own per-set-up tool sets, 0.586).

`build_catalog` keeps, per agent set-up (`toolset_key`: source and domain), every tool the training
traces list or call: the listed schema when one was listed, else one inferred from the calls' arguments
(property names, JSON types, `required` = the keys every call gave), most-called first; "" holds all
set-ups' tools for a set-up never seen. `fill_tools` gives a context that lists no tools its set-up's
catalogue. It runs wherever contexts are featurized (training examples, the torch and ONNX predictors),
so a model is trained on what it is later given. The catalogue comes from the training split only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from toolcast.data.schema import Context, ToolSpec, Trace

Catalog = dict[str, list[dict[str, Any]]]
"""`toolset_key` (or "" for all set-ups) -> tool specs as dicts (`ToolSpec.to_dict`), most-called first."""

_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"),
               (dict, "object"))


def toolset_key(metadata: dict[str, Any]) -> str:
    """Which agent set-up a trace comes from (its source and domain), for logs that list no tools; the
    Markov baseline keeps its tool sets by the same key."""
    domain = metadata.get("domain") or metadata.get("category") or ""
    return f"{metadata.get('source', '')}:{domain}"


def _json_type(value: Any) -> str | None:
    return next((name for t, name in _JSON_TYPES if isinstance(value, t)), None)


class _ArgShapes:
    """What `_inferred` needs of a tool's calls, counted as they are read (not the calls themselves,
    which grow with the logs): each key's value types and how many calls gave it."""

    __slots__ = ("calls", "counts", "props")

    def __init__(self) -> None:
        self.calls = 0
        self.counts: Counter[str] = Counter()
        self.props: dict[str, set[str]] = {}

    def add(self, args: dict[str, Any]) -> None:
        self.calls += 1
        for key, value in args.items():
            self.counts[key] += 1
            kind = _json_type(value)
            self.props.setdefault(key, set()).update([kind] if kind else [])


def _inferred(calls: _ArgShapes) -> dict[str, Any]:
    """A JSON schema for the arguments of the calls counted: each key with the type its values had (when
    one), required when every call gave it."""
    props, counts = calls.props, calls.counts
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {k: ({"type": next(iter(ts))} if len(ts) == 1 else {}) for k, ts in props.items()},
    }
    required = [k for k in props if counts[k] == calls.calls]
    if required:
        schema["required"] = required
    return schema


def build_catalog(traces: Sequence[Trace]) -> Catalog:
    """Per set-up, the tools its traces list or call (see the module docstring). A tool's schema is the
    one its set-up listed (else one listed elsewhere, else inferred from its set-up's calls): two set-ups
    may have different tools of one name."""
    listed: dict[tuple[str, str], ToolSpec] = {}
    calls: dict[tuple[str, str], _ArgShapes] = defaultdict(_ArgShapes)
    used: dict[str, Counter[str]] = defaultdict(Counter)
    for t in traces:
        key = toolset_key({"source": t.source, **t.metadata})
        for k in (key, ""):
            for spec in t.tools:
                listed.setdefault((k, spec.name), spec)
                used[k][spec.name] += 0
            for call in t.calls:
                calls[(k, call.tool)].add(call.args)
                used[k][call.tool] += 1

    def spec(key: str, name: str) -> dict[str, Any]:
        found = listed.get((key, name)) or listed.get(("", name))
        return (found or ToolSpec(name, "", _inferred(calls[(key, name)]))).to_dict()

    return {key: [spec(key, name) for name, _n in sorted(names.items(), key=lambda x: (-x[1], x[0]))]
            for key, names in used.items()}


class ToolFiller:
    """`fill_tools` with each set-up's specs built once (the same objects every step: the predictor's
    per-tool-set caches key on them)."""

    def __init__(self, catalog: Catalog):
        self.catalog = catalog
        self._specs: dict[str, list[ToolSpec]] = {}

    def specs(self, key: str) -> list[ToolSpec]:
        key = key if key in self.catalog else ""  # kept per catalogue entry: requests may name any set-up
        hit = self._specs.get(key)
        if hit is None:
            hit = self._specs[key] = [ToolSpec.from_dict(d) for d in self.catalog.get(key, [])]
        return hit

    def __call__(self, context: Context) -> Context:
        """`context` itself when it lists tools (or there is no catalogue), else a copy listing its
        set-up's tools."""
        if context.tools or not self.catalog:
            return context
        return Context(context.events, self.specs(toolset_key(context.metadata)), context.metadata)
