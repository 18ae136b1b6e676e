"""Every limit answers a 4xx that says what was wrong; the bearer token guards /v1 only."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from toolcast.serving import create_app
from toolcast.serving.settings import K_CEILING, ServeSettings


def test_body_over_the_limit_is_a_413(fake, settings, body):
    body["metadata"]["padding"] = "x" * 5000
    with TestClient(create_app(settings(fake, max_body_bytes=2000))) as client:
        r = client.post("/v1/predict", json=body)
    assert r.status_code == 413
    err = r.json()
    assert err["error"] == "payload_too_large" and "at most 2000 bytes" in err["message"]


def test_streamed_body_over_the_limit_is_a_413(fake, settings, body):
    chunk = json.dumps(body).encode()

    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(10):
            yield chunk

    with TestClient(create_app(settings(fake, max_body_bytes=len(chunk) * 3))) as client:
        r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"


def test_body_under_the_limit_passes(fake, settings, body):
    size = len(json.dumps(body).encode())
    with TestClient(create_app(settings(fake, max_body_bytes=size + 10))) as client:
        assert client.post("/v1/predict", json=body).status_code == 200


def test_history_over_the_limit_is_a_413(fake, settings, body):
    with TestClient(create_app(settings(fake, max_events=2))) as client:
        r = client.post("/v1/predict", json=body)
        rb = client.post("/v1/predict/batch", json={"requests": [body]})
    assert r.status_code == 413
    err = r.json()
    assert err["error"] == "history_too_long"
    assert "3 events" in err["message"] and "at most 2" in err["message"]
    assert err["detail"][0]["loc"] == ["body", "events"]
    assert rb.status_code == 413 and rb.json()["detail"][0]["loc"] == ["body", "requests", 0, "events"]


@pytest.mark.parametrize("k", [6, K_CEILING + 1])
def test_k_over_the_limit_is_a_422(fake, settings, body, k):
    body["k"] = k
    with TestClient(create_app(settings(fake, max_k=5))) as client:
        r = client.post("/v1/predict", json=body)
    assert r.status_code == 422
    err = r.json()
    assert err["detail"][0]["loc"] == ["body", "k"]
    assert str(K_CEILING if k > K_CEILING else 5) in err["message"]


def test_too_many_contexts_in_a_batch_is_a_413(fake, settings, body):
    with TestClient(create_app(settings(fake, max_batch_items=2))) as client:
        r = client.post("/v1/predict/batch", json={"requests": [body] * 3})
        empty = client.post("/v1/predict/batch", json={"requests": []})
    assert r.status_code == 413 and r.json()["error"] == "batch_too_large"
    assert "3 in one batch" in r.json()["message"]
    assert empty.status_code == 422


@pytest.mark.parametrize(("header", "says"), [
    (None, "missing bearer token"),
    ("Bearer nope", "wrong bearer token"),
    ("Basic dXNlcjpwYXNz", "malformed Authorization header"),
    ("Bearer", "malformed Authorization header"),
])
def test_wrong_or_missing_token_is_a_401(fake, settings, body, header, says):
    headers = {"Authorization": header} if header else {}
    with TestClient(create_app(settings(fake, token="s3cret"))) as client:
        r = client.post("/v1/predict", json=body, headers=headers)
        m = client.get("/v1/model", headers=headers)
    assert r.status_code == 401 and m.status_code == 401
    assert r.json()["error"] == "unauthorized" and says in r.json()["message"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "s3cret" not in r.text


def test_right_token_passes_and_probes_stay_open(fake, settings, body):
    with TestClient(create_app(settings(fake, token="s3cret"))) as client:
        ok = client.post("/v1/predict", json=body, headers={"Authorization": "Bearer s3cret"})
        probes = [client.get(p).status_code for p in ("/healthz", "/readyz", "/metrics")]
    assert ok.status_code == 200
    assert probes == [200, 200, 200]


def test_settings_refuse_impossible_values(fake):
    with pytest.raises(ValueError, match="max_k must be <="):
        ServeSettings(loader=lambda d: fake, max_k=K_CEILING + 1)
    with pytest.raises(ValueError, match="max_events must be >= 1"):
        ServeSettings(loader=lambda d: fake, max_events=0)
    with pytest.raises(ValueError, match="token must not be empty"):
        ServeSettings(loader=lambda d: fake, token=" ")
    with pytest.raises(ValueError, match="model_dir"):
        ServeSettings()
    with pytest.raises(ValueError, match="could never be served"):
        ServeSettings(loader=lambda d: fake, max_queue=10, max_batch_items=20)


def test_settings_round_trip_through_the_environment(tmp_path):
    s = ServeSettings(model_dir=tmp_path, token="t", max_k=4, batching=False, max_wait_ms=0.5)
    back = ServeSettings.from_env(s.to_env())
    assert back == s
    with pytest.raises(ValueError, match="TOOLCAST_SERVE_MAX_K: expected a number"):
        ServeSettings.from_env({"TOOLCAST_SERVE_MODEL_DIR": "x", "TOOLCAST_SERVE_MAX_K": "many"})
