"""The session fast path's one entry point: `SessionFeaturizer`, the reference featurizer's arrays for an
agent process's growing sessions, with the work of earlier steps kept.

The agent process asks for a prediction at every step of a session, each context the previous one plus an
event or two. The reference featurizer (`features/`) recomputes everything from the whole history; here:

- event rows are featurized once per event object (`event_arrays.RowCache`), the tool arrays once per tool
  set (`event_arrays.ToolArrays`);
- argument-value candidates are kept per session (`candidates.SessionCandidates`: a step folds in only its
  new events' mentions);
- slot rows are built in numpy over the kept pool (`slot_rows.build`, with per-candidate tables kept in
  the session, `tables.py`), falling back to the reference `SlotFeaturizer.build` when the session went on
  meanwhile (another thread folded the next event).

Every array and slot row equals the reference featurizer's, bit for bit: tests/embedded/test_event_arrays.py,
test_session_candidates.py and test_session_rows.py check it over growing sessions and generated inputs.
NumPy only (the ONNX predictor runs it inside the agent's process).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toolcast.data.schema import Context
from toolcast.predictor.features.featurizer import Features, Featurizer, ToolSet, slot_requests
from toolcast.predictor.features.slots import SlotRow
from toolcast.predictor.session import slot_rows
from toolcast.predictor.session.candidates import CandidatePool
from toolcast.predictor.session.event_arrays import RowCache


class SessionFeaturizer:
    """`Featurizer.featurize` / `Featurizer.slot_features` with per-session work kept. Give it a
    featurizer whose `extract` is a `SessionCandidates` to keep the candidates too (any other extractor
    works, through the reference slot rows). Thread-safe."""

    def __init__(self, featurizer: Featurizer):
        self.featurizer = featurizer
        self._rows = RowCache()

    def features(self, context: Context) -> Features:
        """`featurizer.featurize(context)` with no slot tools (the slot rows come after the tool head)."""
        return self._rows.features(self.featurizer, context)

    def slot_features(
        self, context: Context, tools: ToolSet, slot_tools: Sequence[str]
    ) -> tuple[dict[str, np.ndarray], list[SlotRow]]:
        """`featurizer.slot_features(context, tools, slot_tools)`."""
        fz = self.featurizer
        wanted = slot_requests(tools, slot_tools)
        candidates = fz.extract(context) if fz.extract is not None and wanted else []
        n = fz.cfg.max_slots * max(1, len(slot_tools))
        if isinstance(candidates, CandidatePool):
            out = slot_rows.build(fz.slot_featurizer, context, candidates, wanted, n)
            if out is not None:
                return out
        return fz.slot_featurizer.build(context, candidates, wanted, n)
