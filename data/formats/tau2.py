"""tau2-bench results files (the `Results` JSON of sierra-research/tau2-bench) to canonical traces.

One file holds many simulations; each becomes one trace. Two layouts exist (see
../shared/data/README.md, "Record formats"):
- results: top-level `info` (agent/user/environment info, domain, policy), `tasks`, `simulations`;
- adaptive_agent leaderboard files: top-level `domain`, `agent`, `model`, and the policy per simulation.

What maps where, and why:
- Only the agent's calls become `ToolCall`s: calls with `requestor` "assistant" (or none). In telecom the
  user simulator also calls tools on the user's phone (`requestor` "user"); the agent never chose those,
  so they are kept with the user's message in `extra["user_tool_calls"]` (name, arguments, output).
- The user side between two agent events (user messages, the user's tool calls and their results) is one
  user `Message`: tau2 logs every agent message, so two user messages in a row would otherwise read as a
  decision point where the agent answered without text, which never happened.
- Every assistant message is a `Message` (text may be ""); one that issued calls carries a per-trace
  `turn` and is followed by its calls in the order listed.
- The policy is the agent's system prompt: one `system` message at the start (the same `str` object is
  shared by a file's traces, so it costs no memory per trace).
- tau2 stores no tool schemas (`tool_defs` is null): tool specs are synthesized from the calls observed in
  the file (parameter names, JSON types seen, `required` = present in every call), with empty description
  and annotations; `metadata["tools_synthesized"]` says so.
- Timestamps are ISO strings, naive = UTC, turned into Unix seconds.
- Loops (more than 3 agent calls that repeat the call just before them) are kept and flagged
  `metadata["looping"]`, so training can drop them; nothing is dropped here.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats.base import OnError, Records, TraceFormat, expect, good_records
from toolcast.data.formats.tau2_tools import Observed, synthesize, tool_specs
from toolcast.data.quality import mark_looping
from toolcast.data.schema import Message, ToolCall, Trace

SOURCE = "tau2"

def sniff(record: Any) -> bool:
    """A dict with a non-empty `simulations` list whose items have `messages`."""
    if not isinstance(record, dict):
        return False
    sims = record.get("simulations")
    return isinstance(sims, list) and bool(sims) and isinstance(sims[0], dict) and "messages" in sims[0]


def read(records: Records, on_error: OnError) -> Iterator[Trace]:
    for where, doc in good_records(records, on_error):
        try:
            header = _read_header(where, doc)
        except TraceFormatError as e:
            on_error(e)
            continue
        yield from _read_simulations(where, doc["simulations"], header, on_error)


FORMAT = TraceFormat("tau2", "tau2-bench results JSON (both the results and the adaptive_agent layouts)",
                     sniff, read)


# ---- the file header -------------------------------------------------------------------------------


@dataclass
class _Header:
    """What a file says once for all its simulations."""

    file: str
    layout: str
    domain: str | None
    agent_model: str | None = None
    agent_implementation: str | None = None
    user_model: str | None = None
    user_implementation: str | None = None
    policy: str | None = None
    tool_defs: Any = None
    policy_sha: dict[str, str] = field(default_factory=dict)


def _opt(d: dict, key: str, types: type | tuple[type, ...], where: Location, path: str) -> Any:
    value = d.get(key)
    return None if value is None else expect(value, types, where, f"{path}{key}")


def _read_header(where: Location, doc: Any) -> _Header:
    expect(doc, dict, where, "(document)")
    expect(doc.get("simulations"), list, where, "simulations")
    name = Path(where.path).name
    if "info" in doc:
        info = expect(doc["info"], dict, where, "info")
        env = expect(info.get("environment_info") or {}, dict, where, "info.environment_info")
        agent = expect(info.get("agent_info") or {}, dict, where, "info.agent_info")
        user = expect(info.get("user_info") or {}, dict, where, "info.user_info")
        domain = _opt(env, "domain_name", str, where, "info.environment_info.")
        if domain is None:
            domain = _opt(doc, "domain", str, where, "")
        return _Header(
            file=name, layout="results", domain=domain,
            agent_model=_opt(agent, "llm", str, where, "info.agent_info."),
            agent_implementation=_opt(agent, "implementation", str, where, "info.agent_info."),
            user_model=_opt(user, "llm", str, where, "info.user_info."),
            user_implementation=_opt(user, "implementation", str, where, "info.user_info."),
            policy=_opt(env, "policy", str, where, "info.environment_info."),
            tool_defs=_opt(env, "tool_defs", (dict, list), where, "info.environment_info."),
        )
    return _Header(file=name, layout="adaptive_agent", domain=_opt(doc, "domain", str, where, ""),
                   agent_model=_opt(doc, "model", str, where, ""),
                   agent_implementation=_opt(doc, "agent", str, where, ""))


# ---- simulations -----------------------------------------------------------------------------------


def _read_simulations(where: Location, sims: list, header: _Header, on_error: OnError) -> Iterator[Trace]:
    traces: list[Trace] = []
    seen_ids: set[str] = set()
    observed: dict[str, Observed] = {}
    for i, sim in enumerate(sims):
        loc = where.child(f"simulations[{i}]")
        try:
            trace = _read_simulation(loc, sim, header)
        except TraceFormatError as e:
            on_error(e)
            continue
        if trace.trace_id in seen_ids:  # a file that repeats a simulation id: keep both, distinctly
            base = f"{trace.trace_id}#trial{trace.metadata.get('trial')}"
            trace.trace_id, k = base, 1
            while trace.trace_id in seen_ids:
                trace.trace_id, k = f"{base}.{k}", k + 1
        seen_ids.add(trace.trace_id)
        for call in trace.calls:
            observed.setdefault(call.tool, Observed()).add(call.args)
        traces.append(trace)
    try:
        tools = tool_specs(where, header.tool_defs) if header.tool_defs else synthesize(observed)
    except TraceFormatError as e:
        on_error(e)
        return
    for trace in traces:
        trace.tools = list(tools)
        trace.metadata["tools_synthesized"] = not header.tool_defs
        yield trace


def _read_simulation(loc: Location, sim: Any, header: _Header) -> Trace:
    expect(sim, dict, loc, "(simulation)")
    sim_id = expect(sim.get("id"), (str, int), loc, "id")
    task_id = expect(sim.get("task_id"), (str, int), loc, "task_id")
    trial = _opt(sim, "trial", int, loc, "")
    messages = expect(sim.get("messages"), list, loc, "messages")
    reward_info = _opt(sim, "reward_info", dict, loc, "") or {}
    reward = _opt(reward_info, "reward", (int, float), loc, "reward_info.")
    domain = header.domain
    if domain is None:
        raise TraceFormatError(loc, "no domain: expected info.environment_info.domain_name or a top-level "
                                    "'domain'", field="domain")
    policy = header.policy if header.policy is not None else _opt(sim, "policy", str, loc, "")

    events, user_calls = _read_messages(loc, messages, policy)
    metadata: dict[str, Any] = {
        "domain": domain, "task_id": str(task_id), "trial": trial,
        "agent_model": header.agent_model, "agent_implementation": header.agent_implementation,
        "user_model": header.user_model, "user_implementation": header.user_implementation,
        "termination_reason": _opt(sim, "termination_reason", str, loc, ""), "reward": reward,
        "duration": _opt(sim, "duration", (int, float), loc, ""),
        "start_time": _epoch(sim.get("start_time"), loc, "start_time"),
        "agent_cost": _opt(sim, "agent_cost", (int, float), loc, ""),
        "user_cost": _opt(sim, "user_cost", (int, float), loc, ""),
        "n_user_tool_calls": user_calls, "file": header.file, "layout": header.layout,
    }
    if policy is not None:
        metadata["policy_sha"] = header.policy_sha.get(policy) or header.policy_sha.setdefault(
            policy, hashlib.sha256(policy.encode()).hexdigest()[:16])
    trace = Trace(trace_id=str(sim_id), group=f"{domain}:{task_id}", source=SOURCE, metadata=metadata,
                  events=events)
    return mark_looping(trace)


class _UserBlock:
    """The user side between two agent events, merged into one user message (see the module doc)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.t_end: float | None = None
        self.tokens: int | None = None

    def message(self) -> Message:
        extra: dict[str, Any] = {}
        if self.calls:
            extra["user_tool_calls"] = self.calls
        if len(self.texts) > 1:
            extra["merged_messages"] = len(self.texts)
        return Message(role="user", text="\n\n".join(self.texts), t_end=self.t_end, tokens=self.tokens,
                       extra=extra)


