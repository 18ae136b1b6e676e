"""A context listing more tools than the model takes: the embedded predictor still answers, and says once
what it cannot predict (tools past `max_tools`, set at training)."""

from __future__ import annotations

import logging
from pathlib import Path

from toolcast.data.schema import Context, Message, ToolSpec
from toolcast.predictor import Predictor
from toolcast.predictor.features.featurizer import UNKNOWN

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"


def test_a_tool_set_larger_than_max_tools_is_predicted_over_and_warned_about_once(caplog):
    predictor = Predictor.load(FIXTURE)
    cap = predictor.featurizer.cfg.max_tools
    tools = [ToolSpec(f"lookup_{i}", f"Look up thing {i}.") for i in range(cap + 5)]
    context = Context([Message("user", "look up thing 3")], tools, {})
    with caplog.at_level(logging.WARNING, logger="toolcast.predictor.onnx.predictor"):
        first = predictor.predict(context, 3)
        predictor.predict(context, 3)
    warnings = [r.getMessage() for r in caplog.records if "never predicted" in r.getMessage()]
    assert len(warnings) == 1 and f"lists {cap + 5} tools" in warnings[0]
    listed_in_model = {t.name for t in tools[: cap - 2]}
    assert first and all(p.tool in listed_in_model or p.is_respond or p.tool == UNKNOWN for p in first)


def test_a_tool_set_that_fits_gives_no_warning(caplog):
    predictor = Predictor.load(FIXTURE)
    tools = [ToolSpec("lookup", "Look up a thing.")]
    with caplog.at_level(logging.WARNING, logger="toolcast.predictor.onnx.predictor"):
        predictor.predict(Context([Message("user", "hi")], tools, {}), 3)
    assert not [r for r in caplog.records if "never predicted" in r.getMessage()]
