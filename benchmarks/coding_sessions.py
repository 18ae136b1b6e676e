"""Make coding-agent sessions of our own: a scripted agent working on a clone of this repository.

The tools run for real (file reads, grep, ls, git, pytest on a few quick test files, edits and patches
in the clone) and each call's duration is measured; the agent's LLM is a script (`coding_tasks.py`), its
generation time drawn from a stated model (time to first token ~1.2 s, 16 ms per output token, extended
thinking on some turns). User time: a question to the user now and then (AskUserQuestion), approval waits
before some Codex commands (logged as Codex logs them: an `exec_approval_request` event and the
command's own `duration_seconds`), and follow-up requests, some after an idle gap longer than the replay
cap. Sessions are written in Claude Code's transcript format (~/.claude/projects/*/<session>.jsonl) and
in Codex's rollout format (~/.codex/sessions/.../rollout-*.jsonl), a third of the Codex ones in the older
style that writes a call with its result, after the tool ran. No one else's transcript is used.

    .venv/bin/python benchmarks/coding_sessions.py --out /tmp/coding_sessions --sessions 60 --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from coding_tasks import CLAUDE, CODEX, FAST_TESTS, Call, prompt
from coding_transcripts import ClaudeWriter, CodexWriter

log = logging.getLogger("coding_sessions")
REPO = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc).timestamp()
FOLDERS = ("data", "runtime", "predictor", "cli", "serving", "training")


def llm_seconds(rng: random.Random, tokens: int) -> float:
    """Generation time of one LLM turn: first token, output tokens, sometimes extended thinking."""
    ttft = rng.lognormvariate(0.18, 0.35)  # median ~1.2 s
    think = rng.lognormvariate(0.7, 0.6) if rng.random() < 0.3 else 0.0
    return ttft + think + 0.016 * tokens


class Tools:
    """The tools, run for real in `root`; each returns (output, error, measured seconds)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def run(self, call: Call) -> tuple[str, bool, float]:
        t0 = time.perf_counter()
        out, err = getattr(self, "_" + call.tool.lower())(**call.args)
        return out, err, time.perf_counter() - t0

    def _sh(self, command: str) -> tuple[str, bool]:
        p = subprocess.run(
            ["bash", "-c", command], cwd=self.root, capture_output=True, text=True, timeout=300
        )
        return (p.stdout + p.stderr)[-20000:], p.returncode != 0

    def _read(self, file_path: str, offset: int = 1, limit: int = 2000) -> tuple[str, bool]:
        try:
            lines = Path(file_path).read_text(encoding="utf-8").splitlines()
        except OSError as e:
            return f"<tool_use_error>{e}</tool_use_error>", True
        chunk = lines[offset - 1 : offset - 1 + limit]
        return "\n".join(f"{offset + i:>6}\t{x}" for i, x in enumerate(chunk)), False

    def _grep(self, pattern: str, path: str, output_mode: str = "files_with_matches", **_: object):
        flag = "-rlE" if output_mode == "files_with_matches" else "-rnE"
        out, _err = self._sh(f"grep {flag} --include='*.py' -e {json.dumps(pattern)} {path} | head -40")
        if output_mode == "files_with_matches":
            files = out.split()
            return f"Found {len(files)} files\n" + "\n".join(files), False
        return out or "No matches found", False

    def _glob(self, pattern: str, path: str) -> tuple[str, bool]:
        found = sorted(str(p) for p in Path(path).glob(pattern))
        return "\n".join(found) or "No files found", False

    def _ls(self, path: str) -> tuple[str, bool]:
        entries = sorted(Path(path).iterdir())
        return f"- {path}/\n" + "\n".join(f"  - {p.name}{'/' if p.is_dir() else ''}" for p in entries), False

    def _bash(self, command: str, description: str = "") -> tuple[str, bool]:
        return self._sh(command)

    def _shell(self, command: list[str], workdir: str) -> tuple[str, bool]:
        return self._sh(command[-1])

    def _edit(self, file_path: str, old_string: str, new_string: str) -> tuple[str, bool]:
        p = Path(file_path)
        text = p.read_text(encoding="utf-8")
        if old_string not in text:
            return "<tool_use_error>String to replace not found in file.</tool_use_error>", True
        p.write_text(text.replace(old_string, new_string, 1), encoding="utf-8")
        return f"The file {file_path} has been updated.", False

    def _apply_patch(self, input: str) -> tuple[str, bool]:  # noqa: A002 - Codex's argument name
        path = input.split("*** Update File: ", 1)[1].split("\n", 1)[0]
        old = next(x[1:] for x in input.splitlines() if x.startswith("-"))
        new = next(x[1:] for x in input.splitlines() if x.startswith("+"))
        out, err = self._edit(str(self.root / path), old, new)
        return (f"Success. Updated the following files:\nM {path}\n", False) if not err else (out, True)

    def _todowrite(self, todos: list) -> tuple[str, bool]:
        return "Todos have been modified successfully.", False

    def _update_plan(self, plan: list) -> tuple[str, bool]:
        return "Plan updated", False

    def _askuserquestion(self, questions: list) -> tuple[str, bool]:
        return f'User has answered your questions: "{questions[0]["question"]}"="no"', False


def clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(REPO), str(dest)], check=True)
    return dest


def symbols(root: Path, rng: random.Random, n: int) -> list[str]:
    out = subprocess.run(
        ["git", "grep", "-h", "-E", "^def [a-z][a-z_]{5,}\\(", "--", "*.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = sorted({line[4:].split("(")[0] for line in out.splitlines()})
    return rng.sample(names, k=min(n, len(names)))


def session(rng: random.Random, tools: Tools, dialect: str, start: float, writer) -> None:
    """One session: a task, maybe a follow-up; every call run and timed, the clock kept in `t`."""
    root = str(tools.root)
    tasks = CLAUDE if dialect == "claude" else CODEX
    t = start
    for n in range(1 + (rng.random() < 0.35)):
        kind = rng.choice(sorted(tasks))
        target = {"explore": rng.choice(FOLDERS), "tests": rng.choice(FAST_TESTS)}.get(kind) or rng.choice(
            symbols(tools.root, rng, 40)
        )
        if n:  # a follow-up: the user reads the answer, sometimes walks away
            t += rng.uniform(900, 2700) if rng.random() < 0.3 else rng.uniform(15, 120)
        writer.user(prompt(kind, target), t)
        task = tasks[kind](rng, root, target)
        outputs = None
        while True:
            try:
                step = task.send(outputs) if outputs is not None else next(task)
            except StopIteration:
                break
            t += llm_seconds(rng, step.tokens)
            if not step.calls:
                writer.answer(step.text, t, step.tokens)
                break
            results = []
            for call in step.calls:
                out, err, seconds = tools.run(call)
                wait = 0.0
                if call.tool == "AskUserQuestion":
                    seconds = rng.uniform(5, 60)  # the person answering
                elif dialect == "codex" and "pytest" in json.dumps(call.args) and rng.random() < 0.5:
                    wait = rng.uniform(3, 40)  # the user approves the command first
                results.append((call, out, err, seconds, wait))
            writer.turn(step.text, step.tokens, t, results)
            t += max(s + w for _c, _o, _e, s, w in results)
            outputs = [o for _c, o, _e, _s, _w in results]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--sessions", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "toolcast-coding-repo",
        help="where the clone lives while the agent works (a fixed path: the transcripts name it)",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="toolcast-coding-") as tmp:
        shutil.rmtree(args.workdir, ignore_errors=True)
        root = clone(args.workdir)
        tools = Tools(root)
        staging = Path(tmp) / "out"
        for i in range(args.sessions):
            dialect = "claude" if i % 2 == 0 else "codex"
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            start = START + i * 3 * 3600
            if dialect == "claude":
                writer = ClaudeWriter(sid, str(root), rng)
            else:
                writer = CodexWriter(sid, str(root), rng, legacy=(i // 2) % 3 == 1)
            session(rng, tools, dialect, start, writer)
            path = writer.write(staging, start)
            log.info("%s: %d lines", path.relative_to(staging), writer.lines)
            subprocess.run(["git", "checkout", "-q", "--", "."], cwd=root, check=True)  # undo the edits
        if args.out.exists():
            shutil.rmtree(args.out)
        shutil.copytree(staging, args.out)
    shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
