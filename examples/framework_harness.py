"""What the framework examples share: the support world, the recorded LLM, serial against speculative.

Each example (`langchain_agent.py`, `openai_agents_agent.py`, `pydantic_ai_agent.py`) builds its
framework's own agent over the support world's real tools (`support_world.py`: files and a local shop API
whose handlers sleep 0.35-0.8 s) and drives it with the framework's fake model replaying the recorded LLM
(`transcripts/sessions.json`: the user's message, then per turn the thinking time and the calls). The
example gives this harness one function, `run_session(session, tools, runtime) -> results`, where
`runtime` is None for the serial run (the agent exactly as it is, no toolcast) or the
`SpeculativeRuntime` to put under it with the framework's adapter. Every ticket runs at once, twice, from
the same starting world; the report gives the wall-clock time of each run and checks that the agent saw
the same tool results, that no state-changing tool ran ahead, and that the world ended identical.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent_loop import QUICK_SCALE, SESSIONS, TRAINING, Session, Step, TranscriptError, load_sessions
from support_world import ShopService, ToolError, Workspace, load_store, make_tools

from toolcast.data.load import load_traces
from toolcast.predictor.baselines import fit_baseline
from toolcast.runtime import LatencyProfile, PlannerConfig, RuntimeConfig, SpeculativeRuntime, Tool
from toolcast.runtime.timing import fit_estimates
from toolcast.runtime.tools import as_text

STATE_CHANGING = ("write_file", "move_file", "cancel_order", "refund_order")
RunSession = Callable[[Session, list[Tool], "SpeculativeRuntime | None", float], Awaitable[list[str]]]
"""(session, the world's tools, the runtime or None for serial, time scale) -> the tool results the agent
saw, in order."""


def user_and_turns(s: Session) -> tuple[str, list[Step]]:
    """The session's user message and the LLM's turns after it."""
    return s.steps[0].user or "", [st for st in s.steps[1:] if st.user is None]


def plain(tool: Tool) -> Callable[..., str]:
    """The tool as a plain function returning text; a `ToolError` becomes the result the LLM reads."""

    def run(**args: Any) -> str:
        try:
            return as_text(tool.fn(**args))
        except ToolError as e:
            return f"ToolError: {e}"

    run.__name__, run.__doc__ = tool.name, tool.description
    return run


def contracts_of(tools: list[Tool]) -> dict[str, Any]:
    return {t.name: t.contract for t in tools}


async def _run_mode(mode: str, run_session: RunSession, sessions: list[Session], predictor, training, ws,
                    shop, scale: float) -> dict[str, Any]:
    ws.reset()
    shop.reset()
    tools = make_tools(ws, shop.url)
    rt = None
    if mode == "speculative":
        config = RuntimeConfig(k=4, workers=max(8, 2 * len(sessions)),
                               planner=PlannerConfig(max_in_flight=4 * len(sessions)))
        rt = SpeculativeRuntime((), predictor, config)
        fit_estimates(training, rt.estimates, LatencyProfile.default(), tool_time="recorded")
        rt.estimates.tool.update({k: v * scale for k, v in rt.estimates.tool.items()})
        rt.estimates.llm.update({k: v * scale for k, v in rt.estimates.llm.items()})
    t0 = time.perf_counter()
    try:
        results = await asyncio.gather(*(run_session(s, tools, rt, scale) for s in sessions))
        seconds = time.perf_counter() - t0
    finally:
        if rt is not None:
            await rt.aclose()
    stats = rt.stats.to_dict() if rt is not None else {"tools": {}, "total": {}}
    return {"seconds": seconds, "results": dict(zip((s.id for s in sessions), results, strict=True)),
            "stats": stats, "table": rt.stats.table() if rt is not None else "", "files": ws.snapshot(),
            "shop": shop.state()}


def _report(name: str, serial: dict[str, Any], spec: dict[str, Any]) -> tuple[str, bool]:
    same = serial["results"] == spec["results"]
    ahead = {t: spec["stats"]["tools"].get(t, {}).get("launched", 0) for t in STATE_CHANGING}
    same_world = serial["files"] == spec["files"] and serial["shop"] == spec["shop"]
    ok = same and not any(ahead.values()) and same_world
    saved = serial["seconds"] - spec["seconds"]
    calls = sum(len(r) for r in serial["results"].values())
    lines = [f"{name}: serial {serial['seconds']:.2f} s, with toolcast {spec['seconds']:.2f} s, "
             f"saved {saved:.2f} s ({saved / serial['seconds']:.0%})", "", spec["table"], "",
             f"tool results the agent saw: {'identical' if same else 'DIFFERENT'} ({calls} calls)",
             f"state-changing tools run ahead: {sum(ahead.values())}",
             f"files and shop data after the run: {'identical' if same_world else 'DIFFERENT'}",
             f"safety {'OK' if ok else 'FAILED'}"]
    return "\n".join(lines), ok


def main(name: str, run_session: RunSession, argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=f"The support agent on {name}, with and without toolcast.")
    ap.add_argument("--quick", action="store_true", help=f"every latency and think time x {QUICK_SCALE}")
    ap.add_argument("--json", type=Path, help="write the measurements as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every speculative decision")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(relativeCreated)7.0f ms %(name)s %(message)s")
    scale = QUICK_SCALE if args.quick else 1.0
    try:
        model, sessions = load_sessions(SESSIONS)
        training = load_traces(TRAINING, format="toolcast")
    except TranscriptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    predictor = fit_baseline("pattern", training)

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="toolcast-example-") as tmp:
            ws, shop = Workspace(Path(tmp) / "workspace", load_store()), ShopService(load_store(), scale)
            try:
                serial = await _run_mode("serial", run_session, sessions, None, training, ws, shop, scale)
                spec = await _run_mode("speculative", run_session, sessions, predictor, training, ws, shop,
                                       scale)
            finally:
                shop.close()
        return serial, spec

    print(f"{name}: {len(sessions)} tickets at once, LLM replayed from {SESSIONS.name} by the framework's "
          f"fake model, live tools (time scale {scale:g}); predictor: pattern pool fit on {len(training)} "
          "recorded sessions", flush=True)
    serial, spec = asyncio.run(both())
    text, ok = _report(name, serial, spec)
    print(text)
    if args.json:
        import json

        args.json.write_text(json.dumps({"framework": name, "scale": scale, "serial_s": serial["seconds"],
                                         "speculative_s": spec["seconds"], "stats": spec["stats"], "ok": ok},
                                        indent=2) + "\n")
    return 0 if ok else 1
