"""What call-level accuracy a predictor needs for speculation to capture a given share of the oracle's saving.

Replays the test split through `toolcast.runtime.simulate` (the real runtime, planner and contracts) with
synthetic predictors of known quality: at each decision point, with probability `a` (a seeded draw per
session and position) the predictor names the agent's next turn exactly; otherwise it names a wrong call
(the same tool with a wrong first argument, or at a point where the agent answers or calls a
state-changing tool, a read the trace makes elsewhere with a wrong argument). Every candidate carries
p = a, so the predictor is calibrated but not sharp: its p does not tell its right answers from its wrong
ones. A real predictor with informative p does better at the same call@1; this is the conservative case.
With `--errors-at eligible` the predictor is right at every point whose next turn has no eligible call
(it answers, or calls a state-changing tool) and right with probability `a` where it has: a predictor
that knows when a read comes and is unsure only of which one (the optimistic case).

    .venv/bin/python benchmarks/spec_required.py --data ../shared/data/tau2 ../shared/data/bfcl \
        [--acc 0.5 0.7 0.9] [--lambda 1] [--sessions 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys

from toolcast.data.schema import RESPOND, Context, Trace, decision_positions
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.planner import PlannerConfig
from toolcast.runtime.replay import OraclePredictor
from toolcast.runtime.replay_contracts import replay_policy
from toolcast.runtime.simulate import SimConfig, simulate

WRONG = "\x00wrong"


class NoisyOracle(OraclePredictor):
    """Right with probability `accuracy` at each decision point, p = accuracy on every candidate."""

    def __init__(self, accuracy: float, seed: int = 0, errors_at: str = "all", p: float | None = None):
        super().__init__()
        self.accuracy = accuracy
        self.p = accuracy if p is None else p
        self.errors_at = errors_at
        self.seed = seed
        self.name = f"acc_{accuracy:g}"
        self._decoy: dict[str, CallPrediction | None] = {}
        self._contracts = replay_policy()

    def register(self, session: str, trace: Trace) -> None:
        super().register(session, trace)
        reads = [c for c in trace.calls if c.args and self._contracts.for_tool(c.tool).speculable]
        self._decoy[session] = _wrong(reads[0].tool, reads[0].args, self.p) if reads else None

    def forget(self, session: str) -> None:
        super().forget(session)
        self._decoy.pop(session, None)

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        session = context.metadata.get("session")
        pos = len(context.events)
        a = self.p
        calls = self._labels.get(session, {}).get(pos)
        digest = hashlib.sha256(f"{self.seed}:{session}:{pos}".encode()).digest()
        right = int.from_bytes(digest[:8], "big") / 2**64 < self.accuracy
        eligible = [c for c in calls or [] if c.args and self._contracts.for_tool(c.tool).speculable]
        if right or (self.errors_at == "eligible" and not eligible):
            if not calls:
                return [CallPrediction(RESPOND, p_tool=a, p_call=a)]
            return [CallPrediction(c.tool, dict(c.args), p_tool=a, p_call=a) for c in calls]
        if eligible:
            return [_wrong(eligible[0].tool, eligible[0].args, a)]
        decoy = self._decoy.get(session)
        return [decoy] if decoy is not None else [CallPrediction(RESPOND, p_tool=a, p_call=a)]


def _wrong(tool: str, args: dict, p: float) -> CallPrediction:
    first = sorted(args)[0]
    return CallPrediction(tool, {**args, first: WRONG}, p_tool=p, p_call=p)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--acc", nargs="+", type=float, default=[0.5, 0.6, 0.7, 0.8, 0.9])
    ap.add_argument("--lambda", dest="lam", type=float, default=1.0)
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--errors-at", choices=("all", "eligible"), default="all")
    ap.add_argument("--p", type=float, help="state this p on every candidate instead of the accuracy "
                    "(e.g. --acc 0 --p 0.95: always wrong, overconfident)")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--limit", type=int)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from spec_diagnosis import train_and_test  # this folder's sibling script

    train, test = train_and_test(a.data, a.limit)
    n_points = sum(1 for t in test for _ in decision_positions(t.events))
    predictors = {f"acc_{x:g}": NoisyOracle(x, errors_at=a.errors_at, p=a.p) for x in a.acc}
    config = SimConfig(sessions=a.sessions, workers=a.workers, planner=PlannerConfig(lambda0=a.lam))
    report = simulate(test, predictors, train=train, config=config)
    keep = ("mean_task_s", "saving_captured", "waste_per_saved_s", "hit_rate", "launched", "served",
            "wasted_tool_s")
    out = {"decision_points": n_points, "errors_at": a.errors_at, "lambda": a.lam, "workers": a.workers,
           "sessions": a.sessions,
           **{n: {k: m[k] for k in keep} for n, m in report.summary().items()}}
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
