"""`toolcast simulate`: one JSON object keyed by policy, clear errors, a figure on request."""

from __future__ import annotations

import json

import pytest

from toolcast.cli.main import main


@pytest.fixture
def logs(fk, tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(fk.shop_trace(f"t{i}", f"g{i}", order=f"A{i % 3}").to_json() + "\n"
                            for i in range(12)), encoding="utf-8")
    return path


def test_json_output_is_one_object_keyed_by_policy(logs, capsys):
    code = main(["simulate", "--data", str(logs), "--train", str(logs), "--baseline", "markov", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    summary = json.loads(out)  # exactly one JSON document on stdout
    assert list(summary) == ["serial", "oracle", "oracle_horizon", "markov", "pattern", "fanout"]
    for m in summary.values():
        assert {"mean_task_s", "saving_captured", "waste_per_saved_s"} <= set(m)
        assert m["traces"] == 12
    assert summary["oracle"]["saving_captured"] == 1.0


def test_stream_adds_the_stream_oracle_and_a_stream_run_of_each_predictor(logs, capsys):
    code = main(["simulate", "--data", str(logs), "--train", str(logs), "--baseline", "markov", "--json",
                 "--stream", "--no-fanout", "--spec-per-call", "2"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert list(summary) == ["serial", "oracle", "oracle_horizon", "markov", "pattern", "oracle_stream",
                             "markov+stream", "pattern+stream"]
    assert summary["oracle_stream"]["mean_task_s"] <= summary["serial"]["mean_task_s"]


def test_table_split_and_plot(logs, tmp_path, capsys):
    pytest.importorskip("matplotlib")  # plots need the [train] extra; the base-install run skips this
    figure = tmp_path / "sim.png"
    code = main(["simulate", "--data", str(logs), "--baseline", "pattern", "--split", "all",
                 "--sessions", "4", "--workers", "2", "--plot", str(figure)])
    out = capsys.readouterr().out
    assert code == 0 and "oracle" in out and "4 concurrent session(s)" in out
    assert figure.stat().st_size > 0


def test_latency_and_contract_files(logs, tmp_path, capsys):
    profile = tmp_path / "p.json"
    slow = {"name": "slow-tools", "tools": [{"match": "*", "dist": "fixed", "seconds": 5}]}
    profile.write_text(json.dumps(slow))
    contracts = tmp_path / "c.json"
    contracts.write_text(json.dumps({"read_only": []}))  # nothing may run ahead
    code = main(["simulate", "--data", str(logs), "--train", str(logs), "--baseline", "markov", "--json",
                 "--latency", str(profile), "--contracts", str(contracts)])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["oracle"]["launched"] == 0 and "slow-tools" in summary["oracle"]["profile"]


@pytest.mark.parametrize("extra, message", [
    (["--latency", "missing.json"], "cannot read latency profile"),
    (["--sessions", "0"], "must be at least 1"),
])
def test_bad_options_fail_clearly(logs, capsys, extra, message):
    code = main(["simulate", "--data", str(logs), "--train", str(logs), "--baseline", "markov", *extra])
    assert code == 1 and message in capsys.readouterr().err


def test_model_directory_errors_are_clear(logs, tmp_path, capsys):
    code = main(["simulate", "--data", str(logs), "--train", str(logs), "--model", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 1 and "nope" in err and "Traceback" not in err


def test_simulate_replays_at_the_runtimes_defaults_unless_told():
    """`toolcast simulate` measures what a runtime left at its defaults does (its -k and --lambda are
    written out so that `toolcast --help` need not import the runtime)."""
    from toolcast.cli.main import build_parser
    from toolcast.runtime import PlannerConfig, RuntimeConfig

    args = build_parser().parse_args(["simulate", "--data", "x", "--baseline", "pattern"])
    assert (args.k, args.lambda0) == (RuntimeConfig().k, PlannerConfig().lambda0)
