"""Gemini generateContent importer, on fixtures hand-written from Google's docs
(see tests/fixtures/gemini/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records
from toolcast.data.provenance import trace_provenance

FIXTURES = Path(__file__).parent.parent / "fixtures"
GEMINI = FIXTURES / "gemini"
NAMES = ["requests.jsonl", "sdk_dump.json", "batch.jsonl", "contents.json", "adk_session.json",
         "adk_run_events.json", "sdk_tool_role_contents.json", "adk_session_sdk.json"]


def by_id(path):
    return {t.trace_id: t for t in load_traces(path)}


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def shape(trace):
    return [(type(e).__name__, getattr(e, "role", None), e.turn) for e in trace.events]


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_detected_as_gemini_only(name):
    report = ImportReport()
    traces = load_traces(GEMINI / name, report=report)
    assert traces and report.formats == {"gemini": len(traces)}
    _, first = next(iter_records(GEMINI / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["gemini"]


def test_other_formats_fixtures_are_not_taken_for_gemini():
    files = [p for p in FIXTURES.glob("*/*.json*") if p.parent.name not in ("gemini", "model_tiny")]
    assert len(files) >= 7
    for path in files:
        for _, record in iter_records(path):
            assert not FORMATS["gemini"].sniff(record), path


def test_parallel_calls_without_ids_are_matched_by_name():
    trace = by_id(GEMINI / "requests.jsonl")["party-1"]
    assert (trace.group, trace.source) == ("party", "gemini")
    assert trace.metadata == {"id": "party-1", "group": "party", "model": "gemini-2.5-flash",
                              "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
                              "agent_model": "gemini-2.5-flash"}
    assert [(t.name, t.param_names) for t in trace.tools] == [("power_disco_ball", ["power"]),
                                                              ("start_music", ["energetic", "loud"]),
                                                              ("dim_lights", ["brightness"])]
    assert trace.tools[2].parameters["properties"]["brightness"]["type"] == "number"  # "NUMBER" in the log
    assert shape(trace) == [("Message", "system", None), ("Message", "user", None),
                            ("Message", "assistant", 0), ("ToolCall", None, 0), ("ToolCall", None, 0),
                            ("ToolCall", None, 0), ("Message", "assistant", None)]
    thinking = trace.events[2]
    assert thinking.text == ""  # the thought summary is kept out of the text
    thought = "The user wants a party: music, disco ball and dim lights, all at once."
    assert thinking.extra == {"thinking": [thought], "thought_signatures": 1}
    disco, music, lights = trace.calls  # the responses came back in another order
    assert (disco.call_id, disco.args, json.loads(disco.output)) == (
        "call_0_0", {"power": True}, {"result": {"status": "Disco ball powered on"}})
    assert json.loads(music.output)["result"]["volume"] == "loud"
    assert json.loads(lights.output) == {"result": {"brightness": 0.5}}
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["power_disco_ball", "start_music", "dim_lights"], ["<respond>"]]


def test_ids_error_result_user_text_with_results_and_a_call_with_no_result():
    trace = by_id(GEMINI / "requests.jsonl")["weather-ids"]
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", None, 0),
                            ("Message", "user", None), ("Message", "assistant", 1), ("ToolCall", None, 1),
                            ("ToolCall", None, 1), ("Message", "assistant", 2), ("ToolCall", None, 2)]
    failed, retry, forecast, pending = trace.calls
    assert (failed.call_id, failed.output, failed.error) == ("fc-1", "weather service timed out", True)
    assert trace.events[3].extra == {"with_tool_results": True}
    assert trace.events[4].text == "Let me try again and get the forecast."
    assert (retry.call_id, retry.output, retry.error) == ("fc-2", "38 F, partly cloudy", False)  # by id
    assert json.loads(forecast.output)[1] == {"day": "Sun", "sky": "rain"}  # "output" unwrapped
    assert (pending.call_id, pending.args["days"], pending.output) == ("fc-4", 7, None)  # no result
    labels = [label.tools for _, label in trace.decision_points()]
    # The last call has no result: the run stopped before it, so nobody answered after it.
    assert labels == [["get_current_weather"], ["get_current_weather", "get_forecast"], ["get_forecast"]]


def test_appended_response_with_code_execution_usage_and_builtin_tools():
    trace = by_id(GEMINI / "requests.jsonl")["primes-code"]
    assert [t.name for t in trace.tools] == ["code_execution"]
    assert trace.metadata["builtin_tools"] == [{"codeExecution": {}}, {"googleSearch": {}}]
    assert trace.metadata["response"] == {"responseId": "resp-7"}
    assert trace.metadata["agent_model"] == "gemini-2.5-pro"
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", None, 0),
                            ("Message", "assistant", None)]
    (code,) = trace.calls
    assert (code.tool, code.args["language"], code.output, code.error) == (
        "code_execution", "PYTHON", "5117\n", False)
    answer = trace.events[-1]
    assert answer.text == "The sum of the first 50 prime numbers is 5117."
    assert answer.tokens == 134 and answer.extra["finishReason"] == "STOP"


def test_text_only_chat_gets_file_and_line_ids():
    trace = by_id(GEMINI / "requests.jsonl")["requests:4"]
    assert trace.group == "requests:4" and not trace.calls and not trace.tools
    assert [e.role for e in trace.events] == ["user", "assistant", "user", "assistant"]
    assert trace.metadata["generationConfig"] == {"maxOutputTokens": 256}
    assert [label.tools for _, label in trace.decision_points()] == [["<respond>"], ["<respond>"]]


def test_sdk_snake_case_dump_with_nulls_same_name_parallel_calls_and_inline_data():
    traces = by_id(GEMINI / "sdk_dump.json")
    trace = traces["sdk-flights"]
    assert [t.name for t in trace.tools] == ["find_flights", "get_seat_map", "book_flight"]
    assert trace.metadata["config"] == {"temperature": 0.0}
    system, user = trace.events[:2]
    assert (system.role, system.text) == ("system", "You are a travel agent. Book what the user asks for.")
    assert user.extra == {"parts": [{"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}}]}
    find, seats_ua, seats_dl, book = trace.calls
    assert (seats_ua.turn, seats_dl.turn) == (1, 1)
    # Same name, no ids: the responses pair with the calls in order.
    assert (seats_ua.args, seats_ua.output) == ({"flight_id": "UA1542"}, '{"free": ["12A", "30F"]}')
    assert (seats_dl.args, seats_dl.output) == ({"flight_id": "DL2210"}, '{"free": []}')
    assert json.loads(book.output) == {"confirmation": "K9X2QF", "seat": "12A"}  # no "output": all of it
    assert trace.events[4].extra == {"thinking": ["Two options; checking seats on both."]}
    plain = traces["sdk_dump:1"]
    assert [(e.role, e.text) for e in plain.events] == [("user", "Why is the sky blue?")]


def test_sdk_response_dump_with_automatic_function_calling_history():
    trace = by_id(GEMINI / "sdk_dump.json")["sdk_dump:2"]
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", None, 0),
                            ("Message", "assistant", None)]
    (call,) = trace.calls
    assert (call.tool, call.args, call.output) == ("get_current_weather", {"location": "Boston"},
                                                   '{"result": "sunny"}')
    answer = trace.events[-1]
    assert (answer.text, answer.tokens, answer.extra["finish_reason"]) == ("It's sunny in Boston.", 7, "STOP")
    assert trace.metadata["agent_model"] == "gemini-2.0-flash-001"
    assert trace.metadata["response"]["response_id"] == "r-afc-1"


def test_sdk_contents_given_as_strings_join_into_one_user_turn(tmp_path):
    contents = ["What is 2+2?", "Answer briefly.", model({"text": "4"}), "And 3+3?"]
    record = {"model": "gemini-2.5-flash", "contents": contents}
    (trace,) = load_traces(write_jsonl(tmp_path / "s.jsonl", [record]))
    assert [(e.role, e.text) for e in trace.events] == [("user", "What is 2+2?\nAnswer briefly."),
                                                        ("assistant", "4"), ("user", "And 3+3?")]


def test_provenance_finds_arguments_copied_from_an_earlier_output():
    trace = by_id(GEMINI / "sdk_dump.json")["sdk-flights"]
    contexts = list(trace.decision_points())
    assert [label.tools for _, label in contexts] == [["find_flights"], ["get_seat_map", "get_seat_map"],
                                                      ["book_flight"], ["<respond>"]]
    book_context, _ = contexts[2]
    assert book_context.calls[-1].tool == "get_seat_map"
    found = {(p.call_id, p.path): p for p in trace_provenance(trace)}
    flight, seat = found[("call_2_0", "flight_id")], found[("call_2_0", "seat")]
    assert (flight.kind, seat.kind) == ("output", "output")
    assert found[("call_1_0", "flight_id")].kind == "output"


def test_batch_lines_request_and_response():
    traces = load_traces(GEMINI / "batch.jsonl")
    vertex, keyed = traces
    assert vertex.trace_id == "batch:1" and vertex.metadata["agent_model"] == "gemini-2.0-flash-001"
    assert vertex.metadata["processed_time"] == "2025-03-01T10:00:02.123+00:00"
    (call,) = vertex.calls
    assert (call.tool, call.args, call.output) == ("list_dir", {"path": "/tmp"}, None)
    assert vertex.events[1].tokens == 6 and vertex.events[1].turn == 0
    assert vertex.tools[0].parameters == {"type": "object", "properties": {"path": {"type": "string"}}}
    assert (keyed.trace_id, keyed.group) == ("request-2", "request-2")
    assert keyed.events[-1].text == "It lets developers call Google's Gemini models."


def test_bare_contents_list_with_function_role():
    (trace,) = load_traces(GEMINI / "contents.json")
    assert trace.trace_id == "contents"
    (call,) = trace.calls
    assert (call.tool, call.output) == ("list_dir", '{"entries": ["notes.txt", "photos"]}')
    assert [e.role for e in trace.events if hasattr(e, "role")] == ["user", "assistant", "assistant"]


def test_adk_session_times_authors_partial_and_content_free_events():
    (trace,) = load_traces(GEMINI / "adk_session.json")
    assert (trace.trace_id, trace.group) == ("8b6f1d3e-session", "8b6f1d3e-session")
    meta = trace.metadata
    assert (meta["appName"], meta["userId"], meta["agent_model"]) == ("multi_tool_agent", "user_001",
                                                                      "gemini-2.0-flash")
    assert trace.metadata["partial_events"] == 1  # the streamed chunk; its final event is kept
    assert trace.metadata["events_without_content"] == [
        {"invocationId": "e-1a2b", "author": "weather_time_agent", "id": "ev-6",
         "actions": {"stateDelta": {"last_city": "New York"}}}]
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", None, 0),
                            ("ToolCall", None, 0), ("Message", "assistant", None), ("Message", "user", None),
                            ("Message", "assistant", 1), ("ToolCall", None, 1),
                            ("Message", "assistant", None)]
    question, ask = trace.events[:2]
    assert (question.t_end, question.extra) == (1750052500.0, {"invocationId": "e-1a2b", "id": "ev-1"})
    assert (ask.t_start, ask.t_end, ask.tokens, ask.extra["author"]) == (
        1750052500.0, 1750052501.5, 14, "weather_time_agent")
    weather, clock, london = trace.calls  # results came back in the other order: matched by id
    assert (weather.call_id, weather.t_start, weather.t_end) == ("adk-7c1d", 1750052501.5, 1750052502.0)
    assert json.loads(weather.output)["report"].startswith("The weather in New York is sunny")
    assert json.loads(clock.output)["status"] == "success"
    assert (json.loads(london.output)["status"], london.error) == ("error", True)  # ADK's error convention
    labels = [label.tools for _, label in trace.decision_points()]
    assert labels == [["get_weather", "get_current_time"], ["<respond>"], ["get_weather"], ["<respond>"]]


def test_adk_run_events_list_and_provenance_from_an_output():
    (trace,) = load_traces(GEMINI / "adk_run_events.json")
    roll, check = trace.calls
    assert (roll.output, check.args) == ('{"result": 13}', {"nums": [13]})
    found = {(p.call_id, p.path): p for p in trace_provenance(trace)}
    assert (found[("adk-1e22", "nums[0]")].kind, found[("adk-1e22", "nums[0]")].source_tool) == (
        "output", "roll_die")


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_the_canonical_schema(name):
    for trace in load_traces(GEMINI / name):
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_cli_import_round_trips_through_toolcast_jsonl(import_round_trip):
    import_round_trip(GEMINI / "requests.jsonl", "gemini", 4)


def model(*parts):
    return {"role": "model", "parts": list(parts)}


def user(*parts):
    return {"role": "user", "parts": list(parts)}


CALL = {"functionCall": {"id": "c1", "name": "f", "args": {}}}


def result(name="f", response=None, id="c1"):
    return {"functionResponse": {"id": id, "name": name, "response": {} if response is None else response}}


BAD_RECORDS = [
    pytest.param({"contents": [{"role": "user", "parts": "hi"}]}, "contents[0].parts",
                 "expected list, got str", id="parts-wrong-type"),
    pytest.param({"contents": [model({"functionCall": {"name": "f", "args": "{\"a\": 1"}})]},
                 "contents[0].parts[0].functionCall.args", "not valid JSON", id="args-invalid-json"),
    pytest.param({"contents": [model({"functionCall": {"args": {}}})]},
                 "contents[0].parts[0].functionCall.name", "expected str, got NoneType",
                 id="call-without-name"),
    pytest.param({"contents": [user(result("g", id=None))]}, "contents[0].parts[0].functionResponse.name",
                 "no earlier call is waiting", id="result-without-call"),
    pytest.param({"contents": [model(CALL), user(result()), user(result())]},
                 "contents[2].parts[0].functionResponse.id", "a second result", id="second-result"),
    pytest.param({"contents": [model(CALL), user(result("g"))]}, "contents[1].parts[0].functionResponse.name",
                 "that call was to 'f'", id="id-and-name-disagree"),
    pytest.param({"contents": [model(CALL), user(result(response="ok"))]},
                 "contents[1].parts[0].functionResponse.response", "expected dict, got str",
                 id="response-not-object"),
    pytest.param({"contents": [user(CALL)]}, "contents[0].parts[0].functionCall", "cannot hold a call",
                 id="call-in-user-content"),
    pytest.param({"contents": [{"role": "system", "parts": []}]}, "contents[0].role",
                 "unknown role 'system'", id="unknown-role"),
    pytest.param({"contents": [], "tools": [{"functionDeclarations": [{"name": "f", "parameters": "x"}]}]},
                 "tools[0].functionDeclarations[0].parameters", "expected dict, got str",
                 id="parameters-wrong-type"),
    pytest.param({"request": {"contents": []}, "response": {"candidates": [{"content": model({"text": 5})}]}},
                 "response.candidates[0].content.parts[0].text", "expected str, got int", id="response-text"),
    pytest.param({"contents": [], "config": {"tools": [{"function_declarations": 3}]}},
                 "config.tools[0].function_declarations", "expected list, got int", id="snake-case-path"),
    pytest.param({"events": [{"author": "user", "content": user({"text": "hi"}), "timestamp": "now"}]},
                 "events[0].timestamp", "expected int or float, got str", id="adk-timestamp"),
    pytest.param({"events": [{"author": "a", "content": model(CALL)},
                             {"author": "a", "content": user(result(id="adk-9"))}]},
                 "events[1].content.parts[0].functionResponse.id", "no earlier call is waiting",
                 id="adk-unknown-id"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD_RECORDS)
def test_bad_record_names_file_line_and_field_and_skip_goes_on(tmp_path, record, field, message):
    good = {"contents": [user({"text": "hi"})]}
    other = {"contents": [user({"text": "bye"})]}  # not a copy: load folds repeated records
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record, other])
    with pytest.raises(TraceFormatError) as info:
        load_traces(path, format="gemini")
    assert info.value.field == field
    assert message in info.value.reason
    assert "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, format="gemini", errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["bad:1", "bad:3"]
    assert [e.field for e in report.skipped] == [field]


def test_a_bad_item_of_a_json_list_names_its_index(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"contents": [user({"text": "hi"})]}, {"contents": [{"role": 3}]}]))
    where = r"list\.json, line 1, record \[1\], field 'contents\[0\]\.role'"
    with pytest.raises(TraceFormatError, match=where):
        load_traces(path)


def _raise(error):
    raise error


@pytest.mark.parametrize("name", NAMES)
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(GEMINI / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["gemini"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


# ---- shapes the real SDKs write (google-genai 3.4.0, google-adk 2.13.0: see the fixtures' README) ----


def test_function_responses_in_a_tool_role_content_are_results():
    """google-adk sends function responses as types.Content(role="tool"); read like role "user"."""
    (trace,) = load_traces(GEMINI / "sdk_tool_role_contents.json")
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", None, 0),
                            ("Message", "assistant", None)]
    assert (trace.calls[0].tool, trace.calls[0].output, trace.calls[0].error) == ("get_weather", "20C", False)


def test_adk_session_from_a_real_run_with_an_error_status_result():
    """Session.model_dump(mode="json", by_alias=True, exclude_none=True) after a real Runner.run_async."""
    (trace,) = load_traces(GEMINI / "adk_session_sdk.json")
    assert trace.trace_id == "s1" and trace.metadata["appName"] == "weather_app"
    assert [(c.tool, c.args, c.error) for c in trace.calls] == [
        ("get_weather", {"city": "Paris"}, False), ("get_time", {"city": "Paris"}, False),
        ("get_weather", {"city": "Atlantis"}, True)]
    assert trace.calls[1].output == '{"result": "12:00"}'  # ADK wraps a plain return value
    assert [c.turn for c in trace.calls] == [0, 0, 1] and trace.events[-1].text.startswith("Paris: 20C")
    assert all(c.t_start is not None and c.t_end is not None for c in trace.calls)
