"""Scripted coding tasks over a working copy of this repository, for `coding_sessions.py`.

Each task is a generator: it yields a `Step` (a turn of tool calls, or the final answer) and is sent the
outputs of that turn, so later arguments come from earlier outputs the way a coding agent's do (the file
a search found, the lines a grep named). Two dialects: Claude Code's tools (Read, Grep, Glob, LS, Bash,
Edit, TodoWrite, AskUserQuestion) and Codex's (`shell` with bash command lines, `apply_patch`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

FAST_TESTS = (
    "tests/runtime/test_contracts.py",
    "tests/runtime/test_planner.py",
    "tests/data/test_splits.py",
    "tests/runtime/test_latency.py",
)
"""Test files the scripted agent runs: quick ones, so generating sessions stays cheap on a shared CPU."""


@dataclass
class Call:
    tool: str
    args: dict[str, Any]


@dataclass
class Step:
    calls: list[Call] = field(default_factory=list)
    text: str = ""
    """Assistant text before the calls (or the answer, when there are no calls)."""
    tokens: int = 80
    """Output tokens of this LLM turn (drives the simulated generation time)."""


Task = Generator[Step, list[str], None]


def _first_path(output: str, root: str) -> str | None:
    for line in output.splitlines():
        m = re.match(
            r"^(?:\./)?([^\s:]+\.(?:py|md|toml|json))(?::\d+)?", line.strip().removeprefix(root + "/")
        )
        if m:
            return m.group(1)
    return None


def _line_of(output: str) -> int:
    m = re.search(r":(\d+):", output)
    return int(m.group(1)) if m else 1


# ---- Claude Code dialect --------------------------------------------------------------------------------


def claude_locate(rng: random.Random, root: str, sym: str) -> Task:
    out = yield Step(
        [Call("Grep", {"pattern": f"def {sym}", "path": root, "output_mode": "files_with_matches"})],
        "I'll find where it is defined.",
        60,
    )
    path = _first_path(out[0], root) or "README.md"
    out = yield Step([Call("Read", {"file_path": f"{root}/{path}"})], tokens=40)
    if rng.random() < 0.7:
        out = yield Step(
            [Call("Grep", {"pattern": sym, "path": root, "output_mode": "content", "-n": True})], tokens=50
        )
        other = [p for p in (_first_path(line, root) for line in out[0].splitlines()) if p and p != path]
        if other:
            yield Step([Call("Read", {"file_path": f"{root}/{other[0]}"})], tokens=40)
    yield Step(text=f"`{sym}` is defined in {path}; it is used as shown above.", tokens=rng.randint(150, 450))


def claude_edit(rng: random.Random, root: str, sym: str) -> Task:
    if rng.random() < 0.5:
        yield Step(
            [
                Call(
                    "TodoWrite",
                    {
                        "todos": [
                            {"content": f"Document {sym}", "status": "in_progress"},
                            {"content": "Run the tests", "status": "pending"},
                        ]
                    },
                )
            ],
            tokens=90,
        )
    out = yield Step(
        [Call("Grep", {"pattern": f"def {sym}\\(", "path": root, "output_mode": "content", "-n": True})],
        "Let me look at the function first.",
        60,
    )
    path = _first_path(out[0], root) or "README.md"
    out = yield Step([Call("Read", {"file_path": f"{root}/{path}"})], tokens=40)
    line = next((x for x in out[0].splitlines() if f"def {sym}(" in x), None)
    if line is None:
        yield Step(text="I could not find the definition.", tokens=60)
        return
    old = line.split("\t", 1)[-1]
    if rng.random() < 0.3:
        yield Step(
            [
                Call(
                    "AskUserQuestion",
                    {"questions": [{"question": f"Also add a test for {sym}?", "options": ["yes", "no"]}]},
                )
            ],
            tokens=70,
        )
    yield Step(
        [
            Call(
                "Edit", {"file_path": f"{root}/{path}", "old_string": old, "new_string": old + "  # reviewed"}
            )
        ],
        "I'll add the note.",
        120,
    )
    test = rng.choice(FAST_TESTS)
    yield Step(
        [
            Call(
                "Bash",
                {
                    "command": f"python -m pytest -q -x -p no:cacheprovider {test} 2>&1 | tail -3",
                    "description": "Run the tests",
                },
            )
        ],
        tokens=50,
    )
    yield Step([Call("Bash", {"command": "git diff --stat", "description": "Show the change"})], tokens=30)
    if rng.random() < 0.5:
        yield Step([Call("Read", {"file_path": f"{root}/{path}", "offset": 1, "limit": 40})], tokens=30)
    yield Step(
        text=f"Done: {path} now notes `{sym}` as reviewed and {test} passes.", tokens=rng.randint(80, 250)
    )


def claude_explore(rng: random.Random, root: str, folder: str) -> Task:
    out = yield Step([Call("LS", {"path": f"{root}/{folder}"})], "Let me look at the package.", 40)
    files = [x.strip().lstrip("- ") for x in out[0].splitlines() if x.strip().endswith(".py")]
    yield Step(
        [
            Call("Read", {"file_path": f"{root}/{folder}/__init__.py"}),
            Call("Bash", {"command": f"git log --oneline -8 -- {folder}", "description": "Recent history"}),
        ],
        tokens=70,
    )
    picks = rng.sample(files, k=min(len(files), rng.randint(1, 2))) if files else []
    for name in picks:
        yield Step([Call("Read", {"file_path": f"{root}/{folder}/{name}"})], tokens=40)
    if rng.random() < 0.5:
        yield Step([Call("Glob", {"pattern": f"tests/{folder}/*.py", "path": root})], tokens=40)
    yield Step(
        text=f"{folder}/ holds {len(files)} modules; the main ones are {', '.join(picks)}.",
        tokens=rng.randint(200, 500),
    )


def claude_tests(rng: random.Random, root: str, test: str) -> Task:
    out = yield Step(
        [
            Call(
                "Bash",
                {
                    "command": f"python -m pytest -q -p no:cacheprovider {test} 2>&1 | tail -5",
                    "description": "Run the tests",
                },
            )
        ],
        "I'll run them.",
        40,
    )
    yield Step([Call("Read", {"file_path": f"{root}/{test}"})], tokens=40)
    m = re.search(r"from toolcast\.([\w.]+) import", open(f"{root}/{test}", encoding="utf-8").read())
    if m:
        module = m.group(1).replace(".", "/", 1).split(".")[0]
        out = yield Step([Call("Glob", {"pattern": f"{module}*.py", "path": root})], tokens=40)
        path = _first_path(out[0], root)
        if path:
            yield Step([Call("Read", {"file_path": f"{root}/{path}"})], tokens=40)
    yield Step(text=f"All of {test} passes; nothing to fix.", tokens=rng.randint(60, 200))


# ---- Codex dialect --------------------------------------------------------------------------------------


def _sh(cmd: str, root: str) -> Call:
    return Call("shell", {"command": ["bash", "-lc", cmd], "workdir": root})


def codex_locate(rng: random.Random, root: str, sym: str) -> Task:
    out = yield Step([_sh(f"grep -rn 'def {sym}' --include='*.py' . | head -5", root)], tokens=60)
    path = _first_path(out[0], root) or "README.md"
    line = _line_of(out[0])
    yield Step([_sh(f"sed -n '{max(1, line - 5)},{line + 40}p' {path}", root)], tokens=50)
    if rng.random() < 0.6:
        yield Step([_sh(f"grep -rn '{sym}' --include='*.py' . | head -20", root)], tokens=50)
    yield Step(text=f"`{sym}` lives in {path} around line {line}.", tokens=rng.randint(150, 400))


def codex_edit(rng: random.Random, root: str, sym: str) -> Task:
    if rng.random() < 0.5:
        yield Step(
            [Call("update_plan", {"plan": [{"step": f"Document {sym}", "status": "in_progress"}]})], tokens=60
        )
    out = yield Step([_sh(f"grep -rn 'def {sym}(' --include='*.py' .", root)], tokens=60)
    path = _first_path(out[0], root)
    if path is None:
        yield Step(text="Not found.", tokens=30)
        return
    line = _line_of(out[0])
    out = yield Step([_sh(f"sed -n '{line},{line + 30}p' {path}", root)], tokens=50)
    first = out[0].splitlines()[0] if out[0] else ""
    if f"def {sym}(" not in first:
        yield Step(text="The file changed under me; stopping.", tokens=30)
        return
    patch = f"*** Begin Patch\n*** Update File: {path}\n@@\n-{first}\n+{first}  # reviewed\n*** End Patch\n"
    yield Step([Call("apply_patch", {"input": patch})], tokens=140)
    test = rng.choice(FAST_TESTS)
    yield Step([_sh(f"python -m pytest -q -x -p no:cacheprovider {test}", root)], tokens=40)
    yield Step([_sh("git diff --stat", root)], tokens=30)
    yield Step(text=f"Patched {path}; {test} passes.", tokens=rng.randint(80, 220))


def codex_explore(rng: random.Random, root: str, folder: str) -> Task:
    out = yield Step([_sh(f"ls -la {folder}", root)], tokens=40)
    files = [x.split()[-1] for x in out[0].splitlines() if x.endswith(".py")]
    yield Step(
        [_sh(f"sed -n '1,60p' {folder}/__init__.py", root), _sh(f"git log --oneline -5 -- {folder}", root)],
        tokens=60,
    )
    for name in rng.sample(files, k=min(len(files), rng.randint(1, 2))) if files else []:
        yield Step([_sh(f"wc -l {folder}/{name} && sed -n '1,40p' {folder}/{name}", root)], tokens=40)
    yield Step(text=f"{folder}/ has {len(files)} modules.", tokens=rng.randint(200, 450))


CLAUDE = {"locate": claude_locate, "edit": claude_edit, "explore": claude_explore, "tests": claude_tests}
CODEX = {"locate": codex_locate, "edit": codex_edit, "explore": codex_explore}


def prompt(kind: str, target: str) -> str:
    return {
        "locate": f"Where is `{target}` defined, and what does it do?",
        "edit": f"Add a short 'reviewed' note to `{target}` and make sure the tests still pass.",
        "explore": f"Give me an overview of the {target}/ package.",
        "tests": f"Run {target} and tell me whether anything fails.",
    }[kind]
