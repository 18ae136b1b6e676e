"""The embedded predictor's step arrays are `Featurizer.featurize`'s, bitwise.

`event_arrays.RowCache.features` keeps each event's row packed and stacks them; `featurize` (from
scratch, no cache) is the specification. Checked over growing sample sessions (shared event objects,
as an agent process has them), histories longer than the model's window, an output filled in after the
call was first seen, and fresh copies; the text encoder's ASCII fast path against BERT's normalizer and
pre-tokenizer on generated and sample texts. Torch-free.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolcast.data.load import load_traces
from toolcast.data.samples import sample_files
from toolcast.data.schema import Context, ToolCall
from toolcast.predictor import Predictor
from toolcast.predictor.features import text as text_module
from toolcast.predictor.features.text import TextEncoder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "model_tiny"


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.load(FIXTURE)


def assert_same(predictor: Predictor, context: Context) -> None:
    got = predictor.features(context)
    want = predictor.featurizer.featurize(context)
    assert got.tools == want.tools and got.slots == want.slots
    assert set(got.arrays) == set(want.arrays)
    for name, a in want.arrays.items():
        b = got.arrays[name]
        assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(b, a), name


def test_growing_sessions(predictor):
    for path in sample_files():
        for trace in load_traces(path)[:2]:
            events = trace.events * 2  # longer than the window of the fixture's model, too
            for n in range(0, len(events) + 1, 3 if len(events) > 60 else 1):
                assert_same(predictor, Context(events[:n], trace.tools, trace.metadata))


def test_changed_events_and_fresh_copies(predictor):
    trace = load_traces(sample_files()[0])[0]
    events = copy.deepcopy(trace.events[:20])
    i = next(i for i, e in enumerate(events) if isinstance(e, ToolCall) and e.output)
    output, events[i].output = events[i].output, None
    assert_same(predictor, Context(events[: i + 1], trace.tools, trace.metadata))
    events[i].output = output  # filled in later: the row is made again
    assert_same(predictor, Context(events[: i + 2], trace.tools, trace.metadata))
    assert_same(predictor, copy.deepcopy(Context(events, trace.tools, trace.metadata)))


def test_tool_sets_that_change_between_steps(predictor):
    """Tool arrays are kept per tool set: a tool listed at one step and only called at the next, another
    description, a tool set in another order each get their own."""
    trace = next(t for t in load_traces(sample_files()[0]) if len(t.tools) >= 3)
    events = trace.events[:30]
    called = {e.tool for e in events if isinstance(e, ToolCall)}
    fewer = [s for s in trace.tools if s.name not in called][:1]
    fewer += [s for s in trace.tools if s.name in called][1:]  # a called tool no longer listed
    edited = [dataclasses.replace(trace.tools[0], description="another description of it"), *trace.tools[1:]]
    for tools in (trace.tools, fewer, trace.tools[::-1], edited, [], trace.tools):
        for n in (5, 20, 30):
            assert_same(predictor, Context(events[:n], tools, trace.metadata))


ASCII = st.text(st.characters(max_codepoint=127), max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(ASCII, st.sampled_from(["Order W123", "café", "id_42", "a\tb\x0bc\x1fd\x7fe"])),
                max_size=8),  # fmt: skip
       st.sampled_from([None, 1, 5, 64]))  # fmt: skip
def test_the_ascii_fast_path_makes_the_same_words(parts, max_tokens):
    encoder = TextEncoder.load(FIXTURE / "tokenizer.json")
    text = " ".join(parts)
    for t in (text, text * 20):  # past MAX_TEXT_CHARS too
        assert text_module.words(t) == text_module._pre_tokenize(text_module._normalize(t))
        want = []
        for w in text_module._pre_tokenize(text_module._normalize(t[: text_module.MAX_TEXT_CHARS])):
            want.extend(encoder._word_ids(w))
        assert encoder.encode(t, max_tokens) == (want if max_tokens is None else want[:max_tokens])


def test_the_ascii_fast_path_on_the_sample_texts():
    for path in sample_files():
        for trace in load_traces(path):
            for e in trace.events:
                text = e.output if isinstance(e, ToolCall) else e.text
                if text:
                    assert text_module.words(text) == text_module._pre_tokenize(text_module._normalize(text))


TRICKY = "aé\u0301ÜİßǅﬁЖ日—’“”…€±\u00a0\u2028\u3000\x85\x00\ufffd\t _-."


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.text(st.sampled_from(TRICKY), max_size=60))
def test_the_unicode_path_makes_the_specifications_words(any_text, tricky):
    """Text with non-ASCII characters goes through two per-character translate tables, not the per-character
    loop: the same words (accents, CJK, punctuation, exotic spaces and control characters included)."""
    for t in (any_text, tricky, any_text + tricky):
        assert text_module.words(t) == text_module._pre_tokenize(text_module._normalize(t))
