"""Every error answer has one shape (`schemas.ErrorResponse`) and says what was wrong, never how the code
failed: `{"error": code, "message": ..., "detail": [{"loc", "msg", "type"}], "request_id": ...}`.

Routes raise `ApiError`; FastAPI's own validation errors and Starlette's 404/405 are rewritten into the
same shape here. A body error on a route that needs the token is answered with the token's 401 when the
token is missing or wrong (`auth.token_error`). Answers are ASCII JSON, so nothing a client sent (a lone
surrogate in a key named by `loc`) can make an error answer fail to encode. Unexpected exceptions never
reach this module: `middleware.RequestContextMiddleware` catches them, logs the traceback under the
request id and answers a bare 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from toolcast.data.errors import TraceFormatError
from toolcast.data.schema import SchemaError
from toolcast.serving.schemas import field_loc

REQUEST_ID_HEADER = "x-request-id"

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
                 415: "unsupported_media_type", 422: "invalid_request", 500: "internal_error",
                 503: "unavailable"}


class ApiError(Exception):
    """An answer with a 4xx/5xx status that tells the client what to change."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 detail: Sequence[Mapping[str, Any]] = (), headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _STATUS_CODES.get(status, "error")
        self.detail = list(detail)
        self.headers = dict(headers or {})

    @classmethod
    def from_schema_error(cls, e: SchemaError) -> ApiError:
        """A canonical-schema error as a 422 whose loc points at the field (`body.events.3.turn`)."""
        msg = str(e).split(": ", 1)[-1]
        return cls(422, f"invalid request: {e}",
                   detail=[{"loc": ["body", *field_loc(e.field)], "msg": msg, "type": "schema_error"}])

    @classmethod
    def from_format_error(cls, e: TraceFormatError, path: str = "record") -> ApiError:
        """A record an importer cannot read as a 422 whose loc points into it (`body.record.messages.3.role`).

        The importer names the field relative to the record (its location's record path, e.g. `[0]` for
        an item of a list, then the field), so `path` + those give the field's place in the body."""
        inner = ".".join(p for p in (e.where.record, "" if e.field == "record" else e.field or "") if p)
        where = f"{path}.{inner}".replace(".[", "[") if inner else path
        return cls(422, f"invalid request: {where}: {e.reason}",
                   detail=[{"loc": ["body", *field_loc(where)], "msg": e.reason, "type": "format_error"}])


def request_id_of(scope: Mapping[str, Any]) -> str:
    return str(scope.get("state", {}).get("request_id", "-"))


def error_response(scope: Mapping[str, Any], status: int, code: str, message: str,
                   detail: Sequence[Mapping[str, Any]] = (), headers: Mapping[str, str] | None = None
                   ) -> Response:
    """The JSON error answer; notes the code in the request state for the error metric."""
    state = scope.get("state")
    if isinstance(state, dict):
        state["error_code"] = code
    body = {"error": code, "message": message, "detail": list(detail), "request_id": request_id_of(scope)}
    return Response(json.dumps(body, ensure_ascii=True, default=str), status_code=status,
                    media_type="application/json", headers=dict(headers or {}))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _answer(request, exc)


def _unauthorized(request: Request) -> Response | None:
    """The token's 401, answered before a body error (`install_error_handlers`' `token_error`)."""
    token_error = getattr(request.app.state, "token_error", None)
    error = None if token_error is None else token_error(request)
    return None if error is None else _answer(request, error)


def _answer(request: Request, exc: ApiError) -> Response:
    return error_response(request.scope, exc.status, exc.code, exc.message, exc.detail, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    unauthorized = _unauthorized(request)
    if unauthorized is not None:
        return unauthorized
    # Never echo the offending input: it can be large, and it is the client's own data anyway.
    detail = [{"loc": [p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
               "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in exc.errors()]
    first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {len(detail) - 1} more)" if len(detail) > 1 else ""
    return error_response(request.scope, 422, "invalid_request",
                          f"invalid request: {where}: {first['msg']}{more}", detail)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # the body could not be parsed
        unauthorized = _unauthorized(request)
        if unauthorized is not None:
            return unauthorized
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(request.scope, exc.status_code, code, message, headers=exc.headers)


def install_error_handlers(app: FastAPI,
                           token_error: Callable[[Request], ApiError | None] | None = None) -> None:
    """One JSON error shape for every error; `token_error` (`auth.token_error`, passed in: auth raises
    ApiError, so it sits above this module) gives a request's 401, which body errors answer first."""
    app.state.token_error = token_error
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
