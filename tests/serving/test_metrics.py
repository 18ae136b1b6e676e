"""GET /metrics is Prometheus text that parses, with requests, latency, batch sizes and errors."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from toolcast.serving import create_app


def _families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_text_parses_and_counts(batch_fake, settings, body):
    with TestClient(create_app(settings(batch_fake))) as client:
        for _ in range(3):
            assert client.post("/v1/predict", json=body).status_code == 200
        assert client.post("/v1/predict", json={"events": "no"}).status_code == 422
        client.get("/v2/unknown/route/42")
        r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    fams = _families(r.text)
    requests = {(s.labels["route"], s.labels["status"]): s.value
                for s in fams["toolcast_http_requests"].samples if s.name.endswith("_total")}
    assert requests[("/v1/predict", "200")] == 3
    assert requests[("/v1/predict", "422")] == 1
    assert requests[("other", "404")] == 1  # unknown paths never become labels
    latency = fams["toolcast_http_request_duration_seconds"]
    count = [s for s in latency.samples if s.name.endswith("_count") and s.labels["route"] == "/v1/predict"]
    assert count[0].value == 4
    batches = [s for s in fams["toolcast_batch_size"].samples if s.name.endswith("_count")]
    assert batches[0].value >= 1
    preds = [s for s in fams["toolcast_predictions"].samples if s.name.endswith("_total")]
    assert preds[0].value == 3
    errors = {s.labels["kind"]: s.value for s in fams["toolcast_errors"].samples if s.name.endswith("_total")}
    assert errors == {"invalid_request": 1, "not_found": 1}
    assert fams["toolcast_model_loaded"].samples[0].value == 1


def test_two_apps_in_one_process_keep_separate_metrics(fake, settings, body):
    with TestClient(create_app(settings(fake))) as a, TestClient(create_app(settings(fake))) as b:
        a.post("/v1/predict", json=body)
        text_b = b.get("/metrics").text
    fams = _families(text_b)
    assert not [s for s in fams["toolcast_http_requests"].samples if s.labels.get("route") == "/v1/predict"]
