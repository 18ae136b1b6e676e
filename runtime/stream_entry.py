"""The runtime's entry points for the LLM's stream (fed by `toolcast.runtime.stream.StreamFeeder`): a
call written out but not yet issued runs now, the text so far predicts again, a stream that ended drops
its runs. `SpeculativeRuntime.stream_call`, `stream_text` and `stream_dropped` are these functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from toolcast.data.schema import Context, Message
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.cache import Entry
from toolcast.runtime.canonical import canonical
from toolcast.runtime.launch import launch

if TYPE_CHECKING:
    from toolcast.runtime.runtime import SpeculativeRuntime



def stream_call(rt: SpeculativeRuntime, session: str, tool: str, args: Mapping[str, Any]) -> Entry | None:
    """A call the LLM has written out (its arguments parse complete) but not yet issued: run it now
    (p = 1) if the planner allows it (same contract, schema and budget checks as any candidate).
    Returns the run, whether launched now or already covered; the agent's `call` joins it."""
    s = rt._sessions.get(session)
    if s is None or s.closed or tool not in rt._tools:
        return None
    specs = {t.name: t for t in rt._specs(s)}
    now = rt._now()
    pred = CallPrediction(tool, dict(args), p_tool=1.0, p_call=1.0, p_horizon=1.0)
    choice, = rt.planner.plan(
        [pred], model=s.model, covered=rt.cache.covered(s.id, now), occupancy=rt._occupancy(s),
        contract_of=lambda n: rt._tools[n].contract if n in specs else None,
        schemas={n: t.parameters for n, t in specs.items()})
    entry = launch(rt, s, choice) if choice.launch else None
    if entry is None and choice.eligible:
        key = (tool, canonical(pred.args))  # the runtime's form, as the cache keys its entries
        entry = next((e for e in rt.cache.live(s.id, now) if e.key == key), None)
    if entry is not None:
        entry.meta.setdefault("stream", s.decision)
    return entry


def stream_text(rt: SpeculativeRuntime, session: str, text: str) -> None:
    """The assistant's text (or reasoning) so far in the message being generated: predict again with
    it in the context (the caller throttles)."""
    s = rt._sessions.get(session)
    if rt.predictor is None or s is None or s.closed or not s.awaiting_llm:
        return
    context = Context(events=[*s.events, Message("assistant", text, turn=s.turn)], tools=rt._specs(s),
                      metadata={**s.metadata, "session": s.id, "model": s.model})
    task = asyncio.create_task(rt._speculate(s, s.decision, context))
    rt._background.add(task)
    task.add_done_callback(rt._background.discard)


def stream_dropped(rt: SpeculativeRuntime, session: str, entries: Iterable[Entry]) -> None:
    """The stream that launched these runs ended without issuing their calls: discard them."""
    for e in entries:
        if e.session == session and not e.claimed:
            rt._retire(e, "stream ended")
