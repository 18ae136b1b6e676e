"""The bundled sample ships, imports without errors and is what its README says."""

import pytest

from toolcast.data import ImportReport, load_traces
from toolcast.data.samples import sample_dir, sample_files


def test_sample_folder_has_logs_readme_and_licenses():
    names = {p.name for p in sample_dir().iterdir()}
    assert {"README.md", "LICENSE-MIT-tau2-bench.txt", "LICENSE-Apache-2.0.txt"} <= names
    assert all(p.name.startswith("tau2-") for p in sample_files("tau2"))
    assert [p.name for p in sample_files("bfcl")] == ["bfcl-v4-multi-turn-base.jsonl.gz"]
    assert len(sample_files()) == len(sample_files("tau2")) + 1
    assert sum(p.stat().st_size for p in sample_dir().iterdir()) < 1_600_000  # small enough for git
    with pytest.raises(ValueError, match="unknown sample source"):
        sample_files("otel")


def test_tau2_sample_imports_cleanly():
    report = ImportReport()
    traces = load_traces(*sample_files("tau2"), report=report)
    assert not report.skipped and report.formats == {"tau2": 260}
    assert sum(len(t.calls) for t in traces) == 1839
    assert len({t.group for t in traces}) == 150
    assert {t.metadata["domain"] for t in traces} == {"airline", "retail", "telecom"}
    assert len({t.metadata["agent_model"] for t in traces}) == 5
    assert not any(t.metadata["looping"] for t in traces)


def test_bfcl_sample_imports_cleanly():
    report = ImportReport()
    traces = load_traces(*sample_files("bfcl"), report=report)
    assert not report.skipped and len(traces) == 200
    assert sum(len(t.calls) for t in traces) == 1142
