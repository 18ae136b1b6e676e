"""The example agent (examples/agent_loop.py): runs end to end and keeps the safety promise.

Behaviour only, never timings: the run completes, the agent saw the same tool results with and without
speculation, no state-changing tool ran ahead, the world ended identical, and a saving is reported. Whether
speculation *can* pay off is checked without the clock: the predictor, fit on the shipped training
transcripts, ranks the real next call of the recorded sessions among its candidates.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolcast.data.load import load_traces
from toolcast.predictor.baselines import decision_contexts, fit_baseline
from toolcast.runtime.contracts import ToolContract

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
STATE_CHANGING = ("write_file", "move_file", "cancel_order", "refund_order")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("example")
    report, record = out / "report.json", out / "sessions.jsonl"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "agent_loop.py"), "--quick", "--json", str(report),
                           "--record", str(record)], capture_output=True, text=True, timeout=300, cwd=out)
    return proc, report, record


def test_the_example_completes_and_reports_a_saving(quick_run):
    proc, report, _ = quick_run
    assert proc.returncode == 0, proc.stderr
    assert "time saved:" in proc.stdout and "safety OK" in proc.stdout
    data = json.loads(report.read_text())
    assert data["serial_s"] > 0 and data["speculative_s"] > 0
    assert data["saved_s"] == pytest.approx(data["serial_s"] - data["speculative_s"])
    assert set(data["sessions"]) == {"ticket-T-1052", "ticket-T-1053", "ticket-T-1054"}
    assert data["errors"] == 0  # the transcript's arguments fit what the live tools returned


def test_speculation_changes_nothing_the_agent_or_the_world_sees(quick_run):
    _, report, _ = quick_run
    data = json.loads(report.read_text())
    safety = data["safety"]
    assert safety["ok"] and all(safety["checks"].values())
    assert safety["calls"] == safety["identical_calls"] > 0
    assert safety["mismatched_sessions"] == []
    # the service saw exactly the agent's own state-changing calls, in both runs
    assert safety["service_posts"] == {"serial": safety["agent_posts"], "speculative": safety["agent_posts"]}
    for tool in STATE_CHANGING:
        assert safety["state_changing_launched"][tool] == 0
        assert data["stats"]["tools"].get(tool, {}).get("launched", 0) == 0


def test_the_tools_contracts_are_honest():
    sys.path.insert(0, str(EXAMPLES))
    try:
        from support_world import Workspace, load_store, make_tools
    finally:
        sys.path.remove(str(EXAMPLES))
    tools = {t.name: t for t in make_tools(Workspace.__new__(Workspace), "http://127.0.0.1:9")}
    for name in STATE_CHANGING:
        c: ToolContract = tools[name].contract
        assert not c.speculable and c.state_changing and c.mutates
    for name, t in tools.items():
        if name not in STATE_CHANGING:
            assert t.contract.speculable and t.contract.reads, name
    assert load_store()["tickets"]


def test_the_predictor_ranks_the_recorded_calls(quick_run):
    """Not timing: at most decision points before a read, the baseline's candidates hold the exact call."""
    _, _, record = quick_run
    predictor = fit_baseline("pattern", load_traces(EXAMPLES / "transcripts" / "training.jsonl",
                                                    format="toolcast"))
    sessions = load_traces(record, format="toolcast")
    assert len(sessions) == 3
    reads = found = 0
    for trace in sessions:
        for ctx, calls in decision_contexts(trace):
            keys = {p.key for p in predictor.predict(ctx, 4)}
            for call in calls:
                if call.tool not in STATE_CHANGING:
                    reads += 1
                    found += call.key in keys
    assert reads > 0 and found >= reads // 2


def test_a_bad_transcript_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sessions": [{"session": "s", "steps": [{"user": "hi"}, {"think": "soon"}]}]}))
    proc = subprocess.run([sys.executable, str(EXAMPLES / "agent_loop.py"), "--transcript", str(bad)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "sessions[0].steps[1].think" in proc.stderr and "Traceback" not in proc.stderr


def test_a_model_that_cannot_load_is_a_clear_error(tmp_path):
    cmd = [sys.executable, str(EXAMPLES / "agent_loop.py"), "--quick", "--model", str(tmp_path / "no-model")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "--model" in proc.stderr and "Traceback" not in proc.stderr