def _read_messages(loc: Location, messages: list, policy: str | None) -> tuple[list, int]:
    """Events of one simulation, and how many calls the user simulator made."""
    events: list[Message | ToolCall] = []
    if policy:
        events.append(Message(role="system", text=policy))
    pending: dict[str, deque] = {}  # tau2 call id -> unanswered calls (ids repeat in some harnesses)
    used_ids: set[str] = set()
    block: _UserBlock | None = None
    turn = 0
    n_user_calls = 0

    def flush() -> None:
        nonlocal block
        if block is not None:
            events.append(block.message())
            block = None

    for j, m in enumerate(messages):
        mloc = loc.child(f".messages[{j}]")
        expect(m, dict, mloc, "(message)")
        role = expect(m.get("role"), str, mloc, "role")
        ts = _epoch(m.get("timestamp"), mloc, "timestamp")
        if role == "tool":
            _answer(mloc, m, ts, pending)
            continue
        if role not in ("assistant", "user", "system"):
            raise TraceFormatError(mloc, f"expected 'assistant', 'user', 'system' or 'tool', got {role!r}",
                                   field="role")
        text = _opt(m, "content", str, mloc, "") or ""
        tokens = _tokens(m, mloc)
        agent_calls, other_calls = _split_calls(mloc, m)
        n_user_calls += len(other_calls)
        entries = []
        for call in other_calls:
            entries.append({"call_id": call["id"], "name": call["name"], "arguments": call["arguments"],
                            "output": None, "error": False, "t_start": ts, "t_end": None})
            pending.setdefault(call["id"], deque()).append(entries[-1])
        if role == "user":
            block = block or _UserBlock()
            if text:
                block.texts.append(text)
            if tokens is not None:
                block.tokens = (block.tokens or 0) + tokens
            block.t_end = ts if ts is not None else block.t_end
            block.calls.extend(entries)
            continue
        flush()
        msg = Message(role=role, text=text, t_end=ts, tokens=tokens)
        gen = m.get("generation_time_seconds")
        if ts is not None and isinstance(gen, (int, float)) and not isinstance(gen, bool):
            msg.t_start = ts - float(gen)  # adaptive_agent layout: when the LLM started generating
        if entries:
            msg.extra["user_tool_calls"] = entries
        events.append(msg)
        if agent_calls:
            turn += 1
            msg.turn = turn
            for call in agent_calls:
                call_id = call["id"]
                if not call_id or call_id in used_ids:
                    n = 1
                    while f"{call_id or 'call'}~{n}" in used_ids:
                        n += 1
                    call_id = f"{call_id or 'call'}~{n}"
                used_ids.add(call_id)
                tc = ToolCall(call_id=call_id, turn=turn, tool=call["name"], args=call["arguments"],
                              t_start=ts)
                if call_id != call["id"]:
                    tc.extra["tau2_id"] = call["id"]
                pending.setdefault(call["id"], deque()).append(tc)
                events.append(tc)
    flush()
    return events, n_user_calls


