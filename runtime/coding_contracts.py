"""Contracts for coding agents' tools (Claude Code, Codex, Gemini CLI), from a documented JSON file.

The shipped file is `profiles/coding_contracts.json`; `toolcast simulate` uses it on its own for traces
whose `source` it lists (Claude Code and Codex sessions), `--contracts FILE` takes an edited copy, and an
agent process builds its tools' contracts from the same file:

    policy = load_coding_contracts()                      # or load_coding_contracts("my.json")
    tools = [Tool("Read", read, contract=policy.for_tool("Read")), ...]

Each tool has a `kind`; what a call of it promises follows from the kind and the call's arguments
(`CodingContract.for_call`):

- `file_read` (Read, NotebookRead, read_file, view_image): side-effect-free, runs ahead; its result reads
  `file:<path>` for each path argument (no path: `file:*`);
- `search` (Grep, Glob, LS, list_directory, ...): the same over `file:<dir>*` (no directory: `file:*`);
- `shell` (Bash, shell, exec_command, run_shell_command): the command line is classified by
  `shell.classify`: read-only lines run ahead and read `file:*`; test runs run ahead only with
  `"test_runners": true` (for a sandboxed working copy; opted in, a test run counts as a read, so a
  suite that writes files the agent then reads must stay out); every other line is state-changing with
  undeclared effects, so its real call invalidates every speculative result of the session;
- `file_write` (Edit, Write, MultiEdit, write_file, replace): state-changing, mutates `file:<path>`;
- `patch` (Codex apply_patch): mutates each file the patch adds, updates, deletes or moves;
- `web` (WebFetch, WebSearch, web_search, ...): reaches third parties, so it runs ahead only with
  `"open_world": true` (a speculative fetch tells an outside party what the agent may do next); it
  changes no local state either way;
- `state` (TodoWrite, update_plan, save_memory): changes the agent's own bookkeeping (`mutates`), never
  files; `quiet`: changes nothing but cannot run ahead (BashOutput: its output changes over time);
- `ask_user` (AskUserQuestion, ExitPlanMode): a human answers: never ahead, and the user may have changed
  anything meanwhile; `deny` (Task, unknown tools): state-changing, undeclared.

Paths: relative paths also key as `file:*/<path>`, so `apply_patch` on `src/a.py` invalidates a `Read`
of `/repo/src/a.py`; glob characters and braces in a path become `?` (a key matches itself and never
misses; a brace would make `{name}` a placeholder that `resolve_keys` fills from the call's arguments).
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolcast.runtime.contracts import DENY, ContractPolicy, ToolContract, read_contracts_file
from toolcast.runtime.shell import ShellClass, Verdict, classify, classify_argv

DEFAULT_FILE = Path(__file__).parent / "profiles" / "coding_contracts.json"
FORMAT = "toolcast-coding-contracts/1"
KINDS = ("file_read", "search", "shell", "file_write", "patch", "web", "state", "quiet", "ask_user", "deny")
ALL_FILES = ("file:*",)
_GLOB = re.compile(r"[*?\[\]{}]")
"""Glob characters, and braces (`resolve_keys` would fill `{name}` in a key from the call's arguments)."""
_PATCH_FILE = re.compile(r"^\*\*\* (?:Add|Update|Delete) File: (.+)$|^\*\*\* Move to: (.+)$", re.MULTILINE)


@dataclass(frozen=True)
class CodingContract(ToolContract):
    """A coding tool's contract: the base fields are the tool's without arguments (a shell tool: deny);
    `for_call` gives one call's."""

    kind: str = "deny"
    """One of KINDS."""
    path_args: tuple[str, ...] = ()
    """Arguments naming the files or directories read or written (the first present is used)."""
    command_args: tuple[str, ...] = ()
    """Arguments holding a shell command line (a string) or argv (a list)."""
    persistent_cwd: bool = False
    """The tool's shell keeps its working directory between calls: `cd` changes later calls."""
    deny_if: tuple[str, ...] = ()
    """Arguments that, when true, make a call state-changing (Bash's `run_in_background`)."""
    test_runners: bool = False
    open_world: bool = False
    fresh_for: float = 60.0
    """Seconds a speculative result of this tool stays fresh (its TTL)."""
    state_keys: tuple[str, ...] = ()
    """Resource keys a `state` tool mutates."""

    def __post_init__(self) -> None:
        super().__post_init__()
        # Refused here, when the tool is registered, not when a call derives its contract from them: a
        # bad field must never fail the agent's real call (`for_call` runs inside `runtime.call`).
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        v = self.fresh_for
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"fresh_for must be a finite number of seconds > 0, got {v!r}")

    def for_call(self, args: Mapping[str, Any]) -> ToolContract:
        kind = self.kind
        if any(args.get(a) is True for a in self.deny_if):
            return DENY
        if kind == "file_read":
            return _reads(self.fresh_for, path_keys(_paths(args, self.path_args), directory=False))
        if kind == "search":
            return _reads(self.fresh_for, path_keys(_paths(args, self.path_args), directory=True))
        if kind == "shell":
            verdict = self.classify(args)
            if verdict.kind is ShellClass.READ_ONLY or (verdict.kind is ShellClass.TEST_RUNNER
                                                        and self.test_runners):
                return _reads(self.fresh_for, ALL_FILES)
            return DENY
        if kind == "file_write":
            paths = _paths(args, self.path_args)
            return ToolContract(mutates=path_keys(paths, directory=False) if paths else None)
        if kind == "patch":
            files = patch_files(next((v for v in args.values() if isinstance(v, str)), ""))
            return ToolContract(mutates=path_keys(files, directory=False) if files else None)
        if kind == "web":
            if self.open_world:
                return _reads(self.fresh_for, ("web:*",))
            return ToolContract(side_effect_free=True, idempotent=True, stable_for=0.0, reads=("web:*",))
        if kind == "state":
            return ToolContract(mutates=self.state_keys or ("agent:state",))
        if kind == "quiet":
            return ToolContract(side_effect_free=True, stable_for=0.0, reads=("agent:*",))
        if kind == "ask_user":
            return ToolContract(needs_confirmation=True)
        return DENY

    def classify(self, args: Mapping[str, Any]) -> Verdict:
        """The shell class of a call's command line (denied when it has none)."""
        for name in self.command_args:
            value = args.get(name)
            if isinstance(value, dict):  # Codex's local_shell action: {"type": "exec", "command": [...]}
                value = value.get("command")
            if isinstance(value, str):
                return _classify(value, self.persistent_cwd)
            if isinstance(value, list):
                return classify_argv(value, persistent_cwd=self.persistent_cwd)
        return Verdict(ShellClass.DENIED, "no command line in the call")


