"""The statistics pass by shard: counts of consecutive shards, each in its own process, merge into exactly
what one pass counts (dict order included), the tokenizer learns the same vocabulary run after run, and the
whole example cache is byte for byte the same with one or two featurizing processes."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")

from datasets import Dataset  # noqa: E402

from toolcast.data.splits import COL_TRACE  # noqa: E402
from toolcast.predictor.config import Config, TrainConfig, tiny_config  # noqa: E402
from toolcast.predictor.features.catalog import build_catalog  # noqa: E402
from toolcast.predictor.features.extractors import extract_candidates  # noqa: E402
from toolcast.predictor.features.featurizer import Featurizer  # noqa: E402
from toolcast.predictor.features.text import TextEncoder, train_tokenizer  # noqa: E402
from toolcast.training import (
    datamodule,  # noqa: E402
    example_store,  # noqa: E402
)
from toolcast.training.datamodule import NextCallDataModule, tokenizer_sample  # noqa: E402
from toolcast.training.example_store import (  # noqa: E402
    ExampleRows,
    ShardMap,
    in_forked_child,
    load_examples,
    per_shard,
)
from toolcast.training.examples import (  # noqa: E402
    TraceCounts,
    build_vocabularies,
    corpus_texts,
    count_traces,
    merge_sources_by_group,
    transition_counts,
    value_source_counts,
    vocabularies_from,
)


def ordered(x):
    """`x` with every dict as its list of items (so that == sees the order) and every set sorted."""
    if isinstance(x, dict):
        return [(k, ordered(v)) for k, v in x.items()]
    if isinstance(x, set):
        return sorted(x)
    if isinstance(x, list | tuple):
        return [ordered(v) for v in x]
    return x


def grouped_traces(shop_traces, n: int):
    """Shop traces in 10 task groups, interleaved: a group has traces in several shards."""
    return [replace(t, group=f"task-{i % 10}") for i, t in enumerate(shop_traces(n))]


@pytest.mark.parametrize("procs", [2, 3])
def test_counts_by_shard_are_one_pass_counts(shop_traces, monkeypatch, procs):
    monkeypatch.setattr(example_store, "TRACES_PER_PROCESS", 4)
    monkeypatch.setattr(example_store, "TRACES_PER_BATCH", 1)  # shards of 1 or 2 traces
    traces = grouped_traces(shop_traces, 14)  # 3 processes: shards of 5, 5 and 4 traces
    rows = Dataset.from_dict({COL_TRACE: [t.to_json() for t in traces]})
    counting = ShardMap(rows, per_shard(partial(count_traces, extract=extract_candidates)), procs)
    assert counting.procs == procs
    merged = TraceCounts.merge(counting.iter_results())  # folded as the shards finish, as training does
    one = count_traces(traces, extract_candidates)
    for name in ("tools", "agents", "kinds", "constant_groups", "constant_values", "transitions_by_group",
                 "chars"):
        assert ordered(getattr(merged, name)) == ordered(getattr(one, name)), name
    assert ordered(merged.transitions_by_group) == ordered(transition_counts(traces))
    vocab = vocabularies_from(merged, build_catalog(traces))
    assert ordered(vocab.to_dict()) == ordered(build_vocabularies(traces, extract_candidates).to_dict())

    encoder = TextEncoder.from_json(train_tokenizer(corpus_texts(traces), vocab_size=200))
    cfg = replace(tiny_config(), text_vocab_size=encoder.vocab_size, n_tool_ids=vocab.n_tool_ids,
                  n_agents=vocab.n_agents)
    featurizer = Featurizer(cfg, encoder, vocab, extract_candidates)
    sources = ShardMap(rows, per_shard(partial(value_source_counts, featurizer=featurizer)), procs).results()
    assert len(sources) == len(counting.bounds) > procs  # shards of 1 to 2 traces: more than processes
    assert ordered(merge_sources_by_group(sources)) == ordered(value_source_counts(traces, featurizer))


TOKENIZER = """
import sys
sys.path.insert(0, sys.argv[1])
from conftest import build_shop_traces
from toolcast.predictor.features.text import train_tokenizer
from toolcast.training.examples import corpus_texts
print(train_tokenizer(corpus_texts(build_shop_traces(40)), vocab_size=300))
"""


def test_the_tokenizer_learns_the_same_vocabulary_every_run(shop_traces, tmp_path):
    """The WordPiece trainer numbered continuation pieces in hash order (random per process) and broke
    ties between merges by those numbers: two runs on these traces learnt different vocabularies."""
    texts = list(corpus_texts(shop_traces(40)))
    first = train_tokenizer(texts, vocab_size=300)
    assert train_tokenizer(iter(texts), vocab_size=300) == first  # texts read once, then held
    tests = str(Path(__file__).parents[1])
    command = [sys.executable, "-c", TOKENIZER, tests]
    runs = {subprocess.run(command, capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
            for _ in range(2)}
    assert runs == {first}  # other processes, other hash seeds
    doc = json.loads(first)
    assert [a["content"] for a in doc["added_tokens"]] == ["[PAD]", "[UNK]"]  # pieces are not special
    assert "##e" in doc["model"]["vocab"]
    encoder = TextEncoder.from_json(first)
    assert encoder.encode("order ##e") == encoder.encode("order # # e")  # "##e" in text is no token


def test_the_example_cache_is_the_same_with_one_or_two_processes(shop_traces, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLCAST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(example_store, "TRACES_PER_PROCESS", 4)
    monkeypatch.setattr(example_store, "TRACES_PER_BATCH", 3)
    data = tmp_path / "logs.jsonl"
    data.write_text("".join(t.to_json() + "\n" for t in grouped_traces(shop_traces, 40)), encoding="utf-8")
    caches = []
    for procs in (1, 2):
        dm = NextCallDataModule([data], Config(model=tiny_config(), train=TrainConfig()),
                                tmp_path / f"examples-{procs}", extract_candidates, featurize_procs=procs)
        dm.prepare_data()
        caches.append(dm.cache)
    one, two = caches
    for name in ("tokenizer.json", "vocab.json", "sizes.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert len(list((one / "train").glob("*.arrow"))) == 1
    assert len(list((two / "train").glob("*.arrow"))) > 2  # more shards than processes
    assert len(list((two / "validation").glob("*.arrow"))) > 1  # queued behind train's, in the same processes
    for split in ("train", "validation", "test"):
        a, b = load_examples(one / split), load_examples(two / split)
        assert np.array_equal(a["trace_index"], b["trace_index"])
        got, want = ExampleRows(b).arrays(), ExampleRows(a).arrays()
        assert all(np.array_equal(got[k], want[k]) for k in want), split


def test_a_shard_process_that_dies_fails_the_map_instead_of_hanging(shop_traces, monkeypatch):
    monkeypatch.setattr(example_store, "TRACES_PER_PROCESS", 4)
    rows = Dataset.from_dict({COL_TRACE: [t.to_json() for t in shop_traces(8)]})
    dies = ShardMap(rows, lambda shard, start: os._exit(1) if start else len(shard), 2)  # as if OOM-killed
    with pytest.raises(BrokenProcessPool):
        dies.results()


def test_several_jobs_in_one_shard_map_give_each_job_its_own_results_in_order(shop_traces, monkeypatch):
    monkeypatch.setattr(example_store, "TRACES_PER_PROCESS", 4)
    monkeypatch.setattr(example_store, "TRACES_PER_BATCH", 4)
    a = Dataset.from_dict({COL_TRACE: [t.to_json() for t in shop_traces(20)]})
    b = Dataset.from_dict({COL_TRACE: [t.to_json() for t in shop_traces(7)]})
    rows = lambda shard, start: list(range(start, start + len(shard)))  # noqa: E731
    width = lambda shard, start: len(shard)  # noqa: E731
    for procs in (1, 2):
        got = ShardMap.jobs([(a, rows), (b, width)], procs).all_results()
        assert [i for part in got[0] for i in part] == list(range(20))
        assert sum(got[1]) == 7 and (len(got[1]) > 1) == (procs > 1)


def test_results_come_in_shard_order_however_the_shards_finish_and_are_let_go(shop_traces, monkeypatch):
    monkeypatch.setattr(example_store, "TRACES_PER_PROCESS", 4)
    monkeypatch.setattr(example_store, "TRACES_PER_BATCH", 2)
    rows = Dataset.from_dict({COL_TRACE: [t.to_json() for t in shop_traces(16)]})
    slow_first = lambda shard, start: time.sleep(0.05 * (16 - start) / 16) or start  # noqa: E731
    for procs in (1, 2):
        shards = ShardMap(rows, slow_first, procs)
        got = list(shards.iter_results())
        assert got == [start for start, _stop in shards.bounds]  # one shard (start 0) in one process
        if procs > 1:
            assert len(got) > 2 and all(f is None for f in shards.pending)


def _child_work(n: int) -> dict:
    _CHILD_STATE.append(n)  # in the child's copy only
    logging.getLogger("toolcast.training.test_child").warning("child says %d", n)
    return {"pid": os.getpid(), "squares": [i * i for i in range(n)]}


_CHILD_STATE: list[int] = []


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="runs here where processes cannot fork")
def test_in_forked_child_runs_elsewhere_and_hands_back_result_logs_and_errors(caplog):
    with caplog.at_level(logging.WARNING, logger="toolcast.training.test_child"):
        got = in_forked_child(_child_work, 4)
    assert got["squares"] == [0, 1, 4, 9] and got["pid"] != os.getpid()
    assert _CHILD_STATE == []  # what the child did to its memory stayed there
    assert [r.getMessage() for r in caplog.records if r.name.endswith("test_child")] == ["child says 4"]

    def fails() -> None:
        raise ValueError("bad line 3 of logs.jsonl")

    with pytest.raises(ValueError, match="bad line 3"):
        in_forked_child(fails)
    # a shard map inside the child (training's statistics) forks its own processes
    rows = Dataset.from_dict({COL_TRACE: [str(i) for i in range(600)]})
    count = lambda: sum(ShardMap(rows, lambda shard, start: len(shard), 2).iter_results())  # noqa: E731
    assert in_forked_child(count) == 600


def test_the_tokenizer_reads_an_evenly_spaced_sample_of_large_logs(monkeypatch):
    rows = Dataset.from_dict({COL_TRACE: [str(i) for i in range(10)]})
    assert len(tokenizer_sample(rows)) == 10
    monkeypatch.setattr(datamodule, "TOKENIZER_TRACES", 4)
    picked = tokenizer_sample(rows)
    assert picked.parts[0][COL_TRACE] == ["0", "2", "5", "7"]
