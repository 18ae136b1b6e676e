"""POST /v1/predict/native: the agent's own request body in, the same answer as /v1/predict out."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from toolcast.data import context_from_record
from toolcast.data.formats import FORMATS
from toolcast.data.formats.base import TraceFormat
from toolcast.data.schema import Context
from toolcast.serving import Client, ServingError, create_app
from toolcast.serving.client import context_body
from toolcast.serving.schemas import EXAMPLE_ANTHROPIC_RECORD, EXAMPLE_OPENAI_RECORD

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOOLS = [{"type": "function", "function": {"name": "get_user", "description": "Look up a user.",
                                           "parameters": {"type": "object",
                                                          "properties": {"user_id": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "get_order",
                                           "parameters": {"type": "object", "properties": {"order_id": {}}}}}]
MESSAGES = [
    {"role": "user", "content": "I am user_1, where is my order?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_user", "arguments": '{"user_id": "user_1"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": '{"orders": ["o9"]}'},
]
RECORD = {"model": "m", "messages": MESSAGES, "tools": TOOLS}


class RecordingPredictor:
    """Remembers the contexts it was asked about (to check what the route built)."""

    name = "recording"

    def __init__(self) -> None:
        self.contexts: list[Context] = []

    def predict(self, context: Context, k: int = 3):
        self.contexts.append(context)
        return []


@pytest.mark.parametrize("batching", [True, False])
def test_native_answers_as_predict_does_on_the_converted_context(batch_fake, settings, batching):
    canonical = context_body(context_from_record(RECORD), 3)
    with TestClient(create_app(settings(batch_fake, batching=batching))) as client:
        native = client.post("/v1/predict/native", json={"record": RECORD, "k": 3})
        plain = client.post("/v1/predict", json=canonical)
    assert native.status_code == 200, native.text
    assert native.json() == plain.json()
    first = native.json()["predictions"][0]
    assert first["tool"] == "get_user" and first["args"] == {"user_id": "user_1"}
    assert native.json()["k"] == 3 and native.json()["predictor"] == "fake-batch"
    if batching:
        assert sum(batch_fake.batches) == 2  # the micro-batcher ran both


@pytest.mark.parametrize("name", ["openai/messages.json", "anthropic/messages.json", "gemini/contents.json",
                                  "langchain/messages_to_dict.json", "openai_responses/agents_session.json",
                                  "openai_responses/response.json"])
def test_every_format_is_read(fake, settings, name):
    record = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict/native", json={"record": record, "k": 2})
    assert r.status_code == 200, r.text
    assert 1 <= len(r.json()["predictions"]) <= 2


def test_format_and_metadata_reach_the_predictor(settings):
    predictor = RecordingPredictor()
    with TestClient(create_app(settings(predictor))) as client:
        r = client.post("/v1/predict/native", json={"record": EXAMPLE_ANTHROPIC_RECORD, "format": "anthropic",
                                                    "metadata": {"agent_model": "claude"}})
    assert r.status_code == 200, r.text
    (context,) = predictor.contexts
    assert context.metadata == {"source": "anthropic", "agent_model": "claude"}
    assert [t.name for t in context.tools] == ["get_user_details", "get_reservation_details"]
    assert context.events[-1].output == '{"reservations": ["NO6JO3"]}'


@pytest.mark.parametrize(("record", "loc", "says"), [
    ({**RECORD, "messages": [*MESSAGES, {"role": "tool", "tool_call_id": "c9", "content": "x"}]},
     ["body", "record", "messages", 3, "tool_call_id"], "no earlier tool call has that id"),
    ({**RECORD, "messages": [{"role": "robot", "content": "x"}]},
     ["body", "record", "messages", 0, "role"], "unknown role"),
    ([{"messages": [{"role": "user", "content": 5}]}], ["body", "record", 0, "messages", 0, "content"], ""),
    ({"foo": 1}, ["body", "record"], "no known format"),
    ({"role": "user", "content": "hi"}, ["body", "record"], "send the list"),
    ([{"messages": MESSAGES}, {"messages": MESSAGES}], ["body", "record"], "holds 2 conversations"),
], ids=["unknown-call-id", "bad-role", "item-of-a-list", "no-format", "one-message", "two-conversations"])
def test_a_bad_record_is_a_422_naming_the_field(fake, settings, record, loc, says):
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict/native", json={"record": record})
    assert r.status_code == 422, r.text
    out = r.json()
    assert set(out) == {"error", "message", "detail", "request_id"}
    assert out["error"] == "invalid_request" and out["request_id"] == r.headers["x-request-id"]
    assert out["detail"][0]["loc"] == loc and out["detail"][0]["type"] == "format_error"
    assert says in out["message"] and says in out["detail"][0]["msg"]
    dotted = ".".join(str(p) for p in loc[1:])
    assert out["message"].startswith("invalid request: ") and (
        dotted.replace(".", "") in out["message"].replace(".", "").replace("[", "").replace("]", ""))
    assert fake.calls == 0


@pytest.mark.parametrize(("body", "loc"), [({"record": RECORD, "format": "openai_chat"}, ["body", "format"]),
                                           ({"record": "hi"}, ["body", "record"]),
                                           ({"record": RECORD, "extra": 1}, ["body", "extra"]),
                                           ({}, ["body", "record"])])
def test_a_malformed_body_is_a_422_in_the_same_shape(fake, settings, body, loc):
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict/native", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"
    assert r.json()["detail"][0]["loc"][:2] == loc


def test_an_importer_crash_is_a_422_not_a_500(fake, settings, monkeypatch, caplog):
    def read(records, on_error):
        raise KeyError("surprise")
        yield

    monkeypatch.setitem(FORMATS, "openai", TraceFormat("openai", "broken", FORMATS["openai"].sniff, read))
    with TestClient(create_app(settings(fake))) as client:
        r = client.post("/v1/predict/native", json={"record": RECORD})
    assert r.status_code == 422 and "cannot be read as openai" in r.json()["message"]
    assert "importer failed" in caplog.text  # the traceback is in the server log


def test_limits_apply_to_the_converted_context(fake, settings):
    # 3 messages -> 3 events; one more tool turn -> 5 events.
    longer = {**RECORD, "messages": [*MESSAGES, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c2", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c2", "content": "{}"}]}
    with TestClient(create_app(settings(fake, max_events=4, max_k=2))) as client:
        ok = client.post("/v1/predict/native", json={"record": RECORD, "k": 2})
        long = client.post("/v1/predict/native", json={"record": longer, "k": 2})
        big_k = client.post("/v1/predict/native", json={"record": RECORD, "k": 3})
        spec = client.get("/openapi.json").json()
    assert ok.status_code == 200, ok.text
    assert long.status_code == 413 and long.json()["error"] == "history_too_long"
    assert "record holds 5 events" in long.json()["message"] and "at most 4" in long.json()["message"]
    assert long.json()["detail"][0]["loc"] == ["body", "record"]
    assert big_k.status_code == 422 and big_k.json()["detail"][0]["loc"] == ["body", "k"]
    assert spec["components"]["schemas"]["NativePredictRequest"]["properties"]["k"]["maximum"] == 2


def test_body_limit_and_token(fake, settings):
    with TestClient(create_app(settings(fake, token="t0k", max_body_bytes=2_000))) as client:
        no_token = client.post("/v1/predict/native", json={"record": RECORD})
        too_big = client.post("/v1/predict/native", json={"record": {**RECORD, "pad": "x" * 3_000}},
                              headers={"Authorization": "Bearer t0k"})
        ok = client.post("/v1/predict/native", json={"record": RECORD},
                         headers={"Authorization": "Bearer t0k"})
    assert no_token.status_code == 401
    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"
    assert ok.status_code == 200


def test_a_sessions_growing_record_reuses_its_event_objects(settings):
    """With interning on, the events of step n are the objects of step n-1 (the predictor's caches hit),
    also across /v1/predict and /v1/predict/native."""
    predictor = RecordingPredictor()
    step1 = {**RECORD, "messages": MESSAGES[:1]}
    with TestClient(create_app(settings(predictor))) as client:
        for body in ({"record": step1}, {"record": RECORD}):
            assert client.post("/v1/predict/native", json=body).status_code == 200
        canonical_body = context_body(context_from_record(RECORD), 3)
        assert client.post("/v1/predict", json=canonical_body).status_code == 200
    first, second, canonical = predictor.contexts
    assert second.events[0] is first.events[0]
    assert all(a is b for a, b in zip(canonical.events, second.events, strict=True))


def test_interning_off_gives_equal_contexts(settings):
    predictor = RecordingPredictor()
    with TestClient(create_app(settings(predictor, intern_events=0))) as client:
        assert client.post("/v1/predict/native", json={"record": RECORD}).status_code == 200
    assert predictor.contexts[0].events == context_from_record(RECORD).events


def test_metrics_count_the_route(fake, settings):
    with TestClient(create_app(settings(fake))) as client:
        client.post("/v1/predict/native", json={"record": RECORD})
        client.post("/v1/predict/native", json={"record": {"foo": 1}})
        text = client.get("/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {(s.labels["route"], s.labels["status"]): s.value
                for s in fams["toolcast_http_requests"].samples if s.name.endswith("_total")}
    assert requests[("/v1/predict/native", "200")] == 1 and requests[("/v1/predict/native", "422")] == 1


def test_openapi_documents_the_route_with_examples_that_work(fake, settings):
    with TestClient(create_app(settings(fake))) as client:
        spec = client.get("/openapi.json").json()
        operation = spec["paths"]["/v1/predict/native"]["post"]
        schema = spec["components"]["schemas"]["NativePredictRequest"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/PredictResponse")
        assert {"413", "422", "500", "503"} <= set(operation["responses"])
        assert schema["properties"]["format"]["enum"] == ["auto", *FORMATS]
        assert len(schema["examples"]) == 2
        for example in schema["examples"]:
            assert client.post("/v1/predict/native", json=example).status_code == 200
    assert schema["examples"][0]["record"]["tools"] == EXAMPLE_OPENAI_RECORD["tools"]


def test_client_predict_record(fake, settings):
    with TestClient(create_app(settings(fake, token="t0k"))) as http:
        client = Client(http=http, token="t0k")
        got = client.predict_record(copy.deepcopy(RECORD), k=2, metadata={"agent_model": "x"})
        anthropic = client.predict_record(EXAMPLE_ANTHROPIC_RECORD, format="anthropic", k=1)
        with pytest.raises(ServingError) as bad:
            client.predict_record({**RECORD, "messages": [{"role": "robot"}]})
    assert got == fake.predict(context_from_record(RECORD), k=2)
    assert len(anthropic) == 1 and anthropic[0].tool == "get_user_details"
    assert bad.value.status == 422 and bad.value.code == "invalid_request"
    assert "record.messages[0].role" in str(bad.value)


async def test_async_client_predict_record(batch_fake, settings):
    app = create_app(settings(batch_fake))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            got = await Client(async_http=http).apredict_record(RECORD, k=2)
    assert got == batch_fake.predict(context_from_record(RECORD), 2)
