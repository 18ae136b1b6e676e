"""Where speculation's saving is, and what each predictor's call-level predictions can capture of it.

Offline, per decision point of the replayed split (the same split, profile, timings and replay contracts
as `toolcast simulate`), without the runtime's budgets:

- the oracle's saving per turn: serial stall (the slowest call of the turn) minus the stall when every
  eligible call started L seconds early (L: the recorded LLM time of that point), attributed to tools;
- per predictor, for each eligible real call: is it the top-1 candidate, in the top-k, its tool in the
  top-k, its p(call); was every argument value visible in the context (else no predictor could know it);
- a reliability table of p(call) over the complete, eligible candidates (hit: the turn issues that call);
- the capture / waste frontier when launching every complete eligible candidate with p >= t: the best
  a planner thresholding on p could do with these predictions (no budgets, no pool limits).

    .venv/bin/python benchmarks/spec_diagnosis.py --data ../shared/data/tau2 ../shared/data/bfcl \
        --model /tmp/tc_model_latest [--limit N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import Counter, defaultdict
from typing import Any

from toolcast.cli.simulate_cmd import _load_learned
from toolcast.data import TraceFormatError, load_traces
from toolcast.data.schema import Context, Message, ToolCall, Trace, canonical_args, decision_positions
from toolcast.data.splits import split_of
from toolcast.predictor.baselines import fit_baseline
from toolcast.runtime.latency import LatencyProfile
from toolcast.runtime.replay_contracts import replay_policy
from toolcast.runtime.timing import llm_timing, tool_seconds

THRESHOLDS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)


def _leaves(v: Any) -> list[str]:
    if isinstance(v, dict):
        return [x for u in v.values() for x in _leaves(u)]
    if isinstance(v, list):
        return [x for u in v for x in _leaves(u)]
    return [str(v).lower()]


def _context_text(events: list) -> str:
    parts = []
    for e in events:
        if isinstance(e, Message):
            parts.append(e.text or "")
        elif isinstance(e, ToolCall):
            parts.append(canonical_args(e.args))
            parts.append(e.output or "")
    return "\n".join(parts).lower()


def _stall(calls: list[tuple[float, bool]], lead: float) -> float:
    """The turn's wait: its slowest call, the covered ones started `lead` seconds early."""
    return max((max(0.0, s - lead) if covered else s for s, covered in calls), default=0.0)


