"""`toolcast import` and `toolcast stats` as a user runs them."""

import json

from toolcast.cli.main import main


def write(path, traces):
    path.write_text("".join(t.to_json() + "\n" for t in traces), encoding="utf-8")
    return path


def test_import_writes_jsonl(tmp_path, make_trace, capsys):
    src = write(tmp_path / "in.jsonl", [make_trace("a"), make_trace("b")])
    out = tmp_path / "out" / "traces.jsonl"
    assert main(["import", str(src), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == src.read_text(encoding="utf-8")
    assert "2 traces from 1 files" in capsys.readouterr().out


def test_failed_import_leaves_no_output(tmp_path, make_trace, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(make_trace("a").to_json() + "\n{broken\n", encoding="utf-8")
    out = tmp_path / "traces.jsonl"
    assert main(["import", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "in.jsonl, line 2: invalid JSON" in err and "--errors skip" in err
    assert list(tmp_path.iterdir()) == [src]


def test_skip_mode_reports_what_it_skipped(tmp_path, make_trace, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text(make_trace("a").to_json() + "\n{broken\n", encoding="utf-8")
    out = tmp_path / "traces.jsonl"
    assert main(["import", str(src), "--out", str(out), "--errors", "skip"]) == 0
    text = capsys.readouterr().out
    assert "skipped 1 records" in text and "line 2" in text
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_interrupted_import_leaves_no_output(tmp_path, make_trace, monkeypatch):
    import toolcast.cli.import_cmd as cmd

    def interrupted(*args, **kwargs):
        yield make_trace("a")
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "iter_traces", interrupted)
    out = tmp_path / "traces.jsonl"
    try:
        main(["import", str(tmp_path), "--out", str(out)])
    except KeyboardInterrupt:
        pass
    assert list(tmp_path.iterdir()) == []


def test_stats_json(tmp_path, make_trace, capsys):
    src = write(tmp_path / "in.jsonl", [make_trace("a"), make_trace("b")])
    assert main(["stats", str(src), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["traces"], d["calls"], d["tools"], d["groups"]) == (2, 4, 1, 1)
    # Each trace: the first call's user_id comes from the user's text; the second's is invented.
    assert d["provenance"]["user"] == 0.5
    assert (d["without_tool_list"], d["max_tools_listed"]) == (0, 1)
    # From the last call before each decision point: <start> -> get_user, then get_user -> <respond>.
    assert sorted((t["from"], t["to"], t["count"]) for t in d["transitions"]) == [
        ("<start>", "get_user", 2), ("get_user", "<respond>", 2)]


def test_stats_human(tmp_path, make_trace, capsys):
    src = write(tmp_path / "in.jsonl", [make_trace("a")])
    assert main(["stats", str(src)]) == 0
    out = capsys.readouterr().out
    assert "top transitions" in out and "get_user" in out


def test_stats_says_when_traces_list_no_tools(tmp_path, make_trace, capsys):
    import dataclasses

    src = write(tmp_path / "in.jsonl", [dataclasses.replace(make_trace("a"), tools=[]), make_trace("b")])
    assert main(["stats", str(src)]) == 0
    assert "1 of 2 traces list no tools" in capsys.readouterr().out
