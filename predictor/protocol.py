"""The `Predictor` protocol: what the baselines, the learned model and the HTTP client all answer.

Given a context (the events so far and the tools available), a predictor returns its top-k candidate
next calls, best first, each with the tool, the argument values it could fill, the slots it could not
(`free`: values the LLM will invent, not speculable), p(tool) and p(call). `<respond>` is a candidate
like any other (tool == RESPOND, no args): it is what keeps the runtime from speculating at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from toolcast.data.schema import RESPOND, Context, canonical_args


@dataclass
class CallPrediction:
    tool: str
    args: dict[str, Any] = field(default_factory=dict)
    """Slot name -> predicted value, for the slots the predictor could fill."""
    free: list[str] = field(default_factory=list)
    """Slots whose value the predictor cannot know (the LLM will invent it)."""
    p_tool: float = 0.0
    p_call: float = 0.0
    """p(tool) x the product of the filled slots' value probabilities (0 when a required slot is free)."""
    sources: dict[str, str] = field(default_factory=dict)
    """Slot name -> where its value came from (e.g. "output:get_user_details.reservations[0]")."""
    p_horizon: float | None = None
    """p(this exact call is issued before the session's next state change, within the next few decision
    points), for predictors that score a horizon (`horizon` views); None: only p_call is known."""

    @property
    def is_respond(self) -> bool:
        return self.tool == RESPOND

    @property
    def complete(self) -> bool:
        """Every slot has a value: the call can be run ahead as it stands."""
        return not self.free and not self.is_respond

    @property
    def key(self) -> tuple[str, str]:
        return self.tool, canonical_args(self.args)

    def to_dict(self) -> dict[str, Any]:
        out = {"tool": self.tool, "args": self.args, "free": self.free, "p_tool": self.p_tool,
               "p_call": self.p_call, "sources": self.sources}
        if self.p_horizon is not None:
            out["p_horizon"] = self.p_horizon
        return out


@runtime_checkable
class Predictor(Protocol):
    """Anything that ranks next calls. Implementations must not mutate the context."""

    name: str

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        """Top-k candidates, best first by p_call (ties by p_tool)."""
        ...
