"""Where a speculating policy loses the next-call oracle's saving: a call-by-call account.

    .venv/bin/python benchmarks/spec_sets.py --model DIR --scorer horizon.json --explain learned_horizon \
        --lambdas 0.4 --out /tmp/explain

Replays the test split on the virtual clock twice, exactly as `simulate` does (same runtime, contracts,
priors, budgets): the next-call oracle and the policy under study, with the runtime's steps recorded
(patched in for the run: the predictor's whole candidate pool, the planner's verdicts, launches, serves and
why unserved runs left). Every real call the oracle served is weighted by the seconds the oracle's run
saved on it, and put in the furthest stage it reached in the policy's run at any decision point from the
one after the session's last write up to the call's own:

- `served`: the policy served it too (`saved` is what the policy's run saved on it);
- `launched, <reason>`: launched but never served (loser, invalidated, expired, ...; or its result served
  an earlier call of the same key, and the fan-out offers no key a second time);
- `blocked, <budget>`: above the launch threshold, but a budget said no (session, global, tool, cap);
- `below threshold`: in the k candidates the runtime asked for, utility not above the threshold;
- `pooled, ranked out of k`: in the predictor's candidate pool (for the horizon view: the model's
  top-8 and the fan-out's top-32), not in its top k;
- `not a candidate`: never in the pool; split by whether all its argument values were in the context
  when it was issued (a copying rule could have offered it) or not.
"""

from __future__ import annotations

import contextvars
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from unittest import mock

from toolcast.data.schema import Context, Trace
from toolcast.predictor.baselines.value_maps import ContextIndex
from toolcast.runtime import runtime as runtime_mod
from toolcast.runtime.canonical import canonical
from toolcast.runtime.planner import Planner
from toolcast.runtime.replay import OraclePredictor, run_policy_async
from toolcast.runtime.runtime import SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.simulate import SimConfig

log = logging.getLogger("spec_explain")

BUDGETS = ("session budget", "tool budget", "global budget", "no idle worker", "speculation per real call")
POOL_K = 1_000_000
_DECISION: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar("explain_decision")
_CALL: contextvars.ContextVar[tuple[int, int]] = contextvars.ContextVar("explain_call")


def _trace_of(session: str) -> int:
    return int(session.split(":")[1])


class PoolRecorder:
    """The predictor under study, answering as it would (its top k), with its whole pool recorded."""

    def __init__(self, inner: Any, rec: Recorder):
        self.inner, self.rec, self.name = inner, rec, getattr(inner, "name", "policy")

    def predict(self, context: Context, k: int = 3):
        every = self.inner.predict(context, POOL_K)
        where = _DECISION.get(None)
        if where is not None:
            self.rec.pool[where] = {p.key: (r, p.p_call, p.p_horizon) for r, p in enumerate(every)
                                    if p.complete}
        return every[:k]


class Recorder:
    """What one policy's replay did, per (trace index, call ordinal) and per (trace index, decision)."""

    def __init__(self, contracts):
        self.contracts = contracts
        self.calls: dict[tuple[int, int], dict[str, Any]] = {}
        self.served: dict[tuple[int, int], float] = {}
        self.pool: dict[tuple[int, int], dict] = {}
        self.choices: dict[tuple[int, int], dict] = defaultdict(dict)
        self.launches: dict[tuple[int, tuple[str, str]], list[tuple[int, int]]] = defaultdict(list)
        self.left: dict[int, str] = {}
        self._index: dict[str, tuple[ContextIndex, int]] = {}

    def patches(self) -> list:
        rec = self
        rt_cls = SpeculativeRuntime
        call0, served0, retire0 = rt_cls.call, rt_cls._served, rt_cls._retire
        spec0, plan0, launch0 = SpeculativeRuntime._speculate, Planner.plan, runtime_mod.launch

        async def call(rt, session, tool, args=None):
            s = rt._sessions.get(session)
            if s is None:
                return await call0(rt, session, tool, args)
            where = (_trace_of(session), s.calls + 1)
            index, n = rec._index.get(session, (ContextIndex(), 0))
            for e in s.events[n:]:
                index.add(e)
            rec._index[session] = (index, len(s.events))
            args = dict(args or {})
            known = bool(args) and all(index.sources_holding(v) for v in args.values())
            rec.calls[where] = {"key": (tool, canonical(args)), "decision": s.decision, "tool": tool,
                                "write": rec.contracts.for_tool(tool).state_changing, "in_context": known}
            _CALL.set(where)
            return await call0(rt, session, tool, args)

        def served(rt, entry, *, joined, saved):
            where = _CALL.get(None)
            if where is not None:
                rec.served[where] = saved
            rec.left[entry.id] = "served"
            return served0(rt, entry, joined=joined, saved=saved)

        def retire(rt, entry, reason):
            if "ended" not in entry.meta:
                rec.left.setdefault(entry.id, reason)
            return retire0(rt, entry, reason)

        async def speculate(rt, s, decision, context):
            _DECISION.set((_trace_of(s.id), decision))
            return await spec0(rt, s, decision, context)

        def plan(planner, predictions, **kw):
            choices = plan0(planner, predictions, **kw)
            where = _DECISION.get(None)
            if where is not None:
                for ch in choices:
                    rec.choices[where].setdefault(ch.prediction.key, (ch.launch, ch.reason, ch.utility))
            return choices

        def launch(rt, s, ch):
            entry = launch0(rt, s, ch)
            where = _DECISION.get(None)
            if entry is not None and where is not None:
                rec.launches[(where[0], entry.key)].append((where[1], entry.id))
            return entry

        return [mock.patch.object(SpeculativeRuntime, "call", call),
                mock.patch.object(SpeculativeRuntime, "_served", served),
                mock.patch.object(SpeculativeRuntime, "_retire", retire),
                mock.patch.object(SpeculativeRuntime, "_speculate", speculate),
                mock.patch.object(Planner, "plan", plan),
                mock.patch.object(runtime_mod, "launch", launch)]


