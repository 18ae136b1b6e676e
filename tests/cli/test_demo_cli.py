"""`toolcast demo` on the bundled sample, baselines only (the learned path is covered by training tests)."""

import re

from toolcast.cli.main import main


def test_demo_writes_a_report_with_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--no-train", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"report: {(out / 'report.md').resolve()}" in printed
    report = (out / "report.md").read_text(encoding="utf-8")
    for png in re.findall(r"\]\(([^)]+\.png)\)", report):
        assert (out / png).stat().st_size > 1000
    assert "| markov |" in report and "| pattern |" in report and "| oracle |" in report
    assert "| fanout |" in report  # the fan-out is replayed with the baselines
    assert "No learned model" in report
