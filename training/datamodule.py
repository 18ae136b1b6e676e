"""The LightningDataModule: task-grouped splits of the logs -> featurized decision points -> batches.

`prepare_data` (one process) reads the logs through `data.splits.load_splits` (Arrow, memory-mapped),
drops looping traces from training, trains the tokenizer and vocabularies on the training split only,
featurizes every split into Arrow with all cores (`example_store`), and caches the result
(tokenizer.json, vocab.json, sizes.json, one `datasets` folder per split; no pickle) under a key of the
inputs and the featurizer settings. `setup` (every process, DDP ranks included) only memory-maps that
cache. Nothing holds all traces or all examples in memory: each pass reads the Arrow rows in batches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import torch
from datasets import Dataset
from torch.utils.data import DataLoader, Sampler

from toolcast.data.io import expand_paths
from toolcast.data.quality import is_looping
from toolcast.data.schema import Trace
from toolcast.data.splits import DEFAULT_FRACTIONS, SPLITS, importer_digest, load_splits
from toolcast.predictor.config import Config, ModelConfig
from toolcast.predictor.features.catalog import build_catalog, toolset_key
from toolcast.predictor.features.featurizer import (
    SPECIAL_TOOLS,
    Extract,
    Featurizer,
    Vocabularies,
)
from toolcast.predictor.features.text import TextEncoder, train_tokenizer
from toolcast.predictor.versioning import source_digest
from toolcast.training.example_store import (
    ExampleRows,
    ShardMap,
    SplitJob,
    TraceRows,
    concatenated,
    featurize_splits,
    in_forked_child,
    load_examples,
    per_shard,
)
from toolcast.training.examples import (
    TraceCounts,
    corpus_texts,
    count_traces,
    merge_sources,
    merge_sources_by_group,
    pack_group_counts,
    value_source_counts,
    vocabularies_from,
)

log = logging.getLogger(__name__)

CACHE_VERSION = "examples-v8"  # v5: looping traces out of validation and test; v6: constants rule;
# v7: max_tools sized to the logs (sizes.json); v8: examples as Arrow datasets, not npz
TOKENIZER_FILE, VOCAB_FILE, SIZES_FILE = "tokenizer.json", "vocab.json", "sizes.json"
MAX_TOOLS_AUTO = 160
"""The most tools `grow_tools` makes room for. A context's tools past `max_tools` are never candidates
(unless called earlier in it), and each example stores every tool's tokens: ~60 ints per tool."""


def tools_needed(traces: Sequence[Trace]) -> int:
    """`max_tools` that lets every listed tool of these traces be a candidate: specials + the largest tool
    set (+ tools called but not listed; for traces that list none, their set-up's whole `catalog`)."""
    need = 0
    for t in traces:
        names = {s.name for s in t.tools} | {c.tool for c in t.calls}
        need = max(need, len(names))
    # the catalogue a bare trace is given holds its set-up's listed tools too, not only the bare ones' calls
    bare = {toolset_key({"source": t.source, **t.metadata}) for t in traces if not t.tools}
    catalog = build_catalog(traces) if bare else {}
    need = max([need, *(len(catalog[key]) for key in bare if key in catalog)])
    return len(SPECIAL_TOOLS) + need


TOKENIZER_TRACES = 2048
"""The tokenizer learns its word pieces from at most this many training traces, evenly spaced (the
development logs' training split has 1,396): its trainer's memory grows with the text it reads, and a
vocabulary of a few thousand pieces is settled long before. Every character of every trace is still in
its alphabet (`TraceCounts.chars`)."""


