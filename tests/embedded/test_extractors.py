"""Every registered argument extractor is exercised; mentions and candidates carry rank, recency, source."""

from __future__ import annotations

import json

import pytest

from toolcast.data import Context, Message, ToolCall
from toolcast.predictor.features.extractors import (
    EXTRACTORS,
    KINDS,
    extract_candidates,
    extract_event,
    mentions,
    path_shape,
)

USER = Message("user", "Move 'final_report.pdf' to \"temp\" in docs/archive. I am Fatima Johnson from "
                       "Crescent Hollow, user mia_li_3668, order #W4923227, flight HAT170 from JFK, mail "
                       "fatima.j@example.com, 2 bags, $60.00, see https://example.org/a?b=1.")
LOOKUP = ToolCall("c1", 0, "find_user_id_by_email", {"email": "fatima.j@example.com"}, "fatima_johnson_1")
DETAILS = ToolCall(
    "c2", 1, "get_user_details", {"user_id": "fatima_johnson_1", "opts": {"ids": [7, 8]}},
    json.dumps({"orders": ["#W1", "#W2"], "payment_methods": {"gift_card_9": {"balance": 60}},
                "result": "'a.pdf' moved to 'temp/a.pdf'"}))



LISTING = ToolCall("c3", 2, "LS", {"path": "/repo/training"}, "- /repo/training/\n  - __init__.py\n  - sub/\n"
                                                               "    - metrics.py\n")


DATES = Message("user", "The current time is 2024-05-15 15:00:00 EST. Fly on May 5th, 2024 or 7 June 2025; "
                        "not 2024-13-01, not id 2024-05-155.")


def at(needle: str, value: object = None, length: int | None = None) -> tuple[str, object]:
    """(span path, value) of `needle` (its first `length` characters) in the user message."""
    i = USER.text.index(needle)
    return f"text[{i}:{i + (length or len(needle))}]", needle if value is None else value


# kind -> (event, some (path, value) pairs it must find). Add a case when you register an extractor.
CASES: dict[str, tuple[object, list[tuple[str, object]]]] = {
    "json_leaf": (DETAILS, [("orders[1]", "#W2"), ("payment_methods{key}", "gift_card_9"),
                            ("payment_methods.gift_card_9.balance", 60)]),
    "output_text": (LOOKUP, [("output", "fatima_johnson_1")]),
    "argument": (DETAILS, [("user_id", "fatima_johnson_1"), ("opts", {"ids": [7, 8]}), ("opts.ids[1]", 8)]),
    "url": (USER, [at("https://example.org/a?b=1")]),
    "email": (USER, [at("fatima.j@example.com")]),
    "file_path": (USER, [at("final_report.pdf"), at("docs/archive")]),
    "ident": (USER, [at("mia_li_3668"), at("#W4923227"), at("HAT170"), at("JFK")]),
    "number": (USER, [at("2 bags", 2, length=1), at("60.00", 60.0)]),
    "quoted": (USER, [at("final_report.pdf"), at("temp")]),
    "capitalized": (USER, [at("Fatima Johnson"), at("Johnson"), at("Crescent Hollow")]),
    "word": (USER, [at("Move"), at("Crescent")]),
    "listed_path": (LISTING, [("output[22:33]", "/repo/training/__init__.py"),
                              ("output[22:33]", "__init__.py"),
                              ("output[49:59]", "/repo/training/sub/metrics.py")]),
    "date": (DATES, [("text[20:30]", "2024-05-15"), ("text[52:65]", "2024-05-05"),
                     ("text[69:80]", "2025-06-07")]),
}


def test_every_registered_extractor_has_a_case():
    assert set(CASES) == set(EXTRACTORS) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_extractor_finds_its_values(kind):
    event, expected = CASES[kind]
    found = EXTRACTORS[kind].fn(event)
    for pair in expected:
        assert pair in found, f"{kind}: {pair} not in {found}"
    text = event.text if isinstance(event, Message) else ""
    for path, value in found:  # text spans point at the text they came from (dates are rewritten as ISO)
        if path.startswith("text[") and isinstance(value, str) and kind != "date":
            i, j = map(int, path[5:-1].split(":"))
            assert text[i:j] == value
    assert EXTRACTORS[kind].doc


@pytest.mark.parametrize("kind", sorted(EXTRACTORS))
def test_extractors_are_total_on_every_event_kind(kind):
    """Pure functions of one event: never raise, whatever the event (empty, error, huge)."""
    events = [Message("system", ""), Message("assistant", "x" * 30_000), USER,
              ToolCall("e", 0, "t", {}, None), ToolCall("f", 0, "t", {}, "Error: boom", error=True),
              ToolCall("g", 0, "t", {"a": None}, "[1, [2, {\"k\": null}]]"), LOOKUP, DETAILS]
    for e in events:
        assert isinstance(EXTRACTORS[kind].fn(e), list)


def test_text_extractors_read_sentences_inside_json_outputs():
    assert ("result[1:6]", "a.pdf") in EXTRACTORS["quoted"].fn(DETAILS)
    assert ("result[18:28]", "temp/a.pdf") in EXTRACTORS["file_path"].fn(DETAILS)


def test_word_and_capitalized_read_only_user_messages():
    assistant = Message("assistant", "Hello Fatima")
    assert EXTRACTORS["word"].fn(assistant) == [] and EXTRACTORS["capitalized"].fn(assistant) == []