@functools.lru_cache(maxsize=4096)
def _classify(line: str, persistent_cwd: bool) -> Verdict:
    return classify(line, persistent_cwd=persistent_cwd)


def _reads(stable_for: float, keys: Iterable[str]) -> ToolContract:
    return ToolContract(side_effect_free=True, idempotent=True, stable_for=stable_for, reads=tuple(keys))


def _paths(args: Mapping[str, Any], names: tuple[str, ...]) -> list[str] | None:
    """The paths a call names; None when one is not a string (unknown: every file)."""
    for name in names:
        value = args.get(name)
        if value is None or value == "":
            continue
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            return None
        return list(values)
    return []


def path_keys(paths: list[str] | None, *, directory: bool) -> tuple[str, ...]:
    """Resource keys of paths: `file:<path>` (and `file:*/<path>` for a relative one); a directory also
    covers what is under it; no path (the working directory) or an unknown one: `file:*`."""
    if not paths:
        return ALL_FILES
    keys: list[str] = []
    for p in paths:
        p = _GLOB.sub("?", posixpath.normpath(p.strip()))
        if p in (".", "", "/"):
            return ALL_FILES
        tail = "*" if directory else ""
        keys.append(f"file:{p}{tail}")
        if not p.startswith(("/", "~")):
            keys.append(f"file:*/{p.removeprefix('../')}{tail}")
    return tuple(keys)


def patch_files(patch: str) -> list[str]:
    """The files an `apply_patch` input adds, updates, deletes or moves to (Codex's patch format)."""
    return [m.group(1) or m.group(2) for m in _PATCH_FILE.finditer(patch)]


# ---- the contracts file ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodingContracts:
    """The contents of a coding contracts file."""

    tools: dict[str, CodingContract]
    sources: tuple[str, ...]
    """Trace sources (`Trace.source`) that use these contracts without being asked."""
    where: str

    def policy(self, fallback: ContractPolicy | None = None) -> ContractPolicy:
        """Exact tool names from the file first; other tools by `fallback`'s rules (default: deny)."""
        base = fallback or ContractPolicy()
        return ContractPolicy(tools={**base.tools, **self.tools}, patterns=list(base.patterns),
                              default=base.default)


def load_coding_contracts(path: str | Path | None = None, *, test_runners: bool | None = None,
                          open_world: bool | None = None) -> CodingContracts:
    """Read a coding contracts file (default: the shipped one); errors name the file and field."""
    where = str(path or DEFAULT_FILE)
    d = read_contracts_file(where, "coding contracts")
    return coding_contracts_from_dict(d, where, test_runners=test_runners, open_world=open_world)


def is_coding_contracts(d: Any) -> bool:
    return isinstance(d, dict) and d.get("format") == FORMAT


_TOP = {"format", "notes", "sources", "stable_for", "test_runners", "open_world", "tools"}
_TOOL = {"kind", "path_args", "command_args", "persistent_cwd", "deny_if", "mutates", "stable_for", "notes"}


