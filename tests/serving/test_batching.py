"""The micro-batcher: batches concurrent contexts, bounds batch size and queue, isolates failures."""

from __future__ import annotations

import asyncio
import threading

import pytest

from toolcast.data.schema import Context, Message
from toolcast.predictor.protocol import CallPrediction
from toolcast.serving.batching import (
    DirectScheduler,
    MicroBatcher,
    Overloaded,
    ShuttingDown,
    run_predictor,
)


def ctx(tag: str) -> Context:
    return Context(events=[Message("user", tag)], tools=[], metadata={"tag": tag})


class Recorder:
    """A run function that records its batches and can be held (to let a queue build up)."""

    def __init__(self, fail_tag: str | None = None):
        self.batches: list[list[str]] = []
        self.fail_tag = fail_tag
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items):
        self.gate.wait(10)
        tags = [c.metadata["tag"] for c, _ in items]
        self.batches.append(tags)
        if self.fail_tag in tags:
            raise ValueError(f"cannot predict {self.fail_tag}")
        return [[CallPrediction(f"tool_{c.metadata['tag']}", p_call=1.0)] * k for c, k in items]


async def test_concurrent_contexts_share_runs_within_the_size_bound():
    rec = Recorder()
    b = MicroBatcher(rec, max_batch_size=4, max_wait_s=0.05, max_queue=100)
    b.start()
    try:
        answers = await asyncio.gather(*(b.predict([(ctx(str(i)), 2)]) for i in range(10)))
    finally:
        await b.stop()
    assert [a[0][0].tool for a in answers] == [f"tool_{i}" for i in range(10)]
    assert all(len(a[0]) == 2 for a in answers)
    assert max(len(x) for x in rec.batches) <= 4
    assert len(rec.batches) < 10  # some contexts shared a run
    assert sorted(t for x in rec.batches for t in x) == sorted(str(i) for i in range(10))


async def test_zero_wait_runs_at_once_and_batches_what_queued_meanwhile():
    rec = Recorder()
    rec.gate.clear()
    b = MicroBatcher(rec, max_batch_size=64, max_wait_s=0.0, max_queue=100)
    b.start()
    try:
        first = asyncio.ensure_future(b.predict([(ctx("a"), 1)]))
        await asyncio.sleep(0.05)  # "a" is now running (held at the gate)
        rest = asyncio.ensure_future(asyncio.gather(*(b.predict([(ctx(t), 1)]) for t in "bcd")))
        await asyncio.sleep(0.05)
        rec.gate.set()
        await first
        await rest
    finally:
        await b.stop()
    assert rec.batches == [["a"], ["b", "c", "d"]]


async def test_a_failing_context_fails_alone():
    rec = Recorder(fail_tag="bad")
    b = MicroBatcher(rec, max_batch_size=8, max_wait_s=0.05, max_queue=100)
    b.start()
    try:
        results = await asyncio.gather(*(b.predict([(ctx(t), 1)]) for t in ("x", "bad", "y")),
                                       return_exceptions=True)
    finally:
        await b.stop()
    assert isinstance(results[1], ValueError)
    assert results[0][0][0].tool == "tool_x" and results[2][0][0].tool == "tool_y"


async def test_full_queue_is_overloaded_and_stop_fails_the_waiting():
    rec = Recorder()
    rec.gate.clear()
    b = MicroBatcher(rec, max_batch_size=1, max_wait_s=0.0, max_queue=2)
    b.start()
    running = asyncio.ensure_future(b.predict([(ctx("a"), 1)]))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(b.predict([(ctx("b"), 1), (ctx("c"), 1)]))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="limit 2"):
        await b.predict([(ctx("d"), 1)])
    rec.gate.set()
    await running
    await b.stop()
    with pytest.raises(ShuttingDown):
        await waiting


async def test_direct_scheduler_runs_each_request_alone():
    rec = Recorder()
    d = DirectScheduler(rec, max_queue=10)
    answers = await asyncio.gather(*(d.predict([(ctx(t), 1)]) for t in "abc"))
    assert [a[0][0].tool for a in answers] == ["tool_a", "tool_b", "tool_c"]
    assert sorted(map(tuple, rec.batches)) == [("a",), ("b",), ("c",)]


def test_run_predictor_prefers_predict_batch_and_cuts_each_k(batch_fake, fake):
    items = [(Context([], []), 1), (Context([], []), 3)]
    ctx_tools = Context([], [])
    assert [len(a) for a in run_predictor(batch_fake, items)] == [1, 1]  # only <respond> to offer
    assert batch_fake.batches == [2]
    from toolcast.data.schema import ToolSpec

    ctx_tools = Context([], [ToolSpec("a"), ToolSpec("b"), ToolSpec("c")])
    got = run_predictor(fake, [(ctx_tools, 2), (ctx_tools, 4)])
    assert [len(a) for a in got] == [2, 4] and fake.calls == 2


def test_run_predictor_rejects_a_short_batch_answer():
    class Short:
        name = "short"

        def predict_batch(self, contexts, k):
            return []

    with pytest.raises(RuntimeError, match="0 answers for 1 contexts"):
        run_predictor(Short(), [(Context([], []), 1)])
