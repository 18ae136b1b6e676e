"""Writers for `coding_sessions.py`: one session as a Claude Code transcript or a Codex rollout.

The shapes are the ones toolcast's importers read (data/formats/claude_code.py, codex.py and their
sources): every line carries the ISO time it was written; a call starts at its line and ends at its
result's. Claude Code: one assistant line per content block (text, then each tool_use) sharing the
message id, results as user lines with `toolUseResult`. Codex: `session_meta`, `turn_context`, then
`response_item` lines (message, reasoning, function_call / custom_tool_call and their outputs with
`metadata.duration_seconds`) and `event_msg` lines; `legacy` writes each call with its output, after the
tool ran, as older Codex did.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def iso(t: float) -> str:
    return (
        datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class _Writer:
    def __init__(self, sid: str, root: str, rng: random.Random) -> None:
        self.sid, self.root, self.rng = sid, root, rng
        self.rows: list[tuple[float, dict[str, Any]]] = []

    @property
    def lines(self) -> int:
        return len(self.rows)

    def _id(self, prefix: str) -> str:
        return prefix + uuid.UUID(int=self.rng.getrandbits(128)).hex[:24]

    def _dump(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = sorted(self.rows, key=lambda r: r[0])  # file order is write order
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for _t, r in rows), encoding="utf-8")
        return path


class ClaudeWriter(_Writer):
    def __init__(self, sid: str, root: str, rng: random.Random) -> None:
        super().__init__(sid, root, rng)
        self.parent: str | None = None

    def _entry(self, t: float, kind: str, message: dict, **extra: Any) -> None:
        uid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.rows.append(
            (
                t,
                {
                    "parentUuid": self.parent,
                    "isSidechain": False,
                    "userType": "external",
                    "cwd": self.root,
                    "sessionId": self.sid,
                    "version": "2.0.14",
                    "gitBranch": "main",
                    "type": kind,
                    "message": message,
                    "uuid": uid,
                    "timestamp": iso(t),
                    **extra,
                },
            )
        )
        self.parent = uid

    def user(self, text: str, t: float) -> None:
        self._entry(t, "user", {"role": "user", "content": text})

    def _assistant(self, t: float, mid: str, block: dict, tokens: int) -> None:
        self._entry(
            t,
            "assistant",
            {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [block],
                "stop_reason": None,
                "usage": {"output_tokens": tokens},
            },
            requestId=mid.replace("msg_", "req_"),
        )

    def answer(self, text: str, t: float, tokens: int) -> None:
        self._assistant(t, self._id("msg_"), {"type": "text", "text": text}, tokens)

    def turn(self, text: str, tokens: int, t: float, results: list) -> None:
        mid = self._id("msg_")
        if text:
            self._assistant(t - 0.4, mid, {"type": "text", "text": text}, tokens)
        ids = []
        for call, *_rest in results:  # every block of the response before any result (a stable sort keeps it)
            ids.append(self._id("toolu_"))
            self._assistant(
                t,
                mid,
                {"type": "tool_use", "id": ids[-1], "name": call.tool, "input": call.args},
                tokens,
            )
        for tid, (call, out, err, seconds, wait) in sorted(
            zip(ids, results, strict=True), key=lambda r: r[1][3] + r[1][4]
        ):
            content = f"Exit code 1\n{out}" if err and call.tool == "Bash" else out
            block = {"type": "tool_result", "tool_use_id": tid, "content": content, "is_error": err}
            self._entry(
                t + wait + seconds,
                "user",
                {"role": "user", "content": [block]},
                toolUseResult=_structured(call, out, seconds),
            )

    def write(self, out: Path, start: float) -> Path:
        return self._dump(out / "claude_code" / self.root.replace("/", "-") / f"{self.sid}.jsonl")


def _structured(call, out: str, seconds: float) -> dict:
    """Claude Code's `toolUseResult` for the tools whose shape is public (Glob reports its duration)."""
    if call.tool == "Glob":
        files = [x for x in out.splitlines() if x.startswith("/")]
        return {
            "filenames": files,
            "durationMs": int(seconds * 1000),
            "numFiles": len(files),
            "truncated": False,
        }
    if call.tool == "Bash":
        return {"stdout": out, "stderr": "", "interrupted": False, "isImage": False}
    if call.tool == "Read":
        return {"type": "text", "file": {"filePath": call.args["file_path"], "numLines": out.count("\n") + 1}}
    return {}


