"""`toolcast eval` end to end on tiny logs written to tmp_path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from toolcast.cli.main import main
from toolcast.data import Message, ToolCall, ToolSpec, Trace

TOOLS = [ToolSpec("get_user", parameters={"type": "object", "properties": {"user_id": {"type": "string"}}}),
         ToolSpec("get_order", parameters={"type": "object", "properties": {"order_id": {"type": "string"}}})]
KEYS = ("tool_top1", "tool_top3", "call_top1", "call_top3", "ece", "n_points")


def world(i: int) -> Trace:
    orders = [f"#W{i}0", f"#W{i}1"]
    return Trace(f"t{i}", f"g{i}", "test", {}, TOOLS, [
        Message("user", f"I am user_{i}"),
        Message("assistant", "", turn=0),
        ToolCall(f"a{i}", 0, "get_user", {"user_id": f"user_{i}"}, json.dumps({"orders": orders})),
        Message("assistant", "", turn=1),
        ToolCall(f"b{i}", 1, "get_order", {"order_id": orders[0]}, "{}"),
        Message("assistant", "Done."),
    ])


def write(path, traces) -> str:
    path.write_text("".join(t.to_json() + "\n" for t in traces), encoding="utf-8")
    return str(path)


@pytest.fixture
def logs(tmp_path):
    return write(tmp_path / "all.jsonl", [world(i) for i in range(60)])


def test_json_is_exactly_one_object_with_the_headline_keys(logs, capsys):
    assert main(["eval", "--data", logs, "--baseline", "pattern", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON object
    assert set(KEYS) <= set(d) and d["predictor"] == "pattern"
    assert d["setup"]["measured_on"] == "test split of --data" and d["setup"]["seed"] == 0
    assert d["setup"]["fit_traces"] + d["setup"]["test_traces"] == 60
    assert d["n_points"] == 2 * d["setup"]["test_traces"]
    assert d["call_top1"] == 1.0  # the pattern pool derives both calls on tasks it never saw


def test_train_flag_fits_on_it_and_measures_all_of_data(tmp_path, capsys):
    train = write(tmp_path / "train.jsonl", [world(i) for i in range(10)])
    data = write(tmp_path / "data.jsonl", [world(i) for i in range(100, 104)])
    assert main(["eval", "--data", data, "--train", train, "--baseline", "markov", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["setup"]["measured_on"] == "all of --data" and d["setup"]["test_traces"] == 4
    assert d["n_points"] == 8 and d["n_respond_points"] == 4
    assert d["call_top3"] == 0.0  # a frequency table cannot know a new task's ids


def test_human_output_and_reliability_plot(logs, tmp_path, capsys):
    plot = tmp_path / "out" / "reliability.png"
    assert main(["eval", "--data", logs, "--baseline", "markov", "--plot", str(plot), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "task-grouped 80/10/10, seed 3" in out and "per labelled tool" in out and "get_order" in out
    assert "any call of the agent's turn" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_dir_without_a_model_says_what_is_missing(logs, tmp_path, capsys):
    empty = tmp_path / "empty_model"
    empty.mkdir()
    assert main(["eval", "--data", logs, "--model", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "toolcast: error:" in err and "config.json" in err and "Traceback" not in err


def test_bad_input_names_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"trace_id": "x", "events": [{"type": "tool_call"}]}\n', encoding="utf-8")
    assert main(["eval", "--data", str(bad), "--baseline", "markov"]) == 1
    assert "bad.jsonl" in capsys.readouterr().err


def test_baseline_eval_runs_without_torch(logs):
    code = ("import sys\n"
            "for m in ('torch', 'lightning', 'transformers'):\n"
            "    sys.modules[m] = None  # any import of them now fails\n"
            "from toolcast.cli.main import main\n"
            f"sys.exit(main(['eval', '--data', {logs!r}, '--baseline', 'pattern', '--json']))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["n_points"] > 0


def stuck(i: int) -> Trace:
    """An agent that calls get_user with the same id six times in a row (a looping trace)."""
    t = world(i)
    call = t.events[2]
    t.events[3:3] = [ToolCall(f"r{i}{j}", 1 + j, "get_user", dict(call.args), call.output) for j in range(5)]
    return t


def test_looping_traces_are_left_out_and_counted_unless_kept(tmp_path, capsys):
    from toolcast.data.splits import split_of

    traces = [world(i) for i in range(60)] + [stuck(i) for i in range(60, 120)]
    logs = write(tmp_path / "mixed.jsonl", traces)
    looping_in_test = [t for t in traces[60:] if split_of(t.group, 0) == "test"]
    assert looping_in_test  # the fixture must put some in the test split
    assert main(["eval", "--data", logs, "--baseline", "pattern", "--json"]) == 0
    left_out = json.loads(capsys.readouterr().out)
    assert left_out["setup"]["looping_left_out"]["traces"] == len(looping_in_test)
    assert main(["eval", "--data", logs, "--baseline", "pattern", "--json", "--keep-looping"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert kept["setup"]["looping_left_out"] is None
    assert kept["setup"]["test_traces"] == left_out["setup"]["test_traces"] + len(looping_in_test)
    assert main(["eval", "--data", logs, "--baseline", "pattern"]) == 0
    assert f"left out {len(looping_in_test)} looping trace(s)" in capsys.readouterr().out


@pytest.fixture
def tiny_model(tmp_path):
    """The exported tiny model, copied so its metrics card can be rewritten."""
    import shutil
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"
    return Path(shutil.copytree(src, tmp_path / "model"))


def _record(model, traces) -> None:
    from toolcast.training.trained_on import record

    path = model / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    metrics["trained_on"] = record(traces, [], seed=0, holdout=None)
    path.write_text(json.dumps(metrics), encoding="utf-8")


def test_model_is_measured_on_all_of_logs_it_was_not_trained_on(tiny_model, tmp_path, capsys):
    _record(tiny_model, [world(i) for i in range(100, 110)])
    data = write(tmp_path / "other.jsonl", [world(i) for i in range(20)])
    assert main(["eval", "--data", data, "--model", str(tiny_model), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["setup"]["measured_on"] == "all of --data" and d["setup"]["test_traces"] == 20
    assert d["setup"]["left_out_trained"] == 0 and d["n_decision_points"] == 20 * 3


def test_model_leaves_out_exactly_the_traces_it_was_trained_on(tiny_model, tmp_path, capsys):
    from dataclasses import replace

    # the same run under another id (re-imported from another file) is still a training trace
    _record(tiny_model, [replace(world(i), trace_id=f"elsewhere{i}") for i in range(12)])
    data = write(tmp_path / "mixed.jsonl", [world(i) for i in range(20)])
    assert main(["eval", "--data", data, "--model", str(tiny_model), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["setup"]["test_traces"] == 8 and d["setup"]["left_out_trained"] == 12
    assert d["n_decision_points"] == 8 * 3
    assert main(["eval", "--data", data, "--model", str(tiny_model)]) == 0
    out = capsys.readouterr().out
    assert "left out 12 of the 20 traces of --data" in out and "measured on 8 traces" in out
    assert "decision points 24" in out
    assert main(["eval", "--data", data, "--model", str(tiny_model), "--no-split", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["setup"]["test_traces"] == 20


def test_model_trained_on_every_trace_says_so(tiny_model, tmp_path, capsys):
    traces = [world(i) for i in range(5)]
    _record(tiny_model, traces)
    assert main(["eval", "--data", write(tmp_path / "own.jsonl", traces), "--model", str(tiny_model)]) == 1
    assert "trained on all 5 traces of --data" in capsys.readouterr().err


def test_model_without_a_record_falls_back_to_the_split(tiny_model, logs, capsys, caplog):
    metrics = json.loads((tiny_model / "metrics.json").read_text(encoding="utf-8"))
    metrics.pop("trained_on", None)
    (tiny_model / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    assert main(["eval", "--data", logs, "--model", str(tiny_model), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["setup"]["measured_on"] == "test split of --data" and d["setup"]["test_traces"] < 60
    assert "does not record the traces it was trained on" in caplog.text
