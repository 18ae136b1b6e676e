"""Coding tools' contracts: the shipped file, per-call eligibility, path freshness, the runtime using them."""

from __future__ import annotations

import asyncio
import json

import pytest

from toolcast.runtime.coding_contracts import (
    DEFAULT_FILE,
    KINDS,
    load_coding_contracts,
    patch_files,
)
from toolcast.runtime.contracts import keys_overlap
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual


@pytest.fixture(scope="module")
def policy():
    return load_coding_contracts().policy()


def call(policy, tool, **args):
    return policy.for_tool(tool).for_call(args)


def test_the_shipped_file_covers_each_agents_tools(policy):
    c = load_coding_contracts()
    assert set(c.sources) == {"claude_code", "codex"}
    assert {t.kind for t in c.tools.values()} == set(KINDS)
    for name in ("Read", "Grep", "Glob", "LS", "NotebookRead", "read_file", "list_directory", "glob",
                 "search_file_content", "list_dir", "view_image"):
        assert call(policy, name).speculable, name
    for name in ("Edit", "Write", "MultiEdit", "NotebookEdit", "apply_patch", "write_file", "replace",
                 "Task", "AskUserQuestion", "TodoWrite", "mcp__github__create_issue"):
        assert not call(policy, name).speculable, name


@pytest.mark.parametrize("tool, args, speculable", [
    ("Bash", {"command": "rg -n foo src | head"}, True),
    ("Bash", {"command": "git status && git diff --stat"}, True),
    ("Bash", {"command": "cd src && ls"}, False),  # Claude Code's shell keeps its directory
    ("Bash", {"command": "ls", "run_in_background": True}, False),
    ("Bash", {"command": "pytest -q"}, False),  # test runs: opt-in only
    ("Bash", {"command": "rm -rf build"}, False),
    ("Bash", {}, False),
    ("shell", {"command": ["bash", "-lc", "cd src && rg foo"]}, True),  # Codex: a fresh process per call
    ("shell", {"command": ["bash", "-lc", "echo x > f"]}, False),
    ("local_shell", {"action": {"type": "exec", "command": ["ls", "-la"]}}, True),
    ("exec_command", {"cmd": "sed -n 1,40p README.md"}, True),
    ("run_shell_command", {"command": "git log -5"}, True),
    ("run_shell_command", {"command": "npm install"}, False),
])
def test_shell_calls_are_judged_by_their_command_line(policy, tool, args, speculable):
    assert call(policy, tool, **args).speculable is speculable


def test_a_denied_shell_call_invalidates_everything_and_a_read_one_nothing(policy):
    denied = call(policy, "Bash", command="make build")
    assert denied.state_changing and denied.mutate_keys({}) is None
    assert not call(policy, "Bash", command="ls").state_changing


def test_test_runners_and_web_tools_are_opt_in():
    default = load_coding_contracts().policy()
    opted = load_coding_contracts(test_runners=True, open_world=True).policy()
    assert not call(default, "Bash", command="pytest -x").speculable
    assert call(opted, "Bash", command="pytest -x").speculable
    assert not call(opted, "Bash", command="rm x").speculable
    for tool in ("WebFetch", "WebSearch", "web_search", "google_web_search"):
        assert not call(default, tool, url="https://example.com").speculable
        assert not call(default, tool).state_changing  # a fetch changes no local state either way
        assert call(opted, tool).speculable


def test_a_read_is_invalidated_by_writes_that_may_touch_its_path(policy):
    def overlap(write, read):
        return keys_overlap(write.mutate_keys({}), read.read_keys({}))

    read = call(policy, "Read", file_path="/repo/src/app.py")
    assert overlap(call(policy, "Edit", file_path="/repo/src/app.py"), read)
    assert not overlap(call(policy, "Edit", file_path="/repo/src/other.py"), read)
    patch = "*** Begin Patch\n*** Update File: src/app.py\n@@\n-a\n+b\n*** End Patch"
    assert overlap(call(policy, "apply_patch", input=patch), read)  # relative path, absolute read
    assert overlap(call(policy, "Bash", command="sed -i s/a/b/ src/app.py"), read)  # unknown shell: all
    assert overlap(call(policy, "Write", file_path="/repo/src/new.py"), call(policy, "Grep", pattern="x"))
    assert overlap(call(policy, "Write", file_path="/repo/src/new.py"),
                   call(policy, "Glob", pattern="*.py", path="/repo/src"))
    assert not overlap(call(policy, "Write", file_path="/repo/docs/a.md"),
                       call(policy, "Glob", pattern="*.py", path="/repo/src"))
    assert not overlap(call(policy, "TodoWrite", todos=[]), read)
    assert overlap(call(policy, "Edit", file_path="/repo/[id]/page.tsx"),
                   call(policy, "Read", file_path="/repo/[id]/page.tsx"))  # glob characters in paths


