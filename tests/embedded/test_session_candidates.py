"""A session's candidate pool kept across steps gives exactly what the from-scratch path gives.

`extract_candidates` (every mention of the whole history merged again) is the specification;
`SessionCandidates` folds in only the new events. Checked over growing contexts of the bundled sample
traces: the candidates themselves (every mention, rank and recency), the slot featurizer's arrays and
rows (bitwise, through `slot_rows.build`, the embedded predictor's path), and the embedded predictor's
predictions (exactly equal probabilities). Also the cases a kept pool must not serve: a call whose output
is filled in after it was first seen (the runtime does that), a message edited in place, an edited /
shortened history, another session in between.
Torch-free: runs in the base-install environment too (`make test-embedded`).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import Context, Message, ToolCall, ToolSpec, Trace
from toolcast.predictor import Predictor
from toolcast.predictor.features.extractors import extract_candidates, extract_event
from toolcast.predictor.features.featurizer import SPECIAL_TOOLS, tool_candidates
from toolcast.predictor.features.slots import SlotFeaturizer
from toolcast.predictor.features.text import TextEncoder
from toolcast.predictor.features.values import earlier_uses
from toolcast.predictor.session import slot_rows
from toolcast.predictor.session.candidates import SessionCandidates

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"
VOCAB = {"[PAD]": 0, "[UNK]": 1, "order": 2, "id": 3, "user": 4, "name": 5, "reservation": 6}


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    """A few traces of each bundled sample file (tau2 airline / retail / telecom, BFCL)."""
    return [t for path in sample_files() for t in load_traces(path)[:2]]


def context_of(trace: Trace, events) -> Context:
    return Context(events=list(events), tools=trace.tools, metadata=trace.metadata)


def assert_same_candidates(got, context: Context) -> None:
    want = extract_candidates(context)
    assert len(got) == len(want)
    assert list(got) == want  # values, and every mention: kind, event, role, tool, path, rank, recency


def slot_featurizer() -> SlotFeaturizer:
    return SlotFeaturizer(TextEncoder(VOCAB), {"json_leaf:output": 3, "word:user": 5}, {}, 8, 24, 8, 64)


def assert_same_slots(sf: SlotFeaturizer, got, context: Context) -> None:
    tools = tool_candidates(context, 48)
    wanted = [(i, s) for i, s in enumerate(tools.specs) if i >= len(SPECIAL_TOOLS) and s is not None][:4]
    a_got, rows_got = slot_rows.build(sf, context, got, wanted) or sf.build(context, got, wanted)
    a_want, rows_want = sf.build(context, extract_candidates(context), wanted)
    assert rows_got == rows_want
    for name, a in a_want.items():
        assert a_got[name].dtype == a.dtype and np.array_equal(a_got[name], a), name


def test_growing_sessions_match_the_from_scratch_path(traces):
    sc, sf = SessionCandidates(), slot_featurizer()
    steps = 0
    for trace in traces:
        for n in range(1, len(trace.events) + 1):
            context = context_of(trace, trace.events[:n])
            pool = sc(context)
            assert_same_candidates(pool, context)
            if n % 3 == 0 or n == len(trace.events):
                assert_same_slots(sf, pool, context)
            steps += 1
    assert sc.hits >= steps - 2 * len(traces)  # each session's pool was kept and extended


def test_several_events_at_once_and_interleaved_sessions(traces):
    sc, sf = SessionCandidates(size=2), slot_featurizer()
    a, b, c = traces[0], traces[2], traces[4]
    for n in range(2, 40, 5):  # three sessions in turn through a cache of two: evicted, rebuilt
        for t in (a, b, c):
            context = context_of(t, t.events[:n])
            pool = sc(context)
            assert_same_candidates(pool, context)
            assert_same_slots(sf, pool, context)


def test_an_output_filled_in_later_is_extracted_again(traces):
    trace = traces[0]
    calls = [i for i, e in enumerate(trace.events) if isinstance(e, ToolCall) and e.output and i > 3]
    i = calls[0]
    events = copy.deepcopy(trace.events[: i + 2])
    call = events[i]
    output, call.output = call.output, None  # the runtime appends the call, fills the output later
    sc, sf = SessionCandidates(), slot_featurizer()
    before = context_of(trace, events[: i + 1])
    assert_same_candidates(sc(before), before)
    found_before = extract_event(call)
    call.output = output
    assert extract_event(call) != found_before  # the per-event cache saw the change
    for n in (i + 1, i + 2):  # the same context again, then with one more event
        context = context_of(trace, events[:n])
        pool = sc(context)
        assert_same_candidates(pool, context)
        assert_same_slots(sf, pool, context)
    assert sc.misses == 2  # the pool from before the output was not reused


def test_edited_shortened_and_foreign_histories_start_again(traces):
    trace = traces[1]
    events = copy.deepcopy(trace.events[:30])
    sc, sf = SessionCandidates(), slot_featurizer()
    sc(context_of(trace, events))
    user = next(e for e in events[1:] if isinstance(e, Message) and e.role == "user")
    user.text = "Actually my id is zz_9999 and I fly from LAX to 'Crescent Hollow'."  # edited in place
    cases = [
        events,
        events[:10],  # shortened: the kept pool is not a prefix of it
        [*events[:5], Message("user", "order #W1234567 please"), *events[6:]],  # one event replaced
        [events[0], *copy.deepcopy(events[1:])],  # the same first event, new objects after it
    ]
    for evs in cases:
        context = context_of(trace, evs)
        pool = sc(context)
        assert_same_candidates(pool, context)
        assert_same_slots(sf, pool, context)
    assert sc.misses == 1 + len(cases)
    args_call = next(e for e in events if isinstance(e, ToolCall) and e.args)
    context = context_of(trace, events)
    sc(context)
    key = next(iter(args_call.args))
    args_call.args[key] = "changed-in-place"
    assert_same_candidates(sc(context), context)


def test_empty_context_and_kinds_fall_back():
    sc = SessionCandidates()
    assert list(sc(Context(events=[], tools=[]))) == []
    ctx = Context(events=[Message("user", "order W123 for user_7")], tools=[])
    assert sc(ctx, kinds=["ident"]) == extract_candidates(ctx, kinds=["ident"])


def test_predictor_steps_match_the_from_scratch_predictor(traces):
    """The embedded predictor's arrays and predictions with the kept pools are the from-scratch ones."""
    session = Predictor.load(FIXTURE)
    scratch = Predictor.load(FIXTURE, extract=lambda c: extract_candidates(c))
    for trace in traces[:4]:
        for n in range(1, min(len(trace.events), 40) + 1):
            context = context_of(trace, trace.events[:n])
            got, want = session.runs([context])[0], scratch.runs([context])[0]
            assert got.slot_rows == want.slot_rows
            for name, a in want.slot_inputs.items():
                assert np.array_equal(got.slot_inputs[name], a), name
            assert np.array_equal(got.slot_logits, want.slot_logits)
            p_got, p_want = session.predict(context, 3), scratch.predict(context, 3)
            assert [(c.key, c.p_tool, c.p_call, c.free) for c in p_got] == [
                (c.key, c.p_tool, c.p_call, c.free) for c in p_want
            ]


