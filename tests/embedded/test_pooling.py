"""The pooled predictor (model + mined pattern pool): how it combines, how its weights are chosen, and how a
model directory with a pool loads, on the base install (no torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import RESPOND, Context, Message
from toolcast.predictor import load
from toolcast.predictor.baselines.pattern_pool import PatternPoolPredictor
from toolcast.predictor.modeldir import ModelDirError
from toolcast.predictor.onnx.predictor import OnnxPredictor
from toolcast.predictor.pooling import (
    PATTERN_FILE,
    POOL_FILE,
    PooledPredictor,
    PoolWeights,
    combine,
)
from toolcast.predictor.pooling_fit import collect, fit_weights
from toolcast.predictor.protocol import CallPrediction

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"
CONTEXT = Context(events=[Message("user", "hi")], tools=[])


class Fixed:
    """An expert that answers the same list everywhere."""

    def __init__(self, name: str, answer: list[CallPrediction]):
        self.name = name
        self.answer = answer

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        return self.answer[:k]


def call(tool: str, args: dict, p_tool: float, q: float) -> CallPrediction:
    return CallPrediction(tool, args, [], p_tool, p_tool * q)


A = Fixed("a", [call("get", {"id": 1}, 0.6, 0.5), call("get", {"id": 2}, 0.6, 0.4),
                call("list", {}, 0.25, 1.0), CallPrediction(RESPOND, p_tool=0.15, p_call=0.15)])
B = Fixed("b", [call("get", {"id": 2}, 0.2, 0.9), call("list", {}, 0.7, 1.0),
                CallPrediction(RESPOND, p_tool=0.1, p_call=0.1)])


def pooled(wa: float, wb: float, ba: float, bb: float) -> PooledPredictor:
    return PooledPredictor({"a": A, "b": B}, PoolWeights(["a", "b"], [wa, wb], [ba, bb]))


def test_one_expert_with_full_weight_ranks_as_that_expert():
    top = pooled(1, 0, 1, 0).predict(CONTEXT, k=4)
    assert [(c.tool, c.args) for c in top] == [("get", {"id": 1}), ("list", {}), ("get", {"id": 2}),
                                                (RESPOND, {})]
    assert top[0].p_tool == pytest.approx(0.6) and top[0].p_call == pytest.approx(0.3)


def test_tools_pool_log_linearly_and_arguments_mix():
    top = pooled(1, 1, 0.5, 0.5).predict(CONTEXT, k=5)
    p_tool = {c.tool: c.p_tool for c in top}
    z = 0.6 * 0.2 + 0.25 * 0.7 + 0.15 * 0.1
    assert p_tool["get"] == pytest.approx(0.12 / z) and p_tool["list"] == pytest.approx(0.175 / z)
    assert sum(p_tool.values()) == pytest.approx(1.0)
    # q(id=2 | get) = (0.4 + 0.9) / 2: both experts offer it
    got = {(c.tool, c.args.get("id")): c.p_call for c in top}
    assert got[("get", 2)] == pytest.approx(p_tool["get"] * 0.65)
    assert got[("get", 1)] == pytest.approx(p_tool["get"] * 0.25)
    assert [c.p_call for c in top] == sorted((c.p_call for c in top), reverse=True)


def test_an_expert_without_weight_is_not_asked():
    class Refuses(Fixed):
        def predict(self, context, k=3):
            raise AssertionError("asked")

    p = PooledPredictor({"a": A, "b": Refuses("b", [])}, PoolWeights(["a", "b"], [1.0, 0.0], [1.0, 0.0]))
    assert [c.tool for c in p.predict(CONTEXT, k=2)] == ["get", "list"]
    assert list(p.experts) == ["a"] and p.fitted.experts == ["a", "b"]


def test_a_tool_no_expert_can_fill_stays_in_the_ranking_but_is_never_runnable():
    only_free = Fixed("c", [CallPrediction("search", {}, ["query"], 0.9, 0.0)])
    top = combine([_view_of(only_free)], [1.0], [1.0], k=3)
    assert [(c.tool, c.free, c.p_call) for c in top] == [("search", ["query"], 0.0)]
    assert not top[0].complete


def _view_of(expert):
    from toolcast.predictor.pooling import _view

    return _view(expert.predict(CONTEXT, k=16), frozenset({"search", "other", RESPOND}))


def test_a_counting_expert_is_neutral_on_tools_it_never_saw():
    from toolcast.predictor.pooling import _view

    names = frozenset({"old", "new_a", "new_b", RESPOND})
    answer = [CallPrediction("old", p_tool=0.8, p_call=0.0, free=["x"]),
              CallPrediction(RESPOND, p_tool=0.2, p_call=0.2)]
    v = _view(answer, names, known={"old"})
    neutral = (0.8 * 0.2) ** 0.5  # the geometric mean over what it knows
    assert v.tools["new_a"] == pytest.approx(neutral) and v.tools["new_b"] == pytest.approx(neutral)
    assert _view(answer, names).tools.get("new_a") is None  # no vocabulary: left as it answered


def test_the_weights_move_to_the_model_alone_on_tools_the_counting_expert_never_saw():
    """Weights fitted where the pattern pool knows the tools; on a context whose tools it knows a share c
    of, each weight is c * fitted + (1 - c) * (the model alone's: 1 for the model, 0 for the others)."""
    from toolcast.predictor.pooling import _view, fallback_weights, pooled_tools

    model = [call("new_a", {}, 0.6, 1.0), call("new_b", {}, 0.3, 1.0), CallPrediction(RESPOND, p_tool=0.1)]
    counts = [call("old", {}, 0.7, 1.0), CallPrediction(RESPOND, p_tool=0.3)]
    alone = fallback_weights(["learned", "pattern"])
    assert alone == [1.0, 0.0]
    w = [0.6, 0.3]
    unseen = frozenset({"new_a", "new_b", RESPOND})  # a tool set the counts never had
    views = [_view(model, unseen), _view(counts, unseen, known={"old"})]
    assert views[1].coverage == 0.0 and views[0].coverage == 1.0
    # a tool the training logs listed but never called is known to them: it counts as covered
    assert _view(counts, unseen, known={"old"}, seen={"old", "new_a"}).coverage == 0.5
    p = pooled_tools(views, w, unseen, alone)
    # the model, as it answered ("old", which only the counts list, at the floor)
    assert {t: p[t] for t in unseen} == pytest.approx({"new_a": 0.6, "new_b": 0.3, RESPOND: 0.1}, abs=1e-3)
    assert pooled_tools(views, w, unseen) != pytest.approx(p)  # the fitted weights alone would flatten it
    half = frozenset({"old", "new_a", RESPOND})
    views = [_view(model, half), _view(counts, half, known={"old"})]
    assert views[1].coverage == 0.5
    assert pooled_tools(views, w, half, alone) == pytest.approx(pooled_tools(views, [0.8, 0.15], half))
    known = frozenset({"old", RESPOND})
    views = [_view(model, known), _view(counts, known, known={"old"})]
    assert pooled_tools(views, w, known, alone) == pytest.approx(pooled_tools(views, w, known))


def test_fit_gives_no_weight_to_an_expert_that_is_always_wrong():
    traces = load_traces(sample_files()[0])[:6]
    right = PatternPoolPredictor().fit(traces)
    wrong = Fixed("wrong", [CallPrediction("no_such_tool", {}, [], 0.99, 0.99)])
    points = collect({"right": right, "wrong": wrong}, traces[:3])
    w = fit_weights(["right", "wrong"], points)
    assert w.tool_weights[1] == 0.0 and w.tool_weights[0] > 0
    assert w.fitted_on == len(points) > 0


def test_an_under_confident_call_p_is_mapped_up_and_never_past_its_tool():
    from toolcast.data.schema import canonical_args
    from toolcast.predictor.pooling import _view, mapped
    from toolcast.predictor.pooling_fit import _fit_call_map, _Point

    names = frozenset({"get", "list", RESPOND})
    points = []
    for i in range(200):  # the top call (p 0.3) is right 9 times in 10; the second (p 0.06) never
        answer = [call("get", {"id": i}, 0.6, 0.5), call("get", {"id": -i}, 0.6, 0.1),
                  CallPrediction(RESPOND, p_tool=0.4, p_call=0.4)]
        made = {("get", canonical_args({"id": i if i % 10 else -1}))}
        points.append(_Point([_view(answer, names)], frozenset({"get"}), frozenset(made), names))
    a, c = _fit_call_map(points, [1.0], [1.0])
    assert a > 0 and mapped(0.3, [a, c]) > 0.6 and mapped(0.06, [a, c]) < 0.06
    top = combine(points[1].views, [1.0], [1.0], 3, names, [a, c])
    assert top[0].p_call == pytest.approx(min(top[0].p_tool, mapped(0.3, [a, c])))
    assert all(x.p_call <= x.p_tool for x in top)


def test_weights_round_trip_and_bad_files_name_the_field(tmp_path):
    w = PoolWeights(["learned", "pattern"], [1.2, 0.4], [0.7, 0.3], 10, {"tool_nll": 1.0}, [1.5, 0.2])
    w.save(tmp_path / "pool.json")
    assert PoolWeights.load(tmp_path / "pool.json") == w
    saved = json.loads((tmp_path / "pool.json").read_text())
    assert saved["format"] == "toolcast.pool" and saved["version"] >= 1
    (tmp_path / "bad.json").write_text(json.dumps(saved | {"tool_weights": [1.0]}))
    with pytest.raises(ValueError, match=r"bad\.json.*'tool_weights'"):
        PoolWeights.load(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps(saved | {"format": "toolcast.markov"}))
    with pytest.raises(ValueError, match=r"other\.json.*'format'"):
        PoolWeights.load(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"broken\.json"):
        PoolWeights.load(tmp_path / "broken.json")


@pytest.fixture(scope="module")
def pooled_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pooled") / "model"
    shutil.copytree(FIXTURE, d)
    traces = load_traces(sample_files()[0])[:8]
    PatternPoolPredictor().fit(traces).save(d / PATTERN_FILE)
    PoolWeights(["learned", "pattern"], [1.0, 0.5], [0.5, 0.5]).save(d / POOL_FILE)
    return d, traces


def test_a_directory_with_a_pool_loads_pooled_and_predicts_without_torch(pooled_dir):
    d, traces = pooled_dir
    p = load(d)
    assert isinstance(p, PooledPredictor) and p.name == "learned"
    assert isinstance(load(d, pooled=False), OnnxPredictor)
    context, _ = next(iter(traces[-1].decision_points()))
    top = p.predict(context, k=3)
    assert 0 < len(top) <= 3 and all(0.0 <= c.p_call <= c.p_tool <= 1.0 for c in top)
    assert p.predict_batch([context, context], k=3) == [top, top]
    assert p.info()["pool"]["experts"] == ["learned", "pattern"]


def test_a_broken_pool_is_an_error_naming_the_directory(pooled_dir, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(pooled_dir[0], d)
    (d / PATTERN_FILE).write_bytes(b"not gzip")
    with pytest.raises(ModelDirError, match=str(d)):
        load(d)


def test_the_pattern_pools_tool_sets_keep_listed_tools_and_read_older_files():
    from toolcast.predictor.baselines.ngram import Toolsets

    traces = load_traces(sample_files()[0])[:6]
    sets = Toolsets()
    for t in traces:
        sets.add(t)
    listed = {s.name for t in traces for s in t.tools}
    assert sets.vocabulary < sets.seen and listed <= sets.seen
    again = Toolsets.from_dict(json.loads(json.dumps(sets.to_dict())), "test")
    assert again.seen == sets.seen
    older = sets.to_dict()
    del older["listed"]  # a pattern pool saved before listed tools were kept
    old = Toolsets.from_dict(older, "test")
    assert old.listed is None and old.seen == sets.vocabulary


def test_the_likeliest_tools_stay_in_the_list_when_complete_calls_of_others_fill_it():
    """A new tool the model ranks first but whose arguments no expert fills has p(call) 0: without a
    kept place, the counting expert's complete calls of the tools it knows push it out of the top k."""
    from toolcast.predictor.pooling import _view

    names = frozenset({"new_tool", "old", RESPOND})
    model = Fixed("m", [CallPrediction("new_tool", {}, ["q"], 0.7, 0.0), call("old", {"id": 0}, 0.2, 0.5),
                        CallPrediction(RESPOND, p_tool=0.1, p_call=0.1)])
    counts = Fixed("p", [call("old", {"id": i}, 0.9, 0.1) for i in range(10)])
    views = [_view(model.predict(CONTEXT, 16), names), _view(counts.predict(CONTEXT, 16), names)]
    top = combine(views, [1.0, 0.2], [0.5, 0.5], k=4, names=names)  # 6 candidates, 1 place kept
    assert len(top) == 4 and "new_tool" in [c.tool for c in top]
    assert [c.p_call for c in top] == sorted((c.p_call for c in top), reverse=True)  # still by p(call)
    assert "new_tool" not in [c.tool for c in combine(views, [1.0, 0.2], [0.5, 0.5], k=3, names=names)]
