"""Request logs (one record per LLM call, each holding the conversation so far) fold into one trace per
conversation: `toolcast.data.fold` and its hook in `load_traces` / `iter_traces`."""

import copy
import json
import random
from pathlib import Path

import pytest

from toolcast.cli.main import main
from toolcast.data import ImportReport, Message, ToolCall, ToolSpec, Trace, canonical_args, load_traces
from toolcast.data.fold import content_items, fold_traces
from toolcast.data.load import iter_traces

FIXTURES = Path(__file__).parent.parent / "fixtures"
SHARED_TAU2 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tau2"


# ---- helpers: a trace written as a request log ------------------------------------------------------


def openai_messages(trace: Trace) -> list[dict]:
    """The trace as OpenAI chat messages: each assistant message with its turn's calls, then the results."""
    msgs: list[dict] = []
    events, i = trace.events, 0
    while i < len(events):
        e = events[i]
        if isinstance(e, Message) and e.role != "assistant":
            msgs.append({"role": e.role, "content": e.text})
            i += 1
            continue
        m: dict = {"role": "assistant", "content": (e.text or None) if isinstance(e, Message) else None}
        i += isinstance(e, Message)
        calls: list[ToolCall] = []
        turn = e.turn if e.turn is not None else -1
        while i < len(events) and isinstance(events[i], ToolCall) and events[i].turn == turn:
            calls.append(events[i])
            i += 1
        if calls:
            m["tool_calls"] = [{"id": c.call_id, "type": "function",
                                "function": {"name": c.tool, "arguments": json.dumps(c.args)}} for c in calls]
        msgs.append(m)
        msgs.extend({"role": "tool", "tool_call_id": c.call_id, "content": c.output, "is_error": c.error}
                    for c in calls if c.output is not None or c.error)
    return msgs


def request_log(record: dict, *, response_keys: tuple[str, ...] = ("usage",)) -> list[dict]:
    """One record per LLM call of a chat record: the messages up to each assistant message (the response,
    appended last, keeps `usage`; its copies in later requests' inputs do not, nor thinking blocks), and
    the whole record last when it does not end with the LLM's answer."""
    messages = record["messages"]
    ends = [k + 1 for k, m in enumerate(messages) if m["role"] == "assistant"]
    if not ends or ends[-1] != len(messages):
        ends.append(len(messages))
    out = []
    for n, end in enumerate(ends):
        msgs = copy.deepcopy(messages[:end])
        for m in msgs[:-1]:  # an input message, as a client sends it back
            for key in response_keys:
                m.pop(key, None)
            if isinstance(m.get("content"), list):
                m["content"] = [b for b in m["content"] if b.get("type") != "thinking"]
        rec = {**copy.deepcopy(record), "messages": msgs}
        if isinstance(rec.get("metadata"), dict) and "id" in rec["metadata"]:
            rec["metadata"]["id"] = f"{rec['metadata']['id']}-request{n}"
        out.append(rec)
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def openai_record(trace: Trace) -> dict:
    tools = [{"type": "function", "function": {"name": s.name, "description": s.description,
                                               "parameters": s.parameters}} for s in trace.tools]
    return {"messages": openai_messages(trace), "tools": tools}


def decision_signature(trace: Trace) -> list:
    """Each decision point as content (no ids, times, tokens) of its context and its label's calls."""
    out = []
    for ctx, label in trace.decision_points():
        seen = Trace(trace_id="", group="", source="", tools=ctx.tools, events=ctx.events)
        out.append((list(content_items(seen)), [(c.tool, canonical_args(c.args)) for c in label.calls]))
    return out


def conversation(text: str = "Hi", answers: tuple[str, ...] = ("Done",)) -> Trace:
    """system, user, one call with its result, then the assistant's text answers."""
    events = [Message("system", "Be brief."), Message("user", text), Message("assistant", "", turn=0),
              ToolCall("c1", 0, "lookup", {"q": text}, "found")]
    events += [Message("assistant", a) for a in answers]
    return Trace("t", "g", "test", tools=[ToolSpec("lookup")], events=events)


def cut(trace: Trace, n: int, trace_id: str, *, pending: bool = False) -> Trace:
    """The first n events as their own trace (a record); pending: its last call has no result yet."""
    events = copy.deepcopy(trace.events[:n])
    if pending:
        events[-1].output = None
    return Trace(trace_id, trace_id, trace.source, tools=trace.tools, events=events)


