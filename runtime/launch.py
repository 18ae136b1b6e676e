"""A speculative run: launched on an idle worker (never queued), run privately into the cache, its
worker released however it ends (a run cancelled before its first step included). Functions of the
`SpeculativeRuntime` that launches it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from toolcast.runtime.cache import Entry, State
from toolcast.runtime.canonical import canonical
from toolcast.runtime.planner import Choice
from toolcast.runtime.sessions import Session
from toolcast.runtime.tools import Tool, invoke, runs_in_thread

if TYPE_CHECKING:
    from toolcast.runtime.runtime import SpeculativeRuntime

log = logging.getLogger("toolcast.runtime")


def launch(rt: SpeculativeRuntime, s: Session, ch: Choice) -> Entry | None:
    pred = ch.prediction
    t = rt._tools[pred.tool]
    if runs_in_thread(t) and rt._spec_lane.free <= 0:
        return  # every speculative thread is busy (hung or cancelled runs included): never queue
    args = pred.args  # canonical (`_well_formed`): a private copy the predictor cannot change
    cargs = canonical(args)
    if cargs is None:
        return
    job = next(rt._jobs)
    if not rt.pool.try_speculative(job):
        return None
    contract = t.contract.for_call(args)
    entry = rt.cache.add(s.id, t.name, cargs, args, reads=contract.read_keys(args),
                         ttl=contract.stable_for, now=rt._now())
    entry.meta.update(job=job, p=pred.p_call, utility=ch.utility)
    rt._spec_jobs[job] = entry
    s.launched += 1
    rt.stats.launched(t.name)
    log.debug("[speculative] launch %s %s (p=%.2f, U=%.3f)", t.name, entry.cargs, pred.p_call, ch.utility,
             extra={"speculative": True, "session": s.id, "tool": t.name})
    entry.handle = asyncio.create_task(run_speculative(rt, t, entry, job))
    entry.handle.add_done_callback(lambda _task: never_ran(rt, entry, job))
    return entry


def never_ran(rt: SpeculativeRuntime, entry: Entry, job: int) -> None:
    """A run cancelled before its first step (retired in the tick it was launched: its session ended,
    a write invalidated it) never enters `run_speculative`, so its `finally` must happen here, or its
    worker stays taken for good."""
    if job not in rt._spec_jobs:
        return  # it ran: `run_speculative` released its worker
    if entry.state is State.RUNNING:
        rt.cache.finish(entry, now=rt._now(), error=asyncio.CancelledError())
    rt._spec_jobs.pop(job, None)
    rt._release(job)


async def run_speculative(rt: SpeculativeRuntime, t: Tool, entry: Entry, job: int) -> None:
    try:
        result = await invoke(t, entry.args, rt._spec_lane)
    except asyncio.CancelledError as e:
        rt.cache.finish(entry, now=rt._now(), error=e)
    except BaseException as e:  # noqa: BLE001 - SystemExit from a made-up argparse call included
        log.debug("[speculative] %s raised %r (never shown to the agent)", t.name, e,
                 extra={"speculative": True, "tool": t.name})
        rt.cache.finish(entry, now=rt._now(), error=e)
    else:
        rt.cache.finish(entry, now=rt._now(), result=result)
        rt.estimates.observe_tool(t.name, entry.busy_seconds(rt._now()))
    finally:
        rt._spec_jobs.pop(job, None)
        rt._release(job)
        if entry.state is State.FAILED and not entry.claimed:
            rt._retire(entry, "failed")
