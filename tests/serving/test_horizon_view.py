"""The endpoint's horizon view: `"view": "horizon"` answers with the set of calls likely before the next
write (what a runtime runs ahead), from the same loaded model; a model without one answers 409."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from toolcast.data.schema import Context
from toolcast.serving import ServeSettings, create_app
from toolcast.serving.client import Client, ServingError, context_body

TINY = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"


def is_read(tool: str) -> bool:
    return tool.startswith("get_")


@pytest.fixture(scope="module")
def horizon_dir(tmp_path_factory, shop_traces) -> Path:
    """The tiny exported model with a fan-out and a horizon scorer fitted on shop traces beside it."""
    from toolcast.predictor import load
    from toolcast.predictor.baselines.fanout import fit_fanout
    from toolcast.predictor.horizon import HorizonPredictor

    out = tmp_path_factory.mktemp("horizon") / "model"
    shutil.copytree(TINY, out)
    fanout = fit_fanout(shop_traces(12), is_read=is_read, is_write=lambda t: not is_read(t))
    view = HorizonPredictor(load(out), fanout, is_write=lambda t: not is_read(t))
    view.fit(shop_traces(6, offset=40), kind="logistic").save(out / "horizon.json")
    fanout.save(out)
    return out


def after_profile(shop_traces) -> Context:
    """A shop context right after get_user listed the user's two orders."""
    trace = shop_traces(1, offset=99)[0]
    return Context(events=trace.events[:4], tools=trace.tools, metadata={"agent_model": "m"})


def test_the_horizon_view_answers_from_the_same_model(horizon_dir, shop_traces):
    settings = ServeSettings(model_dir=horizon_dir, load_in_background=False)
    context = after_profile(shop_traces)
    with TestClient(create_app(settings)) as http:
        assert http.get("/v1/model").json()["views"] == ["next", "horizon"]
        nxt = http.post("/v1/predict", json=context_body(context, 8)).json()
        got = http.post("/v1/predict", json=context_body(context, 8, "horizon")).json()
        assert nxt["view"] == "next" and all(p["p_horizon"] is None for p in nxt["predictions"])
        assert got["view"] == "horizon" and got["predictions"]
        assert all(0 <= p["p_horizon"] <= 1 for p in got["predictions"])
        ps = [p["p_horizon"] for p in got["predictions"]]
        assert ps == sorted(ps, reverse=True)
        # the fan-out's two listed orders are in the set, neither is a write
        assert {("get_order", "#W9901"), ("get_order", "#W9902")} <= {
            (p["tool"], p["args"].get("order_id")) for p in got["predictions"]}
        # a batch mixes views; each answer is its own request's view
        both = http.post("/v1/predict/batch", json={"requests": [context_body(context, 8, "horizon"),
                                                                  context_body(context, 8)]}).json()
        assert [r["view"] for r in both["results"]] == ["horizon", "next"]
        assert both["results"][0]["predictions"] == got["predictions"]
        # the Client as a runtime's predictor: p_horizon reaches the planner
        calls = Client(http=http, view="horizon").predict(context, k=8)
        assert [c.p_horizon for c in calls] == ps


def test_a_model_without_a_horizon_view_answers_409_naming_it(shop_traces):
    settings = ServeSettings(model_dir=TINY, load_in_background=False)
    context = after_profile(shop_traces)
    with TestClient(create_app(settings)) as http:
        assert http.get("/v1/model").json()["views"] == ["next"]
        r = http.post("/v1/predict", json=context_body(context, 3, "horizon"))
        assert r.status_code == 409 and r.json()["error"] == "no_horizon_view"
        assert "horizon.json" in r.json()["message"]
        assert http.post("/v1/predict", json=context_body(context, 3)).status_code == 200
        with pytest.raises(ServingError, match="409 no_horizon_view"):
            Client(http=http, view="horizon").predict(context)
    with pytest.raises(ValueError, match="view must be"):
        Client(view="later")


def test_a_broken_horizon_file_leaves_the_next_call_view_serving(horizon_dir, tmp_path, shop_traces):
    broken = tmp_path / "model"
    shutil.copytree(horizon_dir, broken)
    (broken / "horizon.json").write_text("{not json", encoding="utf-8")
    with TestClient(create_app(ServeSettings(model_dir=broken, load_in_background=False))) as http:
        context = after_profile(shop_traces)
        assert http.post("/v1/predict", json=context_body(context, 3)).status_code == 200
        r = http.post("/v1/predict", json=context_body(context, 3, "horizon"))
        assert r.status_code == 409 and "horizon view failed to load" in r.json()["message"]
        assert "horizon.json" in r.json()["message"]


def test_the_servers_contracts_decide_what_its_horizon_view_proposes(horizon_dir, tmp_path, shop_traces):
    """`toolcast serve --contracts FILE` (ServeSettings.contracts): the reads and writes `train
    --contracts` fitted with. A file under which get_order is no read makes it a state change to the
    scorer (`write_p`, `since_write`), so the view prices its calls otherwise."""
    contracts = tmp_path / "contracts.json"
    contracts.write_text(json.dumps({"read_only": ["get_user"]}), encoding="utf-8")
    context = after_profile(shop_traces)
    got = {}
    for name, file in (("default", None), ("file", str(contracts))):
        settings = ServeSettings(model_dir=horizon_dir, load_in_background=False, contracts=file)
        with TestClient(create_app(settings)) as http:
            answer = http.post("/v1/predict", json=context_body(context, 16, "horizon")).json()
            got[name] = {(p["tool"], json.dumps(p["args"], sort_keys=True)): p["p_horizon"]
                         for p in answer["predictions"]}
    assert ("get_order", '{"order_id": "#W9901"}') in got["default"]
    assert got["file"] != got["default"]
