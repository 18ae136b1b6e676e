"""An asyncio event loop on a virtual clock: discrete-event simulation of ordinary asyncio code.

The loop's `time()` is a number that jumps straight to the next scheduled timer whenever nothing is
ready to run, so `await asyncio.sleep(3600)` returns at once in wall time and exactly 3600 s later in
loop time. Everything that reads the loop's clock (sleeps, `asyncio.wait(timeout=...)`, the runtime's
TTLs and measurements) then runs in simulated time, deterministically.

This is how the replay simulator runs the real `SpeculativeRuntime` (planner, cache, pool and all)
instead of a second copy of its policy. Code on this loop must not wait on threads or sockets: with
nothing scheduled and nothing ready the simulation is stuck, and `SimulationStalled` says so.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class SimulationStalled(RuntimeError):
    """Nothing is ready and no timer is pending: some task waits for something that never comes."""


class _VirtualSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    def __init__(self, clock: VirtualClockLoop):
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None):
        ready = super().select(0)  # the loop's own wake-up pipe; never block
        if ready:
            return ready
        if timeout is None:
            raise SimulationStalled("simulation stalled: tasks are waiting but no timer is pending")
        if timeout > 0:
            self._clock.advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    virtual_clock = True
    """Code that would wait on a thread checks this and runs inline instead (the runtime's predictor)."""

    def __init__(self, start: float = 0.0):
        self._virtual_now = float(start)
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        # Always move by at least one representable step, so a timer due a hair later becomes due.
        self._virtual_now = max(self._virtual_now + seconds, math.nextafter(self._virtual_now, math.inf))


def run_virtual(main: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Run a coroutine to completion on a fresh virtual-clock loop and close the loop."""
    loop = VirtualClockLoop(start)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_leftovers(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel tasks still pending when the main coroutine returns, as `asyncio.run` does."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in pending:
        t.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
