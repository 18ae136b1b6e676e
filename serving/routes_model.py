"""GET /v1/model: which model answers, on which tools it was trained, its metrics card, the limits."""

from __future__ import annotations

from fastapi import APIRouter

from toolcast.serving.auth import Authorized
from toolcast.serving.schemas import BatchingOut, LimitsOut, ModelResponse, error_responses
from toolcast.serving.state import Ready

router = APIRouter(prefix="/v1", tags=["model"], dependencies=[Authorized],
                   responses=error_responses(401, 500, 503))


@router.get("/model", response_model=ModelResponse, summary="The loaded model")
async def model(state: Ready) -> ModelResponse:
    """What the predictor exposes through its optional `info()` (see toolcast.serving.loading), plus this
    server's limits and batching settings."""
    info, s = state.info, state.settings
    assert info is not None  # Ready guarantees it
    return ModelResponse(
        name=info.name, version=info.version, tools=info.tools, card=info.card, batched=info.batched,
        views=list(info.views),
        limits=LimitsOut(max_body_bytes=s.max_body_bytes, max_events=s.max_events, max_k=s.max_k,
                         max_batch_items=s.max_batch_items),
        batching=BatchingOut(enabled=s.batching, max_batch_size=s.max_batch_size, max_wait_ms=s.max_wait_ms),
    )
