"""`create_app(settings)`: the FastAPI app of `toolcast serve`. Nothing happens at import.

The predictor is built inside the lifespan, by `settings.loader` or `loading.load_predictor`, in a
worker thread: by default in the background, so /healthz answers at once and /readyz turns ready when
the model is in (a big model loading is not a dead process). Then the scheduler starts: the
micro-batcher (`batching.MicroBatcher`) or, with batching off, one predictor run per request.

Layers, outermost first: request id + metrics + catch-all 500 (`middleware`), body size (`limits`),
FastAPI's routing with the error handlers (`errors`), the routers (`routes_*`), each with the bearer
token check (`auth`) on /v1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from toolcast import __version__
from toolcast.predictor.protocol import Predictor
from toolcast.serving import routes_health, routes_model, routes_predict
from toolcast.serving.auth import token_error
from toolcast.serving.batching import DirectScheduler, MicroBatcher, Scheduler, run_predictor
from toolcast.serving.errors import install_error_handlers
from toolcast.serving.interning import EventInterner
from toolcast.serving.limits import BodyLimitMiddleware, document_limits
from toolcast.serving.loading import (
    ModelInfo,
    ModelLoadError,
    describe,
    load_horizon,
    load_predictor,
)
from toolcast.serving.middleware import RequestContextMiddleware
from toolcast.serving.settings import ServeSettings
from toolcast.serving.state import ServingState

log = logging.getLogger("toolcast.serving")

DESCRIPTION = """\
Predicts which tool call an LLM agent will make next, with which arguments and how likely, from the
history of its session: the canonical toolcast context (POST /v1/predict), or the request body the agent
sends its LLM, in OpenAI, Anthropic, Gemini or LangChain form (POST /v1/predict/native). Limits of this
server: body {max_body_bytes} bytes, {max_events} events per context, k <= {max_k}, {max_batch_items}
contexts per batch request.
"""


def create_app(settings: ServeSettings) -> FastAPI:
    app = FastAPI(title="toolcast", version=__version__, lifespan=_lifespan,
                  description=DESCRIPTION.format(**vars(settings)))
    state = ServingState(settings)
    if settings.intern_events > 0:
        state.interner = EventInterner(settings.intern_events)
        state.metrics.watch_interner(state.interner)
    app.state.serving = state
    install_error_handlers(app, token_error=token_error)
    routers = (routes_predict.router, routes_model.router, routes_health.router)
    for router in routers:
        app.include_router(router)
    # add_middleware wraps: the last added is the outermost.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=state.metrics,
                       routes=[r.path for router in routers for r in router.routes])
    generate = app.openapi
    app.openapi = lambda: document_limits(generate(), settings)  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """The app from TOOLCAST_SERVE_* variables: what each `uvicorn --workers N` worker builds."""
    return create_app(ServeSettings.from_env())


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ServingState = app.state.serving
    if state.settings.load_in_background:
        loading: asyncio.Task | None = asyncio.create_task(_load(state), name="toolcast-load-model")
    else:
        loading = None
        await _load(state)
        if state.status != "ready":
            raise ModelLoadError(state.reason)
    try:
        yield
    finally:
        if loading is not None and not loading.done():
            loading.cancel()  # the loader thread finishes on its own; nobody waits for it
        if state.scheduler is not None:
            await state.scheduler.stop()
        close = getattr(state.predictor, "close", None)
        if callable(close):
            close()
        state.metrics.model_loaded.set(0)


async def _load_horizon(state: ServingState, predictor: Predictor, info: ModelInfo) -> None:
    """The horizon view beside the next-call one (`loading.load_horizon`), run one request at a time in
    the thread pool (it has no batch path). A directory whose horizon files cannot be read still serves
    the next-call view; requests for the horizon one are told why."""
    settings = state.settings
    try:
        loader = settings.horizon_loader or functools.partial(load_horizon, contracts=settings.contracts)
        horizon = await asyncio.to_thread(loader, settings.model_dir, predictor)
    except Exception as e:  # noqa: BLE001 - the next-call view still serves; the reason is kept
        state.no_horizon = f"the horizon view failed to load: {e}"
        log.error("no horizon view: %s", e)
        return
    if horizon is None:
        return
    # its own in-flight bound (max_queue) beside the next-call scheduler's; no queue-depth gauge of its
    # own (the metrics have one, the next-call scheduler's); its requests are counted like any other
    state.horizon_scheduler = DirectScheduler(functools.partial(run_predictor, horizon),
                                              max_queue=settings.max_queue)
    info.views.append("horizon")


async def _load(state: ServingState) -> None:
    settings = state.settings
    loader = settings.loader or load_predictor
    try:
        predictor = await asyncio.to_thread(loader, settings.model_dir)
        info = describe(predictor, settings.version)
    except Exception as e:
        state.status, state.reason = "failed", str(e) or type(e).__name__
        # A ModelLoadError already says what is wrong; anything else gets its traceback in the log.
        log.error("cannot serve: %s", state.reason, exc_info=not isinstance(e, ModelLoadError))
        return
    run = functools.partial(run_predictor, predictor)
    scheduler: Scheduler
    if settings.batching:
        scheduler = MicroBatcher(run, max_batch_size=settings.max_batch_size,
                                 max_wait_s=settings.max_wait_ms / 1000, max_queue=settings.max_queue,
                                 metrics=state.metrics)
    else:
        scheduler = DirectScheduler(run, max_queue=settings.max_queue, metrics=state.metrics)
    scheduler.start()
    await _load_horizon(state, predictor, info)
    state.predictor, state.info, state.scheduler = predictor, info, scheduler
    state.status = "ready"
    state.metrics.model_loaded.set(1)
    log.info("serving %s (version %s, batching %s)", info.name, info.version or "-",
             "on" if settings.batching else "off")
