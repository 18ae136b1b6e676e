"""Command templates: an argument composed of fixed text and one path, mined from logs.

A coding agent's shell calls are templates filled with a path it has just seen: `cat {path}`,
`sed -n '1,60p' {path}`, `git diff {path}`, `wc -l {path} && sed -n '1,40p' {path}`. No extractor
proposes such a line whole, so the value maps also learn, per (tool, slot), the templates its training
values follow: a value in which a path of the context's *path pool* occurs as a whole word, that path
replaced by a marker. A template is a source like any other (`("template", text)`): it offers the
template filled with the pool's paths, newest first, and its hit rate per rank is measured on the
training calls, so a template that seldom fits ranks low.

The pool (`PATHS`): values the path extractors found (`listed_path`, `file_path`) and earlier arguments
that look like a path. Templates are written over the value's JSON text, so an argv list
(`["bash", "-lc", "cat x"]`) is a template as a string is; filling one gives a value of the same type.
"""

from __future__ import annotations

import json
import re
from typing import Any

from toolcast.predictor.baselines.value_sources import MARK, SourceKey

PATHS: SourceKey = ("paths",)
"""The context index's list of path-like values, newest first (what a template is filled with)."""
PATH_KINDS = ("listed_path", "file_path")
"""Extractor kinds whose values go to the path pool, in this order within an event (a listing's joined
paths before the bare names `file_path` sees in it), path-like earlier arguments after them."""
MAX_TEMPLATE = 400
"""A longer value is not mined as a template (a here-doc, a patch)."""
MAX_SCAN = 64
"""Pool paths tried against one value while mining."""
MAX_TEMPLATES = 24
"""Templates kept per slot, those used in the most task groups first."""

_PATHLIKE = re.compile(r"^[\w.@+~/-]*[/.][\w.@+~/-]*$")
_AROUND = r"(?<![\w./~-]){}(?![\w/~-])"


def is_pathlike(value: Any) -> bool:
    """A string that could be a file path: one token with a `/` or a `.`, at least 3 characters."""
    return isinstance(value, str) and 3 <= len(value) <= 512 and bool(_PATHLIKE.match(value)) \
        and any(c.isalpha() for c in value)


def _escaped(path: str) -> str:
    return json.dumps(path, ensure_ascii=False)[1:-1]


def template_of(value: Any, paths: list[Any]) -> str | None:
    """`value`'s JSON text with the longest pool path that occurs in it as a whole word replaced by
    `MARK` (every occurrence); None when no path occurs, or the value is the path itself."""
    if not isinstance(value, str | list) or (isinstance(value, list) and not all(
            isinstance(v, str) for v in value)):
        return None
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > MAX_TEMPLATE or MARK in text:
        return None
    best = None
    for path in paths[:MAX_SCAN]:
        if isinstance(path, str) and len(path) >= 3 and (best is None or len(path) > len(best)):
            if _escaped(path) in text:
                best = path
    if best is None:
        return None
    out = re.sub(_AROUND.format(re.escape(_escaped(best))), lambda _m: MARK, text)
    if MARK not in out or out == f'"{MARK}"':
        return None
    return out


def fill(template: str, path: str) -> Any:
    """The value a template makes with `path` in it; None if that is not valid JSON."""
    try:
        return json.loads(template.replace(MARK, _escaped(path)))
    except ValueError:
        return None
