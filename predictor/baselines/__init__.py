"""The baselines a learned predictor must beat.

- `MarkovPredictor` (`markov.py`): previous tool -> next tool, each slot's most frequent values.
- `PatternPoolPredictor` (`pattern_pool.py`): PASTE's pattern pool (context patterns -> next tool,
  value-mapping functions mined from the logs -> arguments: `value_maps.py`, `value_sources.py`).

They share the n-gram smoothing (`ngram.py`) and the call building (`calls.py`). `fit_baseline(name,
traces)` is the one entry point (the eval and simulate commands use it). A fitted Markov table or
pattern pool saves itself as one JSON file and loads back without the logs (`save(path)`, `load(path)`:
`markov.json.gz`, `pattern_pool.json.gz` in a model directory; `io.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from toolcast.data.schema import Trace
from toolcast.predictor.baselines.calls import decision_contexts
from toolcast.predictor.baselines.markov import MarkovPredictor
from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor
from toolcast.predictor.protocol import Predictor

BaselineName = Literal["markov", "pattern"]
BASELINES: tuple[str, ...] = ("markov", "pattern")

__all__ = ["BASELINES", "BaselineName", "MarkovPredictor", "PatternPoolPredictor", "decision_contexts",
           "fit_baseline"]


def fit_baseline(name: BaselineName, traces: Iterable[Trace], progress: bool = False) -> Predictor:
    """Fit the named baseline ("markov" or "pattern") on training traces."""
    traces = list(traces)
    if name == "markov":
        return MarkovPredictor().fit(traces)
    if name == "pattern":
        return PatternPoolPredictor().fit(traces, progress=progress)
    raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
