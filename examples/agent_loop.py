"""An asyncio support agent on real local tools, with and without toolcast's speculation.

    .venv/bin/python examples/agent_loop.py            # about 25 s
    .venv/bin/python examples/agent_loop.py --quick    # about 8 s: latencies and think times x 0.3

The agent works customer tickets with real tools (`support_world.py`): files in a temporary folder and a
shop API served on 127.0.0.1 whose handlers sleep 0.35-0.8 s, standing in for remote APIs. The LLM is
replayed from a recorded transcript (`transcripts/sessions.json`): at each step the loop sleeps the
LLM's recorded thinking time, then issues the call the LLM issued, through `await runtime.call(...)`.
The transcript holds only the LLM's decisions and think times; every result comes from the live tools.

Each run goes twice from the same starting world, all tickets at once (as an agent server would):
serial (no predictor, nothing runs ahead) and speculative (the pattern-pool baseline fit on recorded
sessions of the same agent, `transcripts/training.jsonl`, or a trained model with `--model DIR`). The
report gives the wall-clock time of each, the runtime's per-tool statistics, and the safety check: the
agent saw exactly the same tool results in both runs, no state-changing tool ran ahead, and the files and
the shop's data ended identical.

`--record PATH` writes the sessions of the (first) run as toolcast JSONL: how training logs are made.
`transcripts/training.jsonl` came from
    .venv/bin/python examples/agent_loop.py --transcript examples/transcripts/training_sessions.json \\
        --serial-only --record examples/transcripts/training.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import toolcast  # noqa: F401
except ImportError:  # run from outside the project's environment
    sys.exit("toolcast is not installed in this Python: run `make install`, then "
             "`.venv/bin/python examples/agent_loop.py`")

from support_world import ShopService, ToolError, Workspace, load_store, make_tools

from toolcast.data.errors import TraceFormatError
from toolcast.data.load import load_traces
from toolcast.data.schema import Message, ToolCall, Trace, canonical_args
from toolcast.predictor.protocol import Predictor
from toolcast.runtime import LatencyProfile, PlannerConfig, RuntimeConfig, SpeculativeRuntime, Tool
from toolcast.runtime.timing import fit_estimates
from toolcast.runtime.tools import as_text

HERE = Path(__file__).resolve().parent
SESSIONS = HERE / "transcripts" / "sessions.json"
TRAINING = HERE / "transcripts" / "training.jsonl"
QUICK_SCALE = 0.3


class TranscriptError(ValueError):
    pass


@dataclass
class Step:
    think: float = 0.0
    user: str | None = None
    text: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class Session:
    id: str
    ticket: str
    kind: str
    steps: list[Step]


def load_sessions(path: Path) -> tuple[str, list[Session]]:
    """The recorded LLM: per session, the user's message, then (think seconds, text, calls) per turn."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise TranscriptError(f"{path}: cannot read the transcript: {e}") from None

    def need(cond: bool, where: str, msg: str) -> None:
        if not cond:
            raise TranscriptError(f"{path}: {where}: {msg}")

    need(isinstance(doc, dict) and isinstance(doc.get("sessions"), list), "sessions", "expected a list")
    out = []
    for i, s in enumerate(doc["sessions"]):
        w = f"sessions[{i}]"
        need(isinstance(s, dict) and isinstance(s.get("session"), str), f"{w}.session", "expected a string")
        need(isinstance(s.get("steps"), list) and s["steps"], f"{w}.steps", "expected a non-empty list")
        steps = []
        for j, st in enumerate(s["steps"]):
            ws = f"{w}.steps[{j}]"
            need(isinstance(st, dict), ws, "expected an object")
            if "user" in st:
                need(isinstance(st["user"], str), f"{ws}.user", "expected a string")
                steps.append(Step(user=st["user"]))
                continue
            think = st.get("think")
            need(isinstance(think, int | float) and not isinstance(think, bool) and think >= 0, f"{ws}.think",
                 f"expected seconds >= 0, got {think!r}")
            calls = []
            for k, c in enumerate(st.get("calls") or []):
                need(_is_call(c), f"{ws}.calls[{k}]", 'expected {"tool": str, "args": {...}}')
                calls.append((c["tool"], c["args"]))
            need(isinstance(st.get("text", ""), str), f"{ws}.text", "expected a string")
            steps.append(Step(float(think), text=st.get("text", ""), calls=calls))
        need(steps[0].user is not None, f"{w}.steps[0]", "a session starts with the user's message")
        out.append(Session(s["session"], str(s.get("ticket", s["session"])), str(s.get("kind", "")), steps))
    return str(doc.get("model") or "recorded-llm"), out


