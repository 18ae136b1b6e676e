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
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from toolcast.data.schema import Context, Event, Message, ToolCall, ToolSpec
from toolcast.predictor.protocol import CallPrediction, Predictor
from toolcast.runtime.cache import Entry, SpeculationCache, State
from toolcast.runtime.canonical import canonical
from toolcast.runtime.contracts import ToolContract, keys_overlap
from toolcast.runtime.planner import Choice, Estimates, Occupancy, Planner, PlannerConfig
from toolcast.runtime.pool import WorkerPool
from toolcast.runtime.stats import RuntimeStats
from toolcast.runtime.tools import ThreadLane, Tool, as_text, invoke, runs_in_thread
from toolcast.runtime.well_formed import well_formed

log = logging.getLogger("toolcast.runtime")


@dataclass
class RuntimeConfig:
    k: int = 3
    """Candidates asked of the predictor at each decision point."""
    workers: int = 8
    """Tool calls running at once (real and speculative)."""
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    hedge_factor: float = 4.0
    """A joined run still going after hedge_factor x S (minus what it already ran) is raced by a real run."""
    hedge_min: float = 0.05
    cancel_losers: bool = True
    """At a decision point, cancel unclaimed runs still in flight that are not among the new candidates."""
    predict_in_thread: bool = True
    """Run predict() in a predictor thread, so a slow predictor (an HTTP `Client`) never stalls the agent's
    loop. On a virtual-clock loop (the replay simulator), which cannot wait on threads, it runs inline."""
    predict_threads: int = 2
    """Predictor threads; a decision point the agent has moved past by its turn is skipped, not run."""
    predict_timeout_s: float = 10.0
    """A prediction that takes longer is given up (no speculation at that point)."""
    shared_state: bool = True
    """Resource keys name state all sessions share: a write invalidates every session's overlapping reads.
    False: each session acts on a world of its own (a sandbox per session, replayed logs)."""
    session_idle_s: float = 3600.0
    """A session with no call or message for this long is ended (its results dropped)."""
    max_sessions: int = 100_000
    """Beyond this many live sessions, the least recently active are ended."""

    def __post_init__(self) -> None:
        if self.k < 1 or self.workers < 1 or self.predict_threads < 1 or self.max_sessions < 1:
            raise ValueError(f"k, workers, predict_threads and max_sessions must be >= 1, got k={self.k}, "
                             f"workers={self.workers}, predict_threads={self.predict_threads}, "
                             f"max_sessions={self.max_sessions}")
        for name in ("predict_timeout_s", "session_idle_s"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):  # NaN fails too
                raise ValueError(f"{name} must be a number of seconds > 0, got {v!r}")


@dataclass
class _Candidate:
    """A candidate the predictor gave, scored the way a speculative result of it would have fared: a hit
    when the agent makes that call while such a result would still be servable, a miss when the result
    would have been invalidated (a state change overlapping what it reads), expired or left unclaimed."""

    key: tuple[str, str]
    p: float
    reads: frozenset[str] | None
    expires_at: float


MAX_PENDING = 64
"""Candidates kept per session awaiting their outcome; the oldest are scored as misses beyond it."""
SWEEP_BATCH = 64
"""Sessions looked at per sweep at most (each touch adds at most one: sweeping keeps up, in O(1))."""


