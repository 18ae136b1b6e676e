"""Featurized examples as memory-mapped Arrow (Hugging Face `datasets`), written shard by shard.

A split of traces (`data.splits`: one JSON trace per row, memory-mapped) becomes a split of examples (one
row per decision point): consecutive shards of the traces, each featurized by `Dataset.map(batched=True)`
into its own Arrow file by whichever of N forked processes is free (`ShardMap`), so featurizing uses every
core and never holds the whole set. The rows are exactly `examples.trace_examples`' arrays (int64 stored
as int32, as `examples.build_examples` stacks them), in the same order with any N; `ExampleRows` reads
batches from the memory-mapped files, so every training process (DDP ranks included) shares the page
cache instead of loading its own copy. `ShardMap` also runs the statistics pass by shard (`datamodule`).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import multiprocessing as mp
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import torch
from datasets import Array2D, Array3D, Array4D, Array5D, Dataset, Features, Value, concatenate_datasets
from datasets import Sequence as ListOf
from torch.utils.data import Dataset as TorchDataset

from toolcast.data.schema import Trace
from toolcast.data.splits import COL_TRACE
from toolcast.predictor.features.extractors import clear_event_cache
from toolcast.predictor.features.featurizer import EVENT_INPUTS, SLOT_INPUTS, TOOL_INPUTS, Featurizer
from toolcast.training.examples import pack_group_counts, trace_examples, unpack_group_counts

log = logging.getLogger(__name__)

COL_TRACE_INDEX = "trace_index"
"""Which row of the split's traces an example came from."""
COL_EVENTS = "n_events"
"""Events in the example's context: what the bucketing sampler sorts by, without reading `ev_mask`."""
META_COLUMNS = (COL_TRACE_INDEX, COL_EVENTS)
TRACES_PER_BATCH = 64
"""Traces featurized per `map` batch: one batch's examples is what a featurizing process holds."""
EXAMPLES_FILE = "examples.arrow"
WRITER_ROWS = 256
"""Examples a featurizing process buffers before writing them (datasets' default, 1000, held ~100 MB)."""
TRACES_PER_PROCESS = 256
"""Fewer traces than this per process and another process costs more to start than it saves."""
_ARRAY_TYPES = {2: Array2D, 3: Array3D, 4: Array4D, 5: Array5D}


class TraceRows(Sequence[Trace]):
    """The traces of one or more split datasets, decoded as they are read (never all at once)."""

    def __init__(self, *parts: Dataset):
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def __getitem__(self, i: int) -> Trace:  # type: ignore[override]
        for p in self.parts:
            if i < len(p):
                return Trace.from_dict(json.loads(p[i][COL_TRACE]))
            i -= len(p)
        raise IndexError(i)

    def __iter__(self) -> Iterator[Trace]:
        """Each trace in turn; after it, the extractors' per-event cache is let go (see
        `extractors.clear_event_cache`: it would keep up to 100k events alive, the whole log at 1x)."""
        for p in self.parts:
            for batch in p.select_columns([COL_TRACE]).iter(batch_size=TRACES_PER_BATCH):
                for text in batch[COL_TRACE]:
                    yield Trace.from_dict(json.loads(text))
                    clear_event_cache()


SHARDS_PER_PROCESS = 8
"""Consecutive shards per process, each taken by whichever process is free: traces differ in cost (in the
development logs the second half of the training split took twice the first's time to featurize), so
one shard per process left one waiting for the other."""
ShardFn = Callable[[Dataset, int], Any]
"""`fn(shard, start)`: a `ShardMap` function, run on the shard's traces (rows start, start + 1, ...)."""
_FORK_JOB: Any = None
"""What the processes of `_forked_pool` run (`ShardMap`'s shards, `in_forked_child`'s function): set before
they fork, so they inherit it (nothing pickled), and cleared here after."""


