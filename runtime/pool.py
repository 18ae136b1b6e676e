"""The tool-worker pool's admission rule: authoritative calls first, speculation only on idle workers.

A bounded number of workers run tool calls. An authoritative (real) call takes an idle worker; if none
is idle it pre-empts the most recently started speculative run (least work lost); if every worker runs
real calls it waits in FIFO order. A speculative run starts only on an idle worker and never waits, so
speculation can never delay a real call by more than the moment it takes to cancel it.

Pure bookkeeping over job ids (no asyncio, no clock): the live runtime wraps it with futures, and the
simulator gets the same rule by running the live runtime on a virtual clock.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Admission:
    started: bool
    """The job holds a worker now (else it is queued; only authoritative jobs queue)."""
    preempted: int | None = None
    """A speculative job that lost its worker to this one: the caller must cancel it."""


class WorkerPool:
    def __init__(self, workers: int):
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._running: OrderedDict[int, bool] = OrderedDict()
        """job id -> speculative?, in start order."""
        self._queue: deque[int] = deque()

    # ---- state ----
    @property
    def busy(self) -> int:
        return len(self._running)

    @property
    def idle(self) -> int:
        return self.workers - len(self._running)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def utilisation(self) -> float:
        return min(1.0, self.busy / self.workers)

    @property
    def speculative_running(self) -> int:
        return sum(self._running.values())

    def is_running(self, job: int) -> bool:
        return job in self._running

    # ---- transitions ----
    def try_speculative(self, job: int) -> bool:
        """Start a speculative job if a worker is idle and no real call waits; never queue it."""
        if self._queue or len(self._running) >= self.workers:
            return False
        self._running[job] = True
        return True

    def authoritative(self, job: int) -> Admission:
        if len(self._running) < self.workers:
            self._running[job] = False
            return Admission(True)
        victim = next((j for j in reversed(self._running) if self._running[j]), None)
        if victim is not None:
            del self._running[victim]
            self._running[job] = False
            return Admission(True, victim)
        self._queue.append(job)
        return Admission(False)

    def promote(self, job: int) -> bool:
        """A running speculative job became a real call's (the agent joined it): never pre-empt it now."""
        if job not in self._running:
            return False
        self._running[job] = False
        return True

    def demote(self, job: int) -> bool:
        """Make a promoted job pre-emptable again (it is late and a real run races it)."""
        if job not in self._running:
            return False
        self._running[job] = True
        return True

    def release(self, job: int) -> list[int]:
        """The job ended (or was cancelled). Returns queued jobs that now hold a worker."""
        if self._running.pop(job, None) is None:
            self.withdraw(job)
            return []
        started = []
        while self._queue and len(self._running) < self.workers:
            j = self._queue.popleft()
            self._running[j] = False
            started.append(j)
        return started

    def withdraw(self, job: int) -> None:
        """A queued job gave up waiting."""
        try:
            self._queue.remove(job)
        except ValueError:
            pass
