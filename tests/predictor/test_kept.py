"""`KeptPerConversation`: per-conversation state, told by the first event's identity, handed out once."""

from __future__ import annotations

from toolcast.data.schema import Message
from toolcast.predictor.baselines.kept import KeptPerConversation


def test_state_is_kept_per_first_event_handed_out_once_and_evicted_oldest_first():
    kept: KeptPerConversation[str] = KeptPerConversation(size=2)
    a, b, c = ([Message("user", f"hi {i}")] for i in range(3))
    assert kept.take([]) is None and kept.take(a) is None
    kept.keep(a, "A")
    kept.keep([], "nothing")  # an empty context has no conversation to keep for
    assert len(kept) == 1
    assert kept.take([a[0], Message("assistant", "more")]) == "A"  # the same conversation, grown
    assert kept.take(a) is None  # taken out: a second thread would start its own
    kept.keep(a, "A")
    kept.keep(b, "B")
    kept.keep(c, "C")  # past the size: the oldest (a) goes
    assert kept.take(a) is None and kept.take(b) == "B" and kept.take(c) == "C"


def test_an_equal_but_different_first_event_is_another_conversation():
    kept: KeptPerConversation[str] = KeptPerConversation(size=4)
    first = Message("user", "same text")
    kept.keep([first], "kept")
    assert kept.take([Message("user", "same text")]) is None  # equal, not the same object
    assert kept.take([first]) == "kept"
