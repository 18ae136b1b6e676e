"""OpenAI Responses API importer, on fixtures hand-written from OpenAI's docs and SDK types
(see tests/fixtures/openai_responses/README.md)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.formats.chat import chat_dialect
from toolcast.data.io import iter_records
from toolcast.data.provenance import trace_provenance

FIXTURES = Path(__file__).parent.parent / "fixtures"
HERE = FIXTURES / "openai_responses"
NAMES = ["requests.jsonl", "response.json", "agents_session.json", "records.json", "agents_js_history.json",
         "sdk_response_dump.json", "sdk_input_items_desc.json", "agents_run_state.json",
         "sdk_hosted_items_nulls.json", "sdk_program_items.json", "sdk_stream_events.jsonl"]
FORMAT = FORMATS["openai_responses"]


def by_id(path):
    return {t.trace_id: t for t in load_traces(path)}


def shape(trace):
    return [(type(e).__name__, e.role if isinstance(e, Message) else e.tool, e.turn) for e in trace.events]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", NAMES)
def test_fixture_is_detected_as_openai_responses_only(name):
    report = ImportReport()
    traces = load_traces(HERE / name, report=report)
    assert traces and report.formats == {"openai_responses": len(traces)}
    _, first = next(iter_records(HERE / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["openai_responses"]


OTHERS = sorted(p for p in FIXTURES.glob("*/*.json*")
                if p.parent.name not in ("openai_responses", "model_tiny"))


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_other_formats_fixtures_are_not_taken(path):
    _, first = next(iter_records(path))
    assert not FORMAT.sniff(first)


def test_chat_messages_are_not_taken_and_responses_parts_are_not_chat():
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert not FORMAT.sniff(chat) and chat_dialect(chat) == "openai"
    assert not FORMAT.sniff({"messages": chat})
    assert not FORMAT.sniff({"instruction": "x", "input": "", "output": "y"})  # instruction data
    items = [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert FORMAT.sniff(items) and chat_dialect(items) is None
    calls = [{"role": "user", "content": "hi"}, call()]
    assert FORMAT.sniff(calls) and chat_dialect(calls) is None


def test_parallel_calls_reasoning_errors_and_multipart_outputs():
    trace = by_id(HERE / "requests.jsonl")["paris-bogota"]
    assert (trace.source, trace.group) == ("openai_responses", "weather")
    assert trace.metadata == {"id": "paris-bogota", "group": "weather", "model": "o4-mini",
                              "agent_model": "o4-mini",
                              "usage": {"input_tokens": 310, "output_tokens": 42, "total_tokens": 352}}
    assert [(t.name, t.param_names) for t in trace.tools] == [("get_weather", ["latitude", "longitude"]),
                                                              ("send_email", ["to", "subject", "body"])]
    assert shape(trace) == [
        ("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
        ("ToolCall", "get_weather", 0), ("ToolCall", "get_weather", 0), ("Message", "user", None),
        ("Message", "assistant", 1), ("ToolCall", "get_weather", 1), ("Message", "assistant", 2),
        ("ToolCall", "send_email", 2)]
    system, _, thinking, paris, bogota, user, _, retry, answer, email = trace.events
    assert system.extra == {"instructions": True}
    assert thinking.text == ""  # reasoning stays out of the text
    assert thinking.extra == {"reasoning": ["**Checking two cities** I can look up both at once."],
                              "encrypted_reasoning": 1,
                              "items": [{"type": "reasoning", "id": "rs_6806bfca0b2481918a5748308061a26009"}]}
    assert (paris.call_id, paris.args, paris.output, paris.error) == (
        "call_12345xyz", {"latitude": 48.8566, "longitude": 2.3522}, '{"temperature": 14}', False)
    assert paris.extra == {"id": "fc_12345xyz", "status": "completed"}
    assert (bogota.output, bogota.error) == ("Error: the weather service timed out", True)
    assert user.extra == {"with_tool_results": True}  # sent with the results: no decision point of its own
    assert retry.output == '{"temperature": 18}'
    assert retry.extra["result"] == {"parts": [{"type": "input_image", "detail": "low",
                                                "image_url": "https://example.com/bogota-radar.png"}]}
    assert (answer.text, answer.tokens) == ("Paris is 14°C and Bogotá is 18°C. I'll email Bob now.", 42)
    assert (email.output, email.args["to"]) == (None, "bob@email.com")  # a call with no result
    labels = [label.tools for _, label in trace.decision_points()]
    # send_email has no result (the log ends with the model's call): nobody answered after it.
    assert labels == [["get_weather", "get_weather"], ["get_weather"], ["send_email"]]


def test_text_only_turn_from_a_string_input():
    trace = by_id(HERE / "requests.jsonl")["requests:2"]
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", None)]
    assert trace.events[1].text.startswith("Under a soft, silver moon") and trace.events[1].tokens == 22
    assert [label.tools for _, label in trace.decision_points()] == [["<respond>"]]


def test_hosted_tools_mcp_approvals_and_listed_tools():
    trace = by_id(HERE / "requests.jsonl")["requests:3"]
    assert [(t.name, t.annotations) for t in trace.tools] == [
        ("web_search", {}), ("file_search", {}), ("roll", {"readOnlyHint": True})]
    assert trace.tools[2].param_names == ["diceRollExpression"]
    builtin = [t["type"] for t in trace.metadata["builtin_tools"]]
    assert builtin == ["web_search_preview", "file_search", "mcp"]
    (listing,) = trace.metadata["mcp_list_tools"]
    assert listing == {"id": "mcpl_682d4379df088191886b70f4ec39f90403937d5f622d7a90", "server_label": "dmcp"}
    assert shape(trace) == [
        ("Message", "system", None), ("Message", "user", None), ("Message", "assistant", 0),
        ("ToolCall", "web_search", 0), ("Message", "assistant", 1), ("ToolCall", "file_search", 1),
        ("Message", "assistant", 2), ("ToolCall", "roll", 2), ("Message", "assistant", 3),
        ("ToolCall", "roll", 3), ("Message", "assistant", None)]
    developer, search, found, approved, failed = (trace.events[i] for i in (0, 3, 5, 7, 9))
    assert developer.extra == {"role": "developer"}
    assert trace.events[2].extra["reasoning_text"] == ["Search the web first."]
    assert search.args == {"type": "search", "query": "positive news story today"}
    assert json.loads(search.output) == [{"type": "url", "url": "https://example.com/garden"}]
    assert found.args == {"queries": ["What is deep research?"]}
    assert json.loads(found.output)[0]["filename"] == "deep_research_blog.pdf"
    assert trace.events[6].extra["annotations"][0]["type"] == "url_citation"
    assert (approved.args, approved.output, approved.error) == ({"diceRollExpression": "2d4 + 1"}, "4", False)
    assert approved.extra["approval"] == {"approve": True}
    assert approved.extra["server_label"] == "dmcp"
    assert (failed.output, failed.error) == ("Invalid dice expression", True)


def test_a_response_object_with_parallel_calls_and_no_results():
    (trace,) = load_traces(HERE / "response.json")
    assert trace.trace_id == trace.group == "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
    assert trace.metadata["agent_model"] == "o4-mini-2025-04-16"
    assert shape(trace) == [("Message", "system", None), ("Message", "assistant", 0),
                            ("ToolCall", "get_weather", 0), ("ToolCall", "get_weather", 0)]
    assert (trace.events[1].tokens, trace.events[1].t_start) == (120, 1741476542.0)
    assert [c.output for c in trace.calls] == [None, None]


def test_agents_sdk_input_list_builtin_calls_and_provenance():
    (trace,) = load_traces(HERE / "agents_session.json")
    assert trace.trace_id == "agents_session"
    calls = {c.call_id: c for c in trace.calls}
    assert [(c.tool, c.turn) for c in trace.calls] == [
        ("list_orders", 0), ("track_order", 1), ("transfer_to_refund_agent", 2), ("local_shell", 3),
        ("shell", 3), ("apply_patch", 4), ("code_exec", 5), ("computer", 6)]
    assert (calls["call_ls"].args["command"], calls["call_ls"].output) == (["rm", "-rf", "/tmp/scratch"], "")
    assert calls["call_sh"].error and "No such file" in calls["call_sh"].output
    patch = calls["call_patch"]
    assert (patch.args["path"], patch.output, patch.error) == ("notes.txt", "Created notes.txt", False)
    assert calls["call_refund_code"].args == {"input": "print(refund('ord_5521'))"}
    assert calls["call_refund_code"].extra["custom"] is True
    assert calls["call_screen"].args == {"type": "click", "button": "left", "x": 156, "y": 50}
    assert json.loads(calls["call_screen"].output)["type"] == "computer_screenshot"
    prov = {(p.call_id, p.path): p for p in trace_provenance(trace)}
    assert prov[("call_track", "order_id")].kind == "output"
    assert prov[("call_track", "order_id")].source_tool == "list_orders"
    assert prov[("call_list", "customer_id")].kind == "user"
    points = list(trace.decision_points())
    assert [label.tools for _, label in points][:3] == [["list_orders"], ["track_order"], ["<respond>"]]
    context, _ = points[1]
    assert isinstance(context.events[-1], ToolCall) and context.events[-1].tool == "list_orders"


def test_agents_sdk_for_javascript_history():
    (trace,) = load_traces(HERE / "agents_js_history.json")
    assert shape(trace) == [
        ("Message", "user", None), ("Message", "assistant", 0), ("ToolCall", "get_weather", 0),
        ("Message", "assistant", 1), ("ToolCall", "web_search", 1), ("Message", "assistant", 2),
        ("ToolCall", "code_interpreter", 2), ("Message", "assistant", 3), ("ToolCall", "shell", 3),
        ("Message", "assistant", None)]
    assert trace.events[1].extra == {"reasoning": ["Call the weather tool first."],
                                     "reasoning_text": ["The user wants weather and news."],
                                     "items": [{"type": "reasoning", "id": "rs_js"}]}
    weather, search, code, shell = trace.calls
    assert (weather.call_id, weather.args, weather.output) == (
        "call_tokyo", {"city": "Tokyo"}, "The weather in Tokyo is sunny.")
    assert (search.call_id, search.args) == ("ws_js", {"type": "search", "query": "Tokyo news today"})
    assert (code.args, code.output, code.extra["item"]) == ({"code": "print(2 + 2)"}, "4", "hosted_tool_call")
    assert shell.error and shell.args == {"commands": ["ls /news"], "timeoutMs": 1000}


def test_json_list_of_records_and_a_continued_response():
    traces = by_id(HERE / "records.json")
    first, second = traces["horoscope-1"], traces["horoscope-2"]
    assert first.group == second.group == "horoscope"
    (horoscope,) = first.calls
    assert (horoscope.tool, horoscope.args, horoscope.output) == ("get_horoscope", {"sign": "Aquarius"}, None)
    # previous_response_id: the output answers a call of the earlier request, kept rather than refused
    (kept,) = second.metadata["earlier_call_outputs"]
    assert (kept["path"], kept["item"]["call_id"]) == ("input[0]", "call_horo")
    assert shape(second) == [("Message", "assistant", None)]


def test_newer_item_types_state_items_and_hosted_code(tmp_path):
    items = [
        {"role": "user", "content": "Plot sales and find a tool for invoices."},
        {"type": "code_interpreter_call", "id": "ci_1", "status": "completed", "container_id": "cntr_1",
         "code": "print(1 + 1)", "outputs": [{"type": "logs", "logs": "2"}]},
        {"type": "image_generation_call", "id": "ig_1", "status": "failed", "result": None},
        {"type": "tool_search_call", "id": "ts_1", "call_id": None, "execution": "server",
         "arguments": {"query": "invoices"}, "status": "completed"},
        {"type": "tool_search_output", "id": "tso_1", "call_id": None, "execution": "server",
         "status": "completed", "tools": [{"type": "function", "name": "create_invoice"}]},
        {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAA"},
        {"type": "item_reference", "id": "fc_earlier"},
        {"type": "function_call_output", "call_id": "call_earlier", "output": "ok"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
    ]
    (trace,) = load_traces(write_jsonl(tmp_path / "new.jsonl", [items]))
    code, image, search = trace.calls
    assert (code.tool, code.args, json.loads(code.output)) == (
        "code_interpreter", {"code": "print(1 + 1)"}, [{"type": "logs", "logs": "2"}])
    assert code.extra["result"] == {"container_id": "cntr_1"}
    assert (image.tool, image.args, image.output, image.error) == ("image_generation", {}, None, True)
    assert (search.call_id, search.tool, search.args) == ("ts_1", "tool_search", {"query": "invoices"})
    assert json.loads(search.output) == [{"type": "function", "name": "create_invoice"}]
    assert [c.turn for c in trace.calls] == [0, 1, 2]  # each hosted call's result came back before the next
    assert [o["item"]["type"] for o in trace.metadata["other_items"]] == ["compaction", "item_reference"]
    assert trace.metadata["earlier_call_outputs"][0]["path"] == "[7]"  # an item_reference: stored state


def test_the_output_of_a_request_is_a_generation_of_its_own(tmp_path):
    said = {"role": "assistant", "content": "Earlier answer."}
    new = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "New."}]}
    record = {"input": [{"role": "user", "content": "hi"}, said], "output": [new]}
    (trace,) = load_traces(write_jsonl(tmp_path / "r.jsonl", [record]))
    assert [e.text for e in trace.events] == ["hi", "Earlier answer.", "New."]


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_the_canonical_schema(name):
    for trace in load_traces(HERE / name):
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()


def test_import_command_writes_toolcast_jsonl(import_round_trip):
    import_round_trip(HERE / "requests.jsonl", "openai_responses", 3)


def call(call_id="c1", arguments="{}"):
    return {"type": "function_call", "call_id": call_id, "name": "f", "arguments": arguments}


BAD_RECORDS = [
    pytest.param({"input": [call(arguments="{\"a\": 1")]}, "input[0].arguments", "not valid JSON",
                 id="bad-json"),
    pytest.param({"input": [call(arguments="[1]")]}, "input[0].arguments", "must be a JSON object",
                 id="args-array"),
    pytest.param({"input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]},
                 "input[0].call_id", "no earlier tool call has that id", id="result-without-call"),
    pytest.param({"input": [call(), {"type": "function_call_output", "call_id": "c1", "output": "x"},
                            {"type": "function_call_output", "call_id": "c1", "output": "y"}]},
                 "input[2].call_id", "a second result", id="second-result"),
    pytest.param({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
                 "input[0].call_id", "expected str, got NoneType", id="call-id-missing"),
    pytest.param({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "unknown role",
                 id="chat-role"),
    pytest.param({"input": "hi", "output": [{"type": "message", "role": "assistant", "content": 5}]},
                 "output[0].content", "expected str or list, got int", id="content-wrong-type"),
    pytest.param({"input": [{"type": "shell_call_output", "call_id": "c1", "output": [{"stdout": ""}]}]},
                 "input[0].call_id", "no earlier tool call", id="shell-output-without-call"),
    pytest.param({"input": [{"type": "mcp_approval_response", "approval_request_id": "r1", "approve": True}]},
                 "input[0].approval_request_id", "no earlier approval request",
                 id="approval-without-request"),
    pytest.param({"input": "hi", "tools": [{"type": "function", "name": "f", "parameters": "object"}]},
                 "tools[0].parameters", "expected dict, got str", id="parameters-wrong-type"),
    pytest.param({"model": "gpt-4.1"}, "input", "is missing", id="no-input-or-output"),
]


@pytest.mark.parametrize(("record", "field", "message"), BAD_RECORDS)
def test_bad_record_names_file_line_and_field_and_skip_goes_on(tmp_path, record, field, message):
    good = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
    other = {"input": [{"role": "user", "content": [{"type": "input_text", "text": "bye"}]}]}  # not a copy:
    path = write_jsonl(tmp_path / "bad.jsonl", [good, record, other])  # load folds repeated records
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert info.value.field == field
    assert message in info.value.reason
    assert "bad.jsonl, line 2" in str(info.value)
    report = ImportReport()
    traces = load_traces(path, errors="skip", report=report)
    assert [t.trace_id for t in traces] == ["bad:1", "bad:3"]
    assert [e.field for e in report.skipped] == [field]


def test_bad_item_in_a_json_list_of_records_names_the_record(tmp_path):
    path = tmp_path / "list.json"
    records = [{"input": "hi", "model": "m"}, {"input": [call(arguments="x")]}]
    path.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert (info.value.where.record, info.value.field) == ("[1]", "input[0].arguments")
    assert [t.trace_id for t in load_traces(path, errors="skip")] == ["list:1:0"]


def _raise(error):
    raise error


@pytest.mark.parametrize("name", NAMES)
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(HERE / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMAT.read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:  # what it accepts is a valid canonical trace
                Trace.from_dict(json.loads(trace.to_json()))


# ---- shapes the real SDKs write (fixtures made with openai 3.54.0 / openai-agents 0.24.0: see README) ----


def test_sdk_response_dump_with_nulls_keeps_no_null_metadata():
    """Response.model_dump(mode="json") writes every field; the nulls say nothing and stay out."""
    (trace,) = load_traces(HERE / "sdk_response_dump.json")
    assert trace.trace_id == "resp_abc" and None not in trace.metadata.values()
    assert "previous_response_id" not in trace.metadata
    assert trace.metadata["agent_model"].startswith("gpt-4.1")
    assert shape(trace) == [("Message", "system", None), ("Message", "assistant", 0),
                            ("ToolCall", "get_weather", 0), ("ToolCall", "get_weather", 0)]
    assert [t.name for t in trace.tools] == ["get_weather", "web_search"]


def test_item_page_listed_newest_first_is_read_oldest_first():
    """client.responses.input_items.list() (order "desc" by default) dumped as a ResponseItemList."""
    (trace,) = load_traces(HERE / "sdk_input_items_desc.json")
    assert trace.metadata["item_order"] == "desc" and trace.metadata["object"] == "list"
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0),
                            ("ToolCall", "get_weather", 0), ("Message", "assistant", None)]
    assert trace.events[2].output == "20C" and trace.events[-1].text == "It is 20C."
    page = json.loads((HERE / "sdk_input_items_desc.json").read_text())
    items = page["data"]
    assert [e.text for e in load_one(page | {"data": items[::-1]}).events if isinstance(e, Message)] == \
        [e.text for e in trace.events if isinstance(e, Message)]  # the same page in "asc" order
    assert "item_order" not in load_one(items[::-1]).metadata
    assert load_one(items).metadata["item_order"] == "desc"  # a bare list: its result before its call


def test_bad_item_of_a_reversed_page_names_its_place_in_the_file():
    page = json.loads((HERE / "sdk_input_items_desc.json").read_text())
    page["data"][2]["arguments"] = "{oops"  # the function_call, third in the file (newest first)
    with pytest.raises(TraceFormatError) as info:
        load_one(page)
    assert info.value.field == "data[2].arguments"


def test_agents_run_state_reads_its_items_and_the_sdk_tool_error_text():
    """result.to_state().to_json(): original_input, then generated_items[].raw_item; the SDK's fixed
    text for a tool that raised marks the call failed."""
    (trace,) = load_traces(HERE / "agents_run_state.json")
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0),
                            ("ToolCall", "get_weather", 0), ("ToolCall", "get_time", 0),
                            ("Message", "assistant", 1), ("ToolCall", "get_weather", 1),
                            ("Message", "assistant", None)]
    calls = [e for e in trace.events if isinstance(e, ToolCall)]
    assert [c.error for c in calls] == [False, False, True]
    assert trace.metadata["current_agent"] == {"name": "weather"}


def test_agents_run_state_waiting_for_approval_keeps_the_call_once():
    call = {"arguments": "{\"path\": \"/tmp/x\"}", "call_id": "call_del", "name": "delete_file",
            "type": "function_call", "id": "fc_1", "status": "completed"}
    agent = {"name": "files"}
    state = {"$schemaVersion": "1.21", "original_input": "Delete /tmp/x",
             "generated_items": [{"type": "tool_call_item", "raw_item": call, "agent": agent},
                                 {"type": "tool_approval_item", "raw_item": call, "agent": agent}]}
    trace = load_one(state)
    assert shape(trace) == [("Message", "user", None), ("Message", "assistant", 0),
                            ("ToolCall", "delete_file", 0)]
    assert trace.events[-1].output is None and trace.metadata["pending_approvals"] == [call]


def test_null_action_fields_of_a_full_dump_are_not_arguments():
    """Built-in calls dumped with nulls (ResponseOutputItem dump_python(mode="json")) give the same args
    as dumped with exclude_none."""
    items = json.loads((HERE / "sdk_hosted_items_nulls.json").read_text())
    full = load_one(items)
    bare = load_one([{k: ({a: b for a, b in v.items() if b is not None} if k == "action" else v)
                      for k, v in item.items() if v is not None} for item in items])
    args = [c.args for c in full.events if isinstance(c, ToolCall)]
    assert args == [c.args for c in bare.events if isinstance(c, ToolCall)]
    assert args[0] == {"type": "search", "query": "paris weather"}  # its sources are its result
    assert args[2] == {"type": "exec", "command": ["ls"], "env": {}}
    assert args[3] == {"actions": [{"type": "click", "button": "left", "x": 10, "y": 20},
                                   {"type": "type", "text": "hello"}]}  # computer_use: a batch, no action


def test_programmatic_tool_calling_and_additional_tools_items():
    """openai 3.54 item types: additional_tools, program / program_output, a function_call whose caller
    is the program. A list holding them was not even detected."""
    (trace,) = load_traces(HERE / "sdk_program_items.json")
    assert [t.name for t in trace.tools] == ["get_weather"]
    program, weather = [e for e in trace.events if isinstance(e, ToolCall)]
    assert (program.tool, program.output) == ("program", "20C") and "get_weather" in program.args["code"]
    assert (weather.turn, weather.output, weather.extra["caller"]["caller_id"]) == (0, "20C", "call_prog")
    assert trace.metadata["other_items"][0]["item"]["type"] == "additional_tools"


def test_stream_events_give_the_completed_response_and_a_cut_stream_is_an_error(tmp_path):
    """Streaming events saved one per line (model_dump_json): the response.completed event's Response is
    the trace; the other events repeat parts of it."""
    (trace,) = load_traces(HERE / "sdk_stream_events.jsonl")
    assert trace.trace_id == "resp_abc" and trace.metadata["status"] == "completed"
    assert [c.args for c in trace.calls] == [{"city": "Paris"}, {"city": "Rome"}]
    lines = (HERE / "sdk_stream_events.jsonl").read_text().splitlines()
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"cut\.jsonl, line 1: the stream of response 'resp_abc'"):
        load_traces(path)
    last = json.loads(lines[-1])
    last["response"]["output"][2]["arguments"] = "{oops"
    path.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n", encoding="utf-8")
    with pytest.raises(TraceFormatError) as info:
        load_traces(path)
    assert "line 4" in str(info.value) and info.value.field == "response.output[2].arguments"


def load_one(record):
    from toolcast.data.errors import Location

    assert FORMAT.sniff(record)
    return next(FORMAT.read([(Location("x.json"), record)], _raise))
