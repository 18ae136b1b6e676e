"""GET /healthz (the process is alive), GET /readyz (the model is loaded), GET /metrics (Prometheus).

Liveness fails only when the model failed to load, so an orchestrator restarts that replica; readiness
stays false while the model loads, so no traffic reaches a replica that cannot answer yet.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from toolcast.serving.metrics import CONTENT_TYPE
from toolcast.serving.schemas import HealthResponse, ReadyResponse
from toolcast.serving.state import State

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, summary="Liveness",
            responses={503: {"model": HealthResponse, "description": "The model failed to load."}})
async def healthz(state: State):
    if state.status == "failed":
        return JSONResponse({"status": f"failed: {state.reason}"}, status_code=503)
    return HealthResponse(status="ok")


@router.get("/readyz", response_model=ReadyResponse, summary="Readiness: the model is loaded",
            responses={503: {"model": ReadyResponse, "description": "Still loading, or failed."}})
async def readyz(state: State):
    if state.status == "ready":
        return ReadyResponse(ready=True, status="ready")
    status = "loading" if state.status == "loading" else f"failed: {state.reason}"
    return JSONResponse({"ready": False, "status": status}, status_code=503, headers={"Retry-After": "1"})


@router.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format."}})
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
