"""Argument provenance on hand-built traces: each kind, first-seen order, word boundaries, constants."""

import json

from toolcast.data import Message, ToolCall, Trace
from toolcast.data.provenance import constant_values, trace_provenance


def trace(events, group="g"):
    return Trace(trace_id=f"t-{group}", group=group, source="test", events=events)


def call(cid, tool, args, output=None, turn=0):
    return ToolCall(
        cid, turn, tool, args, output if output is None or isinstance(output, str) else json.dumps(output)
    )


def by_path(provs):
    return {(p.call_id, p.path): p for p in provs}


def test_each_kind_of_source():
    t = trace(
        [
            Message("system", "Always use currency EUR."),
            Message("user", "Hi, I'm James_Lee_6136 and I need help"),
            Message("assistant", "", turn=0),
            call(
                "c1",
                "get_user",
                {"user_id": "james_lee_6136"},
                {"reservations": ["XEWRD9", "ABC123"], "payment_methods": {"gift_card_77": {"amount": 88}}},
            ),
            Message("assistant", "", turn=1),
            call(
                "c2",
                "get_reservation",
                {"reservation_id": "ABC123", "user_id": "james_lee_6136"},
                "no such thing",
            ),
            Message("assistant", "", turn=2),
            call(
                "c3",
                "pay",
                {
                    "method": "gift_card_77",
                    "currency": "EUR",
                    "amount": 88,
                    "note": "thing",
                    "flag": True,
                    "invented": "zzz-never-seen",
                },
            ),
        ]
    )
    p = by_path(trace_provenance(t))
    assert p[("c1", "user_id")].kind == "user"  # case-insensitive text match
    assert p[("c1", "user_id")].source_path.startswith("text[")
    assert (p[("c2", "reservation_id")].kind, p[("c2", "reservation_id")].source_path) == (
        "output",
        "reservations[1]",
    )
    assert p[("c2", "reservation_id")].source_tool == "get_user"
    # First seen: the user's text came before the first call's argument.
    assert p[("c2", "user_id")].kind == "user"
    assert (p[("c3", "method")].kind, p[("c3", "method")].source_path) == ("output", "payment_methods{key}")
    assert p[("c3", "currency")].kind == "system"
    assert (p[("c3", "amount")].kind, p[("c3", "amount")].source_path) == (
        "output",
        "payment_methods.gift_card_77.amount",
    )
    assert (p[("c3", "note")].kind, p[("c3", "note")].source_tool) == (
        "output",
        "get_reservation",
    )  # text output
    assert p[("c3", "flag")].kind == "none"  # booleans are never matched
    assert p[("c3", "invented")].kind == "none"


def test_argument_source_and_nested_paths():
    t = trace(
        [
            Message("user", "go"),
            call("c1", "cd", {"folder": "documents"}, "None"),
            call("c2", "book", {"passengers": [{"name": "documents"}]}, turn=1),
        ]
    )
    p = by_path(trace_provenance(t))
    assert p[("c2", "passengers[0].name")].kind == "argument"
    assert p[("c2", "passengers[0].name")].slot == "passengers"
    assert p[("c2", "passengers[0].name")].source_path == "folder"


def test_short_values_and_partial_words_do_not_match_text():
    t = trace(
        [
            Message("user", "I have 12 bags and order 4567 please, item ab"),
            call("c1", "f", {"n": 12, "order": "456", "item": "ab", "id": 4567}),
        ]
    )
    p = by_path(trace_provenance(t))
    assert p[("c1", "n")].kind == "none"  # "12" is shorter than the text-match minimum
    assert p[("c1", "order")].kind == "none"  # "456" is inside "4567", not a word of its own
    assert p[("c1", "item")].kind == "none"
    assert p[("c1", "id")].kind == "user"


def test_numbers_match_across_types():
    t = trace(
        [
            Message("user", "x"),
            call("c1", "a", {}, {"total": 250.0}),
            call("c2", "b", {"amount": "250"}, turn=1),
        ]
    )
    assert by_path(trace_provenance(t))[("c2", "amount")].kind == "output"


def test_constants_need_two_task_groups():
    t1 = trace([call("c1", "search", {"cabin": "economy", "user": "u1"})], group="a")
    t2 = trace([call("c1", "search", {"cabin": "economy", "user": "u1"})], group="a")
    t3 = trace([call("c1", "search", {"cabin": "economy", "user": "u2"})], group="b")
    consts = constant_values([t1, t2, t3])
    assert consts[("search", "cabin")] == {"economy"}
    assert ("search", "user") not in consts  # u1 recurs only within one task
