"""The app end to end through TestClient (the lifespan runs): predictions, batch, model, errors."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient

from toolcast.serving import ServeSettings, create_app


@pytest.mark.parametrize("batching", [True, False])
def test_predict_happy_path(fake, settings, body, batching):
    with TestClient(create_app(settings(fake, batching=batching))) as client:
        r = client.post("/v1/predict", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"]
    out = r.json()
    assert out["predictor"] == "fake" and out["k"] == 3
    first = out["predictions"][0]
    assert first == {"tool": "get_user", "args": {"user_id": "user_1"}, "free": [],
                     "sources": {"user_id": "args:get_user.user_id"}, "p_tool": 0.5, "p_call": 0.4,
                     "complete": True, "p_horizon": None}
    assert len(out["predictions"]) == 3 and out["view"] == "next"
    assert out["predictions"][2]["free"] == ["order_id"] and not out["predictions"][2]["complete"]


def test_predict_respects_k_and_keeps_client_request_id(fake, settings, body):
    body["k"] = 1
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict", json=body, headers={"X-Request-ID": "abc-123"})
    assert r.status_code == 200
    assert len(r.json()["predictions"]) == 1
    assert r.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize("batching", [True, False])
def test_batch_answers_in_order_each_with_its_k(batch_fake, settings, body, batching):
    empty = {"events": [], "tools": [], "k": 1}
    with TestClient(create_app(settings(batch_fake, batching=batching))) as client:
        r = client.post("/v1/predict/batch", json={"requests": [body, empty, {**body, "k": 2}]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [len(x["predictions"]) for x in results] == [3, 1, 2]
    assert results[0]["predictions"][0]["tool"] == "get_user"
    assert results[1]["predictions"][0]["tool"] == "<respond>"
    assert sum(batch_fake.batches) == 3  # predict_batch was used


def test_model_reports_info_and_limits(fake, settings):
    with TestClient(create_app(settings(fake, max_k=5))) as client:
        r = client.get("/v1/model")
    assert r.status_code == 200
    m = r.json()
    assert m["name"] == "fake" and m["version"] == "0.0-test"
    assert m["tools"] == ["get_user", "get_order"]
    assert m["card"] == {"tool_top1": 0.5, "ece": 0.03}
    assert m["limits"]["max_k"] == 5 and m["batched"] is False


@pytest.mark.parametrize(("mutate", "loc"), [
    (lambda b: b["events"][2].update(turn="zero"), ["body", "events", 2, "turn"]),
    (lambda b: b["events"][0].update(type="thought"), ["body", "events", 0, "type"]),
    (lambda b: b["events"][2].pop("call_id"), ["body", "events", 2, "call_id"]),
    (lambda b: b["events"].append(7), ["body", "events", 3]),
    (lambda b: b.update(k="three"), ["body", "k"]),
    (lambda b: b.update(k=0), ["body", "k"]),
    (lambda b: b.update(surprise=1), ["body", "surprise"]),
    (lambda b: b.pop("events"), ["body", "events"]),
])
def test_invalid_request_names_the_field(fake, settings, body, mutate, loc):
    mutate(body)
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict", json=body)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["error"] == "invalid_request" and err["request_id"] == r.headers["x-request-id"]
    assert err["detail"][0]["loc"] == loc
    assert ".".join(map(str, loc)) in err["message"] or loc[-1] in err["message"]


def test_invalid_event_in_batch_names_its_request(fake, settings, body):
    bad = {**body, "events": [{"type": "message", "role": "robot"}]}
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict/batch", json={"requests": [body, bad]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "requests", 1, "events", 0, "role"]
    assert "requests[1].events[0].role" in r.json()["message"]


@pytest.mark.parametrize(("raw", "status"), [
    (b"{not json", 422), (b"", 422), (b"[1, 2]", 422), (b'"events"', 422), (b"\xff\xfe", 422),
    (b'{"events": [], "k": NaN}', 422), (b"\x80\x81{}", 400),
])
def test_malformed_body_is_a_4xx_in_the_error_shape(fake, settings, raw, status):
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"] in ("invalid_request", "bad_request") and r.json()["request_id"]


def test_unknown_route_and_method_use_the_error_shape(fake, settings):
    with TestClient(create_app(settings(fake))) as client:
        r404 = client.get("/v2/nothing")
        r405 = client.get("/v1/predict")
    assert r404.status_code == 404 and r404.json()["error"] == "not_found"
    assert r405.status_code == 405 and r405.json()["error"] == "method_not_allowed"


def test_predictor_failure_is_a_500_without_internals(broken, settings, body, caplog):
    with caplog.at_level(logging.ERROR, logger="toolcast.serving"):
        with TestClient(create_app(settings(broken)), raise_server_exceptions=False) as client:
            r = client.post("/v1/predict", json=body)
    assert r.status_code == 500
    err = r.json()
    assert err["error"] == "internal_error" and err["request_id"] == r.headers["x-request-id"]
    assert "secret" not in r.text and "Traceback" not in r.text and "model.onnx" not in r.text
    logged = "\n".join(rec.getMessage() + str(rec.exc_info) for rec in caplog.records)
    assert err["request_id"] in logged and "secret internal detail" in logged


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    """Poll a condition (a bound on waiting, not an assertion on time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_readyz_turns_ready_once_the_model_is_loaded(fake, body):
    release = threading.Event()

    def slow_loader(_dir):
        release.wait(10)
        return fake

    with TestClient(create_app(ServeSettings(loader=slow_loader))) as client:
        assert client.get("/healthz").status_code == 200
        before = client.get("/readyz")
        assert before.status_code == 503 and before.json() == {"ready": False, "status": "loading"}
        early = client.post("/v1/predict", json=body)
        assert early.status_code == 503 and early.json()["error"] == "not_ready"
        release.set()
        assert _wait_for(lambda: client.get("/readyz").status_code == 200)
        assert client.get("/readyz").json() == {"ready": True, "status": "ready"}
        assert client.post("/v1/predict", json=body).status_code == 200


def test_failed_load_is_reported_not_raised(body, tmp_path):
    missing = tmp_path / "no-such-model"
    with TestClient(create_app(ServeSettings(model_dir=missing))) as client:
        assert _wait_for(lambda: client.get("/readyz").json()["status"] != "loading")
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "does not exist" in ready.json()["status"]
        assert client.get("/healthz").status_code == 503
        r = client.post("/v1/predict", json=body)
        assert r.status_code == 503 and "failed to load" in r.json()["message"]


def test_synchronous_load_failure_stops_start_up(tmp_path):
    from toolcast.serving.loading import ModelLoadError

    app = create_app(ServeSettings(model_dir=tmp_path / "missing", load_in_background=False))
    with pytest.raises(ModelLoadError, match="does not exist"):
        with TestClient(app):
            pass


def test_openapi_documents_limits_and_examples(fake, settings):
    with TestClient(create_app(settings(fake, max_k=7, max_events=99, max_batch_items=5))) as client:
        spec = client.get("/openapi.json").json()
    req = spec["components"]["schemas"]["PredictRequest"]
    assert req["properties"]["k"]["maximum"] == 7
    assert req["properties"]["events"]["maxItems"] == 99
    assert req["examples"][0]["k"] == 3
    assert spec["components"]["schemas"]["BatchPredictRequest"]["properties"]["requests"]["maxItems"] == 5
    assert set(spec["paths"]) == {"/v1/predict", "/v1/predict/batch", "/v1/predict/native", "/v1/model",
                                  "/healthz", "/readyz", "/metrics"}


def test_a_card_with_nan_is_served_as_null(settings):
    class CardPredictor:
        name = "carded"
        card = {"ece": float("nan"), "tool_top1": 0.4}

        def predict(self, context, k=3):
            return []

    with TestClient(create_app(settings(CardPredictor()))) as client:
        r = client.get("/v1/model")
    assert r.status_code == 200 and r.json()["card"] == {"ece": None, "tool_top1": 0.4}
