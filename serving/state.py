"""What one running app holds (settings, metrics, the predictor once loaded, the scheduler), and the
`Annotated` dependencies routes use to reach it.

The predictor loads in the background during the lifespan (see `app.py`), so the state moves from
`loading` to `ready` (or `failed`, with the reason); routes that need the model ask for `Ready`, which
answers 503 until then. Dependencies are `async def` on purpose: FastAPI runs a plain `def` dependency in
its thread pool, a thread hop per dependency per request that cost a third of the throughput.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from fastapi import Depends, Request

from toolcast.predictor.protocol import Predictor
from toolcast.serving.batching import Scheduler
from toolcast.serving.errors import ApiError
from toolcast.serving.interning import EventInterner
from toolcast.serving.loading import ModelInfo
from toolcast.serving.metrics import Metrics
from toolcast.serving.settings import ServeSettings

Status = Literal["loading", "ready", "failed"]


@dataclass
class ServingState:
    settings: ServeSettings
    metrics: Metrics = field(default_factory=Metrics)
    status: Status = "loading"
    reason: str = ""
    """Why loading failed (a message, no traceback)."""
    predictor: Predictor | None = None
    info: ModelInfo | None = None
    scheduler: Scheduler | None = None
    horizon_scheduler: Scheduler | None = None
    """Runs the horizon view (requests with `"view": "horizon"`); None when the model has none."""
    no_horizon: str = "this model directory has no horizon view (horizon.json and fanout.json.gz)"
    """What a request for the horizon view is told when there is none."""
    interner: EventInterner | None = None
    """Shares event objects across requests (None: interning off, `settings.intern_events` = 0)."""


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


async def get_ready(request: Request) -> ServingState:
    state: ServingState = request.app.state.serving
    if state.status != "ready":
        message = ("the model is still loading; retry shortly" if state.status == "loading"
                   else f"the model failed to load: {state.reason}")
        raise ApiError(503, message, code="not_ready", headers={"Retry-After": "1"})
    return state


State = Annotated[ServingState, Depends(get_state)]
Ready = Annotated[ServingState, Depends(get_ready)]