def _forked_pool(procs: int, job: Any, run: Callable[[int], Any], calls: int,
                 ) -> tuple[ProcessPoolExecutor, list[Future]]:
    """`run(i)` for i < `calls` in `procs` forked processes that inherit `job` as `_FORK_JOB`. A forking
    executor starts every process at the first submit, and a process that dies (out of memory) fails its
    future with BrokenProcessPool where a multiprocessing.Pool would hang."""
    global _FORK_JOB
    if _FORK_JOB is not None:
        raise RuntimeError("one forked job at a time")
    _FORK_JOB = job
    try:
        pool = ProcessPoolExecutor(procs, mp_context=mp.get_context("fork"))
        return pool, [pool.submit(run, i) for i in range(calls)]
    finally:
        _FORK_JOB = None  # the processes have their copy


def _run_shard(index: int) -> Any:
    assert _FORK_JOB is not None, "a shard process must be forked by ShardMap"
    traces, fn, start, stop = _FORK_JOB[index]
    return fn(traces.select(range(start, stop)), start)


def _cuts(n: int, shards: int) -> list[tuple[int, int]]:
    cuts = [n * i // shards for i in range(shards + 1)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def shard_plan(n: int, num_proc: int) -> tuple[int, list[tuple[int, int]]]:
    """`ShardMap`'s processes and shards ([start, stop) rows) for `n` traces and up to `num_proc`
    processes."""
    procs = max(1, min(num_proc, math.ceil(n / TRACES_PER_PROCESS)))
    if "fork" not in mp.get_all_start_methods():
        procs = 1
    shards = 1 if procs == 1 else min(procs * SHARDS_PER_PROCESS, max(procs, n // TRACES_PER_BATCH))
    return procs, _cuts(n, shards)


def _later_shards(n: int, procs: int) -> list[tuple[int, int]]:
    """A later job's shards (`ShardMap.jobs`): it fills the processes the first job's last shards leave
    idle, so it is cut finer (half a map batch a shard), never into more than the first job's count."""
    if procs == 1 or n == 0:
        return [(0, n)]
    return _cuts(n, max(1, min(procs * SHARDS_PER_PROCESS, n // (TRACES_PER_BATCH // 2))))


class ShardMap:
    """`fn(shard, start)` over consecutive shards of the traces (a `Dataset` of rows start, start + 1, ...)
    in forked processes, started at once (the caller works meanwhile); `results()` waits and gives them in
    shard order. Counts over consecutive shards, merged in order, are what one pass counts
    (`examples.TraceCounts.merge`). The processes inherit `fn` and what it refers to (the featurizer, the
    extractor) by forking: nothing is pickled or loaded per process. One process (or where processes
    cannot fork, or the traces are few: `TRACES_PER_PROCESS`): `results()` runs `fn` on all the traces
    here, as one shard.

    `ShardMap.jobs` runs several (traces, fn) jobs in one set of processes, each job's shards queued after
    the one before's (the validation and test splits featurized while the training split's last shards
    finish, instead of one process each after it); `all_results()` gives each job's results."""

    def __init__(self, traces: Dataset, fn: Callable[[Dataset, int], Any], num_proc: int = 1):
        self._start([(traces, fn)], num_proc)

    @classmethod
    def jobs(cls, jobs: Sequence[tuple[Dataset, ShardFn]], num_proc: int = 1) -> ShardMap:
        self = cls.__new__(cls)
        self._start(list(jobs), num_proc)
        return self

    def _start(self, jobs: list[tuple[Dataset, ShardFn]], num_proc: int) -> None:
        self.job_list = jobs
        self.procs, first = shard_plan(sum(len(t) for t, _fn in jobs), num_proc)
        if self.procs > 1:
            first = shard_plan(len(jobs[0][0]), num_proc)[1] if len(jobs[0][0]) else [(0, 0)]
        self.bounds_of = [first] + [_later_shards(len(t), self.procs) for t, _fn in jobs[1:]]
        self.bounds = self.bounds_of[0]
        self.pool: ProcessPoolExecutor | None = None
        if self.procs > 1:
            shards = [(t, fn, a, b) for (t, fn), bounds in zip(jobs, self.bounds_of, strict=True)
                      for a, b in bounds]
            self.pool, self.pending = _forked_pool(self.procs, shards, _run_shard, len(shards))

    def iter_results(self) -> Iterator[Any]:
        """Every job's results in order, each given as soon as it and the ones before it are done and let
        go here after: a fold over them (`examples.TraceCounts.merge`) holds one merged result plus the
        shards that finished early, never every shard's at once."""
        if self.pool is None:
            yield from (fn(t, 0) for t, fn in self.job_list)
            return
        try:
            for i, future in enumerate(self.pending):
                result = future.result()
                self.pending[i] = None  # the future held the result
                yield result
        finally:
            self.pool.shutdown(cancel_futures=True)

    def all_results(self) -> list[list[Any]]:
        """Each job's results, in shard order."""
        done = self.iter_results()
        if self.pool is None:
            return [[r] for r in done]
        return [[next(done) for _ in bounds] for bounds in self.bounds_of]

    def results(self) -> list[Any]:
        """The (first) job's results, in shard order."""
        return self.all_results()[0]


class _ToQueue(logging.handlers.QueueHandler):
    def enqueue(self, record: logging.LogRecord) -> None:
        self.queue.put(record)  # a SimpleQueue: no put_nowait


def _run_child(_: int) -> Any:
    global _FORK_JOB
    assert _FORK_JOB is not None, "in_forked_child sets the job before it forks"
    fn, args, queue = _FORK_JOB
    _FORK_JOB = None  # this process forks jobs of its own (a ShardMap)
    # the child's log records go to the parent, which handles them as its own (its handlers, its caplog)
    loggers = [logging.getLogger(), *(x for x in logging.Logger.manager.loggerDict.values()
                                      if isinstance(x, logging.Logger))]
    for logger in loggers:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
    logging.getLogger().addHandler(_ToQueue(queue))
    return fn(*args)


def _relay_logs(queue: Any) -> None:
    while (record := queue.get()) is not None:
        logging.getLogger(record.name).handle(record)


def in_forked_child(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` in a forked child process (it inherits them: nothing pickled but the result), so the
    memory it leaves behind (freed but resident, as allocators keep it) goes with the child. Its log
    records are handled here as they come, its exceptions raised here. Where processes cannot fork, here.
    """
    if "fork" not in mp.get_all_start_methods():
        return fn(*args)
    queue = mp.get_context("fork").SimpleQueue()  # put() writes at once: every record is in before the result
    pool, (future,) = _forked_pool(1, (fn, args, queue), _run_child, 1)
    relay = threading.Thread(target=_relay_logs, args=(queue,), name="child-logs", daemon=True)
    relay.start()
    try:
        return future.result()
    finally:
        queue.put(None)
        relay.join()
        pool.shutdown()


def per_shard(fn: Callable[[TraceRows], Any]) -> Callable[[Dataset, int], Any]:
    """A count over traces (`examples.count_traces`...) as a `ShardMap` function."""
    return lambda shard, _start: fn(TraceRows(shard))


def _stored(a: np.ndarray) -> np.ndarray:
    return a.astype(np.int32) if a.dtype == np.int64 else a


def example_features(sample: dict[str, np.ndarray]) -> Features:
    """The Arrow schema of an example: fixed shapes, from one example's arrays (the featurizer pads every
    array to the config's sizes), plus the two meta columns."""
    cols: dict[str, Any] = {}
    for k, a in sample.items():
        a = _stored(a)
        dtype = str(a.dtype)
        if a.ndim == 0:
            cols[k] = Value(dtype)
        elif a.ndim == 1:
            cols[k] = ListOf(Value(dtype), length=a.shape[0])
        else:
            cols[k] = _ARRAY_TYPES[a.ndim](shape=a.shape, dtype=dtype)
    cols[COL_TRACE_INDEX] = Value("int64")
    cols[COL_EVENTS] = Value("int32")
    return Features(cols)


def _featurize_batch(batch: dict[str, list], indices: list[int], start: int, names: Sequence[str],
                     featurizer: Featurizer, own_counts: dict[str, bytes]) -> dict[str, Any]:
    """`Dataset.map`'s function: the examples of a batch of traces (rows `start + indices` of the split),
    each column stacked."""
    out: dict[str, list] = {k: [] for k in (*names, *META_COLUMNS)}
    for index, text in zip((start + i for i in indices), batch[COL_TRACE], strict=True):
        t = Trace.from_dict(json.loads(text))
        minus, minus_sources = unpack_group_counts(own_counts.get(t.group))
        for ex in trace_examples(t, featurizer, minus, minus_sources):
            for k in names:
                out[k].append(_stored(ex[k]))
            out[COL_TRACE_INDEX].append(index)
            out[COL_EVENTS].append(int(ex["ev_mask"].sum()))
        clear_event_cache()
    return {k: np.stack(v) if v and k in names else v for k, v in out.items()}


def _featurize_shard(shard: Dataset, start: int, out: Path, total: int, fingerprint: str, features: Features,
                     state: dict[str, Any]) -> int:
    """One shard's examples (`Dataset.map`, batched) to its own Arrow file in `out`, named by its first row:
    the files, in name order, hold the split's examples in order. `total`: the split's traces (a shard
    that is all of them writes `EXAMPLES_FILE`)."""
    many = len(shard) < total
    if many:
        datasets.disable_progress_bars()  # a bar per shard, from each process, would interleave
    name = f"{EXAMPLES_FILE.removesuffix('.arrow')}_{start:010d}.arrow" if many else EXAMPLES_FILE
    examples = shard.select_columns([COL_TRACE]).map(
        _featurize_batch,
        with_indices=True,
        batched=True,
        batch_size=TRACES_PER_BATCH,
        remove_columns=[COL_TRACE],
        features=features,
        fn_kwargs={"start": start, **state},
        cache_file_name=str(out / name),
        new_fingerprint=f"{fingerprint}-{start}",
        writer_batch_size=WRITER_ROWS,
        desc=f"featurize {out.name}",
    )
    return len(examples)


def featurize_split(
    traces: Dataset,
    featurizer: Featurizer,
    out: Path,
    fingerprint: str,
    num_proc: int = 1,
    transitions_by_group: dict | None = None,
    sources_by_group: dict | None = None,
) -> int:
    """Featurize a split's traces into Arrow files in the folder `out` (read back by `load_examples`);
    the number of examples. `num_proc`: processes (see `ShardMap`). `fingerprint`:
    the cache key of these examples (datasets would otherwise hash the featurizer and the counts to name
    its files). `*_by_group`: cross-fitting, see `build_examples`."""
    own = pack_group_counts(transitions_by_group, sources_by_group)
    return featurize_splits([SplitJob(traces, out, fingerprint, own)], featurizer, num_proc)[0]


@dataclass
class SplitJob:
    """One split for `featurize_splits`: its traces, its folder, its cache key and its cross-fitting counts
    (`build_examples`; None outside the training split)."""

    traces: Dataset
    out: Path
    fingerprint: str
    own_counts: dict[str, bytes] | None = None
    """Each task group's own counts, `examples.pack_group_counts` (training split only)."""


def featurize_splits(splits: Sequence[SplitJob], featurizer: Featurizer, num_proc: int = 1) -> list[int]:
    """`featurize_split` for several splits at once, their shards queued in one set of processes
    (`ShardMap.jobs`): the later splits' shards fill the processes that the first split's last shards
    leave idle. Each split's examples, as `featurize_split` alone would write them; their counts."""
    jobs = []
    for split in splits:
        traces = split.traces
        first = next((ex for t in TraceRows(traces) for ex in trace_examples(t, featurizer)), None)
        if first is None:
            raise ValueError(f"no decision points in the given traces ({split.out.name})")
        features = example_features(first)
        names = [k for k in features if k not in META_COLUMNS]
        split.out.mkdir(parents=True)
        # Consecutive shards, each featurized by `Dataset.map` into its own file in `out` by whichever
        # process is free (`ShardMap`: forked, so the featurizer and the counts are inherited, not pickled
        # per process); those files are the stored examples, with no copy through save_to_disk (which
        # would read them all back: every page of the memory map resident at once).
        state = {"names": names, "featurizer": featurizer, "own_counts": split.own_counts or {}}
        jobs.append((traces, partial(_featurize_shard, out=split.out, total=len(traces),
                                     fingerprint=split.fingerprint, features=features, state=state)))
    shards = ShardMap.jobs(jobs, num_proc)
    counts = []
    for split, sizes in zip(splits, shards.all_results(), strict=True):
        many = len(sizes) > 1
        log.info("featurized %s: %d examples from %d traces, %d shard%s by %d process%s", split.out.name,
                 sum(sizes), len(split.traces), len(sizes), "s" if many else "", shards.procs,
                 "es" if shards.procs > 1 else "")
        counts.append(sum(sizes))
    return counts


def load_examples(path: str | os.PathLike) -> Dataset:
    """A featurized split (`featurize_split`'s folder), memory-mapped: its shard files in order."""
    stem = EXAMPLES_FILE.removesuffix(".arrow")
    files = sorted(Path(path).glob(f"{stem}*.arrow"))
    if not files:
        raise FileNotFoundError(f"no {EXAMPLES_FILE} shards in {path}")
    return concatenated([Dataset.from_file(str(f)) for f in files])


def concatenated(parts: Sequence[Dataset]) -> Dataset:
    return parts[0] if len(parts) == 1 else concatenate_datasets(list(parts))


# Padded axes trimmed to the batch's longest: (arrays, axis, the mask or token array that says the length).
# The featurizer's model inputs with those axes, plus the training targets that share them ("agent" has
# no event axis).
_EVENT_AXIS = tuple(n for n in EVENT_INPUTS if n != "agent")
_TOOL_AXIS = (*TOOL_INPUTS, "tool_multi")
_SLOT_AXIS = (*SLOT_INPUTS, "slot_target")
_CAND_AXIS = ("cand_num", "cand_key", "cand_event", "cand_mask")
_TOKEN_ARRAYS = ("ev_keys", "ev_text", "tool_name", "tool_desc", "tool_params", "slot_name", "cand_key")


def trim_batch(b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Cut each padded axis to the longest example of the batch (tokens are left-aligned, events and
    tools right-padded). The model's outputs are the same at any padding; most contexts are far shorter
    than the maximum, so this is most of the training speed."""
    n = max(1, int(b["ev_mask"].sum(1).max()))
    c = max(3, int(b["tool_mask"].sum(1).max()))
    s = max(1, int(b["slot_mask"].sum(1).max()))
    m = max(1, int(b["cand_mask"].sum(-1).max()))
    out = dict(b)
    for k in _EVENT_AXIS:
        out[k] = out[k][:, :n]
    for k in _TOOL_AXIS:
        out[k] = out[k][:, :c]
    for k in _SLOT_AXIS:
        out[k] = out[k][:, :s]
    for k in _CAND_AXIS:
        out[k] = out[k][:, :, :m]
    for k in _TOKEN_ARRAYS:
        t = max(1, int((out[k] > 0).sum(-1).max()))
        out[k] = out[k][..., :t]
    return out


class ExampleRows(TorchDataset):
    """Batches read from the memory-mapped examples, trimmed to the batch's longest context (`trim_batch`).

    Each record batch of the Arrow files is viewed, column by column, as one numpy array over the memory
    map (the fixed-shape nested lists' values buffer, zero-copy; booleans are bits, unpacked per row read),
    so a batch of random rows is a numpy gather from those views: no Arrow `take`, no copy of the rest of
    a record batch, no Python object per row. (An Arrow `take` of 32 random rows, then flattening each
    column, cost ~80 ms a batch, more than a training step of the model.)"""

    def __init__(self, examples: Dataset):
        self.examples = examples
        self._views()

    def _views(self) -> None:
        examples = self.examples
        self.names = [k for k in examples.features if k not in META_COLUMNS]
        self.shapes = {k: _shape(examples.features[k]) for k in self.names}
        # `load_examples` gives datasets without an indices mapping: the table's rows are the examples
        table = examples.with_format(None).data.table.select(self.names)
        batches = [b for b in table.to_batches() if b.num_rows]
        self.starts = np.cumsum([0, *(b.num_rows for b in batches)])
        self.chunks = [{k: _ColumnView(b.column(k), b.num_rows, self.shapes[k]) for k in self.names}
                       for b in batches]

    def __getstate__(self) -> dict[str, Any]:  # to a spawned DataLoader worker: the files, not the views
        return {"examples": self.examples}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.examples = state["examples"]
        self._views()

    def __len__(self) -> int:
        return int(self.starts[-1])

    def lengths(self) -> np.ndarray:
        """Events in each example's context (what the bucketing sampler sorts by)."""
        return np.asarray(self.examples.with_format("numpy")[COL_EVENTS])

    def arrays(self, indices: Sequence[int] | None = None) -> dict[str, np.ndarray]:
        """The stacked arrays of the given rows (all rows if None): `examples.Examples.arrays`' layout and
        values, integers widened to int64 (as the model takes them; stored as int32)."""
        return {k: _widened(a) for k, a in self._rows(indices).items()}

    def _rows(self, indices: Sequence[int] | None) -> dict[str, np.ndarray]:
        """The given rows as stored (int32, not yet widened)."""
        rows = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows {rows.min()}..{rows.max()} of {len(self)} examples")
        chunk = np.searchsorted(self.starts, rows, side="right") - 1
        local = rows - self.starts[chunk]
        parts = [(c, np.flatnonzero(chunk == c)) for c in np.unique(chunk)]
        out = {}
        for k in self.names:
            a = out[k] = np.empty((len(rows), *self.shapes[k]), dtype=self.chunks[0][k].dtype)
            for c, where in parts:
                a[where] = self.chunks[c][k].rows(local[where])
        return out

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        batch = trim_batch(self._rows(indices))  # trimmed before widening: most of a padded row is cut
        return {k: torch.from_numpy(_widened(a)) for k, a in batch.items()}


def _widened(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64 if a.dtype == np.int32 else a.dtype)


def _shape(feature: Any) -> tuple[int, ...]:
    if isinstance(feature, Value):
        return ()
    if isinstance(feature, ListOf):
        return (feature.length,)
    return tuple(feature.shape)


class _ColumnView:
    """One fixed-shape column of one record batch as (rows, *shape) values over the memory map: its nested
    lists flattened down to the values buffer (zero-copy; a slice's offsets are honoured by `flatten`).
    Booleans are a bitmap in Arrow, so they stay bits here and `rows` unpacks only the rows asked for."""

    def __init__(self, column: pa.Array, n: int, shape: tuple[int, ...]):
        arr = column.storage if isinstance(column, pa.ExtensionArray) else column  # datasets' ArrayXD
        t = pa.types
        while t.is_list(arr.type) or t.is_fixed_size_list(arr.type) or t.is_large_list(arr.type):
            arr = arr.flatten()
        size = math.prod(shape)
        if len(arr) != n * size or arr.null_count:
            raise ValueError(f"example column: {len(arr)} values ({arr.null_count} null), not {n} x {shape}")
        self.shape, self.size = shape, size
        if t.is_boolean(arr.type):
            self.dtype = np.dtype(bool)
            self.bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8)
            self.bit_offset = arr.offset
            self.values: np.ndarray | None = None
        else:
            self.values = arr.to_numpy(zero_copy_only=True).reshape(n, *shape)
            self.dtype = self.values.dtype

    def rows(self, local: np.ndarray) -> np.ndarray:
        if self.values is not None:
            return self.values[local]
        bit = self.bit_offset + local[:, None] * self.size + np.arange(self.size)  # (rows, size)
        return ((self.bits[bit >> 3] >> (bit & 7).astype(np.uint8)) & 1).astype(bool).reshape(-1, *self.shape)
