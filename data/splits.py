"""Task-grouped train/validation/test splits as a Hugging Face `datasets.DatasetDict`, cached.

A trace's split is a function of its task group and the seed alone (a hash), so one group never sits
on both sides, the split is the same on every machine, and adding logs never moves an old group.
Traces that share a trace id (the same run exported twice) are kept once.

`split_of` needs only the standard library (baseline evaluation runs on the base install); building
the `datasets.DatasetDict` imports `datasets` when called.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from toolcast.data.io import expand_paths
from toolcast.data.load import load_traces
from toolcast.data.schema import Trace

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
COL_ID, COL_GROUP, COL_SOURCE, COL_CALLS, COL_TRACE = "trace_id", "group", "source", "n_calls", "trace"
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.1, 0.1)


def split_of(group: str, seed: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> str:
    """Which split a task group falls in: a uniform draw from a hash of (seed, group)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    digest = hashlib.sha256(f"{seed}\x00{group}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for name, f in zip(SPLITS, fractions, strict=True):
        edge += f
        if u < edge:
            return name
    return SPLITS[-1]


def split_traces(traces: Iterable[Trace], seed: int = 0,
                 fractions: Sequence[float] = DEFAULT_FRACTIONS) -> DatasetDict:
    from datasets import Dataset, DatasetDict

    columns = (COL_ID, COL_GROUP, COL_SOURCE, COL_CALLS, COL_TRACE)
    rows: dict[str, dict[str, list]] = {s: {c: [] for c in columns} for s in SPLITS}
    seen: dict[str, set[str]] = {}  # trace id -> the JSON of each trace given that id
    duplicates = renamed = 0
    for t in traces:
        text = t.to_json()
        kept = seen.setdefault(t.trace_id, set())
        if text in kept:  # the same trace given twice (a file listed twice, overlapping exports)
            duplicates += 1
            continue
        kept.add(text)
        if len(kept) > 1:  # another trace with this id (files named alike in different folders)
            renamed += 1
            n = len(kept)
            while f"{t.trace_id}#{n}" in seen:  # an id some trace has (or a renamed one took) stays its
                n += 1
            t = replace(t, trace_id=f"{t.trace_id}#{n}")
            text = t.to_json()
            seen[t.trace_id] = {text}
        r = rows[split_of(t.group, seed, fractions)]
        r[COL_ID].append(t.trace_id)
        r[COL_GROUP].append(t.group)
        r[COL_SOURCE].append(t.source)
        r[COL_CALLS].append(len(t.calls))
        r[COL_TRACE].append(text)
    if duplicates:
        log.info("left out %d traces given twice (same id, same content)", duplicates)
    if renamed:
        log.warning("%d traces share their id with a different trace: kept as <id>#2, #3... (ids default to "
                    "<file name>:<line>; give traces a metadata.id to tell them apart)", renamed)
    return DatasetDict({s: Dataset.from_dict(rows[s]) for s in SPLITS})


def traces_of(ds: Dataset) -> list[Trace]:
    """The traces of one split, as canonical `Trace` objects."""
    return [Trace.from_dict(json.loads(s)) for s in ds[COL_TRACE]]


def default_cache_dir() -> Path:
    base = os.environ.get("TOOLCAST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "toolcast")
    return Path(base) / "splits"


@functools.cache
def importer_digest() -> str:
    """16 hex digits over the source of the code that turns log files into traces (`toolcast.data`'s
    modules and its formats), so that cached splits and examples follow an importer fix."""
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted([*here.glob("*.py"), *(here / "formats").glob("*.py")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _fingerprint(paths: list[Path], seed: int, fractions: Sequence[float]) -> str:
    h = hashlib.sha256(f"v2|{importer_digest()}|{seed}|{list(fractions)}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def load_splits(*paths: str | os.PathLike, seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                cache_dir: str | os.PathLike | None = None, format: str = "auto") -> DatasetDict:
    """Import the logs and split them by task group; reuse the cached splits when the files are unchanged."""
    from datasets import load_from_disk

    files = expand_paths(list(paths))
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / _fingerprint(files, seed, fractions)
    if (target / "dataset_dict.json").exists():
        log.info("splits from cache %s", target)
        return load_from_disk(str(target))
    # The paths as given: inside a named folder, files in no log format (a README) are left out.
    dd = split_traces(load_traces(*paths, format=format, progress=True), seed, fractions)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    dd.save_to_disk(str(tmp))
    try:
        os.replace(tmp, target)
    except OSError:  # another process cached the same splits first
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("splits: %s", {k: len(v) for k, v in dd.items()})
    return dd