@dataclass(eq=False)
class _Session:
    id: str
    specs: dict[str, ToolSpec] | None
    """The session's tools as its agent sees them; None = every registered tool."""
    metadata: dict[str, Any]
    model: str | None
    events: list[Event] = field(default_factory=list)
    inflight: int = 0
    decision: int = 0
    decision_at: float | None = None
    awaiting_llm: bool = False
    turn: int = 0
    calls: int = 0
    closed: bool = False
    launched: int = 0
    """Speculative runs launched for the session (for `PlannerConfig.spec_per_call`)."""
    pending: list[_Candidate] = field(default_factory=list)
    """Eligible candidates not yet scored for the online calibration (see `_Candidate`)."""
    last_seen: float | None = None
    """Loop time of the session's last call or message (None: started outside the loop, not yet)."""


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
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        """Least recently active first."""
        self._jobs = itertools.count(1)
        self._spec_jobs: dict[int, Entry] = {}
        self._waiting: dict[int, asyncio.Future] = {}
        self._background: set[asyncio.Task] = set()
        # Real calls never share threads with speculation; a real call holds a worker of the pool, so
        # its lane only needs room for hedges that lost and calls the agent gave up on, still running.
        self._real_lane = ThreadLane(self.config.workers * 4, "toolcast-tool")
        self._spec_lane = ThreadLane(self.config.workers, "toolcast-speculative")
        self._predict_executor: ThreadPoolExecutor | None = None

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

    def _end(self, s: _Session) -> None:
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
        if self._predict_executor is not None:
            self._predict_executor.shutdown(wait=False, cancel_futures=True)

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
            result = await self._serve_or_run(s, t, args, cargs)
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

    async def _serve_or_run(self, s: _Session, t: Tool, args: dict[str, Any], cargs: str | None) -> Any:
        speculable = t.contract.for_call(args).speculable
        self.stats.real_call(t.name, speculable=speculable)
        if speculable and cargs is not None:
            entry = self.cache.claim(s.id, t.name, cargs, self._now())
            if entry is not None:
                if entry.state is State.DONE:
                    self._served(entry, joined=False, saved=entry.busy_seconds(self._now()))
                    return entry.result
                return await self._join(t, entry, args)
        return await self._run_real(t, args)

    async def _join(self, t: Tool, entry: Entry, args: dict[str, Any]) -> Any:
        """Wait for the speculative run; race it with a real run once it is late; serve only if valid."""
        claimed_at = self._now()
        # The agent waits on this run now: it is a real call's, and real calls do not pre-empt it.
        if entry.meta.get("job") is not None:
            self.pool.promote(entry.meta["job"])
        expected = self.config.hedge_factor * self.estimates.service_time(t.name)
        hedge = max(self.config.hedge_min, expected - entry.busy_seconds(claimed_at))
        task: asyncio.Task = entry.handle
        real: asyncio.Task | None = None
        served = False
        try:
            await asyncio.wait({task}, timeout=hedge)
            if not task.done():
                log.debug("[speculative] %s run is late; racing a real run", t.name,
                         extra={"speculative": True, "tool": t.name})
                if entry.meta.get("job") is not None:  # the race may take its worker
                    self.pool.demote(entry.meta["job"])
                real = asyncio.create_task(self._run_real(t, args, hedge=True))
                await asyncio.wait({task, real}, return_when=asyncio.FIRST_COMPLETED)
            now = self._now()
            if task.done() and entry.state is State.DONE and self.cache.servable(entry, now, check_ttl=False):
                served = True
                self._served(entry, joined=True, saved=claimed_at - entry.started_at)
                return entry.result
            reason = "failed" if entry.state is State.FAILED else "invalidated" if entry.invalid else "late"
            self._retire(entry, reason)
            if real is None:
                return await self._run_real(t, args)
            return await real
        finally:
            if not served:
                self._retire(entry, "abandoned")
            if real is not None and not real.done():
                real.cancel()

    async def _run_real(self, t: Tool, args: dict[str, Any], *, hedge: bool = False) -> Any:
        """An authoritative run: takes a worker first, pre-empting speculation if it must."""
        job = next(self._jobs)
        admission = self.pool.authoritative(job)
        if admission.preempted is not None:
            victim = self._spec_jobs.get(admission.preempted)
            if victim is not None:
                self._retire(victim, "preempted")
        if not admission.started:
            fut = asyncio.get_running_loop().create_future()
            self._waiting[job] = fut
            try:
                await fut
            except BaseException:
                self._waiting.pop(job, None)
                self.pool.withdraw(job)
                if self.pool.is_running(job):
                    self._release(job)
                raise
        started = self._now()
        try:
            result = await invoke(t, args, self._real_lane)
        except asyncio.CancelledError:
            if hedge:  # the speculative run won the race: this run's time was the hedge's price
                self.stats.dropped(t.name, "hedge", self._now() - started)
            raise
        finally:
            self._release(job)
        self.estimates.observe_tool(t.name, self._now() - started)
        return result

    # ---- the LLM's stream (fed by `toolcast.runtime.stream.StreamFeeder`) -----------------------------
    def stream_call(self, session: str, tool: str, args: Mapping[str, Any]) -> Entry | None:
        """A call the LLM has written out (its arguments parse complete) but not yet issued: run it now
        (p = 1) if the planner allows it (same contract, schema and budget checks as any candidate).
        Returns the run, whether launched now or already covered; the agent's `call` joins it."""
        s = self._sessions.get(session)
        if s is None or s.closed or tool not in self._tools:
            return None
        specs = {t.name: t for t in self._specs(s)}
        now = self._now()
        pred = CallPrediction(tool, dict(args), p_tool=1.0, p_call=1.0, p_horizon=1.0)
        choice, = self.planner.plan(
            [pred], model=s.model, covered=self.cache.covered(s.id, now), occupancy=self._occupancy(s),
            contract_of=lambda n: self._tools[n].contract if n in specs else None,
            schemas={n: t.parameters for n, t in specs.items()})
        entry = self._launch(s, choice) if choice.launch else None
        if entry is None and choice.eligible:
            key = (tool, canonical(pred.args))  # the runtime's form, as the cache keys its entries
            entry = next((e for e in self.cache.live(s.id, now) if e.key == key), None)
        if entry is not None:
            entry.meta.setdefault("stream", s.decision)
        return entry

    def stream_text(self, session: str, text: str) -> None:
        """The assistant's text (or reasoning) so far in the message being generated: predict again with
        it in the context (the caller throttles)."""
        s = self._sessions.get(session)
        if self.predictor is None or s is None or s.closed or not s.awaiting_llm:
            return
        context = Context(events=[*s.events, Message("assistant", text, turn=s.turn)], tools=self._specs(s),
                          metadata={**s.metadata, "session": s.id, "model": s.model})
        task = asyncio.create_task(self._speculate(s, s.decision, context))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def stream_dropped(self, session: str, entries: Iterable[Entry]) -> None:
        """The stream that launched these runs ended without issuing their calls: discard them."""
        for e in entries:
            if e.session == session and not e.claimed:
                self._retire(e, "stream ended")

    # ---- speculation --------------------------------------------------------------------------------
    def _decision_point(self, s: _Session) -> None:
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

    async def _speculate(self, s: _Session, decision: int, context: Context) -> None:
        name = getattr(self.predictor, "name", "?")
        try:
            raw = await self._predict(s, decision, context)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("predictor %s took over %.3g s; no speculation at this point", name,
                        self.config.predict_timeout_s)
            return
        except BaseException:  # noqa: BLE001 - whatever the predictor raises, the agent never sees it
            log.warning("predictor %s failed; no speculation at this point", name, exc_info=True)
            return
        if s.closed or s.decision != decision or not s.awaiting_llm:
            return  # the agent has moved on while we predicted
        preds = well_formed(raw, self.config.k)
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
                s.pending.append(_Candidate(pred.key, max(0.0, min(1.0, pred.p_call)),
                                            contract.read_keys(pred.args), now + contract.stable_for))
        for c in s.pending[:-MAX_PENDING]:
            self.planner.calibration.observe(c.p, False)
        s.pending = s.pending[-MAX_PENDING:]
        for ch in choices:
            if ch.launch:
                self._launch(s, ch)
            else:
                log.debug("[speculative] skip %s (%s, U=%.3f)", ch.prediction.tool, ch.reason, ch.utility,
                          extra={"speculative": True, "session": s.id, "tool": ch.prediction.tool})

    async def _predict(self, s: _Session, decision: int, context: Context) -> Any:
        """The predictor's answer: in a predictor thread with a time limit, or inline on a virtual clock."""
        k = self.config.k
        if not self.config.predict_in_thread or getattr(asyncio.get_running_loop(), "virtual_clock", False):
            return self.predictor.predict(context, k)
        if self._predict_executor is None:
            self._predict_executor = ThreadPoolExecutor(self.config.predict_threads,
                                                        thread_name_prefix="toolcast-predict")

        def predict() -> Any:
            if s.closed or s.decision != decision:  # its turn came too late: the agent has moved on
                return []
            return self.predictor.predict(context, k)

        future = asyncio.wrap_future(self._predict_executor.submit(predict))
        return await asyncio.wait_for(future, self.config.predict_timeout_s)

    def _launch(self, s: _Session, ch: Choice) -> Entry | None:
        pred = ch.prediction
        t = self._tools[pred.tool]
        if runs_in_thread(t) and self._spec_lane.free <= 0:
            return  # every speculative thread is busy (hung or cancelled runs included): never queue
        args = pred.args  # canonical (`_well_formed`): a private copy the predictor cannot change
        cargs = canonical(args)
        if cargs is None:
            return
        job = next(self._jobs)
        if not self.pool.try_speculative(job):
            return None
        contract = t.contract.for_call(args)
        entry = self.cache.add(s.id, t.name, cargs, args, reads=contract.read_keys(args),
                               ttl=contract.stable_for, now=self._now())
        entry.meta.update(job=job, p=pred.p_call, utility=ch.utility)
        self._spec_jobs[job] = entry
        s.launched += 1
        self.stats.launched(t.name)
        log.debug("[speculative] launch %s %s (p=%.2f, U=%.3f)", t.name, entry.cargs, pred.p_call, ch.utility,
                 extra={"speculative": True, "session": s.id, "tool": t.name})
        entry.handle = asyncio.create_task(self._run_speculative(t, entry, job))
        entry.handle.add_done_callback(lambda _task: self._never_ran(entry, job))
        return entry

    def _never_ran(self, entry: Entry, job: int) -> None:
        """A run cancelled before its first step (retired in the tick it was launched: its session ended,
        a write invalidated it) never enters `_run_speculative`, so its `finally` must happen here, or its
        worker stays taken for good."""
        if job not in self._spec_jobs:
            return  # it ran: `_run_speculative` released its worker
        if entry.state is State.RUNNING:
            self.cache.finish(entry, now=self._now(), error=asyncio.CancelledError())
        self._spec_jobs.pop(job, None)
        self._release(job)

    async def _run_speculative(self, t: Tool, entry: Entry, job: int) -> None:
        try:
            result = await invoke(t, entry.args, self._spec_lane)
        except asyncio.CancelledError as e:
            self.cache.finish(entry, now=self._now(), error=e)
        except BaseException as e:  # noqa: BLE001 - SystemExit from a made-up argparse call included
            log.debug("[speculative] %s raised %r (never shown to the agent)", t.name, e,
                     extra={"speculative": True, "tool": t.name})
            self.cache.finish(entry, now=self._now(), error=e)
        else:
            self.cache.finish(entry, now=self._now(), result=result)
            self.estimates.observe_tool(t.name, entry.busy_seconds(self._now()))
        finally:
            self._spec_jobs.pop(job, None)
            self._release(job)
            if entry.state is State.FAILED and not entry.claimed:
                self._retire(entry, "failed")

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

    def _score(self, s: _Session, which, *, hit: bool) -> None:
        """Score the pending candidates `which(c)` selects as hits or misses for the online calibration."""
        keep = []
        for c in s.pending:
            if which(c):
                self.planner.calibration.observe(c.p, hit)
            else:
                keep.append(c)
        s.pending = keep

    def _invalidate(self, s: _Session, mutated: frozenset[str] | None) -> None:
        """Runtime-wide with `shared_state` (only this session's candidates are scored: others' are
        scored when their own sessions go on)."""
        self._score(s, lambda c: mutated is None or keys_overlap(mutated, c.reads), hit=False)
        for e in self.cache.invalidate(None if self.config.shared_state else s.id, mutated):
            self._retire(e, "invalidated")

    def _sweep(self, now: float) -> None:
        """Entries past their freshness window (any session's), then idle or surplus sessions."""
        for e in self.cache.sweep(now):
            self._retire(e, "failed" if e.state is State.FAILED else "expired")
        idle, cap = self.config.session_idle_s, self.config.max_sessions
        for _ in range(SWEEP_BATCH):
            if not self._sessions:
                return
            s = next(iter(self._sessions.values()))
            if s.last_seen is None or s.inflight:  # not seen on the loop yet, or the agent waits in a call
                s.last_seen = now
                self._sessions.move_to_end(s.id)
                continue
            if len(self._sessions) <= cap and now - s.last_seen < idle:
                return
            log.debug("session %s ended: idle %.0f s (%d sessions)", s.id, now - s.last_seen,
                      len(self._sessions))
            self._end(s)

    # ---- small helpers ------------------------------------------------------------------------------
    def _occupancy(self, s: _Session) -> Occupancy:
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

    def _llm_done(self, s: _Session, now: float) -> None:
        s.awaiting_llm = False
        if s.decision_at is not None:
            self.estimates.observe_llm(s.model, now - s.decision_at)

    def _session(self, session: str) -> _Session:
        """The live session (a new one if none), marked active now."""
        s = self._sessions.get(session)
        if s is None:
            s = self._sessions[session] = _Session(session, None, {}, None)
        else:
            self._sessions.move_to_end(session)
        try:
            s.last_seen = self._now()
        except RuntimeError:  # start_session outside the loop: seen at the next sweep
            s.last_seen = None
        return s

    def _specs(self, s: _Session) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()] if s.specs is None else list(s.specs.values())

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