# ---- the rule ---------------------------------------------------------------------------------------


def tau2_traces() -> list[Trace]:
    return [t for t in load_traces(FIXTURES / "tau2" / "results_telecom.json") if t.calls]


@pytest.mark.parametrize("shuffle", [False, True])
def test_openai_request_log_of_a_tau2_trace_folds_back_to_its_decision_points(tmp_path, shuffle):
    for trace in tau2_traces():  # parallel calls, user turns, a greeting, a trailing tool result
        records = request_log(openai_record(trace))
        assert len(records) > 3
        records[-1]["messages"][-1].setdefault("usage", {"completion_tokens": 7})
        if shuffle:
            random.Random(0).shuffle(records)
        report = ImportReport()
        (folded,) = load_traces(write_jsonl(tmp_path / f"{trace.trace_id}.jsonl", records), report=report)
        assert (report.traces, report.folded, report.conversations) == (1, len(records) - 1, 1)
        assert decision_signature(folded) == decision_signature(trace)
        assert list(content_items(folded)) == list(content_items(trace))


@pytest.mark.parametrize("seed", range(5))
def test_any_subset_of_a_conversations_records_folds_into_its_longest(tmp_path, seed):
    """Loggers drop records (sampling, crashes) and write them out of order; duplicates happen."""
    rng = random.Random(seed)
    trace = tau2_traces()[seed % 2]
    records = request_log(openai_record(trace))
    some = rng.sample(records[:-1], rng.randrange(1, len(records))) + [records[-1]] * rng.randrange(1, 3)
    rng.shuffle(some)
    report = ImportReport()
    (folded,) = load_traces(write_jsonl(tmp_path / "log.jsonl", some), report=report)
    assert report.folded == len(some) - 1
    assert decision_signature(folded) == decision_signature(trace)


@pytest.mark.skipif(not SHARED_TAU2.is_dir(), reason="needs ../shared/data (the real tau2 runs)")
def test_request_log_of_a_real_tau2_run_folds_back(tmp_path):
    path = next(iter(sorted(SHARED_TAU2.glob("*airline*.json.gz"))))
    trace = max(load_traces(path)[:50], key=lambda t: (len(t.calls), t.trace_id))
    records = request_log(openai_record(trace))
    report = ImportReport()
    (folded,) = load_traces(write_jsonl(tmp_path / "log.jsonl", records), report=report)
    assert report.folded == len(records) - 1
    assert decision_signature(folded) == decision_signature(trace) != []


@pytest.mark.parametrize(("fixture", "fmt"), [("openai/finetune.jsonl", "openai"),
                                              ("anthropic/conversations.jsonl", "anthropic")])
def test_fixtures_written_as_request_logs_fold_to_the_fixture(tmp_path, fixture, fmt):
    src = FIXTURES / fixture
    originals = load_traces(src)
    records = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    log = [r for rec in records for r in request_log(rec)]
    assert len(log) > len(records)
    report = ImportReport()
    folded = load_traces(write_jsonl(tmp_path / "requests.jsonl", log), report=report)
    assert report.formats == {fmt: len(originals)}
    assert report.folded == len(log) - len(originals)
    assert [list(content_items(t)) for t in folded] == [list(content_items(t)) for t in originals]
    assert [decision_signature(t) for t in folded] == [decision_signature(t) for t in originals]
    unfolded = load_traces(tmp_path / "requests.jsonl", fold=False)
    assert len(unfolded) == len(log)


def test_gemini_requests_with_the_response_appended_fold_to_the_conversation(tmp_path):
    """Each request holds the contents so far; its response (`candidates`, usage) is appended beside it."""
    src = FIXTURES / "gemini" / "requests.jsonl"
    records = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()][:2]
    log = []
    for rec in records:  # two whole conversations: parallel calls, thoughts, ids, an error result
        contents = rec["contents"]
        for k, content in enumerate(contents):
            if content["role"] == "model":
                head = {key: v for key, v in rec.items() if key != "contents"}
                log.append({**head, "contents": contents[:k],
                            "candidates": [{"content": content, "finishReason": "STOP"}],
                            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 9}})
        if contents[-1]["role"] != "model":
            log.append(rec)
    report = ImportReport()
    folded = load_traces(write_jsonl(tmp_path / "requests.jsonl", log), report=report)
    originals = load_traces(src)[:2]
    assert report.formats == {"gemini": 2} and report.folded == len(log) - 2
    assert [list(content_items(t)) for t in folded] == [list(content_items(t)) for t in originals]
    assert [decision_signature(t) for t in folded] == [decision_signature(t) for t in originals]


