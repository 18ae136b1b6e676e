"""The baselines a learned predictor must beat: a Markov bigram and PASTE's pattern pool."""

from toolcast.predictor.baselines.markov import (
    BASELINES,
    FREE,
    UNKNOWN_SLOTS,
    BaselineName,
    MarkovPredictor,
    SignatureModel,
    SlotFrequencies,
    SlotOptions,
    _k_best,
    decision_contexts,
    fit_baseline,
    rank_calls,
    spec_of,
    tool_calls,
)

__all__ = [
    "BASELINES", "FREE", "UNKNOWN_SLOTS", "BaselineName", "MarkovPredictor", "SignatureModel",
    "SlotFrequencies", "SlotOptions", "_k_best", "decision_contexts", "fit_baseline", "rank_calls", "spec_of",
    "tool_calls",
]