def test_mentions_rank_newest_first_and_recency():
    ctx = Context(events=[USER, LOOKUP, DETAILS], tools=[])
    ms = mentions(ctx, kinds=["json_leaf"])
    assert [m.value for m in ms][:3] == ["orders", "#W1", "#W2"]
    assert [m.rank for m in ms][:3] == [0, 1, 2]
    assert all(m.event == 2 and m.recency == 0 and m.tool == "get_user_details" for m in ms)
    assert ms[1].shape == "orders[*]"
    args = mentions(ctx, kinds=["argument"])
    newest = [m for m in args if m.event == 2]
    older = [m for m in args if m.event == 1]
    assert newest[0].rank == 0 and older[0].rank > newest[-1].rank and older[0].recency == 1
    assert all(m.role == "call" for m in args)


def test_candidates_merge_equal_values_across_kinds():
    ctx = Context(events=[USER, LOOKUP, DETAILS], tools=[])
    cands = {json.dumps(c.value): c for c in extract_candidates(ctx)}
    uid = cands['"fatima_johnson_1"']
    assert set(uid.kinds) >= {"argument", "output_text", "ident"}
    assert uid.source_event == 2 and uid.source_tool == "get_user_details" and uid.source_path == "user_id"
    assert uid.recency == 0 and uid.rank == 0
    email = cands['"fatima.j@example.com"']
    assert {m.role for m in email.mentions} == {"call", "user"}
    # Type-exact: the number 60 and the text "60.00" are different candidates (a call must match exactly).
    assert "60" in cands and "60.0" in cands


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown extractor kind"):
        mentions(Context(events=[USER], tools=[]), kinds=["nope"])


def test_per_event_results_are_cached_by_identity():
    e = Message("user", "order #W1")
    assert extract_event(e) is extract_event(e)
    twin = Message("user", "order #W1")
    assert extract_event(twin) is not extract_event(e) and extract_event(twin) == extract_event(e)


def test_path_shape():
    assert path_shape("reservations[3].id") == "reservations[*].id"
    assert path_shape("text[12:20]") == "text"
    assert path_shape("matching_lines[0][3:9]") == "matching_lines[*]"


def test_dates_only_when_they_are_calendar_dates():
    from toolcast.predictor.features.extractors import date

    assert [v for _, v in date(DATES)] == ["2024-05-15", "2024-05-05", "2025-06-07"]
    assert date(Message("user", "on Nov. 3, 2024 and 3rd of March 2023")) == [
        ("text[3:15]", "2024-11-03"), ("text[20:37]", "2023-03-03")]


def test_a_huge_json_output_is_read_up_to_max_leaves_in_reading_order():
    from toolcast.predictor.features import extractor_kinds
    from toolcast.predictor.features.extractor_kinds import MAX_LEAVES, MAX_TEXT

    rows = [{"id": f"ORD{i:06d}", "note": f"order number {i} of many"} for i in range(3 * MAX_LEAVES)]
    call = ToolCall("c9", 0, "list_orders", {}, json.dumps(rows))
    found = EXTRACTORS["json_leaf"].fn(call)
    assert len(found) == MAX_LEAVES
    assert found[:2] == [("[0].id", "ORD000000"), ("[0].note", "order number 0 of many")]
    # Sentences inside the output: the same first leaves (rows 0-499 here), one text budget for all.
    numbers = [v for _p, v in EXTRACTORS["number"].fn(call)]
    assert numbers[:2] == [0, 1] and max(numbers) < MAX_LEAVES // 2
    assert sum(len(text) for _p, text in extractor_kinds._texts(call)) <= MAX_TEXT
    ids = {c.value for c in extract_candidates(Context([call], [], {}))}
    assert "ORD000000" in ids and f"ORD{3 * MAX_LEAVES - 1:06d}" not in ids


def test_the_parse_memo_keeps_each_output_with_its_own_parse(monkeypatch):
    """The memo was keyed by the output read first but held the parse of the output read again: a call
    filled in meanwhile (the runtime, another thread) left one output paired with another's parse."""
    from toolcast.predictor.features import extractor_kinds

    first, second = '{"id": "first-order-id"}', '{"id": "second-order-id"}'
    call = ToolCall("c", 0, "get", {}, output=first)
    real = ToolCall.output_json

    def filled_meanwhile(self):
        self.output = second
        return real(self)

    monkeypatch.setattr(ToolCall, "output_json", filled_meanwhile)
    extractor_kinds._output_json(call)
    monkeypatch.setattr(ToolCall, "output_json", real)
    assert extractor_kinds._output_json(ToolCall("d", 0, "get", {}, output=first)) == {"id": "first-order-id"}


def test_the_texts_memo_follows_an_output_filled_in_later():
    """Each text extractor of an event reads its texts from a one-event memo: an output filled in (or a
    message's text replaced) after the first read is read again, never the old texts."""
    call = ToolCall("c", 0, "get_order", {}, output=None)
    assert EXTRACTORS["ident"].fn(call) == []
    call.output = "Order ZFA04Y is on flight HAT170"
    assert [v for _p, v in EXTRACTORS["ident"].fn(call)] == ["ZFA04Y", "HAT170"]
    msg = Message("user", "my id is mia_li_3668")
    assert [v for _p, v in EXTRACTORS["ident"].fn(msg)] == ["mia_li_3668"]
    msg.text = "use code JFK"
    assert [v for _p, v in EXTRACTORS["ident"].fn(msg)] == ["JFK"]


@pytest.mark.parametrize("token, found", [
    ("hello", None), ("Hello", None), ("JFK", "JFK"), ("ABCDEFGHI", None), ("A", None), ("2024", None),
    ("ZFA04Y", "ZFA04Y"), ("#W4923227", "#W4923227"), ("mia_li", "mia_li"), ("#12", "#12"), ("a1", None),
])
def test_id_like_tokens(token, found):
    from toolcast.predictor.features.extractor_kinds import _id_like

    assert _id_like(token) == found