def diagnose(traces, predictors, k: int = 3, raw: bool = False) -> dict[str, Any]:
    profile = LatencyProfile.default()
    contracts = replay_policy()
    oracle_by_tool: Counter = Counter()
    oracle_total = serial_stall = 0.0
    n_eligible = n_knowable = n_parallel_elig = 0
    by_tool: dict[str, Counter] = defaultdict(Counter)
    per: dict[str, dict[str, Any]] = {n: {"top1": 0, "topk": 0, "tool_topk": 0, "complete_tool": 0,
                                          "p_true": [], "saving_topk": 0.0, "saving_top1": 0.0,
                                          "cands": []} for n in predictors}
    for trace in traces:
        timing = llm_timing(trace, profile)
        meta = {"source": trace.source, **trace.metadata}
        for p, calls in decision_positions(trace.events):
            lead = timing.llm_s[p]
            ctx = Context(events=trace.events[:p], tools=trace.tools, metadata=meta)
            info = []
            for c in calls:
                s = tool_seconds(trace.trace_id, c.tool, canonical_args(c.args), profile)
                info.append((c, s, contracts.for_tool(c.tool).speculable))
            serial = _stall([(s, False) for _, s, _ in info], lead)
            best = serial - _stall([(s, e) for _, s, e in info], lead)
            serial_stall += serial
            oracle_total += best
            elig = [(c, s) for c, s, e in info if e]
            if len(calls) > 1 and elig:
                n_parallel_elig += 1
            share = sum(min(s, lead) for _, s in elig)
            for c, s in elig:
                oracle_by_tool[c.tool] += best * min(s, lead) / share if share else 0.0
            text = _context_text(ctx.events) if elig else ""
            for c, _ in elig:
                n_eligible += 1
                visible = all(v in text for v in _leaves(c.args))
                n_knowable += visible
                by_tool[c.tool]["n"] += 1
                by_tool[c.tool]["visible"] += visible
            keys = {c.key for c, _, _ in info}
            for name, pred in predictors.items():
                preds = pred.predict(ctx, k)
                d = per[name]
                ranks = {q.key: i for i, q in enumerate(preds)}
                tools = [q.tool for q in preds]
                hit_keys = set()
                for c, _s in elig:
                    r = ranks.get(c.key)
                    d["top1"] += r == 0
                    by_tool[c.tool][name + "_top1"] += r == 0
                    by_tool[c.tool][name + "_topk"] += r is not None
                    by_tool[c.tool][name + "_tool_topk"] += c.tool in tools
                    d["topk"] += r is not None
                    d["tool_topk"] += c.tool in tools
                    d["complete_tool"] += any(q.tool == c.tool and q.complete for q in preds)
                    d["p_true"].append(preds[r].p_call if r is not None else 0.0)
                    if r is not None:
                        hit_keys.add(c.key)
                d["saving_topk"] += serial - _stall([(s, e and c.key in hit_keys) for c, s, e in info], lead)
                top = preds[0].key if preds else None
                d["saving_top1"] += serial - _stall([(s, e and c.key == top) for c, s, e in info], lead)
                for q in preds:
                    if q.complete and contracts.for_tool(q.tool).speculable:
                        qs = tool_seconds(trace.trace_id, q.tool, canonical_args(q.args), profile)
                        d["cands"].append((q.p_call, q.key in keys, qs, p, trace.trace_id, q.tool))
                d.setdefault("turns", []).append((trace.trace_id, p, serial, lead,
                                                  [(c.key, s, e) for c, s, e in info],
                                                  [(q.key, q.p_call) for q in preds if q.complete and
                                                   contracts.for_tool(q.tool).speculable]))
    out: dict[str, Any] = {
        "traces": len(traces), "serial_stall_s": round(serial_stall, 1),
        "oracle_saving_s": round(oracle_total, 1), "eligible_calls": n_eligible,
        "eligible_args_visible_share": round(n_knowable / max(1, n_eligible), 3),
        "turns_parallel_with_eligible": n_parallel_elig,
        "oracle_by_tool": {t: {"share": round(v / oracle_total, 3), "calls": by_tool[t]["n"],
                               "args_visible": round(by_tool[t]["visible"] / max(1, by_tool[t]["n"]), 2),
                               **{f"{n}_{m}": round(by_tool[t][f"{n}_{m}"] / max(1, by_tool[t]["n"]), 2)
                                  for n in predictors for m in ("top1", "topk", "tool_topk")}}
                           for t, v in oracle_by_tool.most_common(12)},
        "predictors": {}}
    if raw:
        out["raw"] = per
    for name, d in per.items():
        n = max(1, n_eligible)
        rel = []
        for lo, hi in zip(BINS, BINS[1:], strict=False):
            xs = [(pc, h) for pc, h, *_ in d["cands"] if lo <= pc < hi]
            if xs:
                rel.append({"bin": f"{lo:.1f}-{min(hi, 1):.1f}", "n": len(xs),
                            "mean_p": round(sum(x for x, _ in xs) / len(xs), 3),
                            "hit_rate": round(sum(h for _, h in xs) / len(xs), 3)})
        frontier = []
        for t in THRESHOLDS:
            saved = waste = 0.0
            launched = 0
            for _tid, _p, serial, lead, info, cands in d["turns"]:
                chosen = {key for key, pc in cands if pc >= t}
                launched += len(chosen)
                saved += serial - _stall([(s, e and key in chosen) for key, s, e in info], lead)
                real = {key for key, _, _ in info}
                waste += sum(_cand_s(key) for key in chosen if key not in real)
            frontier.append({"p_min": t, "capture": round(saved / oracle_total, 3), "launched": launched,
                             "waste_per_saved": round(waste / saved, 2) if saved > 0 else None})
        out["predictors"][name] = {
            "top1_share": round(d["top1"] / n, 3), "topk_share": round(d["topk"] / n, 3),
            "tool_topk_share": round(d["tool_topk"] / n, 3),
            "tool_complete_in_topk_share": round(d["complete_tool"] / n, 3),
            "mean_p_true_when_topk": round(_mean([x for x in d["p_true"] if x > 0]), 3),
            "p_true_ge_0.5_share": round(sum(x >= 0.5 for x in d["p_true"]) / n, 3),
            "capture_if_all_topk_launched_free": round(d["saving_topk"] / oracle_total, 3),
            "capture_if_top1_launched_free": round(d["saving_top1"] / oracle_total, 3),
            "reliability": rel, "frontier": frontier}
    return out


_S_CACHE: dict[tuple[str, str], float] = {}


def _cand_s(key: tuple[str, str]) -> float:
    """Service time of a wasted candidate: the profile's median for its tool (a run's exact time is
    drawn per call; the median is what the planner prices)."""
    if key not in _S_CACHE:
        _S_CACHE[key] = LatencyProfile.default().tool_median(key[0])
    return _S_CACHE[key]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def train_and_test(paths: list[str], limit: int | None = None) -> tuple[list[Trace], list[Trace]]:
    """The train and test splits of the logs at `paths` (task-grouped, seed 0, as `toolcast simulate`),
    the test split cut to `limit` traces; a log that cannot be read ends the script with its message."""
    try:
        data = load_traces(*paths)
    except TraceFormatError as e:
        raise SystemExit(f"error: {e}") from None
    which = {t.trace_id: split_of(t.group, 0) for t in data}
    train = [t for t in data if which[t.trace_id] == "train"]
    return train, [t for t in data if which[t.trace_id] == "test"][:limit]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--model")
    ap.add_argument("--limit", type=int)
    ap.add_argument("-k", type=int, default=3)
    ap.add_argument("--json", metavar="OUT")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    train, test = train_and_test(a.data, a.limit)
    predictors = {n: fit_baseline(n, train) for n in ("markov", "pattern")}
    if a.model:
        predictors["learned"] = _load_learned(a.model)
    result = diagnose(test, predictors, a.k)
    text = json.dumps(result, indent=1)
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
