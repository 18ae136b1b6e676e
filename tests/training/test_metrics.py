"""The eval metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from toolcast.data import RESPOND, Label, ToolCall
from toolcast.predictor.protocol import CallPrediction
from toolcast.training.metrics import (
    expected_calibration_error,
    outcome,
    per_tool,
    reliability_bins,
    respond_precision_recall,
    summarize,
)


def call(tool: str, **args) -> ToolCall:
    return ToolCall(f"{tool}{sorted(args.items())}", 0, tool, args, "{}")


def pred(tool: str, p_tool: float, free: tuple[str, ...] = (), **args) -> CallPrediction:
    complete = tool != RESPOND and not free
    return CallPrediction(tool, args, list(free), p_tool, p_tool * 0.5 if complete else (
        p_tool if tool == RESPOND else 0.0))


# Five decision points, each with what a predictor said (candidates in its own order).
POINTS = [
    # 1. call a(x=1); top tool a, top call right.
    (Label([call("a", x=1)]), [pred("a", 0.6, x=1), pred(RESPOND, 0.3), pred("b", 0.1, free=("q",))], "s1"),
    # 2. call b(); <respond> on top (wrong), then a, then b. The incomplete b candidate shares the label's
    #    key but cannot be run ahead, so it never counts; the complete b() comes third.
    (Label([call("b")]),
     [pred("b", 0.2, free=("q",)), pred(RESPOND, 0.5), pred("a", 0.3, x=2), pred("b", 0.2)], "s1"),
    # 3. respond, predicted.
    (Label([]), [pred(RESPOND, 0.9), pred("a", 0.1, x=1)], "s2"),
    # 4. respond, missed (a on top).
    (Label([]), [pred("a", 0.7, x=1), pred(RESPOND, 0.3)], "s2"),
    # 5. a parallel turn a(x=1) + c(y=1): c is the top tool (right: any call of the turn counts); the top
    #    call c(y=2) is wrong, the second a(x=1) is right.
    (Label([call("a", x=1), call("c", y=1)]),
     [pred("c", 0.4, y=2), pred("a", 0.35, x=1), pred(RESPOND, 0.25)], "s2"),
]
OUTCOMES = [outcome(preds, label, source) for label, preds, source in POINTS]


def test_outcome_ranks_tools_by_p_tool_and_keeps_call_order():
    o = OUTCOMES[1]
    assert o.tools == (RESPOND, "a", "b") and o.tool_probs == (0.5, 0.3, 0.2)
    assert o.calls == (None, ("a", '{"x":2}'), ("b", "{}"))  # <respond> left out, the free call is None
    assert o.label_tools == ("b",) and not o.is_respond
    assert OUTCOMES[2].label_tools == (RESPOND,) and OUTCOMES[2].is_respond


def test_headline_numbers():
    s = summarize(OUTCOMES)
    # Over the three call points (1, 2, 5):
    assert s["n_points"] == 3 and s["n_decision_points"] == 5 and s["n_respond_points"] == 2
    assert s["tool_top1"] == pytest.approx(2 / 3)  # 1 right, 2 wrong (a before b, <respond> skipped), 5 right
    assert s["tool_top3"] == pytest.approx(1.0)
    assert s["call_top1"] == pytest.approx(1 / 3)  # only point 1
    assert s["call_top3"] == pytest.approx(1.0)  # point 2 at the third candidate, point 5 at the second
    assert s["respond_precision"] == pytest.approx(1 / 2)  # <respond> on top at points 2 and 3; 3 is right
    assert s["respond_recall"] == pytest.approx(1 / 2)  # points 3 and 4 responded; 3 caught
    # ECE: confidences 0.6, 0.5, 0.9, 0.7, 0.4 (each in its own bin), right 1, 0, 1, 0, 1:
    assert s["ece"] == pytest.approx((0.4 + 0.5 + 0.1 + 0.7 + 0.6) / 5)
    assert s["top1_accuracy"] == pytest.approx(3 / 5)


def test_respond_precision_recall_by_hand():
    assert respond_precision_recall(OUTCOMES) == pytest.approx((0.5, 0.5))
    p, r = respond_precision_recall(OUTCOMES[:1])  # nothing predicted, nothing to recall
    assert math.isnan(p) and math.isnan(r)


def test_ece_by_hand():
    # One bin holding 0.81 and 0.85 (bin 12 of 15), accuracy 1/2: |0.5 - 0.83|.
    assert expected_calibration_error([0.81, 0.85], [True, False]) == pytest.approx(0.33)
    assert expected_calibration_error([1.0, 1.0], [True, True]) == pytest.approx(0.0)  # 1.0: the last bin
    # Two bins: 0.0 and 0.25 both fall in [0, 0.5): accuracy 1/2, confidence 0.125, all the weight.
    assert expected_calibration_error([0.0, 0.25], [False, True], bins=2) == pytest.approx(0.375)
    assert math.isnan(expected_calibration_error([], []))


def test_reliability_bins_count_every_point():
    rows = reliability_bins([0.05, 0.5, 0.55, 1.0], [False, True, False, True], bins=10)
    assert len(rows) == 10 and sum(r["count"] for r in rows) == 4
    assert rows[5]["count"] == 2 and rows[5]["accuracy"] == pytest.approx(0.5)
    assert rows[9]["count"] == 1 and math.isnan(rows[3]["accuracy"])


def test_per_tool_table():
    rows = {r["tool"]: r for r in per_tool(OUTCOMES)}
    assert rows["a"]["n"] == 2 and rows["a"]["tool_top1"] == pytest.approx(1.0)  # points 1 and 5
    assert rows["a"]["call_top1"] == pytest.approx(0.5)
    assert rows["b"]["n"] == 1 and rows["b"]["tool_top1"] == 0.0 and rows["b"]["call_top3"] == 1.0
    assert rows["c"]["n"] == 1
    assert rows[RESPOND]["n"] == 2 and rows[RESPOND]["tool_top1"] == pytest.approx(0.5)
    assert rows[RESPOND]["tool_top3"] == pytest.approx(1.0) and math.isnan(rows[RESPOND]["call_top1"])
    assert [r["tool"] for r in per_tool(OUTCOMES)][:2] == ["<respond>", "a"]  # most points first


def test_empty_predictions_count_as_wrong():
    o = outcome([], Label([call("a", x=1)]))
    assert not o.tool_hit(3) and not o.call_hit(3) and o.confidence == 0.0 and not o.top1_correct


def test_group_bootstrap_intervals_cover_the_estimate_and_pair_differences():
    from toolcast.data.schema import Label, ToolCall
    from toolcast.predictor.protocol import CallPrediction
    from toolcast.training.metrics import group_bootstrap, outcome, summarize

    def point(g: int, right: bool):
        label = Label([ToolCall("c", 0, "get", {"id": g})])
        guess = CallPrediction("get" if right else "other", args={"id": g}, p_tool=0.7, p_call=0.7)
        return outcome([guess], label, "s", f"g{g}")

    good = [point(g, g % 4 != 0) for g in range(40) for _ in range(3)]
    bad = [point(g, g % 4 == 1) for g in range(40) for _ in range(3)]
    ci = group_bootstrap(good, [bad], n=200)
    est = summarize(good)["tool_top1"]
    assert ci["groups"] == 40 and ci["tool_top1"][0] <= est <= ci["tool_top1"][1]
    lo, hi = ci["differences"][0]["tool_top1"]
    assert 0 < lo <= hi  # good is right wherever bad is, and on half the groups more: the difference > 0
    assert group_bootstrap(good[:3]) == {}  # one group: no interval
