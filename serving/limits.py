"""The server's limits: body size, history length, k, contexts per batch request.

Each is answered with a 4xx that names the limit and the value sent, so a client can fix its request:
413 for too much (body bytes, events, batch items), 422 for a k beyond the server's maximum. The body
limit is an ASGI middleware that stops reading at the limit (a declared Content-Length over it is refused
before any byte is read), so a huge body never reaches the JSON parser. The others are checked on the
parsed request, before the context is converted (the events of a native record: on the context it
converted to, as its messages are not its events).

`document_limits` writes the configured limits into the OpenAPI schema (`maximum`, `maxItems`), and drops
the bearer-token requirement when no token is configured, so the published contract is the one this
server enforces.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolcast.serving.errors import ApiError, error_response
from toolcast.serving.schemas import PredictRequest, field_loc
from toolcast.serving.settings import ServeSettings

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with a 413; pass the others on, read once."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send, f"{declared} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        buffered: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                buffered.append(message)
                break
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send, f"more than {self.max_bytes} bytes")
                return
            chunks.append(body)
            if not message.get("more_body", False):
                buffered.insert(0, {"type": "http.request", "body": b"".join(chunks), "more_body": False})
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, got: str) -> None:
        response = error_response(
            scope, 413, "payload_too_large",
            f"request body too large: {got}; this server accepts at most {self.max_bytes} bytes",
            [{"loc": ["body"], "msg": f"at most {self.max_bytes} bytes", "type": "body_too_large"}],
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def check_predict_request(req: PredictRequest, settings: ServeSettings, path: str = "") -> None:
    """History length and k of one context; `path` prefixes the field names (`requests[2].`)."""
    loc: list[str | int] = ["body", *field_loc(path)]
    if len(req.events) > settings.max_events:
        raise ApiError(
            413, f"history too long: {path}events has {len(req.events)} events; this server accepts at "
                 f"most {settings.max_events} (send the most recent ones)", code="history_too_long",
            detail=[{"loc": [*loc, "events"], "msg": f"at most {settings.max_events} events",
                     "type": "too_long"}])
    check_k(req.k, settings, loc, path)


def check_k(k: int, settings: ServeSettings, loc: list[str | int], path: str = "") -> None:
    if k > settings.max_k:
        raise ApiError(
            422, f"{path}k={k} is more than this server's maximum k={settings.max_k}",
            detail=[{"loc": [*loc, "k"], "msg": f"at most {settings.max_k}", "type": "less_than_equal"}])


def check_native_history(n_events: int, settings: ServeSettings) -> None:
    """The limit on events, on the context a native record converted to (its messages are not events)."""
    if n_events > settings.max_events:
        raise ApiError(
            413, f"history too long: record holds {n_events} events (messages, and tool calls with their "
                 f"results); this server accepts at most {settings.max_events} (send the most recent "
                 "messages)", code="history_too_long",
            detail=[{"loc": ["body", "record"], "msg": f"at most {settings.max_events} events",
                     "type": "too_long"}])


def check_batch_size(n: int, settings: ServeSettings) -> None:
    if n > settings.max_batch_items:
        raise ApiError(
            413, f"too many contexts: {n} in one batch request; this server accepts at most "
                 f"{settings.max_batch_items} (split the batch)", code="batch_too_large",
            detail=[{"loc": ["body", "requests"], "msg": f"at most {settings.max_batch_items} items",
                     "type": "too_long"}])


def document_limits(schema: dict[str, Any], settings: ServeSettings) -> dict[str, Any]:
    """Write this server's limits into the generated OpenAPI schema (in place, and return it)."""
    components = schema.get("components", {}).get("schemas", {})
    req = components.get("PredictRequest", {}).get("properties", {})
    if "k" in req:
        req["k"]["maximum"] = settings.max_k
    if "events" in req:
        req["events"]["maxItems"] = settings.max_events
    native = components.get("NativePredictRequest", {}).get("properties", {})
    if "k" in native:
        native["k"]["maximum"] = settings.max_k
    batch = components.get("BatchPredictRequest", {}).get("properties", {})
    if "requests" in batch:
        batch["requests"]["maxItems"] = settings.max_batch_items
    if settings.token is None:
        schema.get("components", {}).pop("securitySchemes", None)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                operation.pop("security", None)
                operation.get("responses", {}).pop("401", None)
    return schema