def _is_call(c: Any) -> bool:
    return isinstance(c, dict) and isinstance(c.get("tool"), str) and isinstance(c.get("args"), dict)


# ---- one session, replayed against the live tools ----------------------------------------------------


@dataclass
class SessionRun:
    session: str
    seconds: float
    outcomes: list[tuple[int, int, str, str, bool, str]]
    """(step, call, tool, canonical args, error?, result text): what the agent was given."""
    trace: Trace


async def run_session(rt: SpeculativeRuntime, s: Session, tools: list[Tool], model: str, scale: float,
                      mode: str) -> SessionRun:
    """The agent loop. The LLM is the transcript; every tool result is real."""
    loop = asyncio.get_running_loop()
    rt.start_session(s.id, model=model, metadata={"ticket": s.ticket})
    events: list[Message | ToolCall] = []
    outcomes: list[tuple[int, int, str, str, bool, str]] = []
    t0 = loop.time()
    turn = 0

    async def one(j: int, k: int, tool: str, args: dict[str, Any]) -> None:
        call = ToolCall(f"{s.ticket}-{j}.{k}", turn, tool, args, t_start=time.time())
        events.append(call)
        try:
            result = await rt.call(s.id, tool, args)
        except ToolError as e:  # the LLM gets the error as the call's result, as agents do
            call.error, call.output = True, f"ToolError: {e}"
        else:
            call.output = as_text(result)
        call.t_end = time.time()
        outcomes.append((j, k, tool, canonical_args(args), call.error, call.output))

    for j, step in enumerate(s.steps):
        if step.user is not None:
            events.append(Message("user", step.user, time.time(), time.time()))
            rt.observe_user(s.id, step.user)
            continue
        thinking_since = time.time()
        await asyncio.sleep(step.think * scale)  # the LLM generates; the runtime speculates meanwhile
        turn += 1
        events.append(Message("assistant", step.text, thinking_since, time.time(), turn=turn))
        rt.observe(s.id, "assistant", step.text)
        if step.calls:
            await asyncio.gather(*(one(j, k, tool, dict(args)) for k, (tool, args) in enumerate(step.calls)))
    seconds = loop.time() - t0
    await rt.end_session(s.id)
    outcomes.sort()
    trace = Trace(s.id, s.ticket, "toolcast-example",
                  {"model": model, "agent": "examples/agent_loop.py", "kind": s.kind, "mode": mode},
                  [t.spec for t in tools], events)
    return SessionRun(s.id, seconds, outcomes, trace)


# ---- a run: every session at once, from a fresh world -----------------------------------------------


@dataclass
class ModeRun:
    mode: str
    seconds: float
    sessions: dict[str, SessionRun]
    stats: dict[str, Any]
    stats_table: str
    requests: dict[str, int]
    files: dict[str, str]
    shop: dict[str, Any]


async def run_mode(mode: str, sessions: list[Session], model: str, predictor: Predictor | None,
                   training: list[Trace], ws: Workspace, shop: ShopService, scale: float,
                   waste_price: float = 1.0, predict_in_thread: bool = False) -> ModeRun:
    """Every session at once on a fresh world; `predict_in_thread` for a model slower than a table."""
    ws.reset()
    shop.reset()
    tools = make_tools(ws, shop.url)
    config = RuntimeConfig(k=4, workers=max(8, 2 * len(sessions)), predict_in_thread=predict_in_thread,
                           planner=PlannerConfig(lambda0=waste_price, max_in_flight=4 * len(sessions)))
    rt = SpeculativeRuntime(tools, predictor if mode == "speculative" else None, config)
    if training:  # S per tool and L from the recorded sessions: the planner's priors
        fit_estimates(training, rt.estimates, LatencyProfile.default(), tool_time="recorded")
        rt.estimates.tool.update({k: v * scale for k, v in rt.estimates.tool.items()})
        rt.estimates.llm.update({k: v * scale for k, v in rt.estimates.llm.items()})
    t0 = time.perf_counter()
    try:
        runs = await asyncio.gather(*(run_session(rt, s, tools, model, scale, mode) for s in sessions))
        seconds = time.perf_counter() - t0
    finally:
        await rt.aclose()
    return ModeRun(mode, seconds, {r.session: r for r in runs}, rt.stats.to_dict(), rt.stats.table(),
                   dict(shop.requests), ws.snapshot(), shop.state())


