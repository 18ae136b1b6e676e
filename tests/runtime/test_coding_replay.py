"""Coding agents' sessions through `toolcast simulate`: shipped contracts, recorded times, clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from toolcast.cli.main import main
from toolcast.data import load_traces
from toolcast.runtime.coding_contracts import DEFAULT_FILE, replay_contracts_for

FIXTURE = Path(__file__).parents[1] / "fixtures" / "coding_sessions"


def test_coding_sessions_pick_the_shipped_contracts_and_others_the_name_patterns(fk):
    policy, label = replay_contracts_for(None, load_traces(FIXTURE))
    assert "coding contracts" in label
    assert policy.for_tool("Read").for_call({"file_path": "/a"}).speculable
    assert policy.for_tool("get_order").speculable  # other tools keep the replay name patterns
    _, label = replay_contracts_for(None, [fk.shop_trace()])
    assert label == "builtin name patterns"


def test_simulate_replays_coding_sessions_with_their_recorded_times(capsys):
    code = main(["simulate", "--data", str(FIXTURE), "--train", str(FIXTURE), "--baseline", "markov"])
    out = capsys.readouterr().out
    assert code == 0
    assert "tool times: recorded" in out and "shipped coding contracts" in out
    code = main(["simulate", "--data", str(FIXTURE), "--train", str(FIXTURE), "--baseline", "markov",
                 "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["oracle"]["saving_s"] > 0  # reads and read-only shell commands ran ahead
    assert summary["oracle"]["launched"] > 0


def test_test_runs_run_ahead_only_when_the_contracts_file_opts_in(tmp_path, capsys):
    opted = json.loads(DEFAULT_FILE.read_text())
    opted["test_runners"] = True
    path = tmp_path / "coding.json"
    path.write_text(json.dumps(opted))
    runs = {}
    for name, extra in (("default", []), ("opted", ["--contracts", str(path)])):
        assert main(["simulate", "--data", str(FIXTURE), "--train", str(FIXTURE), "--baseline", "markov",
                     "--json", *extra]) == 0
        runs[name] = json.loads(capsys.readouterr().out)["oracle"]
    assert runs["opted"]["saving_s"] > runs["default"]["saving_s"]  # the pytest runs are the slow calls


@pytest.mark.parametrize("corrupt, field", [
    (lambda line: line[: len(line) // 2], None),  # a line cut short: not JSON
    (lambda line: line.replace('"timestamp": "', '"timestamp": "yesterday '), "timestamp"),
])
def test_a_malformed_transcript_is_a_clear_error_naming_file_line_and_field(tmp_path, capsys, corrupt, field):
    data = tmp_path / "sessions"
    shutil.copytree(FIXTURE, data)
    victim = sorted(data.rglob("*.jsonl"))[0]
    lines = victim.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = corrupt(lines[2].rstrip("\n")) + "\n"
    victim.write_text("".join(lines), encoding="utf-8")
    for command in (["stats", str(data)], ["simulate", "--data", str(data), "--baseline", "markov"]):
        code = main(command)
        err = capsys.readouterr().err
        assert code != 0
        assert victim.name in err and "line 3" in err, err
        if field:
            assert field in err


def test_stats_prints_the_tool_share_of_active_time(capsys):
    assert main(["stats", str(FIXTURE)]) == 0
    out = capsys.readouterr().out
    assert "tool share of active time" in out and "approval waits" in out
    assert main(["stats", str(FIXTURE), "--json"]) == 0
    active = json.loads(capsys.readouterr().out)["active_time"]
    assert active["timed_traces"] == 4 and 0 < active["tool_share"] < 1 and active["untimed_calls"] == 0


def test_replayed_task_time_leaves_out_approvals_and_questions_to_the_user():
    from toolcast.data.schema import Message, ToolCall, Trace
    from toolcast.runtime.simulate import SimConfig, simulate

    ran_2s = json.dumps({"output": "3 passed", "metadata": {"exit_code": 0, "duration_seconds": 2.0}})
    events = [Message("user", "run the tests", t_start=0, t_end=0),
              Message("assistant", "", t_end=1, turn=0),
              ToolCall("a", 0, "AskUserQuestion", {"questions": []}, "yes", False, 1, 31),
              Message("assistant", "", t_end=32, turn=1),
              ToolCall("b", 1, "shell", {"command": ["bash", "-lc", "pytest -q"]}, ran_2s, False, 32, 52),
              Message("assistant", "all pass", t_end=53)]
    trace = Trace("s", "s", "codex", {}, [], events)
    serial = simulate([trace], {}, config=SimConfig(tool_time="recorded")).summary()["serial"]
    assert serial["mean_stall_s"] == pytest.approx(2.0, abs=0.01)  # the run, not the 18 s approval wait
    assert serial["mean_task_s"] == pytest.approx(1 + 1 + 1 + 2, abs=0.01)  # nor the 30 s answer


def test_simulate_reports_a_clock_jump(tmp_path, caplog):
    from toolcast.data.schema import Message, ToolCall, Trace

    events = [Message("user", "go", t_start=100, t_end=100), Message("assistant", "", t_end=102, turn=0),
              ToolCall("a", 0, "Read", {"file_path": "/r/a.py"}, "x", False, 102, 103),
              Message("assistant", "done", t_end=40)]  # the machine's clock was set back
    path = tmp_path / "t.jsonl"
    path.write_text(Trace("s", "s", "claude_code", {}, [], events).to_json() + "\n", encoding="utf-8")
    with caplog.at_level("WARNING", logger="toolcast.simulate"):
        assert main(["simulate", "--data", str(path), "--train", str(path), "--baseline", "markov"]) == 0
    assert "1 clock jump(s)" in caplog.text and "event 3" in caplog.text
