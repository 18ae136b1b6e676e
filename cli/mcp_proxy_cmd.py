"""`toolcast mcp-proxy`: an MCP server in front of MCP servers, running their read-only tools ahead."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os

from toolcast.cli.common import atomic_output, fail

log = logging.getLogger("toolcast.cli.mcp_proxy")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "mcp-proxy", help="an MCP server that relays to MCP servers and runs their read-only tools ahead",
        description="Serve, over stdio or streamable HTTP, every tool, resource and prompt of the upstream "
        "MCP servers, relaying each request. After each tool result the predictor ranks the next calls; "
        "read-only tools of trusted servers (annotation readOnlyHint) run ahead, and a call that matches one "
        "exactly gets its result. Annotations of servers not named in --trust are ignored (nothing of "
        "theirs runs ahead). Needs the [mcp] extra.")
    p.add_argument("--upstream", action="append", required=True, metavar="CMD|URL",
                   help="an upstream server: a command line (started, over stdio) or an http(s) URL "
                        "(streamable HTTP); repeat for several")
    p.add_argument("--trust", action="append", default=[], metavar="SERVER",
                   help="an upstream's name (its serverInfo.name) whose tool annotations are honoured; "
                        "repeat for several")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="DIR",
                     help="a trained model directory (the embedded ONNX predictor: its horizon view when the "
                     "directory has one)")
    src.add_argument("--baseline", metavar="TRACES",
                     help="toolcast JSONL logs to fit the pattern-pool baseline on, instead of a model")
    p.add_argument("--stable-for", type=float, default=30.0, metavar="SECONDS",
                   help="how long a speculative result of a read-only tool stays fresh (default: 30)")
    p.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                   help="how clients connect: stdio (the client starts the proxy) or streamable HTTP")
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="HTTP port (default: 8765); the endpoint is /mcp")
    p.add_argument("--stats", metavar="PATH", help="write the speculation statistics as JSON when it stops")
    p.set_defaults(func=run)


def _predictor(args: argparse.Namespace):
    if args.model:
        if not os.path.isdir(args.model):
            raise ValueError(f"model directory {args.model!r} does not exist or is not a directory")
        from toolcast.predictor import load

        return load(args.model, view="auto")  # the horizon view when `toolcast train` wrote it
    if args.baseline:
        from toolcast.data.load import load_traces
        from toolcast.predictor.baselines import fit_baseline

        return fit_baseline("pattern", load_traces(args.baseline, format="toolcast"))
    return None


def run(args: argparse.Namespace) -> int:
    try:
        from toolcast.adapters.mcp_proxy import McpProxy, ProxyError
    except ImportError as e:
        return fail(f"toolcast mcp-proxy needs the [mcp] extra (pip install 'toolcast[mcp]'): {e}")
    from toolcast.data.errors import TraceFormatError

    try:
        predictor = _predictor(args)
    except (ValueError, OSError, TraceFormatError) as e:
        return fail(str(e))
    if predictor is None:
        log.warning("no --model or --baseline: relaying only, nothing runs ahead")
    try:
        asyncio.run(_serve(args, McpProxy(args.upstream, trust=args.trust, predictor=predictor,
                                          stable_for=args.stable_for)))
    except ProxyError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(args: argparse.Namespace, proxy) -> None:
    async with proxy:
        server = proxy.server()
        try:
            if args.transport == "stdio":
                from mcp.server.stdio import stdio_server

                async with stdio_server() as (read, write):
                    await server.run(read, write, server.create_initialization_options())
            else:
                import uvicorn

                app = server.streamable_http_app(host=args.host)
                log.info("MCP proxy on http://%s:%d/mcp", args.host, args.port)
                await uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                                    log_level="warning")).serve()
        finally:
            log.info("speculation:\n%s", proxy.runtime.stats.table())
            if args.stats:
                with atomic_output(args.stats) as f:
                    json.dump(proxy.runtime.stats.to_dict(), f, indent=2)
