"""Examples as memory-mapped Arrow: featurized by `Dataset.map` in one or several processes, they are
exactly the arrays `build_examples` stacks, in the same order, and batches read back from them."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("datasets")

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402

from toolcast.data.splits import COL_TRACE  # noqa: E402
from toolcast.predictor.config import tiny_config  # noqa: E402
from toolcast.predictor.features.extractors import extract_candidates  # noqa: E402
from toolcast.predictor.features.featurizer import Featurizer  # noqa: E402
from toolcast.predictor.features.text import TextEncoder, train_tokenizer  # noqa: E402
from toolcast.training import example_store  # noqa: E402
from toolcast.training.example_store import ExampleRows, featurize_split, load_examples  # noqa: E402
from toolcast.training.examples import (  # noqa: E402
    build_examples,
    build_vocabularies,
    corpus_texts,
    transition_counts,
    value_source_counts,
)


def featurizer_for(traces) -> Featurizer:
    encoder = TextEncoder.from_json(train_tokenizer(corpus_texts(traces), vocab_size=200))
    vocab = build_vocabularies(traces, extract_candidates)
    cfg = replace(tiny_config(), text_vocab_size=encoder.vocab_size, n_tool_ids=vocab.n_tool_ids,
                  n_agents=vocab.n_agents)
    return Featurizer(cfg, encoder, vocab, extract_candidates)


@pytest.mark.parametrize("procs", [1, 2])
def test_arrow_examples_are_the_stacked_examples(shop_traces, tmp_path, monkeypatch, procs):
    monkeypatch.setattr(example_store, "TRACES_PER_PROCESS", 4)  # 12 traces: two processes
    monkeypatch.setattr(example_store, "TRACES_PER_BATCH", 5)  # batches that end mid-shard
    monkeypatch.setattr(example_store, "WRITER_ROWS", 7)  # many record batches: reads gather across them
    traces = shop_traces(12)
    featurizer = featurizer_for(traces)
    by_group = transition_counts(traces)
    sources = value_source_counts(traces, featurizer)
    expected = build_examples(traces, featurizer, transitions_by_group=by_group, sources_by_group=sources)
    rows = Dataset.from_dict({COL_TRACE: [t.to_json() for t in traces]})
    n = featurize_split(rows, featurizer, tmp_path / "train", fingerprint=f"test-{procs}", num_proc=procs,
                        transitions_by_group=by_group, sources_by_group=sources)
    assert n == len(expected)
    examples = load_examples(tmp_path / "train")
    assert examples.cache_files  # memory-mapped from disk, not held in memory
    got = ExampleRows(examples).arrays()
    assert got.keys() == expected.arrays.keys()
    for k, a in expected.arrays.items():  # stored as int32, read back widened (as batches want them)
        assert np.array_equal(got[k], a) and got[k].dtype == (np.int64 if a.dtype == np.int32 else a.dtype), k
    assert np.array_equal(examples["trace_index"], expected.trace_index)
    assert np.array_equal(ExampleRows(examples).lengths(), expected.arrays["ev_mask"].sum(1))
    assert len(list((tmp_path / "train").glob("*.arrow"))) == (1 if procs == 1 else 2)  # a file per shard
    rows = ExampleRows(examples)
    assert len(rows.chunks) > 3
    pick = np.random.default_rng(0).permutation(len(expected))[:20]  # random rows, any record batch
    got = rows.arrays(pick)
    for k, a in expected.arrays.items():
        assert np.array_equal(got[k], a[pick]), k


def test_a_batch_is_the_rows_trimmed_and_widened(shop_traces, tmp_path, monkeypatch):
    monkeypatch.setattr(example_store, "WRITER_ROWS", 2)
    traces = shop_traces(4)
    featurizer = featurizer_for(traces)
    rows = Dataset.from_dict({COL_TRACE: [t.to_json() for t in traces]})
    featurize_split(rows, featurizer, tmp_path / "test", fingerprint="test-batch")
    ds = ExampleRows(load_examples(tmp_path / "test"))
    batch = ds.__getitems__([3, 0, 5])
    arrays = example_store.trim_batch(ds.arrays([3, 0, 5]))
    assert batch.keys() == arrays.keys()
    for k, t in batch.items():
        assert t.shape == arrays[k].shape and (t.numpy() == arrays[k]).all()
        assert t.dtype.is_floating_point or str(t.dtype) in ("torch.int64", "torch.bool")
    again = pickle.loads(pickle.dumps(ds))  # as a spawned DataLoader worker gets it: the files, re-viewed
    assert all(torch.equal(again.__getitems__([3, 0, 5])[k], t) for k, t in batch.items())


def test_holdout_moves_its_traces_from_every_split_to_the_test_split(shop_traces, tmp_path, monkeypatch):
    from toolcast.predictor.config import Config, TrainConfig
    from toolcast.training.datamodule import NextCallDataModule

    monkeypatch.setenv("TOOLCAST_CACHE", str(tmp_path / "cache"))
    traces = shop_traces(40)
    for t in traces[::3]:
        t.metadata["domain"] = "retail"
    data = tmp_path / "logs.jsonl"
    data.write_text("".join(t.to_json() + "\n" for t in traces), encoding="utf-8")
    dm = NextCallDataModule([data], Config(model=tiny_config(), train=TrainConfig()), tmp_path / "examples",
                            None, holdout="domain=retail")
    splits = dm.split_traces()
    held = sorted(t.trace_id for t in traces[::3])
    assert sorted(t.trace_id for t in splits["test"]) == held
    rest = [t.trace_id for name in ("train", "validation") for t in splits[name]]
    assert rest and not set(rest) & set(held)  # the test split's other traces leave (unseen tool sets only)