def record(traces: Sequence[Trace], predictor: Any, *, contracts, profile, config: SimConfig,
           prior) -> Recorder:
    rec = Recorder(contracts)
    pred = PoolRecorder(predictor, rec) if predictor is not None and not isinstance(
        predictor, OraclePredictor) else predictor
    patches = rec.patches()
    for p in patches:
        p.start()
    try:
        run_virtual(run_policy_async("explain", list(traces), pred, contracts=contracts, profile=profile,
                                     config=config.runtime_config(), prior=prior, sessions=config.sessions,
                                     tool_time=config.tool_time))
    finally:
        for p in reversed(patches):
            p.stop()
    return rec


def classify(oracle: Recorder, run: Recorder, k: int) -> list[dict[str, Any]]:
    """One row per call the oracle served: its weight (the oracle's saving on it) and its stage."""
    last_write: dict[int, int] = {}
    rows = []
    for (t, n), c in sorted(run.calls.items()):
        d = c["decision"]
        lo = min(last_write.get(t, 0) + 1, d)
        if c["write"]:
            last_write[t] = d
        if (t, n) not in oracle.served:
            continue
        window = range(lo, d + 1)
        key = c["key"]
        stage = "not a candidate"
        extra = "values in context" if c["in_context"] else "values not in context"
        if (t, n) in run.served:
            stage, extra = "served", ""
        elif any(lo <= dd <= d for dd, _ in run.launches.get((t, key), [])):
            ids = [i for dd, i in run.launches[(t, key)] if lo <= dd <= d]
            why = run.left.get(ids[-1], "not claimed")
            stage, extra = "launched", "served an earlier call of it" if why == "served" else why
        else:
            verdicts = [run.choices.get((t, dd), {}).get(key) for dd in window]
            verdicts = [v for v in verdicts if v is not None]
            blocked = [v[1] for v in verdicts if v[1] in BUDGETS]
            pooled = [run.pool[(t, dd)][key] for dd in window if key in run.pool.get((t, dd), {})]
            if blocked:
                stage, extra = "blocked", blocked[-1]
            elif verdicts:
                stage, extra = "below threshold", verdicts[-1][1]
            elif pooled:
                stage, extra = "pooled, ranked out of k", f"best rank {min(r for r, _, _ in pooled)}"
        rows.append({"trace": t, "call": n, "tool": c["tool"], "weight": oracle.served[(t, n)],
                     "saved": run.served.get((t, n), 0.0), "stage": stage, "why": extra,
                     "window": len(window), "k": k})
    return rows


def report(rows: list[dict[str, Any]]) -> str:
    total = sum(r["weight"] for r in rows) or 1.0
    by_stage: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    by_why: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for r in rows:
        st = by_stage[r["stage"]]
        st[0] += 1
        st[1] += r["weight"]
        st[2] += r["saved"]
        w = by_why[(r["stage"], r["why"] if not r["why"].startswith("best rank") else "")]
        w[0] += 1
        w[1] += r["weight"]
    lines = [f"{len(rows)} calls the next-call oracle served, saving {total:.1f} s (sum over calls)", "",
             "| stage | calls | oracle's saving on them | share | policy's saving on them |",
             "|---|---|---|---|---|"]
    for stage, (n, w, s) in sorted(by_stage.items(), key=lambda x: -x[1][1]):
        lines.append(f"| {stage} | {n} | {w:.1f} s | {100 * w / total:.1f}% | {s:.1f} s |")
    lines += ["", "| stage, why | calls | share |", "|---|---|---|"]
    for (stage, why), (n, w) in sorted(by_why.items(), key=lambda x: -x[1][1]):
        lines.append(f"| {stage}{', ' + why if why else ''} | {n} | {100 * w / total:.1f}% |")
    tools: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        tools[r["tool"]][0] += r["weight"]
        tools[r["tool"]][1] += r["saved"]
    lines += ["", "Top tools by the oracle's saving (policy's saving on the same calls):"]
    for tool, (w, s) in sorted(tools.items(), key=lambda x: -x[1][0])[:8]:
        lines.append(f"- {tool}: {w:.1f} s, policy {s:.1f} s ({100 * s / w:.0f}%)")
    return "\n".join(lines)
