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
from toolcast.data.load import iter_traces
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


ROWS_PER_BATCH = 1000
"""Rows written to a split's Arrow file at a time: what building the splits holds in memory."""


def split_traces(traces: Iterable[Trace], seed: int = 0,
                 fractions: Sequence[float] = DEFAULT_FRACTIONS,
                 workdir: str | os.PathLike | None = None) -> DatasetDict:
    """The traces in task-grouped splits. With a `workdir`, each split is written there as an Arrow file
    while the traces are read, in batches of `ROWS_PER_BATCH` rows, and memory-mapped: memory holds a
    batch and a 16-byte digest per trace (to leave out a trace given twice), never the traces.
    Without one, the splits are built in memory."""
    from datasets import DatasetDict

    sinks = {s: _SplitSink(Path(workdir) / f"{s}.arrow" if workdir is not None else None) for s in SPLITS}
    seen: dict[str, set[bytes]] = {}  # trace id -> the digest of each trace given that id
    duplicates = renamed = 0
    for t in traces:
        text = t.to_json()
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        kept = seen.setdefault(t.trace_id, set())
        if digest in kept:  # the same trace given twice (a file listed twice, overlapping exports)
            duplicates += 1
            continue
        kept.add(digest)
        if len(kept) > 1:  # another trace with this id (files named alike in different folders)
            renamed += 1
            n = len(kept)
            while f"{t.trace_id}#{n}" in seen:  # an id some trace has (or a renamed one took) stays its
                n += 1
            t = replace(t, trace_id=f"{t.trace_id}#{n}")
            text = t.to_json()
            seen[t.trace_id] = {hashlib.blake2b(text.encode(), digest_size=16).digest()}
        sinks[split_of(t.group, seed, fractions)].add(t, text)
    if duplicates:
        log.info("left out %d traces given twice (same id, same content)", duplicates)
    if renamed:
        log.warning("%d traces share their id with a different trace: kept as <id>#2, #3... (ids default to "
                    "<file name>:<line>; give traces a metadata.id to tell them apart)", renamed)
    return DatasetDict({s: sink.dataset() for s, sink in sinks.items()})


class _SplitSink:
    """One split's rows, written in batches to an Arrow stream file (or kept in memory, path None)."""

    def __init__(self, path: Path | None):
        import pyarrow as pa
        from datasets import Features, Value

        self.features = Features({COL_ID: Value("string"), COL_GROUP: Value("string"),
                                  COL_SOURCE: Value("string"), COL_CALLS: Value("int64"),
                                  COL_TRACE: Value("string")})
        self.schema = self.features.arrow_schema
        self.path = path
        self.rows: dict[str, list] = {c: [] for c in self.features}
        self.batches: list = []
        self.writer = pa.ipc.new_stream(str(path), self.schema) if path is not None else None

    def add(self, t: Trace, text: str) -> None:
        for col, value in ((COL_ID, t.trace_id), (COL_GROUP, t.group), (COL_SOURCE, t.source),
                           (COL_CALLS, len(t.calls)), (COL_TRACE, text)):
            self.rows[col].append(value)
        if len(self.rows[COL_ID]) >= ROWS_PER_BATCH:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        batch = pa.RecordBatch.from_pydict(self.rows, schema=self.schema)
        self.rows = {c: [] for c in self.rows}
        if self.writer is not None:
            self.writer.write_batch(batch)
        else:
            self.batches.append(batch)

    def dataset(self) -> Dataset:
        import pyarrow as pa
        from datasets import Dataset

        self._flush()
        if self.writer is None:
            return Dataset(pa.Table.from_batches(self.batches, schema=self.schema))
        self.writer.close()
        return Dataset.from_file(str(self.path))


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
    # Streamed: traces go to Arrow files as they are read (split_traces), then to the cache.
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    rows = target.with_name(target.name + f".rows{os.getpid()}")
    for d in (tmp, rows):
        shutil.rmtree(d, ignore_errors=True)
    rows.mkdir(parents=True)
    try:
        dd = split_traces(iter_traces(*paths, format=format, progress=True), seed, fractions, workdir=rows)
        dd.save_to_disk(str(tmp))
        log.info("splits: %s", {k: len(v) for k, v in dd.items()})
        del dd
        try:
            os.replace(tmp, target)
        except OSError:  # another process cached the same splits first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        shutil.rmtree(rows, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(target))