def _split_calls(mloc: Location, m: dict) -> tuple[list[dict], list[dict]]:
    """(agent calls, user-simulator calls) of a message, each checked: {id, name, arguments}."""
    calls = _opt(m, "tool_calls", list, mloc, "") or []
    agent, other = [], []
    for k, c in enumerate(calls):
        path = f"tool_calls[{k}]."
        expect(c, dict, mloc, path.rstrip("."))
        call_id = c.get("id")
        call = {
            "id": "" if call_id is None else str(expect(call_id, (str, int), mloc, f"{path}id")),
            "name": expect(c.get("name"), str, mloc, f"{path}name"),
            "arguments": expect(c.get("arguments") if c.get("arguments") is not None else {}, dict, mloc,
                                f"{path}arguments"),
        }
        requestor = c.get("requestor")
        if requestor in (None, "assistant"):
            (agent if m.get("role") != "user" else other).append(call)
        elif requestor == "user":
            other.append(call)
        else:
            raise TraceFormatError(mloc, f"expected 'assistant' or 'user', got {requestor!r}",
                                   field=f"{path}requestor")
    return agent, other


def _answer(mloc: Location, m: dict, ts: float | None, pending: dict[str, deque]) -> None:
    """Fill the output of the call a tool message answers (the earliest unanswered one with its id)."""
    raw_id = m.get("id")
    call_id = "" if raw_id is None else str(expect(raw_id, (str, int), mloc, "id"))
    content = _opt(m, "content", str, mloc, "")
    error = bool(_opt(m, "error", bool, mloc, ""))
    queue = pending.get(call_id)
    if not queue:
        raise TraceFormatError(mloc, f"tool message id {call_id!r} matches no earlier unanswered tool call",
                               field="id")
    target = queue.popleft()
    if isinstance(target, ToolCall):
        target.output, target.error, target.t_end = content, error, ts
    else:
        target.update(output=content, error=error, t_end=ts)


def _tokens(m: dict, mloc: Location) -> int | None:
    usage = _opt(m, "usage", dict, mloc, "")
    if not usage:
        return None
    return _opt(usage, "completion_tokens", int, mloc, "usage.")


def _epoch(value: Any, where: Location, field_name: str) -> float | None:
    """ISO-8601 timestamp (naive = UTC) to Unix seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    expect(value, str, where, field_name)
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise TraceFormatError(where, f"expected an ISO-8601 timestamp, got {value[:40]!r}",
                               field=field_name) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()