def test_pending_calls_and_the_response_tokens_do_not_stop_a_fold():
    full = conversation()
    first = cut(full, 4, "r1", pending=True)  # the response's call, before its result
    first.events[2].tokens, first.events[2].t_end = 12, 5.0  # the response: usage and time
    first.events[3].call_id = "other-id"
    result = fold_traces([first, full])
    assert result.traces == [full] and (result.folded, result.conversations) == (1, 1)


def test_parallel_calls_fold_with_their_results_after_them():
    full = conversation()
    full.events.insert(4, ToolCall("c2", 0, "lookup", {"q": "more"}, "also found"))
    head = cut(full, 5, "r1")
    for call in head.calls:
        call.output = None
    assert fold_traces([head, full]).traces == [full]


def test_identical_records_fold_in_a_request_log_only():
    full, twice = conversation(), conversation()
    twice.trace_id = "t2"
    prefix = cut(full, 3, "r0")
    assert [t.trace_id for t in fold_traces([full, twice, prefix]).traces] == ["t"]
    # Alone, two equal traces may be two runs that agree (untimed trials, repeated examples): kept.
    assert len(fold_traces([full, twice]).traces) == 2


def test_separate_runs_with_different_times_never_fold():
    a, b = conversation(), conversation()
    a.events[1].t_end, b.events[1].t_end = 1.0, 2.0
    assert len(fold_traces([cut(a, 3, "a0"), a, b]).traces) == 2
    assert len(fold_traces([cut(b, 3, "b0"), a]).traces) == 2  # the prefix is b's, not a's


@pytest.mark.parametrize("change", ["system", "tools", "args", "output", "error", "order"])
def test_a_different_event_or_tool_set_does_not_fold(change):
    full = conversation(answers=("Done", "Bye"))
    head = cut(full, 5, "r1")
    if change == "system":
        head.events[0].text = "Be verbose."
    elif change == "tools":
        head.tools = [ToolSpec("lookup"), ToolSpec("other")]
    elif change == "args":
        head.events[3].args = {"q": "Hi", "page": 2}
    elif change == "output":
        head.events[3].output = "not found"
    elif change == "error":
        head.events[3].error = True
    else:
        head.events[0], head.events[1] = head.events[1], head.events[0]
    assert len(fold_traces([head, full]).traces) == 2


def test_branches_are_all_kept_in_one_group():
    shared = cut(conversation(), 4, "r0", pending=True)
    a, b = conversation(answers=("Yes",)), conversation(answers=("No",))
    a.trace_id, a.group, b.trace_id, b.group = "a", "ga", "b", "gb"
    other = conversation("Something else")
    other.trace_id, other.group = "o", "go"
    result = fold_traces([shared, a, b, other])
    assert [t.trace_id for t in result.traces] == ["a", "b", "o"]
    assert [t.group for t in result.traces] == ["ga", "ga", "go"]
    assert result.regrouped == ["b"] and result.folded == 1


def test_conversations_sharing_only_an_opening_keep_their_groups():
    """Many conversations open alike (system prompt, a scripted greeting): that is not one conversation."""
    greeting = [Message("system", "Be brief."), Message("assistant", "Hello! How can I help?")]
    opening = Trace("r0", "r0", "test", tools=[ToolSpec("lookup")], events=copy.deepcopy(greeting))
    a, b = conversation("Find A", ("a1", "a2")), conversation("Find B", ("b1", "b2"))
    for t, name in ((a, "a"), (b, "b")):
        t.events[1:1] = copy.deepcopy(greeting[1:])
        t.trace_id, t.group = name, f"g{name}"
    result = fold_traces([opening, a, b])
    assert [(t.trace_id, t.group) for t in result.traces] == [("a", "ga"), ("b", "gb")]


