"""The agent's real call, once the runtime has it: served from a finished speculative result, joined to
the speculative run in flight (raced by a real run once that is late: the hedge), or run for real on a
worker, pre-empting speculation if it must. Functions of the `SpeculativeRuntime` that runs the call.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from toolcast.runtime.cache import Entry, State
from toolcast.runtime.sessions import Session
from toolcast.runtime.tools import Tool, invoke

if TYPE_CHECKING:
    from toolcast.runtime.runtime import SpeculativeRuntime

log = logging.getLogger("toolcast.runtime")



async def serve_or_run(rt: SpeculativeRuntime, s: Session, t: Tool, args: dict[str, Any],
                       cargs: str | None) -> Any:
    """Serve the call from its speculative result (finished or in flight), else run it for real."""
    speculable = t.contract.for_call(args).speculable
    rt.stats.real_call(t.name, speculable=speculable)
    if speculable and cargs is not None:
        entry = rt.cache.claim(s.id, t.name, cargs, rt._now())
        if entry is not None:
            if entry.state is State.DONE:
                rt._served(entry, joined=False, saved=entry.busy_seconds(rt._now()))
                return entry.result
            return await join(rt, t, entry, args)
    return await run_real(rt, t, args)


async def join(rt: SpeculativeRuntime, t: Tool, entry: Entry, args: dict[str, Any]) -> Any:
    """Wait for the speculative run; race it with a real run once it is late; serve only if valid."""
    claimed_at = rt._now()
    # The agent waits on this run now: it is a real call's, and real calls do not pre-empt it.
    if entry.meta.get("job") is not None:
        rt.pool.promote(entry.meta["job"])
    expected = rt.config.hedge_factor * rt.estimates.service_time(t.name)
    hedge = max(rt.config.hedge_min, expected - entry.busy_seconds(claimed_at))
    task: asyncio.Task = entry.handle
    real: asyncio.Task | None = None
    served = False
    try:
        await asyncio.wait({task}, timeout=hedge)
        if not task.done():
            log.debug("[speculative] %s run is late; racing a real run", t.name,
                     extra={"speculative": True, "tool": t.name})
            if entry.meta.get("job") is not None:  # the race may take its worker
                rt.pool.demote(entry.meta["job"])
            real = asyncio.create_task(run_real(rt, t, args, hedge=True))
            await asyncio.wait({task, real}, return_when=asyncio.FIRST_COMPLETED)
        now = rt._now()
        if task.done() and entry.state is State.DONE and rt.cache.servable(entry, now, check_ttl=False):
            served = True
            rt._served(entry, joined=True, saved=claimed_at - entry.started_at)
            return entry.result
        reason = "failed" if entry.state is State.FAILED else "invalidated" if entry.invalid else "late"
        rt._retire(entry, reason)
        if real is None:
            return await run_real(rt, t, args)
        return await real
    finally:
        if not served:
            rt._retire(entry, "abandoned")
        if real is not None and not real.done():
            real.cancel()


async def run_real(rt: SpeculativeRuntime, t: Tool, args: dict[str, Any], *, hedge: bool = False) -> Any:
    """An authoritative run: takes a worker first, pre-empting speculation if it must."""
    job = next(rt._jobs)
    admission = rt.pool.authoritative(job)
    if admission.preempted is not None:
        victim = rt._spec_jobs.get(admission.preempted)
        if victim is not None:
            rt._retire(victim, "preempted")
    if not admission.started:
        fut = asyncio.get_running_loop().create_future()
        rt._waiting[job] = fut
        try:
            await fut
        except BaseException:
            rt._waiting.pop(job, None)
            rt.pool.withdraw(job)
            if rt.pool.is_running(job):
                rt._release(job)
            raise
    started = rt._now()
    try:
        result = await invoke(t, args, rt._real_lane)
    except asyncio.CancelledError:
        if hedge:  # the speculative run won the race: this run's time was the hedge's price
            rt.stats.dropped(t.name, "hedge", rt._now() - started)
        raise
    finally:
        rt._release(job)
    rt.estimates.observe_tool(t.name, rt._now() - started)
    return result
