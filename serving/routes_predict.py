"""POST /v1/predict, /v1/predict/batch and /v1/predict/native: contexts in, top-k calls out.

All go through the app's scheduler (micro-batcher or direct), so a batch request's contexts may share
predictor runs with other requests'. The limits are checked before any context is converted, except the
history limit of /v1/predict/native: a record's messages are not its events (a message may hold several
calls, a result fills its call), so that one is checked on the converted context.
"""

from __future__ import annotations

from fastapi import APIRouter

from toolcast.data.errors import TraceFormatError
from toolcast.data.schema import SchemaError
from toolcast.predictor.protocol import CallPrediction
from toolcast.serving.auth import Authorized
from toolcast.serving.batching import Item, Overloaded, ShuttingDown
from toolcast.serving.errors import ApiError
from toolcast.serving.limits import check_batch_size, check_k, check_native_history, check_predict_request
from toolcast.serving.schemas import (
    BatchPredictRequest,
    BatchPredictResponse,
    CallPredictionOut,
    NativePredictRequest,
    PredictRequest,
    PredictResponse,
    error_responses,
)
from toolcast.serving.state import Ready, ServingState

router = APIRouter(prefix="/v1", tags=["predict"], dependencies=[Authorized],
                   responses=error_responses(400, 401, 409, 413, 422, 500, 503))


@router.post("/predict", response_model=PredictResponse, summary="Top-k next calls for one context")
async def predict(body: PredictRequest, state: Ready) -> PredictResponse:
    """The k most likely next calls (or `<respond>`), best first, each with p(tool), p(call), the argument
    values the model could fill, where each came from (`sources`) and the slots it could not (`free`)."""
    check_predict_request(body, state.settings)
    (answer,) = await _run(state, [(_context(state, body, ""), body.k)], body.view)
    return _response(state, answer, body.k, body.view)


@router.post("/predict/batch", response_model=BatchPredictResponse,
             summary="Top-k next calls for several contexts")
async def predict_batch(body: BatchPredictRequest, state: Ready) -> BatchPredictResponse:
    """One answer per request, in order; each request has its own k."""
    check_batch_size(len(body.requests), state.settings)
    for i, req in enumerate(body.requests):
        check_predict_request(req, state.settings, f"requests[{i}].")
    items = [(_context(state, req, f"requests[{i}]."), req.k) for i, req in enumerate(body.requests)]
    answers: list[list[CallPrediction] | None] = [None] * len(items)
    for view in sorted({req.view for req in body.requests}):  # each view's requests in one run
        which = [i for i, req in enumerate(body.requests) if req.view == view]
        for i, answer in zip(which, await _run(state, [items[i] for i in which], view), strict=True):
            answers[i] = answer
    return BatchPredictResponse(results=[_response(state, a or [], req.k, req.view)
                                         for a, req in zip(answers, body.requests, strict=True)])


@router.post("/predict/native", response_model=PredictResponse,
             summary="Top-k next calls from the agent's own request body")
async def predict_native(body: NativePredictRequest, state: Ready) -> PredictResponse:
    """As POST /v1/predict, for a conversation in the agent's own format (OpenAI chat or Responses,
    Anthropic, Gemini, LangChain): the record is read as `toolcast import` reads it, and the prediction is
    for the moment after its last message. A record that cannot be read is a 422 naming its field
    (`record.messages.3.tool_call_id`)."""
    check_k(body.k, state.settings, ["body"])
    try:
        context = body.to_context(state.interner)
    except TraceFormatError as e:
        raise ApiError.from_format_error(e) from None
    check_native_history(len(context.events), state.settings)
    (answer,) = await _run(state, [(context, body.k)], body.view)
    return _response(state, answer, body.k, body.view)


def _context(state: ServingState, req: PredictRequest, path: str):
    try:
        return req.to_context(path, state.interner)
    except SchemaError as e:
        raise ApiError.from_schema_error(e) from None


async def _run(state: ServingState, items: list[Item], view: str = "next") -> list[list[CallPrediction]]:
    scheduler = state.scheduler if view == "next" else state.horizon_scheduler
    if scheduler is None:
        raise ApiError(409, state.no_horizon, code="no_horizon_view",
                       detail=[{"loc": ["body", "view"], "msg": state.no_horizon, "type": "value_error"}])
    try:
        return await scheduler.predict(items)
    except Overloaded as e:
        raise ApiError(503, f"server overloaded: {e}; retry shortly", code="overloaded",
                       headers={"Retry-After": "1"}) from None
    except ShuttingDown as e:
        raise ApiError(503, str(e), code="unavailable") from None


def _response(state: ServingState, answer: list[CallPrediction], k: int, view: str) -> PredictResponse:
    name = state.info.name if state.info is not None else "unknown"
    return PredictResponse(predictions=[CallPredictionOut.from_prediction(p) for p in answer],
                           predictor=name, k=k, view=view)