def tokenizer_sample(traces: Dataset) -> TraceRows:
    """`TOKENIZER_TRACES` of the traces, evenly spaced (all of them when they are fewer)."""
    n = len(traces)
    if n <= TOKENIZER_TRACES:
        return TraceRows(traces)
    return TraceRows(traces.select([i * n // TOKENIZER_TRACES for i in range(TOKENIZER_TRACES)]))


def holdout_predicate(spec: str | None) -> Callable[[Trace], bool] | None:
    """`key=value` on trace metadata (a list value matches when it contains the value), e.g.
    `domain=retail` or `involved_classes=TravelAPI`: such traces leave train/validation and form the test.
    `key~value` matches when the value is part of the metadata's text, e.g. `agent_model~claude` (every
    Claude model: a leave-one-harness-out split)."""
    if not spec:
        return None
    cut = min((i for i in (spec.find("="), spec.find("~")) if i >= 0), default=-1)
    key, op, value = (spec[:cut], spec[cut], spec[cut + 1:]) if cut >= 0 else (spec, "", "")
    if not op or not key or not value:
        raise ValueError(f"holdout must look like key=value or key~part (e.g. domain=retail), got {spec!r}")

    def held_out(t: Trace) -> bool:
        v = t.metadata.get(key, t.source if key == "source" else None)
        if op == "~":
            return v is not None and value in (" ".join(map(str, v)) if isinstance(v, list) else str(v))
        return value in v if isinstance(v, list) else str(v) == value

    return held_out


class BucketSampler(Sampler[int]):
    """Random order, but each run of `window` batches sorted by history length, so a batch holds contexts
    of similar length and trims well. Reshuffled every epoch from `seed + epoch` (deterministic)."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, window: int = 50):
        self.lengths, self.batch_size, self.seed, self.window = lengths, batch_size, seed, window
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths))
        chunk = self.batch_size * self.window
        batches = []
        for i in range(0, len(order), chunk):
            part = order[i : i + chunk]
            part = part[np.argsort(self.lengths[part], kind="stable")]
            batches.extend(part[j : j + self.batch_size] for j in range(0, len(part), self.batch_size))
        self.epoch += 1
        for k in rng.permutation(len(batches)):
            yield from batches[k].tolist()


def _passthrough(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


@dataclass
class _Statistics:
    """`NextCallDataModule._statistics`' results, sent back from the child that computes them."""

    max_tools: int
    tokenizer_json: str
    vocab: Vocabularies
    own_counts: dict[str, bytes]
    phases: str
    """Where the time went, for the log."""


class NextCallDataModule(L.LightningDataModule):
    def __init__(
        self,
        data: Sequence[str | os.PathLike],
        config: Config,
        cache_dir: str | os.PathLike,
        extract: Extract | None,
        seed: int = 0,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        holdout: str | None = None,
        vocab_size: int = 4000,
        grow_tools: bool = True,
        featurize_procs: int | None = None,
    ):
        """grow_tools: raise `config.model.max_tools` to what the logs' largest tool set needs (up to
        `MAX_TOOLS_AUTO`), so no listed tool is cut; False keeps it as given (and warns what is cut).
        featurize_procs: processes that featurize (None: one per core this process may use)."""
        super().__init__()
        self.data = [str(p) for p in data]
        self.grow_tools = grow_tools
        self.max_tools = config.model.max_tools
        self.config, self.extract, self.seed, self.fractions = config, extract, seed, tuple(fractions)
        self.holdout, self.vocab_size = holdout, vocab_size
        self.cache_root = Path(cache_dir)
        self.featurize_procs = featurize_procs or len(os.sched_getaffinity(0))
        self.examples: dict[str, Dataset] = {}
        self.encoder: TextEncoder | None = None
        self.vocab: Vocabularies | None = None
        self.tokenizer_json: str | None = None

    # ---- the cache -----------------------------------------------------------------------------------
    @property
    def cache(self) -> Path:
        files = expand_paths(self.data)
        feat = {k: v for k, v in self.config.model.to_dict().items() if k.startswith("max_")}
        h = hashlib.sha256(
            json.dumps(
                [
                    CACHE_VERSION,
                    self.seed,
                    self.fractions,
                    self.holdout,
                    feat,
                    self.vocab_size,
                    self.config.train.drop_looping,
                    self.extract is not None,
                    self.grow_tools,
                    source_digest(),
                    importer_digest(),
                ]
            ).encode()
        )
        for p in files:
            st = p.stat()
            h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        return self.cache_root / h.hexdigest()[:20]

    def prepare_data(self) -> None:
        target = self.cache
        if (target / "done").exists():
            log.info("featurized examples from cache %s", target)
            return
        started = time.perf_counter()
        splits = self.split_datasets()
        log.info("traces: %s", {k: len(v) for k, v in splits.items()})
        # The statistics pass over the training traces in a forked child: decoding every trace, the
        # tokenizer's trainer and the shards' counts leave freed memory resident (allocator high-water
        # marks that grow with the logs), which every featurizing process would inherit from this one.
        # What comes back is what featurizing needs: the tokenizer, the vocabularies and each task
        # group's own counts (`pack_group_counts`, the one part that grows with the logs' groups).
        stats = in_forked_child(self._statistics, splits)
        self.max_tools = stats.max_tools
        encoder = TextEncoder.from_json(stats.tokenizer_json)
        vocab = stats.vocab
        featurizer = Featurizer(self.model_config(encoder, vocab), encoder, vocab, self.extract)
        counted = time.perf_counter()
        log.info("splits, tokenizer, vocabularies and counts in %.1f s (%s)", counted - started, stats.phases)
        tok_json, own_counts = stats.tokenizer_json, stats.own_counts
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / TOKENIZER_FILE).write_text(tok_json, encoding="utf-8")
        (tmp / SIZES_FILE).write_text(json.dumps({"max_tools": self.max_tools}), encoding="utf-8")
        vocab.save(tmp / VOCAB_FILE)
        # All splits in one set of processes: validation and test fill the processes that the training
        # split's last shards leave idle (one process each, after it, took a fifth of featurizing's time).
        featurize_splits([
            SplitJob(traces, tmp / name, f"{target.name}-{name}", own_counts if name == "train" else None)
            for name, traces in splits.items() if len(traces)
        ], featurizer, num_proc=self.featurize_procs)
        (tmp / "done").write_text("ok")
        log.info("examples featurized in %.1f s (up to %d processes)", time.perf_counter() - counted,
                 self.featurize_procs)
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same cache first
            shutil.rmtree(tmp, ignore_errors=True)

    def _statistics(self, splits: dict[str, Dataset]) -> _Statistics:
        """What featurizing needs from the training traces: the tool axis's size, the tokenizer, the
        vocabularies with their value-source counts, and each task group's own counts (cross-fitting)."""
        started = time.perf_counter()
        train = TraceRows(splits["train"])
        # The statistics of the training traces, by shard in `featurize_procs` processes (forked here) while
        # this one sizes the tool axis; then the tokenizer (it needs the corpus's characters, and trains on
        # all cores itself), and the value sources, which need the vocabularies. The shards' counts merge
        # into exactly one pass's counts.
        procs = self.featurize_procs
        counting = ShardMap(splits["train"], per_shard(partial(count_traces, extract=self.extract)), procs)
        self.max_tools = self._size_tools(TraceRows(*splits.values()))
        catalog = build_catalog(train)
        counts = TraceCounts.merge(counting.iter_results())
        phases = {"counts": time.perf_counter()}
        corpus = corpus_texts(tokenizer_sample(splits["train"]))
        tok_json = train_tokenizer(corpus, vocab_size=self.vocab_size, chars=counts.chars)
        encoder = TextEncoder.from_json(tok_json)
        phases["tokenizer"] = time.perf_counter()
        vocab = vocabularies_from(counts, catalog)
        cfg = self.model_config(encoder, vocab)
        transitions_by_group = counts.transitions_by_group
        pre = Featurizer(cfg, encoder, vocab, self.extract)  # the rows only: no value-source counts yet
        sources = per_shard(partial(value_source_counts, featurizer=pre))
        sources_by_group = merge_sources_by_group(ShardMap(splits["train"], sources, procs).iter_results())
        vocab.value_sources = merge_sources(sources_by_group.values())
        # each group's own counts as one blob: what the featurizing processes read, without writing to it
        own_counts = pack_group_counts(transitions_by_group, sources_by_group)
        ended = time.perf_counter()
        s = "es" if counting.procs > 1 else ""
        phases_text = (f"counts by {counting.procs} process{s} to {phases['counts'] - started:.1f} s, "
                       f"tokenizer {phases['tokenizer'] - phases['counts']:.1f} s, "
                       f"value sources {ended - phases['tokenizer']:.1f} s")
        return _Statistics(self.max_tools, tok_json, vocab, own_counts, phases_text)

    def split_datasets(self) -> dict[str, Dataset]:
        """Train / validation / test traces (Arrow rows, memory-mapped): task-grouped, looping traces out
        (`data.quality`: they teach loops, and one stuck session outweighs dozens in validation and test),
        holdout applied. One pass decodes each trace to decide; the rows kept are an index over the
        cached splits (8 bytes a trace), not a copy."""
        dd = load_splits(*self.data, seed=self.seed, fractions=self.fractions)
        held = holdout_predicate(self.holdout)
        kept: dict[str, list[int]] = {name: [] for name in SPLITS}
        out: dict[str, list[int]] = {name: [] for name in SPLITS}  # held out, to the test split
        looping = {name: 0 for name in SPLITS}
        for name in SPLITS:
            for i, t in enumerate(TraceRows(dd[name])):
                if self.config.train.drop_looping and is_looping(t):
                    looping[name] += 1
                elif held is not None and held(t):
                    out[name].append(i)
                else:
                    kept[name].append(i)
        if self.config.train.drop_looping:
            log.info("left out looping traces: %s", looping)
        splits = {name: dd[name].select(kept[name], keep_in_memory=True) for name in SPLITS}
        if held is not None:
            parts = [dd[name].select(out[name], keep_in_memory=True) for name in SPLITS if out[name]]
            if not parts:
                raise ValueError(f"holdout {self.holdout!r} matches no trace")
            splits["test"] = concatenated(parts)
        return splits

    def split_traces(self) -> dict[str, TraceRows]:
        """`split_datasets`' traces, decoded as they are read."""
        return {name: TraceRows(ds) for name, ds in self.split_datasets().items()}

    def _size_tools(self, traces: Sequence[Trace]) -> int:
        have, need = self.config.model.max_tools, tools_needed(traces)
        if need <= have:
            return have
        if self.grow_tools and have < MAX_TOOLS_AUTO:
            size = min(need, MAX_TOOLS_AUTO)
            log.info("max_tools %d -> %d: the largest tool set in the logs has %d tools", have, size,
                     need - len(SPECIAL_TOOLS))
            if need <= size:
                return size
            have = size
        cut = sum(1 for t in traces if len({s.name for s in t.tools} | {c.tool for c in t.calls})
                  + len(SPECIAL_TOOLS) > have)
        log.warning("%d traces list more than %d tools: the rest are never predicted unless called "
                    "earlier in the context (max_tools %d; raise it with --max-tools)", cut,
                    have - len(SPECIAL_TOOLS), have)
        return have

    def model_config(self, encoder: TextEncoder, vocab: Vocabularies) -> ModelConfig:
        return replace(
            self.config.model,
            max_tools=self.max_tools,
            text_vocab_size=encoder.vocab_size,
            n_tool_ids=vocab.n_tool_ids,
            n_agents=vocab.n_agents,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.examples:
            return
        target = self.cache
        if not (target / "done").exists():
            raise FileNotFoundError(f"no featurized examples at {target}: run prepare_data first")
        self.tokenizer_json = (target / TOKENIZER_FILE).read_text(encoding="utf-8")
        self.encoder = TextEncoder.from_json(self.tokenizer_json)
        self.vocab = Vocabularies.load(target / VOCAB_FILE)
        sizes = target / SIZES_FILE
        if sizes.exists():
            self.max_tools = int(json.loads(sizes.read_text(encoding="utf-8"))["max_tools"])
        self.config = replace(self.config, model=self.model_config(self.encoder, self.vocab))
        for name in SPLITS:
            path = target / name
            if path.exists():
                self.examples[name] = load_examples(path)
        log.info("examples: %s", {k: len(v) for k, v in self.examples.items()})

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        ds = ExampleRows(self.examples[name])
        tc = self.config.train
        lengths = ds.lengths()
        # Evaluation in length order too (trims best; order does not change the figures).
        sampler = (
            BucketSampler(lengths, tc.batch_size, tc.seed)
            if shuffle
            else np.argsort(lengths, kind="stable").tolist()
        )
        return DataLoader(
            ds, batch_size=tc.batch_size, sampler=sampler, collate_fn=_passthrough, num_workers=tc.num_workers
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
