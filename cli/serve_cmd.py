"""`toolcast serve`: the hosted prediction endpoint (FastAPI on uvicorn) for a model directory."""

from __future__ import annotations

import argparse
import os

from toolcast.cli.common import fail

TOKEN_ENV = "TOOLCAST_SERVE_TOKEN"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a model over HTTP (predict, batch, model card, health, metrics)",
        description="Serve a model directory over HTTP: POST /v1/predict and /v1/predict/batch answer the "
        "top-k next calls of a context, GET /v1/model describes the model, /healthz and /readyz are the "
        "probes, /metrics is Prometheus text, /docs the OpenAPI page. Concurrent requests are "
        "micro-batched into one predictor run. Needs the [serve] extra.")
    p.add_argument("--model", required=True, metavar="DIR", help="model directory to serve")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes, each with its own copy of the model (default: 1)")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"require 'Authorization: Bearer TOKEN' on /v1 (default: ${TOKEN_ENV}, else none)")
    p.add_argument("--no-batching", dest="batching", action="store_false",
                   help="one predictor run per request instead of micro-batching")
    p.add_argument("--max-batch-size", type=int, default=64, help="contexts per predictor run (default: 64)")
    p.add_argument("--max-wait-ms", type=float, default=0.5,
                   help="how long a batch waits for more contexts to join (default: 0.5)")
    p.add_argument("--max-k", type=int, default=16, help="largest k a request may ask for (default: 16)")
    p.add_argument("--max-events", type=int, default=512, help="longest history accepted (default: 512)")
    p.add_argument("--max-body-bytes", type=int, default=1_000_000,
                   help="largest request body accepted (default: 1000000)")
    p.add_argument("--intern-events", type=int, default=16_384, metavar="N",
                   help="recent request events kept so a session's next request reuses the predictor's "
                        "per-event work (0: off; default: 16384)")
    p.add_argument("--contracts", metavar="FILE",
                   help="which tools the horizon view may propose and which change state: the file "
                        "`toolcast train --contracts` was given (default: the builtin name patterns and the "
                        "shipped coding contracts, as train's default)")
    p.add_argument("--access-log", action="store_true", help="log every request (uvicorn's access log)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from toolcast.serving.app import create_app
        from toolcast.serving.loading import ModelLoadError, find_loader
        from toolcast.serving.settings import ServeSettings
    except ImportError as e:
        return fail(f"toolcast serve needs the [serve] extra (pip install 'toolcast[serve]'): {e}")
    if not os.path.isdir(args.model):
        return fail(f"model directory {args.model!r} does not exist or is not a directory")
    if args.workers < 1:
        return fail(f"--workers must be at least 1, got {args.workers}")
    try:
        find_loader()
        if args.contracts is not None:  # read now: a bad file stops here, not at the first horizon request
            from toolcast.runtime.coding_contracts import naming_policy

            naming_policy(args.contracts)
        settings = ServeSettings(
            model_dir=args.model, token=args.token or None, batching=args.batching,
            max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_k=args.max_k,
            max_events=args.max_events, max_body_bytes=args.max_body_bytes, intern_events=args.intern_events,
            contracts=args.contracts)
    except (ModelLoadError, ValueError) as e:
        return fail(str(e))
    common = {"host": args.host, "port": args.port, "access_log": args.access_log, "log_level": "info"}
    if args.workers == 1:
        uvicorn.run(create_app(settings), **common)
    else:
        # Each worker process builds its own app from the environment (settings cannot be pickled over).
        os.environ.update(settings.to_env())
        uvicorn.run("toolcast.serving.app:app_from_env", factory=True, workers=args.workers, **common)
    return 0
