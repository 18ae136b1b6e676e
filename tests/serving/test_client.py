"""`toolcast.serving.Client` is a Predictor: the same answers over HTTP as the embedded predictor gives."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from toolcast.data.schema import Context, Message, ToolCall, ToolSpec
from toolcast.predictor.protocol import Predictor
from toolcast.serving import Client, ServingError, create_app


def context() -> Context:
    return Context(
        events=[Message("user", "I am user_1"), Message("assistant", "", turn=0),
                ToolCall("c1", 0, "get_user", {"user_id": "user_1"}, '{"orders": ["o9"]}', t_start=1.0)],
        tools=[ToolSpec("get_user", "Look up a user.", {"type": "object", "properties": {"user_id": {}}}),
               ToolSpec("get_order", "", {"type": "object", "properties": {"order_id": {}}})],
        metadata={"agent_model": "m"},
    )


def test_client_is_a_predictor_with_the_same_answers(fake, settings):
    with TestClient(create_app(settings(fake))) as http:
        client = Client(http=http)
        assert isinstance(client, Predictor)
        got = client.predict(context(), k=3)
        assert client.ready()
        info = client.info()
    assert got == fake.predict(context(), k=3)
    assert got[0].sources == {"user_id": "args:get_user.user_id"} and got[0].complete
    assert info["name"] == "fake" and info["version"] == "0.0-test"


def test_client_batch_is_chunked_and_ordered(batch_fake, settings):
    contexts = [context(), Context([], []), context()]
    with TestClient(create_app(settings(batch_fake))) as http:
        got = Client(http=http, max_batch=2).predict_batch(contexts, k=2)
    assert got == [batch_fake.predict(c, 2) for c in contexts]


def test_client_errors_carry_code_and_request_id(fake, settings):
    with TestClient(create_app(settings(fake, token="t0k", max_k=2))) as http:
        with pytest.raises(ServingError) as no_token:
            Client(http=http).predict(context())
        with pytest.raises(ServingError) as big_k:
            Client(http=http, token="t0k").predict(context(), k=3)
        assert Client(http=http, token="t0k").predict(context(), k=2)
    assert no_token.value.status == 401 and no_token.value.code == "unauthorized"
    assert no_token.value.request_id
    assert big_k.value.status == 422 and "maximum k=2" in str(big_k.value)


def test_unreachable_server_is_a_serving_error():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    http = httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    with pytest.raises(ServingError, match="cannot reach") as e:
        Client(http=http).predict(context())
    assert e.value.status is None and e.value.code == "transport_error"
    assert not Client(http=http).ready()


async def test_async_client(batch_fake, settings):
    app = create_app(settings(batch_fake, token="t0k"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            client = Client(async_http=http, token="t0k")
            one = await client.apredict(context(), k=2)
            many = await client.apredict_batch([context(), Context([], [])], k=1)
            info = await client.ainfo()
    assert one == batch_fake.predict(context(), 2)
    assert many == [batch_fake.predict(context(), 1), batch_fake.predict(Context([], []), 1)]
    assert info["batched"] is True