def coding_contracts_from_dict(d: Any, where: str, *, test_runners: bool | None = None,
                               open_world: bool | None = None) -> CodingContracts:
    if not is_coding_contracts(d):
        raise ValueError(f"{where}: field 'format': expected {FORMAT!r}")
    unknown = sorted(set(d) - _TOP)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                         f"expected {', '.join(sorted(_TOP))}")
    stable = d.get("stable_for", 60)
    if isinstance(stable, bool) or not isinstance(stable, (int, float)) or stable <= 0:
        raise ValueError(f"{where}: field 'stable_for': expected a positive number of seconds, "
                         f"got {stable!r}")
    flags = {}
    for name, override in (("test_runners", test_runners), ("open_world", open_world)):
        value = d.get(name, False)
        if not isinstance(value, bool):
            raise ValueError(f"{where}: field {name!r}: expected true or false, got {value!r}")
        flags[name] = value if override is None else override
    sources = d.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise ValueError(f"{where}: field 'sources': expected a list of trace sources")
    tools_in = d.get("tools")
    if not isinstance(tools_in, dict) or not tools_in:
        raise ValueError(f"{where}: field 'tools': expected an object of tool name -> contract")
    tools = {name: _tool(spec, f"{where}: tools.{name}", float(stable), flags)
             for name, spec in tools_in.items()}
    return CodingContracts(tools, tuple(sources), where)


def _tool(spec: Any, where: str, stable: float, flags: dict[str, bool]) -> CodingContract:
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected an object, got {type(spec).__name__}")
    unknown = sorted(set(spec) - _TOOL)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                         f"expected {', '.join(sorted(_TOOL))}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    lists = {}
    for name in ("path_args", "command_args", "deny_if", "mutates"):
        value = spec.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{where}.{name}: expected a list of strings, got {value!r}")
        lists[name] = tuple(value)
    if kind == "shell" and not lists["command_args"]:
        raise ValueError(f"{where}.command_args: a shell tool needs the argument holding its command")
    persistent = spec.get("persistent_cwd", False)
    if not isinstance(persistent, bool):
        raise ValueError(f"{where}.persistent_cwd: expected true or false, got {persistent!r}")
    fresh = spec.get("stable_for", stable)
    if isinstance(fresh, bool) or not isinstance(fresh, (int, float)) or fresh <= 0:
        raise ValueError(f"{where}.stable_for: expected a positive number of seconds, got {fresh!r}")
    base = DENY if kind == "shell" else CodingContract(  # the tool's promises before any argument is known
        kind=kind, fresh_for=float(fresh), open_world=flags["open_world"], state_keys=lists["mutates"]
    ).for_call({})
    return CodingContract(
        side_effect_free=base.side_effect_free, idempotent=base.idempotent, stable_for=base.stable_for,
        reads=base.reads, mutates=base.mutates if kind != "state" else lists["mutates"] or None,
        needs_confirmation=base.needs_confirmation, kind=kind, path_args=lists["path_args"],
        command_args=lists["command_args"], persistent_cwd=persistent, deny_if=lists["deny_if"],
        test_runners=flags["test_runners"], open_world=flags["open_world"], fresh_for=float(fresh),
        state_keys=lists["mutates"])


def replay_contracts_for(path: str | None, traces: Iterable[Any] = ()) -> tuple[ContractPolicy, str]:
    """The contracts `toolcast simulate` replays with, and how its report names them.

    A coding contracts file given (`--contracts`): its tools, other tools by the builtin name patterns.
    Another file: the replay name-pattern overrides (`replay_contracts.py`). None: the shipped coding
    contracts when a trace's source is one the file lists (a Claude Code or Codex session), else the
    builtin name patterns.
    """
    from toolcast.runtime.replay_contracts import load_replay_policy, replay_policy

    if path is not None:
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            d = None  # load_replay_policy reports it, naming the file and line
        if is_coding_contracts(d):
            return coding_contracts_from_dict(d, path).policy(replay_policy()), \
                f"coding contracts {path} + builtin name patterns"
        return load_replay_policy(path), path
    coding = load_coding_contracts()
    if any(getattr(t, "source", None) in coding.sources for t in traces):
        return coding.policy(replay_policy()), "shipped coding contracts + builtin name patterns"
    return replay_policy(), "builtin name patterns"


def naming_policy(path: str | None = None) -> ContractPolicy:
    """Which tools are reads and which change state when no runtime says (`toolcast train` fitting the
    horizon view, `toolcast serve` serving it): a contracts file's (`--contracts`, as
    `replay_contracts_for`), else the shipped coding contracts and the builtin name patterns together."""
    from toolcast.runtime.replay_contracts import replay_policy

    if path is not None:
        return replay_contracts_for(path)[0]
    return load_coding_contracts().policy(replay_policy())


def is_coding_session(traces: Iterable[Any]) -> bool:
    """Are these a coding agent's sessions (a source the shipped contracts file lists)?"""
    sources = set(load_coding_contracts().sources)
    return any(getattr(t, "source", None) in sources for t in traces)
