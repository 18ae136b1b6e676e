"""Ceilings beyond the next call for the replay simulator: the horizon oracle and the stream timing model.

- `HorizonOracle`: at each decision point, every eligible call the agent will issue before its next
  state-changing call whose argument values are all in the context already (as the extractors find
  them: an output leaf, an earlier argument, a value in a message), plus the next turn's calls (what the
  next-call oracle knows). Each such call therefore launches at the earliest decision point where all
  its values are in the context, since the last write: the upper bound of speculating sets over a
  horizon, under the same contracts and budgets as every policy.
- The stream oracle is a replay policy with no predictor in which every call starts the moment the
  stream timing model (`stream_timing.py`) has its arguments complete (`simulate.py`).
"""

from __future__ import annotations

from toolcast.data.schema import Context, ToolCall, Trace, decision_positions
from toolcast.predictor.baselines.value_maps import ContextIndex
from toolcast.predictor.protocol import CallPrediction
from toolcast.runtime.contracts import ContractPolicy
from toolcast.runtime.replay import OraclePredictor


class HorizonOracle(OraclePredictor):
    """Knows every future call; offers those whose values the context already holds, until a write."""

    name = "oracle_horizon"

    def __init__(self, contracts: ContractPolicy):
        super().__init__()
        self.contracts = contracts
        self._sets: dict[str, dict[int, list[ToolCall]]] = {}

    def register(self, session: str, trace: Trace) -> None:
        super().register(session, trace)
        self._sets[session] = horizon_sets(trace, self.contracts)

    def forget(self, session: str) -> None:
        super().forget(session)
        self._sets.pop(session, None)

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        nxt = super().predict(context, k)
        ahead = self._sets.get(context.metadata.get("session"), {}).get(len(context.events), [])
        keys = {p.key for p in nxt}
        out = list(nxt)
        for c in ahead:
            if c.key not in keys:
                keys.add(c.key)
                out.append(CallPrediction(c.tool, dict(c.args), p_tool=1.0, p_call=1.0, p_horizon=1.0))
        return out


def _in_context(index: ContextIndex, call: ToolCall) -> bool:
    return all(index.sources_holding(v) for v in call.args.values())


def horizon_sets(trace: Trace, contracts: ContractPolicy) -> dict[int, list[ToolCall]]:
    """Decision position -> the later calls (before the next write) whose values the context holds."""
    points = list(decision_positions(trace.events))
    out: dict[int, list[ToolCall]] = {}
    index = ContextIndex()
    done = 0
    for d, (i, calls) in enumerate(points):
        while done < i:
            index.add(trace.events[done])
            done += 1
        found: list[ToolCall] = []
        if not any(contracts.for_tool(c.tool).state_changing for c in calls):
            for _, later in points[d + 1:]:
                if any(contracts.for_tool(c.tool).state_changing for c in later):
                    break
                found.extend(c for c in later
                             if contracts.for_tool(c.tool).speculable and _in_context(index, c))
        out[i] = found
    return out