# ---- the predictor ----------------------------------------------------------------------------------


def load_predictor(model_dir: Path | None, training: list[Trace]) -> tuple[Predictor, str]:
    if model_dir is None:
        from toolcast.predictor.baselines import fit_baseline

        return fit_baseline("pattern", training), f"pattern pool fit on {len(training)} recorded sessions"
    from toolcast.predictor import load

    try:
        return load(model_dir, view="auto"), f"learned model {model_dir}"
    except Exception as e:  # noqa: BLE001 - any failure to load is reported as one clear line
        raise TranscriptError(f"--model {model_dir}: cannot load the model: {e}") from None


# ---- the report -------------------------------------------------------------------------------------

STATE_CHANGING = ("write_file", "move_file", "cancel_order", "refund_order")


def compare(serial: ModeRun, spec: ModeRun) -> dict[str, Any]:
    """The safety promise, checked: same results for the agent, nothing state-changing ran ahead."""
    total = same = 0
    mismatches = []
    for sid, a in serial.sessions.items():
        b = spec.sessions[sid].outcomes
        total += len(a.outcomes)
        same += sum(x == y for x, y in zip(a.outcomes, b, strict=False))
        if a.outcomes != b:
            mismatches.append(sid)
    ahead = {t: spec.stats["tools"].get(t, {}).get("launched", 0) for t in STATE_CHANGING}
    posts = {m.mode: sum(v for k, v in m.requests.items() if k.startswith("POST")) for m in (serial, spec)}
    gets = {m.mode: sum(v for k, v in m.requests.items() if k.startswith("GET")) for m in (serial, spec)}
    agent_posts = sum(1 for r in spec.sessions.values() for o in r.outcomes
                      if o[2] in ("cancel_order", "refund_order"))
    checks = {
        "identical_results": same == total and not mismatches,
        "nothing_state_changing_ahead": not any(ahead.values()),
        "posts_are_the_agents": posts["serial"] == posts["speculative"] == agent_posts,
        "identical_final_state": serial.files == spec.files and serial.shop == spec.shop,
    }
    return {"calls": total, "identical_calls": same, "mismatched_sessions": mismatches,
            "state_changing_launched": ahead, "service_posts": posts, "service_gets": gets,
            "agent_posts": agent_posts, "checks": checks, "ok": all(checks.values())}


def report(serial: ModeRun, spec: ModeRun, sessions: list[Session], safety: dict[str, Any]) -> str:
    ok = {True: "OK", False: "FAILED"}
    lines = [f"{'session':<16} {'kind':<13} {'serial s':>9} {'speculative s':>14} {'saved s':>8}"]
    for s in sessions:
        a, b = serial.sessions[s.id].seconds, spec.sessions[s.id].seconds
        lines.append(f"{s.id:<16} {s.kind:<13} {a:>9.2f} {b:>14.2f} {a - b:>8.2f} ({(a - b) / a:.0%})")
    saved = serial.seconds - spec.seconds
    lines.append(f"{'all, at once':<30} {serial.seconds:>9.2f} {spec.seconds:>14.2f} {saved:>8.2f} "
                 f"({saved / serial.seconds:.0%})")
    dropped = spec.stats["total"]["dropped"]
    ended = ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none"
    lines += ["", "speculation per tool (speculative run; wasted_s = tool-seconds of runs never used):",
              spec.stats_table, f"unused speculative runs, by how they ended: {ended}", "", "safety:"]
    c = safety["checks"]
    lines.append(f"  tool results the agent saw: {safety['identical_calls']}/{safety['calls']} identical to "
                 f"the serial run  {ok[c['identical_results']]}")
    ahead = ", ".join(f"{t} {n}" for t, n in safety["state_changing_launched"].items())
    lines.append(f"  state-changing tools run ahead: {ahead}  {ok[c['nothing_state_changing_ahead']]}")
    p, g = safety["service_posts"], safety["service_gets"]
    lines.append(f"  shop API POSTs: serial {p['serial']}, speculative {p['speculative']}, the agent's own "
                 f"{safety['agent_posts']}  {ok[c['posts_are_the_agents']]}")
    lines.append(f"  shop API GETs: serial {g['serial']}, speculative {g['speculative']} (extra = reads run "
                 "ahead and never used)")
    same_state = c["identical_final_state"]
    lines.append(f"  files and shop data after the run: {'identical' if same_state else 'DIFFERENT'}  "
                 f"{ok[same_state]}")
    return "\n".join(lines)


