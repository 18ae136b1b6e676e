"""The outermost layer of every request: a request id, the request metrics, and the catch-all for errors.

A plain ASGI middleware (not `BaseHTTPMiddleware`, which costs a task per request). It

1. takes the client's `X-Request-ID` when it is a short token, else makes one, and returns it as a header;
2. catches any exception the app lets escape, logs its traceback server-side under the request id and
   answers a JSON 500 that holds only the id: no stack trace ever reaches a client;
3. counts the request and its latency by route (known route paths only, so labels stay bounded) and
   the error answers by code.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from toolcast.serving.errors import REQUEST_ID_HEADER, error_response
from toolcast.serving.metrics import Metrics

log = logging.getLogger("toolcast.serving")

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Iterable[str]):
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        t0 = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("%s %s failed (request id %s)", scope.get("method"), scope.get("path"), request_id)
            if started:  # the response is half sent: nothing valid can follow
                raise
            response = error_response(
                scope, 500, "internal_error",
                f"internal error; the server log has the details under request id {request_id}")
            await response(scope, receive, send_with_id)
        finally:
            route = scope.get("path", "") if scope.get("path") in self.routes else "other"
            self.metrics.observe_request(scope.get("method", ""), route, status, time.perf_counter() - t0)
            if status >= 400:
                self.metrics.errors.labels(state.get("error_code", str(status))).inc()


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            if _CLIENT_ID.match(text):
                return text
            break
    return uuid.uuid4().hex
