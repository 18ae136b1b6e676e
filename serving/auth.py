"""The optional bearer token: when `ServeSettings.token` is set, every /v1 route needs it.

Declared through FastAPI's `HTTPBearer` so the OpenAPI schema documents it; compared in constant time.
A missing, malformed or wrong token is a 401 that says which of the three it was. Health, readiness and
metrics stay open: probes and scrapers run inside the operator's network and carry no secrets.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from toolcast.serving.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="Needed when the server was started with --token.")


async def require_token(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    token: str | None = request.app.state.serving.settings.token
    if token is None:
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        if request.headers.get("authorization"):
            message = "malformed Authorization header: expected 'Bearer <token>'"
        else:
            message = "missing bearer token: send 'Authorization: Bearer <token>'"
        raise ApiError(401, message, headers=challenge)
    if not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
        raise ApiError(401, "wrong bearer token",
                       headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


Authorized = Depends(require_token)
"""Router-level dependency: `APIRouter(dependencies=[Authorized])`."""
