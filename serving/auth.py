"""The optional bearer token: when `ServeSettings.token` is set, every /v1 route needs it.

Declared through FastAPI's `HTTPBearer` so the OpenAPI schema documents it; compared in constant time.
A missing, malformed or wrong token is a 401 that says which of the three it was. Health, readiness and
metrics stay open: probes and scrapers run inside the operator's network and carry no secrets.

A request without the token learns nothing about its body: FastAPI reads the body before it runs the
dependencies, so the error handlers ask `token_error` first and answer its 401 instead of a 400 or 422.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from toolcast.serving.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="Needed when the server was started with --token.")


async def require_token(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    error = _token_error(request, None if credentials is None else credentials.credentials)
    if error is not None:
        raise error


def token_error(request: Request) -> ApiError | None:
    """The 401 this request gets on a route that needs the token, else None (for the error handlers)."""
    route = request.scope.get("route")
    if not any(getattr(d, "dependency", None) is require_token for d in getattr(route, "dependencies", ())):
        return None
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    return _token_error(request, credentials if scheme.lower() == "bearer" and credentials else None)


def _token_error(request: Request, credentials: str | None) -> ApiError | None:
    token: str | None = request.app.state.serving.settings.token
    if token is None:
        return None
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        if request.headers.get("authorization"):
            message = "malformed Authorization header: expected 'Bearer <token>'"
        else:
            message = "missing bearer token: send 'Authorization: Bearer <token>'"
        return ApiError(401, message, headers=challenge)
    if not hmac.compare_digest(credentials.encode(), token.encode()):
        return ApiError(401, "wrong bearer token",
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return None


Authorized = Depends(require_token)
"""Router-level dependency: `APIRouter(dependencies=[Authorized])`."""