class CodexWriter(_Writer):
    def __init__(self, sid: str, root: str, rng: random.Random, legacy: bool = False) -> None:
        super().__init__(sid, root, rng)
        self.legacy = legacy
        self.started = False

    def _line(self, t: float, kind: str, payload: dict) -> None:
        self.rows.append((t, {"timestamp": iso(t), "type": kind, "payload": payload}))

    def _start(self, t: float) -> None:
        self.started = True
        self._line(
            t - 1.0,
            "session_meta",
            {
                "id": self.sid,
                "timestamp": iso(t - 1.0),
                "cwd": self.root,
                "originator": "codex_cli_rs",
                "cli_version": "0.46.0",
                "instructions": None,
                "source": "cli",
                "model_provider": "openai",
            },
        )
        self._line(
            t - 0.5,
            "turn_context",
            {
                "cwd": self.root,
                "approval_policy": "on-request",
                "sandbox_policy": {"mode": "workspace-write"},
                "model": "gpt-5-codex",
                "summary": "auto",
            },
        )

    def user(self, text: str, t: float) -> None:
        if not self.started:
            self._start(t)
        self._line(
            t,
            "response_item",
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
        )
        self._line(t, "event_msg", {"type": "user_message", "message": text, "kind": "plain"})

    def answer(self, text: str, t: float, tokens: int) -> None:
        self._line(
            t,
            "response_item",
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]},
        )
        self._line(t, "event_msg", {"type": "agent_message", "message": text})

    def turn(self, text: str, tokens: int, t: float, results: list) -> None:
        reply_end = t if self.legacy else t - 0.2
        self._line(
            reply_end,
            "response_item",
            {
                "type": "reasoning",
                "summary": [
                    {"type": "summary_text", "text": f"**Next step**\n\n{text or 'Looking at the code.'}"}
                ],
                "content": None,
                "encrypted_content": None,
            },
        )
        last = t + max(s + w for _c, _o, _e, s, w in results)
        for call, out, err, seconds, wait in results:
            cid = self._id("call_")
            end = last if self.legacy else t + wait + seconds  # older Codex wrote the turn when all had run
            written = end if self.legacy else t
            output = json.dumps(
                {"output": out, "metadata": {"exit_code": int(err), "duration_seconds": round(seconds, 3)}}
            )
            if call.tool == "apply_patch":
                self._line(
                    written,
                    "response_item",
                    {
                        "type": "custom_tool_call",
                        "status": "completed",
                        "call_id": cid,
                        "name": "apply_patch",
                        "input": call.args["input"],
                    },
                )
                self._line(
                    end,
                    "response_item",
                    {"type": "custom_tool_call_output", "call_id": cid, "output": output},
                )
                continue
            self._line(
                written,
                "response_item",
                {
                    "type": "function_call",
                    "name": call.tool,
                    "arguments": json.dumps(call.args),
                    "call_id": cid,
                },
            )
            if wait:
                self._line(
                    t,
                    "event_msg",
                    {
                        "type": "exec_approval_request",
                        "call_id": cid,
                        "command": call.args.get("command"),
                        "cwd": self.root,
                    },
                )
            if call.tool == "update_plan":
                output = "Plan updated"
            self._line(
                end, "response_item", {"type": "function_call_output", "call_id": cid, "output": output}
            )
            if call.tool == "shell":
                self._line(
                    end,
                    "event_msg",
                    {
                        "type": "exec_command_end",
                        "call_id": cid,
                        "exit_code": int(err),
                        "duration": {"secs": int(seconds), "nanos": 0},
                    },
                )

    def write(self, out: Path, start: float) -> Path:
        day = datetime.fromtimestamp(start, tz=timezone.utc)
        name = f"rollout-{day.strftime('%Y-%m-%dT%H-%M-%S')}-{self.sid}.jsonl"
        return self._dump(out / "codex" / day.strftime("%Y/%m/%d") / name)
