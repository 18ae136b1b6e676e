"""Micro-batching: concurrent requests share one predictor run.

An onnxruntime run over 32 contexts costs far less than 32 runs of one, so under load the server
collects what has queued up and runs it together. Two bounds keep the latency honest:

1. `max_wait_s`: the first context of a batch waits at most this long for others to join it (a lone
   request under light load pays at most this much extra);
2. `max_batch_size`: a batch never grows past this; the rest waits for the next run.

Runs happen one at a time in a dedicated worker thread (the model already uses both cores inside one
run; the event loop stays free to accept and parse the next requests meanwhile). While a run is in
flight new contexts queue, so under load the next batch is ready the moment the previous one ends.
`max_queue` bounds the waiting contexts: beyond it `submit` raises `Overloaded` (HTTP 503), which is
kinder to clients than an ever-growing latency.

`DirectScheduler` is the same interface without batching (one run per request, in the thread pool),
for comparison and for predictors that gain nothing from batches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from toolcast.data.schema import Context
from toolcast.predictor.protocol import CallPrediction, Predictor
from toolcast.serving.metrics import Metrics

log = logging.getLogger(__name__)

Item = tuple[Context, int]
"""A context and its k."""
RunFn = Callable[[list[Item]], list[list[CallPrediction]]]


class Overloaded(RuntimeError):
    """Too many contexts are waiting for the predictor; the client should retry later."""


class ShuttingDown(RuntimeError):
    """The server stopped before this context was answered."""


def run_predictor(predictor: Predictor, items: list[Item]) -> list[list[CallPrediction]]:
    """One predictor run over `items`: `predict_batch` when the predictor has it, else `predict` each.

    `predict_batch(contexts, k)` takes one k, so the batch asks for the largest and each answer is cut to
    its own k (a top-k list's prefix is the top-k' list).
    """
    batch_fn = getattr(predictor, "predict_batch", None)
    if callable(batch_fn):
        k_max = max(k for _, k in items)
        answers = list(batch_fn([c for c, _ in items], k_max))
        if len(answers) != len(items):
            raise RuntimeError(f"predict_batch returned {len(answers)} answers for {len(items)} contexts")
        return [list(a)[:k] for a, (_, k) in zip(answers, items, strict=True)]
    return [list(predictor.predict(c, k))[:k] for c, k in items]


@dataclass
class _Pending:
    item: Item
    future: asyncio.Future


class MicroBatcher:
    """Queue contexts; a background task runs them in batches of at most `max_batch_size`."""

    def __init__(self, run: RunFn, *, max_batch_size: int, max_wait_s: float, max_queue: int,
                 metrics: Metrics | None = None):
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue = max_queue
        self._metrics = metrics
        self._pending: deque[_Pending] = deque()
        self._arrived = asyncio.Event()  # something is queued
        self._full = asyncio.Event()  # a whole batch is queued: stop waiting
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toolcast-predictor")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="toolcast-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._pending:
            p = self._pending.popleft()
            if not p.future.done():
                p.future.set_exception(ShuttingDown("the server is shutting down"))
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def predict(self, items: list[Item]) -> list[list[CallPrediction]]:
        """Answers for `items`, in order; they may share runs with other requests' contexts."""
        if len(self._pending) + len(items) > self.max_queue:
            raise Overloaded(f"{len(self._pending)} contexts are already waiting (limit {self.max_queue})")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        self._pending.extend(_Pending(it, f) for it, f in zip(items, futures, strict=True))
        self._arrived.set()
        if len(self._pending) >= self.max_batch_size:
            self._full.set()
        self._gauge()
        return list(await asyncio.gather(*futures))

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.queue_depth.set(len(self._pending))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            if len(self._pending) < self.max_batch_size and self.max_wait_s > 0:
                self._full.clear()
                try:
                    await asyncio.wait_for(self._full.wait(), self.max_wait_s)
                except asyncio.TimeoutError:  # noqa: UP041 (an alias of TimeoutError only from 3.11)
                    pass
            batch: list[_Pending] = []
            while self._pending and len(batch) < self.max_batch_size:
                p = self._pending.popleft()
                if not p.future.done():  # a client that went away cancelled its future
                    batch.append(p)
            self._gauge()
            if batch:
                await self._run_batch(loop, batch)

    async def _run_batch(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        items = [p.item for p in batch]
        t0 = time.perf_counter()
        try:
            answers = await loop.run_in_executor(self._executor, self._run, items)
        except asyncio.CancelledError:  # stop() while this batch ran: its requests get an answer too
            for p in batch:
                _settle(p.future, exc=ShuttingDown("the server is shutting down"))
            raise
        except Exception as e:
            if len(batch) == 1:
                _settle(batch[0].future, exc=e)
                return
            # One bad context must not fail the others: answer each alone to find it.
            log.warning("batch of %d failed (%s: %s); running its contexts one by one",
                        len(batch), type(e).__name__, e)
            for p in batch:
                try:
                    (answer,) = await loop.run_in_executor(self._executor, self._run, [p.item])
                    _settle(p.future, answer)
                except Exception as e1:
                    _settle(p.future, exc=e1)
            return
        if self._metrics is not None:
            self._metrics.observe_batch(len(batch), time.perf_counter() - t0)
        for p, answer in zip(batch, answers, strict=True):
            _settle(p.future, answer)


def _settle(future: asyncio.Future, result: object = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


class DirectScheduler:
    """No batching across requests: each request's contexts get their own run in the thread pool."""

    def __init__(self, run: RunFn, *, max_queue: int, metrics: Metrics | None = None):
        self._run = run
        self.max_queue = max_queue
        self._metrics = metrics
        self._in_flight = 0

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def predict(self, items: list[Item]) -> list[list[CallPrediction]]:
        if self._in_flight + len(items) > self.max_queue:
            raise Overloaded(f"{self._in_flight} contexts are already in flight (limit {self.max_queue})")
        self._in_flight += len(items)
        if self._metrics is not None:
            self._metrics.queue_depth.set(self._in_flight)
        t0 = time.perf_counter()
        try:
            answers = await asyncio.to_thread(self._run, items)
        finally:
            self._in_flight -= len(items)
        if self._metrics is not None:
            self._metrics.observe_batch(len(items), time.perf_counter() - t0)
            self._metrics.queue_depth.set(self._in_flight)
        return answers


Scheduler = MicroBatcher | DirectScheduler