def test_sessions_sharing_their_first_event_object_each_keep_a_pool(traces):
    # `toolcast serve` interns events: sessions opening with the same system prompt share its object.
    a, b = traces[0], traces[1]
    opening = a.events[0]
    sc, sf = SessionCandidates(), slot_featurizer()
    steps = 0
    for n in range(2, min(len(a.events), len(b.events), 30)):
        for t in (a, b):
            context = context_of(t, [opening, *t.events[1:n]])
            pool = sc(context)
            assert_same_candidates(pool, context)
            steps += 1
        assert_same_slots(sf, pool, context)
    assert sc.misses == 2 and sc.hits == steps - 2  # interleaved, neither evicted the other


def test_threads_folding_branches_of_one_session_get_their_own_candidates(traces):
    """Contexts that share a first event and branch (the same pool found by several threads, one folding
    while another checks it) each get exactly their own candidates; folds run under the pool's lock."""
    import threading

    a, b = traces[0], traces[1]
    opening = a.events[0]
    branches = [[opening, *t.events[1:30]] for t in (a, b)] + [[opening, *a.events[1:10], *b.events[10:30]]]
    sc = SessionCandidates()
    errors: list[BaseException] = []

    def run(events):
        try:
            for n in range(1, len(events) + 1):
                context = Context(events=events[:n], tools=a.tools)
                pool = sc(context)
                assert list(pool) == extract_candidates(context)
                assert pool.used == {k: set(v) for k, v in earlier_uses(context).items()}
        except BaseException as e:  # reported below, from the main thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(evs,)) for evs in branches * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_coding_sessions_match_the_from_scratch_path():
    """Claude Code and Codex sessions: listings, grep hits and shell lines (the `listed_path` kind)."""
    coding = load_traces(Path(__file__).resolve().parents[1] / "fixtures" / "coding_sessions")
    kinds = {"listed_path:output": 3, "file_path:output": 4}
    sf = SlotFeaturizer(TextEncoder(VOCAB), kinds, {}, 8, 24, 8, 64)
    listed = 0
    for trace in coding:
        sc = SessionCandidates()
        slots: dict[str, dict] = {}  # transcripts list no tools: specs made from the calls' arguments
        for call in trace.calls:
            slots.setdefault(call.tool, {}).update({k: {"type": "string"} for k in call.args})
        tools = [ToolSpec(name, parameters={"type": "object", "properties": props})
                 for name, props in slots.items()]
        for n in range(1, len(trace.events) + 1):
            context = Context(events=trace.events[:n], tools=tools, metadata=trace.metadata)
            pool = sc(context)
            assert_same_candidates(pool, context)
            assert_same_slots(sf, pool, context)
            listed += sum("listed_path" in c.kinds for c in pool)
    assert listed  # the fixture's listings give listed paths