# ---- main -------------------------------------------------------------------------------------------


async def amain(args: argparse.Namespace) -> int:
    scale = args.scale if args.scale is not None else QUICK_SCALE if args.quick else 1.0
    model, sessions = load_sessions(args.transcript)
    training = load_traces(args.train, format="toolcast") if not args.serial_only else []
    predictor, described = (None, "none") if args.serial_only else load_predictor(args.model, training)
    store = load_store()
    missing = [s.ticket for s in sessions if s.ticket not in store["tickets"]]
    if missing:
        raise TranscriptError(f"{args.transcript}: ticket(s) {', '.join(missing)} not in the example's store")
    with tempfile.TemporaryDirectory(prefix="toolcast-example-") as tmp:
        ws = Workspace(Path(tmp) / "workspace", store)
        shop = ShopService(store, scale)
        try:
            print(f"toolcast example agent: {len(sessions)} tickets, LLM replayed from "
                  f"{args.transcript.name}, live tools (time scale {scale:g})")
            print(f"  files: {ws.root}   shop API: {shop.url} (handlers sleep 0.35-0.8 s x {scale:g})")
            print(f"  predictor: {described}\n", flush=True)
            serial = await run_mode("serial", sessions, model, None, training, ws, shop, scale)
            if args.record:
                args.record.write_text("".join(r.trace.to_json() + "\n" for r in serial.sessions.values()))
                print(f"recorded {len(serial.sessions)} sessions to {args.record}")
            if args.serial_only:
                print(f"serial run: {serial.seconds:.2f} s")
                return 0
            spec = await run_mode("speculative", sessions, model, predictor, training, ws, shop, scale,
                                  args.waste_price, predict_in_thread=args.model is not None)
        finally:
            shop.close()
    safety = compare(serial, spec)
    print(report(serial, spec, sessions, safety))
    saved = serial.seconds - spec.seconds
    print(f"\ntime saved: {saved:.2f} s of {serial.seconds:.2f} s ({saved / serial.seconds:.0%}); "
          f"safety {'OK' if safety['ok'] else 'FAILED'}")
    if args.json:
        args.json.write_text(json.dumps({
            "scale": scale, "predictor": described, "serial_s": serial.seconds, "speculative_s": spec.seconds,
            "saved_s": saved,
            "sessions": {s.id: {"serial_s": serial.sessions[s.id].seconds,
                                "speculative_s": spec.sessions[s.id].seconds} for s in sessions},
            "stats": spec.stats, "requests": {"serial": serial.requests, "speculative": spec.requests},
            "errors": sum(o[4] for r in serial.sessions.values() for o in r.outcomes),
            "safety": safety}, indent=2) + "\n")
    return 0 if safety["ok"] else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"scale every latency and think time by {QUICK_SCALE}")
    ap.add_argument("--scale", type=float, help="time scale (overrides --quick)")
    ap.add_argument("--model", type=Path,
                    help="a trained model directory (default: the pattern-pool baseline)")
    ap.add_argument("--transcript", type=Path, default=SESSIONS, help="the recorded LLM sessions to replay")
    ap.add_argument("--train", type=Path, default=TRAINING, help="recorded sessions to fit the baseline on")
    ap.add_argument("--waste-price", type=float, default=1.0,
                    help="lambda0: price of a wasted tool-second in saved seconds (lower = speculate more)")
    ap.add_argument("--serial-only", action="store_true",
                    help="run without speculation only (e.g. to record)")
    ap.add_argument("--record", type=Path, help="write the serial run's sessions as toolcast JSONL")
    ap.add_argument("--json", type=Path, help="write the measurements as JSON")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every speculative decision")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(relativeCreated)7.0f ms %(name)s %(message)s")
    if args.scale is not None and args.scale <= 0:
        ap.error("--scale must be > 0")
    try:
        return asyncio.run(amain(args))
    except (TranscriptError, TraceFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
