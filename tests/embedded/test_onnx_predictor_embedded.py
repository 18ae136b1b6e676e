"""The embedded predictor on the base install: load an exported model directory and predict, no torch.

Runs in the base-install environment too (`make test-embedded`). The model is the committed fixture
tests/fixtures/model_tiny/ (rebuild: `.venv/bin/python scripts/make_tiny_model.py`); its expected.json
holds the torch predictor's top-3 at export time, so these tests also check onnxruntime against torch.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import Context, Message
from toolcast.predictor import Predictor
from toolcast.predictor.modeldir import ModelDirError
from toolcast.predictor.onnx.arrays import ToolSetCache, trim
from toolcast.predictor.onnx.manifest import sha256_file

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"
TOL = 1e-4


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    try:
        return Predictor.load(FIXTURE)
    except ModelDirError as e:  # the featurizer or the model changed since the fixture was made
        pytest.fail(f"{e}\nRebuild the fixture: .venv/bin/python scripts/make_tiny_model.py")


@pytest.fixture(scope="module")
def expected() -> list[tuple[Context, list[dict]]]:
    points = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
    traces = {}
    for name in {p["file"] for p in points}:
        (path,) = [f for f in sample_files() if f.name == name]
        traces.update({t.trace_id: t for t in load_traces(path)})
    out = []
    for p in points:
        context, _label = list(traces[p["trace_id"]].decision_points())[p["point"]]
        out.append((context, p["top"]))
    return out


def assert_same(got, want: list[dict]) -> None:
    assert [(c.tool, c.args, c.free) for c in got] == [(w["tool"], w["args"], w["free"]) for w in want]
    for c, w in zip(got, want, strict=True):
        assert c.p_tool == pytest.approx(w["p_tool"], abs=TOL)
        assert c.p_call == pytest.approx(w["p_call"], abs=TOL)


def test_predicts_what_torch_predicted_at_export(predictor, expected):
    for context, want in expected:
        assert_same(predictor.predict(context, k=3), want)


def test_batch_gives_the_single_answers(predictor, expected):
    contexts = [c for c, _ in expected]
    for got, (_c, want) in zip(predictor.predict_batch(contexts, k=3), expected, strict=True):
        assert_same(got, want)
    assert predictor.predict_batch([], k=3) == []


def test_two_threads_and_a_growing_session_agree(expected):
    two = Predictor.load(FIXTURE, threads=2)
    context, want = expected[-1]
    assert_same(two.predict(context, k=3), want)
    # A session grows event by event: the cached event rows must give what fresh events give.
    events = list(context.events)
    for n in range(1, len(events) + 1):
        step = Context(events=events[:n], tools=context.tools, metadata=context.metadata)
        fresh = two.predict(copy.deepcopy(step), k=3)
        assert [(c.key, c.p_call) for c in two.predict(step, k=3)] == [(c.key, c.p_call) for c in fresh]


def test_the_tools_graph_runs_once_per_tool_set_and_threads_share_the_cache(expected):
    from concurrent.futures import ThreadPoolExecutor

    p = Predictor.load(FIXTURE)
    p._tool_sets = ToolSetCache()  # without the load-time check's tool set
    runs = []
    run = p._run
    p._run = lambda graph, arrays: runs.append(graph) or run(graph, arrays)
    contexts = [c for c, _ in expected]
    # a tool set is its arrays: the same tools in another order (the last called first) are another
    tool_sets = {ToolSetCache.key(trim(p.features(c).arrays)) for c in contexts}
    for context, want in expected:
        assert_same(p.predict(context, k=3), want)
    assert runs.count("tools") == len(tool_sets) == len(p._tool_sets) < len(contexts)
    runs.clear()
    p.predict_batch(contexts, k=3)
    assert "tools" not in runs  # every tool set kept
    p._tool_sets = ToolSetCache(size=1)  # several tool sets, one kept: most contexts miss, 4 threads at once
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda c: p.predict(c, k=3), contexts * 3))
    for g, (_c, want) in zip(got, expected * 3, strict=True):
        assert_same(g, want)
    assert len(p._tool_sets) == 1


def test_an_event_changed_in_place_is_featurized_again(predictor, expected):
    context, _want = expected[0]
    msg = Message("user", "cancel my order please")
    ctx = Context(events=[*context.events, msg], tools=context.tools, metadata=context.metadata)
    before = predictor.features(ctx).arrays["ev_text"].copy()
    msg.text = "what is the weather in Paris"
    after = predictor.features(ctx).arrays["ev_text"]
    assert (before != after).any()


def test_empty_context_and_info(predictor):
    preds = predictor.predict(Context(events=[], tools=[]), k=3)
    # Listing no tools, it is given the tools of the training logs (`catalog`, all set-ups: no source).
    known = {d["name"] for d in predictor.featurizer.vocab.catalog[""]}
    assert preds and all(p.is_respond or p.tool in known for p in preds)
    assert all(0 < p.p_call <= 1 for p in preds)
    info = predictor.info()
    assert info["tools"] and "onnxruntime" in info["version"]


def test_loading_and_predicting_imports_no_heavy_package():
    code = (
        "import sys\n"
        "from toolcast.predictor import Predictor\n"
        "from toolcast.data.schema import Context, Message\n"
        f"p = Predictor.load({str(FIXTURE)!r})\n"
        "p.predict(Context(events=[Message('user', 'hello')], tools=[]), k=3)\n"
        "heavy = ('torch', 'lightning', 'transformers', 'datasets', 'onnx')\n"
        "assert not [m for m in heavy if m in sys.modules], sys.modules.keys() & set(heavy)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- a broken model directory says what is wrong ---------------------------------------------------------


@pytest.fixture
def model_copy(tmp_path) -> Path:
    d = tmp_path / "model"
    shutil.copytree(FIXTURE, d)
    return d


def rehash(d: Path, name: str) -> None:
    """Record a changed file in onnx.json as if the export had written it (to reach the later checks)."""
    m = json.loads((d / "onnx.json").read_text())
    m["files"][name] = sha256_file(d / name)
    (d / "onnx.json").write_text(json.dumps(m))


def load_error(d: Path, **kw) -> str:
    with pytest.raises(ModelDirError) as e:
        Predictor.load(d, **kw)
    assert str(d) in str(e.value)
    return str(e.value)


def test_missing_directory(tmp_path):
    assert "does not exist" in load_error(tmp_path / "nope")


def test_no_export(model_copy):
    (model_copy / "onnx.json").unlink()
    assert "onnx.json is missing" in load_error(model_copy)


def test_corrupt_manifest(model_copy):
    (model_copy / "onnx.json").write_text('{"format_version": 1, "varia')
    assert "onnx.json is not valid JSON" in load_error(model_copy)


def test_an_export_of_an_older_format(model_copy):
    m = json.loads((model_copy / "onnx.json").read_text())
    m["format_version"] = 1  # two graphs (encoder, slots), before the tools graph
    (model_copy / "onnx.json").write_text(json.dumps(m))
    msg = load_error(model_copy)
    assert "format_version 1 is not supported" in msg and "re-run `toolcast export`" in msg


def test_missing_graph(model_copy):
    (model_copy / "slots.onnx").unlink()
    assert "slots.onnx is missing" in load_error(model_copy)
    (model_copy / "tools.onnx").unlink()
    assert "tools.onnx is missing" in load_error(model_copy)


def test_truncated_graph(model_copy):
    data = (model_copy / "model.onnx").read_bytes()
    (model_copy / "model.onnx").write_bytes(data[: len(data) // 2])
    msg = load_error(model_copy)
    assert "model.onnx was replaced, truncated or corrupted" in msg
    rehash(model_copy, "model.onnx")  # even with a matching record, onnxruntime's refusal is reported clearly
    assert "model.onnx cannot be loaded by onnxruntime" in load_error(model_copy)


def test_config_of_another_model(model_copy):
    cfg = json.loads((model_copy / "config.json").read_text())
    cfg["model"]["max_candidates"] += 1
    (model_copy / "config.json").write_text(json.dumps(cfg))
    assert "config.json changed since the ONNX graphs were exported" in load_error(model_copy)


def test_missing_and_corrupt_json_parts(model_copy):
    (model_copy / "vocab.json").write_text("{")
    assert "vocab.json is not valid JSON" in load_error(model_copy)
    (model_copy / "config.json").unlink()
    assert "config.json is missing" in load_error(model_copy)


def test_graphs_swapped(model_copy):
    a, b = model_copy / "model.onnx", model_copy / "slots.onnx"
    tmp = model_copy / "x"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    rehash(model_copy, "model.onnx")
    rehash(model_copy, "slots.onnx")
    assert "expects input(s)" in load_error(model_copy)


def test_model_of_another_featurizer_version(monkeypatch):
    from toolcast.predictor.session.event_arrays import ToolArrays

    tools = ToolArrays.arrays  # the predictor's tool arrays (the reference featurizer's, kept per tool set)

    def one_more_feature(self, *args, **kwargs):
        out = tools(self, *args, **kwargs)
        out["tool_num"] = np.pad(out["tool_num"], ((0, 0), (0, 1)))
        return out

    monkeypatch.setattr(ToolArrays, "arrays", one_more_feature)
    msg = load_error(FIXTURE)
    assert "model.onnx takes tool_num as tensor(int64)" in msg and "another version of the featurizer" in msg


def test_variant_not_exported(model_copy):
    msg = load_error(model_copy, variant="int8")
    assert "no 'int8' variant" in msg and "--quantize int8" in msg


def test_a_model_made_by_another_featurizer_loads_with_a_warning(model_copy, caplog):
    from toolcast.predictor.versioning import featurizer_digest

    metrics_file = model_copy / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    metrics["featurizer"] = "0123456789abcdef"
    metrics_file.write_text(json.dumps(metrics))
    rehash(model_copy, "metrics.json")
    with caplog.at_level("WARNING", logger="toolcast.predictor.modeldir"):
        Predictor.load(model_copy)
    assert "another version of toolcast's featurizer" in caplog.text and "0123456789abcdef" in caplog.text
    caplog.clear()
    metrics["featurizer"] = featurizer_digest()
    metrics_file.write_text(json.dumps(metrics))
    rehash(model_copy, "metrics.json")
    with caplog.at_level("WARNING", logger="toolcast.predictor.modeldir"):
        Predictor.load(model_copy)
    assert "featurizer" not in caplog.text
