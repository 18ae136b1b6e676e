"""`Client`: the hosted endpoint as a `Predictor`, so the runtime can use it in place of the embedded one.

    client = Client("http://predictor:8000", token=os.environ.get("TOOLCAST_TOKEN"))
    speculator = Client("http://predictor:8000", view="horizon")  # sets of calls to run ahead (a runtime's)
    calls = client.predict(context, k=3)              # sync, like any Predictor
    calls = await client.apredict(context, k=3)       # async, from the agent's event loop
    many = client.predict_batch([c1, c2], k=3)        # one HTTP request (chunked at max_batch)
    calls = client.predict_record({"messages": messages, "tools": tools}, k=3)  # the agent's own format

Needs only httpx (no FastAPI). Every failure, HTTP or transport, is a `ServingError` carrying the
status, the server's error code and message, and the request id to look up in the server log; there
are no retries, because a prediction that arrives late is worth nothing to a speculation runtime.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx

from toolcast.data.schema import Context
from toolcast.predictor.protocol import CallPrediction


class ServingError(RuntimeError):
    """The server refused or failed a request, or could not be reached (`status` None)."""

    def __init__(self, message: str, *, status: int | None = None, code: str = "transport_error",
                 request_id: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.request_id = request_id


def context_body(context: Context, k: int, view: str = "next") -> dict[str, Any]:
    """The request body of POST /v1/predict for one context (the canonical event and tool dicts)."""
    body = {"events": [e.to_dict() for e in context.events], "tools": [t.to_dict() for t in context.tools],
            "metadata": context.metadata, "k": k}
    if view != "next":  # a server from before views knows no such field
        body["view"] = view
    return body


def record_body(record: Any, k: int, format: str = "auto",
                metadata: dict[str, Any] | None = None, view: str = "next") -> dict[str, Any]:
    """The request body of POST /v1/predict/native: the record as the agent holds it, read by the server."""
    body = {"record": record, "format": format, "k": k, "metadata": metadata or {}}
    if view != "next":
        body["view"] = view
    return body


def _predictions(answer: dict[str, Any]) -> list[CallPrediction]:
    return [CallPrediction(tool=p["tool"], args=p.get("args", {}), free=p.get("free", []),
                           p_tool=p.get("p_tool", 0.0), p_call=p.get("p_call", 0.0),
                           sources=p.get("sources", {}), p_horizon=p.get("p_horizon"))
            for p in answer["predictions"]]


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        return response.json()
    try:
        body = response.json()
        code, message = str(body.get("error", "error")), str(body.get("message", response.reason_phrase))
        request_id = body.get("request_id")
    except (ValueError, AttributeError):
        code, message, request_id = "error", response.text[:200] or response.reason_phrase, None
    request_id = request_id or response.headers.get("x-request-id")
    raise ServingError(f"{response.status_code} {code}: {message}", status=response.status_code, code=code,
                       request_id=request_id)


class Client:
    """A `Predictor` that asks a `toolcast serve` endpoint; sync methods and `a`-prefixed async ones."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, token: str | None = None,
                 timeout: float = 5.0, name: str = "toolcast-serve", max_batch: int = 256,
                 http: httpx.Client | None = None, async_http: httpx.AsyncClient | None = None,
                 view: str = "next"):
        """`http` / `async_http` replace the clients this one would make (shared pools, tests). `view`:
        "next" (the next calls) or "horizon" (the set of calls likely before the next write, what a
        runtime runs ahead; the server answers 409 when its model has none)."""
        if view not in ("next", "horizon"):
            raise ValueError(f"view must be 'next' or 'horizon', got {view!r}")
        self.view = view
        self.name = name
        self.max_batch = max_batch
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = timeout
        self._http = http
        self._async_http = async_http
        self._owns_http = http is None
        self._owns_async_http = async_http is None
        self._lock = threading.Lock()  # the runtime may call predict() from several threads

    # ---- sync -------------------------------------------------------------------------------------
    def _client(self) -> httpx.Client:
        if self._http is None:
            with self._lock:
                if self._http is None:
                    self._http = httpx.Client(base_url=self._base_url, timeout=self._timeout)
        return self._http

    def _request(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        try:
            response = self._client().request(method, path, json=json, headers=self._headers)
        except httpx.HTTPError as e:
            raise ServingError(f"cannot reach {self._base_url}{path}: {e}") from e
        return _check(response)

    def predict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        return _predictions(self._request("POST", "/v1/predict", context_body(context, k, self.view)))

    def predict_batch(self, contexts: Sequence[Context], k: int = 3) -> list[list[CallPrediction]]:
        out: list[list[CallPrediction]] = []
        for chunk in _chunks(contexts, self.max_batch):
            body = {"requests": [context_body(c, k, self.view) for c in chunk]}
            out.extend(_predictions(r) for r in self._request("POST", "/v1/predict/batch", body)["results"])
        return out

    def predict_record(self, record: Any, k: int = 3, format: str = "auto",
                       metadata: dict[str, Any] | None = None) -> list[CallPrediction]:
        """Top-k next calls at the end of a conversation in the agent's own format (POST /v1/predict/native):
        `{"messages": messages, "tools": tools}` (OpenAI chat), an Anthropic, Gemini or Responses body, a
        LangChain message list. A record the server cannot read is a ServingError 422 naming the field."""
        body = record_body(record, k, format, metadata, self.view)
        return _predictions(self._request("POST", "/v1/predict/native", body))

    def info(self) -> dict[str, Any]:
        """GET /v1/model: name, version, tools, card, limits, batching."""
        return self._request("GET", "/v1/model")

    def ready(self) -> bool:
        try:
            return self._client().get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        if self._http is not None and self._owns_http:
            self._http.close()
            self._http = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- async ------------------------------------------------------------------------------------
    def _aclient(self) -> httpx.AsyncClient:
        if self._async_http is None:
            self._async_http = httpx.AsyncClient(base_url=self._base_url, timeout=self._timeout)
        return self._async_http

    async def _arequest(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        try:
            response = await self._aclient().request(method, path, json=json, headers=self._headers)
        except httpx.HTTPError as e:
            raise ServingError(f"cannot reach {self._base_url}{path}: {e}") from e
        return _check(response)

    async def apredict(self, context: Context, k: int = 3) -> list[CallPrediction]:
        return _predictions(await self._arequest("POST", "/v1/predict", context_body(context, k, self.view)))

    async def apredict_batch(self, contexts: Sequence[Context], k: int = 3) -> list[list[CallPrediction]]:
        out: list[list[CallPrediction]] = []
        for chunk in _chunks(contexts, self.max_batch):
            body = {"requests": [context_body(c, k, self.view) for c in chunk]}
            answer = await self._arequest("POST", "/v1/predict/batch", body)
            out.extend(_predictions(r) for r in answer["results"])
        return out

    async def apredict_record(self, record: Any, k: int = 3, format: str = "auto",
                              metadata: dict[str, Any] | None = None) -> list[CallPrediction]:
        body = record_body(record, k, format, metadata, self.view)
        return _predictions(await self._arequest("POST", "/v1/predict/native", body))

    async def ainfo(self) -> dict[str, Any]:
        return await self._arequest("GET", "/v1/model")

    async def aclose(self) -> None:
        if self._async_http is not None and self._owns_async_http:
            await self._async_http.aclose()
            self._async_http = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
        self.close()


def _chunks(items: Sequence[Context], size: int) -> list[Sequence[Context]]:
    return [items[i:i + size] for i in range(0, len(items), size)] or []