def test_conversations_parting_where_the_user_spoke_keep_their_groups():
    """Most is shared, but the user (or a tool) said something else: two conversations, not a retry."""
    a, b = conversation(answers=("Done",)), conversation(answers=("Done",))
    a.events.append(Message("user", "thanks")), b.events.append(Message("user", "and more?"))
    a.trace_id, a.group, b.trace_id, b.group = "a", "ga", "b", "gb"
    result = fold_traces([cut(a, 4, "r0", pending=True), a, b])
    assert [(t.trace_id, t.group) for t in result.traces] == [("a", "ga"), ("b", "gb")]


def test_a_separate_run_holding_all_of_a_branch_is_left_alone():
    a, b = conversation(answers=("Yes", "More")), conversation(answers=("Yes",))
    a.events[1].t_end, b.events[1].t_end = 1.0, 2.0  # b's content is a prefix of a's: another run
    a.trace_id, a.group, b.trace_id, b.group = "a", "ga", "b", "gb"
    record = cut(a, 4, "r0", pending=True)
    record.events[1].t_end = None  # an untimed request record, a prefix of both
    result = fold_traces([record, a, b])
    assert [(t.trace_id, t.group) for t in result.traces] == [("a", "ga"), ("b", "gb")]


def test_branches_without_a_record_of_their_shared_part_keep_their_groups():
    a, b = conversation(answers=("Yes",)), conversation(answers=("No",))
    a.group, b.group = "ga", "gb"
    assert [t.group for t in fold_traces([a, b]).traces] == ["ga", "gb"]


# ---- the hook in load_traces / iter_traces ----------------------------------------------------------


def test_files_never_fold_into_each_other(tmp_path):
    trace = tau2_traces()[0]
    records = request_log(openai_record(trace))
    write_jsonl(tmp_path / "a.jsonl", records[:2])
    write_jsonl(tmp_path / "b.jsonl", records[2:])
    report = ImportReport()
    traces = load_traces(tmp_path, report=report)
    assert len(traces) == 2 and (report.folded, report.conversations) == (len(records) - 2, 2)


def test_report_counts_and_says_what_was_folded(tmp_path, caplog):
    log = [r for t in tau2_traces() for r in request_log(openai_record(t))]
    report = ImportReport()
    with caplog.at_level("INFO", logger="toolcast.data.load"):
        traces = load_traces(write_jsonl(tmp_path / "log.jsonl", log), report=report)
    assert (report.traces, report.conversations, report.folded + report.conversations) == (2, 2, len(log))
    line = f"folded {len(log)} request records into 2 conversations"
    assert line in report.summary() and line in caplog.text
    assert len({t.group for t in traces}) == 2


def test_iter_traces_and_load_traces_agree(tmp_path):
    log = [r for t in tau2_traces() for r in request_log(openai_record(t))]
    path = write_jsonl(tmp_path / "log.jsonl", log)
    for fold in (True, False):
        r1, r2 = ImportReport(), ImportReport()
        listed = [t.to_dict() for t in load_traces(path, fold=fold, report=r1)]
        streamed = [t.to_dict() for t in iter_traces(path, fold=fold, report=r2)]
        assert listed == streamed and r1 == r2
        assert len(listed) == (2 if fold else len(log))
        assert r1.folded == (len(log) - 2 if fold else 0)


def test_import_and_stats_say_what_was_folded_and_no_fold_keeps_all(tmp_path, capsys):
    log = [r for t in tau2_traces() for r in request_log(openai_record(t))]
    src = write_jsonl(tmp_path / "log.jsonl", log)
    out = tmp_path / "traces.jsonl"
    assert main(["import", str(src), "--out", str(out)]) == 0
    assert f"folded {len(log)} request records into 2 conversations" in capsys.readouterr().out
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    assert main(["import", str(src), "--out", str(out), "--no-fold"]) == 0
    assert "folded" not in capsys.readouterr().out
    assert len(out.read_text(encoding="utf-8").splitlines()) == len(log)
    assert main(["stats", str(src), "--no-fold", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["traces"] == len(log)


def test_toolcast_jsonl_is_never_refolded(tmp_path):
    """`toolcast import --no-fold` wrote it so: `train` on it must not undo that (and it streams)."""
    full = conversation()
    src = tmp_path / "traces.jsonl"
    src.write_text("".join(t.to_json() + "\n" for t in [cut(full, 3, "r0"), full]), encoding="utf-8")
    assert len(load_traces(src)) == 2
