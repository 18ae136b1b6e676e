"""Which traces a model was fitted on, recorded in its metrics card, so `toolcast eval` measures the rest.

`toolcast eval --model DIR --data X` must not measure a model on the traces it was trained or calibrated
on, and must not throw away four fifths of logs it never saw by splitting them as if they were its own.
Training records a short digest of every trace of its train and validation splits (content, not file
names: the same run imported from another file is the same trace); eval leaves out exactly the traces
whose digest is in that record and measures everything else. On the model's own logs that is its test
split (the task-grouped split put every trace of a test task there); on other logs, all of them.

Standard library only: the base install evaluates an exported model without torch or `datasets`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from toolcast.data.schema import Trace

RECORD_KEY = "trained_on"
"""The metrics card's key for the record."""
DIGEST_CHARS = 16
"""Hex digits kept of each trace's sha256: 64 bits, no accidental collision among millions of traces."""


def trace_digest(trace: Trace) -> str:
    """A digest of a trace's content (its canonical JSON minus the id, which importers derive from file
    names and lines), stable across machines and re-imports of the same log."""
    d = trace.to_dict()
    d.pop("trace_id", None)
    text = Trace.from_dict({**d, "trace_id": ""}).to_json()
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def record(
    fitted: Iterable[Trace], measured: Sequence[Trace], seed: int, holdout: str | None
) -> dict[str, Any]:
    """The metrics card's `trained_on` entry: the digests of the traces fitted on (train + validation:
    weights and temperatures), and how the test split was chosen."""
    digests = sorted({trace_digest(t) for t in fitted})
    return {"fitted_traces": len(digests), "test_traces": len(measured), "seed": seed, "holdout": holdout,
            "split": "task-grouped 80/10/10", "digests": digests}


@dataclass(frozen=True)
class TrainedOn:
    """A model's record of its training traces, read back from its metrics card."""

    digests: frozenset[str]
    seed: int | None
    holdout: str | None

    @classmethod
    def from_metrics(cls, metrics: Any) -> TrainedOn | None:
        """The record in a metrics card, or None for a card written before training recorded it."""
        r = metrics.get(RECORD_KEY) if isinstance(metrics, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("digests"), list):
            return None
        return cls(frozenset(str(d) for d in r["digests"]), r.get("seed"), r.get("holdout"))

    def partition(self, traces: Iterable[Trace]) -> tuple[list[Trace], list[Trace]]:
        """(not trained on, trained on): the first is what an honest measurement may use."""
        unseen: list[Trace] = []
        seen: list[Trace] = []
        for t in traces:
            (seen if trace_digest(t) in self.digests else unseen).append(t)
        return unseen, seen
