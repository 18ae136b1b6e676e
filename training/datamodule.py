"""The LightningDataModule: task-grouped splits of the logs -> featurized decision points -> batches.

`prepare_data` (one process) reads the logs through `data.splits.load_splits`, drops looping traces from
training, trains the tokenizer and vocabularies on the training split only, featurizes every split, and
caches the result (tokenizer.json, vocab.json, <split>.npz; no pickle) under a key of the inputs and the
featurizer settings. `setup` (every process, DDP ranks included) only loads that cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from toolcast.data.io import expand_paths
from toolcast.data.quality import is_looping
from toolcast.data.schema import Trace
from toolcast.data.splits import DEFAULT_FRACTIONS, SPLITS, importer_digest, load_splits, traces_of
from toolcast.predictor.config import Config, ModelConfig
from toolcast.predictor.features.catalog import build_catalog, toolset_key
from toolcast.predictor.features.featurizer import (
    EVENT_INPUTS,
    SLOT_INPUTS,
    SPECIAL_TOOLS,
    TOOL_INPUTS,
    Extract,
    Featurizer,
    Vocabularies,
)
from toolcast.predictor.features.text import TextEncoder, train_tokenizer
from toolcast.predictor.versioning import source_digest
from toolcast.training.examples import (
    Examples,
    build_examples,
    build_vocabularies,
    corpus_texts,
    merge_sources,
    transition_counts,
    value_source_counts,
)

log = logging.getLogger(__name__)

CACHE_VERSION = "examples-v7"  # v5: looping traces out of validation and test; v6: constants rule;
# v7: max_tools sized to the logs (sizes.json)
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


def holdout_predicate(spec: str | None) -> Callable[[Trace], bool] | None:
    """`key=value` on trace metadata (a list value matches when it contains the value), e.g.
    `domain=retail` or `involved_classes=TravelAPI`: such traces leave train/validation and form the test."""
    if not spec:
        return None
    key, sep, value = spec.partition("=")
    if not sep or not key or not value:
        raise ValueError(f"holdout must look like key=value (e.g. domain=retail), got {spec!r}")

    def held_out(t: Trace) -> bool:
        v = t.metadata.get(key, t.source if key == "source" else None)
        return value in v if isinstance(v, list) else str(v) == value

    return held_out


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


class ExampleDataset(Dataset):
    """Batches are built by fancy-indexing the stacked arrays (`__getitems__`), not item by item."""

    def __init__(self, examples: Examples):
        self.arrays = examples.arrays

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([i])

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        b = trim_batch({k: v[np.asarray(indices)] for k, v in self.arrays.items()})
        return {
            k: torch.from_numpy(np.ascontiguousarray(a.astype(np.int64) if a.dtype == np.int32 else a))
            for k, a in b.items()
        }


def _passthrough(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


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
    ):
        """grow_tools: raise `config.model.max_tools` to what the logs' largest tool set needs (up to
        `MAX_TOOLS_AUTO`), so no listed tool is cut; False keeps it as given (and warns what is cut)."""
        super().__init__()
        self.data = [str(p) for p in data]
        self.grow_tools = grow_tools
        self.max_tools = config.model.max_tools
        self.config, self.extract, self.seed, self.fractions = config, extract, seed, tuple(fractions)
        self.holdout, self.vocab_size = holdout, vocab_size
        self.cache_root = Path(cache_dir)
        self.examples: dict[str, Examples] = {}
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
        splits = self.split_traces()
        train = splits["train"]
        log.info("traces: %s", {k: len(v) for k, v in splits.items()})
        self.max_tools = self._size_tools([t for ts in splits.values() for t in ts])
        tok_json = train_tokenizer(corpus_texts(train), vocab_size=self.vocab_size)
        encoder = TextEncoder.from_json(tok_json)
        vocab = build_vocabularies(train, self.extract)
        cfg = self.model_config(encoder, vocab)
        transitions_by_group = transition_counts(train)
        sources_by_group = value_source_counts(train, Featurizer(cfg, encoder, vocab, self.extract))
        vocab.value_sources = merge_sources(sources_by_group.values())
        featurizer = Featurizer(cfg, encoder, vocab, self.extract)
        tmp = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        (tmp / TOKENIZER_FILE).write_text(tok_json, encoding="utf-8")
        (tmp / SIZES_FILE).write_text(json.dumps({"max_tools": self.max_tools}), encoding="utf-8")
        vocab.save(tmp / VOCAB_FILE)
        for name, traces in splits.items():
            if traces:
                fit = name == "train"
                build_examples(
                    traces,
                    featurizer,
                    progress=True,
                    transitions_by_group=transitions_by_group if fit else None,
                    sources_by_group=sources_by_group if fit else None,
                ).save(tmp / f"{name}.npz")
        (tmp / "done").write_text("ok")
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished the same cache first
            shutil.rmtree(tmp, ignore_errors=True)

    def split_traces(self) -> dict[str, list[Trace]]:
        """Train / validation / test traces: task-grouped, looping traces out (`data.quality`: they teach
        loops, and one stuck session outweighs dozens in validation and test), holdout applied."""
        dd = load_splits(*self.data, seed=self.seed, fractions=self.fractions)
        splits = {name: traces_of(dd[name]) for name in SPLITS}
        if self.config.train.drop_looping:
            before = {name: len(ts) for name, ts in splits.items()}
            splits = {name: [t for t in ts if not is_looping(t)] for name, ts in splits.items()}
            log.info("left out looping traces: %s", {n: before[n] - len(ts) for n, ts in splits.items()})
        held = holdout_predicate(self.holdout)
        if held is not None:
            everything = [t for name in SPLITS for t in splits[name]]
            splits = {
                "train": [t for t in splits["train"] if not held(t)],
                "validation": [t for t in splits["validation"] if not held(t)],
                "test": [t for t in everything if held(t)],
            }
            if not splits["test"]:
                raise ValueError(f"holdout {self.holdout!r} matches no trace")
        return splits

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
            path = target / f"{name}.npz"
            if path.exists():
                self.examples[name] = Examples.load(path)
        log.info("examples: %s", {k: len(v) for k, v in self.examples.items()})

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        ds = ExampleDataset(self.examples[name])
        tc = self.config.train
        lengths = ds.arrays["ev_mask"].sum(1)
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
