"""`SpeculativeRuntime`: runs likely tool calls while the agent's LLM is still thinking.

The agent calls `await runtime.call(session, tool, args)` instead of the tool, and reports the user's
messages with `runtime.observe_user(session, text)`. Then, as docs/architecture.md numbers them:

1. After each tool result (the last of a parallel turn) or user message, ask the predictor for the top-k
   next calls with probabilities (in a background task and, by default, in a predictor thread with a
   time limit: a slow predictor never stalls the agent's event loop). Predictions that are not
   well-formed (a NaN p, non-dict args, arguments with no canonical form) are dropped.
2. Check each candidate's eligibility: the tool's contract, default deny (`contracts.py`).
3. Score it with the net utility U = p*min(S, L) - (1-p)*lambda*C and launch those above the threshold,
   within budgets per session, per tool and in total (`planner.py`), on idle workers only (`pool.py`).
4. Keep speculative results private (`cache.py`). A real call whose (tool, canonical args) match takes
   over the finished result or joins the run in flight; otherwise it runs normally. Arguments match by
   their JSON value (`canonical.py`: 1 == 1.0, True != 1, tuples are lists, non-JSON values never match
   but still run). Runs that no call took are cancelled at the next decision point (losers) or expire
   with their freshness window.
5. A real call of a state-changing tool invalidates, when it starts and again when it ends, the results
   whose `reads` overlap its `mutates` (undeclared: everything, an epoch bump). Resource keys name state
   that all sessions share, so this is runtime-wide: a write in one session invalidates every session's
   reads of that resource (`RuntimeConfig.shared_state=False` confines it to the session, for sessions
   that each act on a world of their own). Real calls pre-empt speculative runs for workers.

A speculative run that raises anything (`SystemExit`, `KeyboardInterrupt` or any other `BaseException`
its tool's code raises included) is never shown to the agent; one that hangs is raced by a real run once
it is late (hedge), so the agent's call always gets its own, normal result. Sync tools run in threads:
speculative runs in a lane of their own, whose threads count as busy until the tool returns even when
its run was cancelled, so a hung speculative thread never holds up a real call. Speculative runs are
tagged in logs (`[speculative]`, extra={"speculative": True}) and counted in `stats`.

Sessions that are never ended do not accumulate: each decision point and call sweeps entries past their
freshness window (a heap by expiry) and sessions idle for `session_idle_s` or beyond `max_sessions`
(least recently active first), in amortised constant time per session, whatever their number.
`start_session` on a live id ends that session first: a new user never gets the previous one's results.

All times come from the event loop's clock, so the replay simulator runs this same code on a virtual
clock. Call the methods from inside the event loop.

The parts, one job each: `config.py` (RuntimeConfig), `sessions.py` (a session's state, which sessions a
sweep ends), `prediction.py` (step 1), `launch.py` (a speculative run), `real_calls.py` (step 4's serve,
join and hedge; real runs on a worker) and `stream_entry.py` (the stream's entry points).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from toolcast.data.schema import Context, Message, ToolCall, ToolSpec
from toolcast.predictor.protocol import Predictor
from toolcast.runtime import stream_entry
from toolcast.runtime.cache import Entry, SpeculationCache, State
from toolcast.runtime.canonical import canonical
from toolcast.runtime.config import RuntimeConfig
from toolcast.runtime.contracts import ToolContract, keys_overlap
from toolcast.runtime.launch import launch
from toolcast.runtime.planner import Estimates, Occupancy, Planner
from toolcast.runtime.pool import WorkerPool
from toolcast.runtime.prediction import PredictionStep
from toolcast.runtime.real_calls import serve_or_run
from toolcast.runtime.sessions import MAX_PENDING, SWEEP_BATCH, Candidate, Session, stale_sessions
from toolcast.runtime.stats import RuntimeStats
from toolcast.runtime.tools import ThreadLane, Tool, as_text

__all__ = ["MAX_PENDING", "SWEEP_BATCH", "RuntimeConfig", "SpeculativeRuntime", "UnknownToolError"]

log = logging.getLogger("toolcast.runtime")


class UnknownToolError(KeyError):
    pass


class SpeculativeRuntime:
    def __init__(self, tools: Iterable[Tool] = (), predictor: Predictor | None = None,
                 config: RuntimeConfig | None = None, *, estimates: Estimates | None = None):
        self.config = config or RuntimeConfig()
        self.predictor = predictor
        self.planner = Planner(self.config.planner, estimates)
        self.cache = SpeculationCache()
        self.pool = WorkerPool(self.config.workers)
        self.stats = RuntimeStats()
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add_tool(t)
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        """Least recently active first."""
        self._jobs = itertools.count(1)
        self._spec_jobs: dict[int, Entry] = {}
        self._waiting: dict[int, asyncio.Future] = {}
        self._background: set[asyncio.Task] = set()
        # Real calls never share threads with speculation; a real call holds a worker of the pool, so
        # its lane only needs room for hedges that lost and calls the agent gave up on, still running.
        self._real_lane = ThreadLane(self.config.workers * 4, "toolcast-tool")
        self._spec_lane = ThreadLane(self.config.workers, "toolcast-speculative")
        self._prediction = PredictionStep(self.config)
        for_runtime = getattr(predictor, "for_runtime", None)
        if callable(for_runtime):  # a horizon view, made to propose this runtime's reads (`load(view=...)`)
            self.predictor = for_runtime(self.may_run_ahead, self.changes_state)

    @property
    def estimates(self) -> Estimates:
        return self.planner.estimates

    def add_tool(self, tool: Tool) -> None:
        """Register a tool; a second tool of the same name is an error (never a silent replacement)."""
        if not isinstance(tool, Tool):
            raise TypeError(f"expected a Tool, got {type(tool).__name__}")
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is registered already")
        self._tools[tool.name] = tool

    def may_run_ahead(self, tool: str) -> bool:
        """Whether a tool's contract lets it run ahead (an unregistered tool's never does)."""
        t = self._tools.get(tool)
        return t is not None and t.contract.speculable

    def changes_state(self, tool: str) -> bool:
        """Whether a real call of a tool may make what was read ahead stale (an unregistered tool may)."""
        t = self._tools.get(tool)
        return t is None or t.contract.state_changing

    def session_ids(self) -> list[str]:
        """The live sessions, least recently active first."""
        return list(self._sessions)

    # ---- sessions and what the agent reports ----------------------------------------------------------
    def start_session(self, session: str, *, tools: Iterable[str | ToolSpec] | None = None,
                      metadata: Mapping[str, Any] | None = None, model: str | None = None) -> None:
        """Optional: the session's tools (names, or specs as its agent's LLM sees them; default all
        registered), its metadata and the agent's model (for L, the LLM-time estimate).

        A live session with this id is ended first: its results are never served to the new one."""
        specs = None
        if tools is not None:
            specs = [t if isinstance(t, ToolSpec) else None for t in tools]
            names = [t.name if isinstance(t, ToolSpec) else t for t in tools]
            unknown = [n for n in names if n not in self._tools]
            if unknown:
                raise UnknownToolError(f"session {session!r}: unknown tool(s) {', '.join(unknown)}")
            specs = {n: s or self._tools[n].spec for n, s in zip(names, specs, strict=True)}
        meta = dict(metadata or {})
        old = self._sessions.get(session)
        if old is not None:
            self._end(old)
        s = self._session(session)
        s.specs, s.metadata, s.model = specs, meta, model or meta.get("model")

    def observe(self, session: str, role: str, text: str = "", *, tokens: int | None = None,
                changed_state: bool = False) -> None:
        """A message in the conversation. A user message is a decision point: speculation starts.

        `changed_state`: the world changed outside the agent's calls (e.g. the user acted on the shared
        state, as tau2's telecom users do on their phone): every speculative result of the session goes.
        """
        s = self._session(session)
        now = self._now()
        if changed_state:
            self._invalidate(s, None)
        if role == "assistant" and s.awaiting_llm:
            self._llm_done(s, now)
        s.events.append(Message(role, text, t_start=now, t_end=now, tokens=tokens,
                                turn=s.turn if role == "assistant" else None))
        if role == "user" and s.inflight == 0:
            self._decision_point(s)

    def observe_user(self, session: str, text: str) -> None:
        self.observe(session, "user", text)

    def observe_external_call(self, session: str, tool: str, args: Mapping[str, Any],
                              output: str | None = None, error: bool = False) -> None:
        """A call the runtime did not run (e.g. the user's side acting on shared state): only invalidates."""
        s = self._session(session)
        now = self._now()
        s.calls += 1
        s.events.append(ToolCall(f"{s.id}:x{s.calls}", s.turn, tool, dict(args), output, error, now, now))
        contract = (self._tools[tool].contract if tool in self._tools else ToolContract()).for_call(args)
        if contract.state_changing:
            self._invalidate(s, contract.mutate_keys(args))

    async def end_session(self, session: str) -> None:
        s = self._sessions.get(session)
        if s is not None:
            self._end(s)

    def _end(self, s: Session) -> None:
        if self._sessions.get(s.id) is s:
            del self._sessions[s.id]
        s.closed = True
        self._score(s, lambda c: True, hit=False)
        for e in list(self.cache.entries(s.id)):
            self._retire(e, "closed")
        self.cache.drop_session(s.id)

    async def aclose(self) -> None:
        """End every session and wait for the cancelled speculative runs to unwind."""
        runs = [e.handle for e in self.cache.entries() if e.handle is not None]
        for sid in list(self._sessions):
            await self.end_session(sid)
        for task in list(self._background):
            task.cancel()
        if runs or self._background:
            await asyncio.gather(*runs, *self._background, return_exceptions=True)
        self._real_lane.shutdown()
        self._spec_lane.shutdown()
        self._prediction.shutdown()

    # ---- the agent's real call ----------------------------------------------------------------------
    async def call(self, session: str, tool: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run the agent's call (or hand over its speculative result). Raises what the tool raises."""
        s = self._session(session)
        t = self._tools.get(tool)
        if t is None:
            raise UnknownToolError(f"unknown tool {tool!r}; registered: {', '.join(sorted(self._tools))}")
        args = dict(args or {})
        now = self._now()
        if s.awaiting_llm:
            self._llm_done(s, now)
        s.calls += 1
        cargs = canonical(args)  # None: not JSON; it runs, and is never matched to a speculative result
        key = (tool, cargs)
        self._score(s, lambda c: now >= c.expires_at, hit=False)  # its result would have expired by now
        self._score(s, lambda c: c.key == key, hit=True)
        event = ToolCall(f"{s.id}:{s.calls}", s.turn, tool, args, t_start=now)
        s.events.append(event)
        s.inflight += 1
        contract = t.contract.for_call(args)
        try:
            if contract.state_changing:
                self._invalidate(s, contract.mutate_keys(args))
            result = await serve_or_run(self, s, t, args, cargs)
        except BaseException as e:
            event.error, event.output = True, f"{type(e).__name__}: {e}"
            raise
        else:
            event.output = as_text(result)
            return result
        finally:
            event.t_end = self._now()
            if contract.state_changing:
                self._invalidate(s, contract.mutate_keys(args))
            s.inflight -= 1
            if s.inflight == 0 and not s.closed:
                self._decision_point(s)

    # ---- the LLM's stream (fed by `toolcast.runtime.stream.StreamFeeder`) -----------------------------
    def stream_call(self, session: str, tool: str, args: Mapping[str, Any]) -> Entry | None:
        """A call the LLM has written out (its arguments parse complete) but not yet issued: run it now
        (p = 1) if the planner allows it (same contract, schema and budget checks as any candidate).
        Returns the run, whether launched now or already covered; the agent's `call` joins it."""
        return stream_entry.stream_call(self, session, tool, args)

    def stream_text(self, session: str, text: str) -> None:
        """The assistant's text (or reasoning) so far in the message being generated: predict again with
        it in the context (the caller throttles)."""
        stream_entry.stream_text(self, session, text)

    def stream_dropped(self, session: str, entries: Iterable[Entry]) -> None:
        """The stream that launched these runs ended without issuing their calls: discard them."""
        stream_entry.stream_dropped(self, session, entries)

    # ---- speculation --------------------------------------------------------------------------------
    def _decision_point(self, s: Session) -> None:
        now = self._now()
        self._sweep(now)
        self._score(s, lambda c: now >= c.expires_at, hit=False)
        s.decision += 1
        s.turn += 1
        s.decision_at = self._now()
        s.awaiting_llm = True
        if self.predictor is None:
            return
        context = Context(events=list(s.events), tools=self._specs(s),
                          metadata={**s.metadata, "session": s.id, "model": s.model})
        task = asyncio.create_task(self._speculate(s, s.decision, context))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _speculate(self, s: Session, decision: int, context: Context) -> None:
        preds = await self._prediction.predictions(self.predictor, s, decision, context)
        if preds is None:
            return
        now = self._now()
        self._sweep(now)
        if self.config.cancel_losers:
            wanted = {p.key for p in preds}
            for e in [e for e in self.cache.running(s.id)
                      if e.key not in wanted and e.meta.get("stream") != s.decision]:
                self._retire(e, "loser")
        specs = {t.name: t for t in self._specs(s)}
        choices = self.planner.plan(
            preds, model=s.model, covered=self.cache.covered(s.id, now), occupancy=self._occupancy(s),
            contract_of=lambda n: self._tools[n].contract if n in specs else None,
            schemas={n: t.parameters for n, t in specs.items()})
        keys = set()
        for ch in choices:
            pred = ch.prediction
            if ch.eligible and pred.key not in keys:
                keys.add(pred.key)
                contract = self._tools[pred.tool].contract.for_call(pred.args)
                p_h = pred.p_horizon
                s.pending.append(Candidate(pred.key, max(0.0, min(1.0, pred.p_call)),
                                           contract.read_keys(pred.args), now + contract.stable_for,
                                           None if p_h is None else max(0.0, min(1.0, p_h))))
        for c in s.pending[:-MAX_PENDING]:
            self.planner.observe(c.p, c.p_horizon, c.key[0], False)
        s.pending = s.pending[-MAX_PENDING:]
        for ch in choices:
            if ch.launch:
                launch(self, s, ch)
            else:
                log.debug("[speculative] skip %s (%s, U=%.3f)", ch.prediction.tool, ch.reason, ch.utility,
                          extra={"speculative": True, "session": s.id, "tool": ch.prediction.tool})

    def _served(self, entry: Entry, *, joined: bool, saved: float) -> None:
        entry.meta["ended"] = "served"
        self.cache.remove(entry)
        self.stats.served(entry.tool, joined=joined, saved_s=saved)
        log.debug("[speculative] %s %s %s", "joined" if joined else "hit", entry.tool, entry.cargs,
                 extra={"speculative": True, "session": entry.session, "tool": entry.tool})

    def _retire(self, entry: Entry, reason: str) -> None:
        """An entry leaves unserved: stop it, count its tool-seconds as waste. Once per entry."""
        if "ended" in entry.meta:
            return
        entry.meta["ended"] = reason
        self.cache.drop([entry])
        failed = entry.state is State.FAILED and not isinstance(entry.error, asyncio.CancelledError)
        if entry.state is State.RUNNING and entry.handle is not None:
            entry.handle.cancel()
        self.stats.dropped(entry.tool, reason, entry.busy_seconds(self._now()), failed=failed)

    def _score(self, s: Session, which, *, hit: bool) -> None:
        """Score the pending candidates `which(c)` selects as hits or misses for the online calibration."""
        keep = []
        for c in s.pending:
            if which(c):
                self.planner.observe(c.p, c.p_horizon, c.key[0], hit)
            else:
                keep.append(c)
        s.pending = keep

    def _invalidate(self, s: Session, mutated: frozenset[str] | None) -> None:
        """Runtime-wide with `shared_state` (only this session's candidates are scored: others' are
        scored when their own sessions go on)."""
        self._score(s, lambda c: mutated is None or keys_overlap(mutated, c.reads), hit=False)
        for e in self.cache.invalidate(None if self.config.shared_state else s.id, mutated):
            self._retire(e, "invalidated")

    def _sweep(self, now: float) -> None:
        """Entries past their freshness window (any session's), then idle or surplus sessions."""
        for e in self.cache.sweep(now):
            self._retire(e, "failed" if e.state is State.FAILED else "expired")
        cfg = self.config
        for s in stale_sessions(self._sessions, now, cfg.session_idle_s, cfg.max_sessions):
            log.debug("session %s ended: idle %.0f s (%d sessions)", s.id, now - s.last_seen,
                      len(self._sessions))
            self._end(s)

    # ---- small helpers ------------------------------------------------------------------------------
    def _occupancy(self, s: Session) -> Occupancy:
        running = list(self.cache.running())
        cap = self.config.planner.spec_per_call
        return Occupancy(session=sum(e.session == s.id for e in running),
                         per_tool=dict(Counter(e.tool for e in running)), total=len(running),
                         utilisation=self.pool.utilisation, queued=self.pool.queued,
                         free_workers=self.pool.idle,
                         allowance=None if cap is None else int(cap * (s.calls + 1)) - s.launched)

    def _release(self, job: int) -> None:
        for j in self.pool.release(job):
            fut = self._waiting.pop(j, None)
            if fut is None or fut.done():
                self._release(j)
            else:
                fut.set_result(None)

    def _llm_done(self, s: Session, now: float) -> None:
        s.awaiting_llm = False
        if s.decision_at is not None:
            self.estimates.observe_llm(s.model, now - s.decision_at)

    def _session(self, session: str) -> Session:
        """The live session (a new one if none), marked active now."""
        s = self._sessions.get(session)
        if s is None:
            s = self._sessions[session] = Session(session, None, {}, None)
        else:
            self._sessions.move_to_end(session)
        try:
            s.last_seen = self._now()
        except RuntimeError:  # start_session outside the loop: seen at the next sweep
            s.last_seen = None
        return s

    def _specs(self, s: Session) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()] if s.specs is None else list(s.specs.values())

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