def test_keys_from_paths_with_braces_are_never_filled_from_the_call_s_arguments(policy):
    """The runtime resolves a per-call contract's keys with the call's own arguments (`resolve_keys`), so
    a `{pattern}` in a path must stay literal: filled with Grep's pattern it missed the Edit below."""
    def overlap(tool_w, args_w, tool_r, args_r):
        write, read = call(policy, tool_w, **args_w), call(policy, tool_r, **args_r)
        return keys_overlap(write.mutate_keys(args_w), read.read_keys(args_r))

    assert overlap("Edit", {"file_path": "/a/{pattern}/x.py"},
                   "Grep", {"pattern": "foo", "path": "/a/{pattern}"})
    assert overlap("Edit", {"file_path": "/a/{file_path}"}, "Read", {"file_path": "/a/{file_path}"})
    assert not overlap("Edit", {"file_path": "/b/{x}.py"}, "Read", {"file_path": "/a/{x}.py"})


@pytest.mark.parametrize("fields", [{"kind": "bogus"}, {"kind": "file_read", "fresh_for": float("nan")},
                                    {"kind": "search", "fresh_for": 0.0}])
def test_a_coding_contract_that_contradicts_itself_is_refused_when_made(fields):
    """Not later, in `for_call`, which runs inside the agent's real call."""
    from toolcast.runtime.coding_contracts import CodingContract

    with pytest.raises(ValueError):
        CodingContract(**fields)


def test_patch_files_reads_every_kind_of_hunk():
    patch = ("*** Begin Patch\n*** Add File: a.py\n+x\n*** Delete File: b.py\n*** Update File: c.py\n"
             "*** Move to: d.py\n@@\n-x\n+y\n*** End Patch")
    assert patch_files(patch) == ["a.py", "b.py", "c.py", "d.py"]


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("format"), "field 'format'"),
    (lambda d: d.update(extra=1), "unknown field(s) extra"),
    (lambda d: d["tools"]["Read"].update(kind="reader"), "tools.Read.kind"),
    (lambda d: d["tools"]["Bash"].pop("command_args"), "tools.Bash.command_args"),
    (lambda d: d.update(test_runners="yes"), "field 'test_runners'"),
    (lambda d: d["tools"]["Grep"].update(path_args="path"), "tools.Grep.path_args"),
])
def test_a_bad_contracts_file_names_the_file_and_field(tmp_path, change, message):
    d = json.loads(DEFAULT_FILE.read_text())
    change(d)
    path = tmp_path / "contracts.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ValueError, match="contracts.json") as e:
        load_coding_contracts(path)
    assert message in str(e.value)


def test_the_runtime_serves_a_read_ahead_and_drops_it_after_an_edit_of_that_file(fk, policy):
    tools = fk.FakeTools()
    made = [tools.make(n, policy.for_tool(n), duration=0.5) for n in ("Read", "Edit", "Bash")]
    read = fk.pred("Read", 0.9, file_path="/r/a.py")
    ls = fk.pred("Bash", 0.9, command="ls -la")
    rm = fk.pred("Bash", 0.9, command="rm -rf /r")
    rt = SpeculativeRuntime(made, fk.ScriptedPredictor(lambda ctx: [read, ls, rm]), RuntimeConfig(k=3))

    async def agent():
        rt.observe_user("s", "fix a.py")
        await asyncio.sleep(2.0)
        await rt.call("s", "Read", {"file_path": "/r/a.py"})  # served from the run ahead
        await asyncio.sleep(2.0)  # a new Read of a.py ran ahead meanwhile
        await rt.call("s", "Edit", {"file_path": "/r/a.py", "old_string": "a", "new_string": "b"})
        await rt.call("s", "Read", {"file_path": "/r/a.py"})
        await rt.aclose()

    run_virtual(agent())
    assert not [r for r in tools.runs("Bash") if "rm" in r.args["command"]]  # never ran ahead
    assert any(r.args["command"] == "ls -la" for r in tools.runs("Bash"))
    reads = tools.runs("Read")
    assert rt.stats.total().hits >= 1
    assert rt.stats.tools["Read"].real_calls == 2
    assert reads[-1].start >= max(r.end for r in tools.runs("Edit"))  # the read after the edit is fresh
