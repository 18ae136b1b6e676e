"""Import streams: records are read as they are asked for, memory does not grow with the input, and a
file too large to hold folds in two passes to exactly what one pass gives."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pytest

from toolcast.data import ImportReport, TraceFormatError
from toolcast.data.io import iter_records
from toolcast.data.load import iter_traces


def chat(user: str, answers: tuple[str, ...], n_messages: int | None = None) -> dict:
    """An OpenAI chat record: system, user, a call and its result, then text answers (cut to n_messages)."""
    call = {"id": "c1", "type": "function",
            "function": {"name": "lookup", "arguments": json.dumps({"q": user})}}
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": user},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": f"found {user} " + "x" * 200}]
    msgs += [{"role": "assistant", "content": a} for a in answers]
    return {"messages": msgs[:n_messages], "tools": [{"type": "function", "function": {"name": "lookup"}}]}


def request_log(n_conversations: int) -> list[dict]:
    """Each conversation as one record per LLM call, and a regenerated last answer (a branch)."""
    records = []
    for i in range(n_conversations):
        user = f"Find order {i}"
        records += [chat(user, (), 3), chat(user, ("Yes",)), chat(user, ("No",))]
    return records


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_a_file_over_the_fold_buffer_folds_in_two_passes_to_what_one_pass_gives(tmp_path):
    path = tmp_path / "requests.jsonl"
    write_jsonl(path, request_log(5))
    one, two = ImportReport(), ImportReport()
    in_memory = list(iter_traces(path, report=one))
    two_passes = list(iter_traces(path, report=two, fold_buffer=0))
    assert [t.to_json() for t in two_passes] == [t.to_json() for t in in_memory]
    assert (two.traces, two.folded, two.conversations) == (one.traces, one.folded, one.conversations) \
        == (10, 5, 5)
    # the regenerated answer is the same conversation: one group for both branches
    assert len({t.group for t in two_passes}) == 5


def test_skipped_records_are_reported_once_in_two_passes(tmp_path):
    path = tmp_path / "requests.jsonl"
    lines = [json.dumps(r) for r in request_log(2)]
    lines.insert(2, "{not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ImportReport()
    traces = list(iter_traces(path, errors="skip", report=report, fold_buffer=0))
    assert len(traces) == 4 and len(report.skipped) == 1 and "line 3" in str(report.skipped[0])


def test_records_are_read_as_they_are_asked_for(tmp_path, make_trace):
    # A broken line far down the file is not read before the first record is handed out.
    path = tmp_path / "t.jsonl.gz"
    body = make_trace("a").to_json().encode() + b"\n" + b"\xff\xfe not utf-8\n"
    path.write_bytes(gzip.compress(body))
    records = iter_records(path)
    where, first = next(records)
    assert where.line == 1 and first["trace_id"] == "a"
    with pytest.raises(TraceFormatError, match=r"t\.jsonl\.gz, line 2: not UTF-8"):
        next(records)


def test_a_gzip_file_cut_short_is_an_error_after_its_whole_records(tmp_path, make_trace):
    data = gzip.compress("".join(make_trace(f"t{i}").to_json() + "\n" for i in range(200)).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    report = ImportReport()
    traces = list(iter_traces(path, errors="skip", report=report))
    assert 0 < len(traces) < 200
    assert len(report.skipped) == 1 and "broken gzip" in str(report.skipped[0])


def _peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_input(tmp_path, make_trace):
    """Ten times the records of toolcast JSONL: the peak memory of reading them stays about the same."""
    peaks = []
    for n in (40, 400):
        path = tmp_path / f"{n}.jsonl"
        write_jsonl(path, [json.loads(make_trace(f"t{i}").to_json()) for i in range(n)])
        peaks.append(_peak(lambda path=path: sum(1 for _ in iter_traces(path))))
    assert peaks[1] < 2 * peaks[0], peaks


def test_folding_in_two_passes_holds_fingerprints_not_traces(tmp_path):
    """A request log folded in two passes grows by its traces' fingerprints only: a fraction of what
    holding its traces takes, even for these tiny records (real ones hold kilobytes of text each)."""
    path = tmp_path / "requests.jsonl"
    write_jsonl(path, request_log(100))
    in_memory = _peak(lambda: sum(1 for _ in iter_traces(path)))
    two_passes = _peak(lambda: sum(1 for _ in iter_traces(path, fold_buffer=0)))
    assert two_passes < in_memory / 2, (two_passes, in_memory)
