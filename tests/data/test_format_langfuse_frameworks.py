"""Langfuse importer on traces of real framework integrations, as Langfuse's UI hands them out
({"trace", "observations"}): small copies of the traces Langfuse keeps in its own repository (see
tests/fixtures/langfuse/README.md and scripts/make_langfuse_fixtures.py)."""

import json
from pathlib import Path

import pytest

from toolcast.data import ImportReport, Message, ToolCall, Trace, TraceFormatError, load_traces
from toolcast.data.formats import FORMATS
from toolcast.data.io import iter_records

HERE = Path(__file__).parent.parent / "fixtures" / "langfuse"
FRAMEWORKS = sorted(p.name for p in HERE.glob("framework_*.json"))


def one(name):
    (trace,) = load_traces(HERE / name)
    return trace


def texts(trace, role):
    return [e.text for e in trace.events if isinstance(e, Message) and e.role == role]


def labels(trace):
    return [label.tools for _, label in trace.decision_points()]


def test_every_framework_file_is_there():
    assert len(FRAMEWORKS) == 10


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_framework_trace_is_detected_as_langfuse_and_round_trips(name):
    _, first = next(iter_records(HERE / name))
    assert [f.name for f in FORMATS.values() if f.sniff(first)] == ["langfuse"]
    report = ImportReport()
    traces = load_traces(HERE / name, report=report)
    assert traces and report.formats == {"langfuse": len(traces)} and not report.skipped
    for trace in traces:
        assert Trace.from_dict(json.loads(trace.to_json())).to_dict() == trace.to_dict()
        for e in trace.events:  # texts are texts: never a raw JSON / repr list of parts or messages
            if isinstance(e, Message):
                assert not e.text.startswith(("[{", "{\"", "{'")), (name, e.text[:80])
        for call in trace.calls:  # a call's id is the model's, never an observation's
            assert call.call_id not in {o for o in [call.extra.get("observation_id")] if o}
            assert not call.tool.startswith(("running tool", "execute_tool"))


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_cli_import_round_trips_through_toolcast_jsonl(import_round_trip, name):
    n = len(load_traces(HERE / name))
    import_round_trip(HERE / name, "langfuse", n)


def test_microsoft_agent_framework_otel_parts():
    trace = one("framework_microsoft_agent.json")
    assert texts(trace, "user") == ["What's the weather in Tokyo?"]
    assert [t.name for t in trace.tools] == ["get_weather"]  # gen_ai.tool.definitions
    (call,) = trace.calls
    assert (call.call_id, call.tool, call.args) == ("call_CwaJHuXTm9dmHFQPlVbqyzJ0", "get_weather",
                                                    {"location": "Tokyo, Japan"})
    # the tool_call_response part, unwrapped from the framework's function_result
    assert call.output == "The weather in Tokyo, Japan is stormy with a high of 23°C."
    assert call.extra["observation_id"] == "a2de97aac476c036" and call.t_start is not None
    assert texts(trace, "assistant")[-1].startswith("Current conditions in Tokyo")
    assert labels(trace) == [["get_weather"], ["<respond>"]]


def test_pydantic_ai_parallel_calls_named_by_their_span_attributes():
    trace = one("framework_pydantic_ai.json")
    assert len(trace.tools) == 5  # model_request_parameters.function_tools
    first = [c for c in trace.calls if c.turn == 0]
    assert [(c.call_id, c.tool) for c in first] == [
        ("call_X0OSgjUukT5inyEQvuZQnHrk", "get_pun_suggestion"),
        ("call_WxZcCvSDhGT4RJHlcU01k10x", "get_dad_joke_suggestion"),
        ("call_aRaObiWKKt6GzgDkkUl3bu1Q", "get_one_liner_suggestion")]
    assert all(c.args == {"topic": "programming"} and c.output and c.t_end for c in first)
    assert first[0].output.startswith("Pun idea")
    assert all(texts(trace, "user"))  # results sent with role "user" are no empty user turns
    assert texts(trace, "user")[0].startswith("Select and call THREE")


def test_gemini_payloads_in_generations():
    adk, genai, vertex = load_traces(HERE / "framework_gemini.json")
    assert [(t.name, t.parameters) for t in adk.tools] == [("say_hello", {})]  # function_declarations
    assert texts(adk, "system")[0].startswith("Always greet using the say_hello tool")
    assert texts(adk, "user") == ["hi"]
    (call,) = adk.calls  # logged without an id: it takes the one its execute_tool span names
    assert (call.call_id, call.tool, call.args) == (
        "adk-8bd8dc65-717d-4102-858b-3a1dd6b75a00", "say_hello", {})
    assert json.loads(call.output) == {"greeting": "Hello Langfuse 👋"}
    assert texts(adk, "assistant")[-1] == "Hello Langfuse 👋!\n"
    for trace in (genai, vertex):  # contents as a string / as Content; answers as candidates
        assert texts(trace, "user") == ["What is Langfuse?"]
        assert texts(trace, "assistant")[0].startswith("**Langfuse** is an **open-source")


def test_claude_agent_sdk_tools_fill_the_calls_earlier_turns_asked_for():
    trace = one("framework_claude_agent.json")
    assert texts(trace, "user") == ["What's the weather like in Berlin and New York?"]
    berlin, new_york = trace.calls  # no third call with {"input": ...} arguments
    assert (berlin.call_id, berlin.args, berlin.output, berlin.extra["observation_id"]) == (
        "toolu_01TKoqQLvY2UWuC49qnD48y7", {"city": "Berlin"}, "Weather in Berlin: Cloudy, 59°F",
        "f411dab686a064b1")
    assert (new_york.args, new_york.output) == ({"city": "New York"}, "Weather in New York: Sunny, 75°F")
    assert texts(trace, "assistant")[-1].startswith("Great! Here's the current weather")


def test_openai_agents_sdk_responses_items():
    trace = one("framework_openai_agents.json")
    assert [(e.role, e.text[:28]) for e in trace.events if isinstance(e, Message)] == [
        ("system", "You are a helpful agent."), ("user", "What's the weather in Tokyo?"),
        ("assistant", ""), ("assistant", "The weather in Tokyo is curr")]
    (call,) = trace.calls
    assert (call.call_id, call.args, call.output) == ("call_Kud0j0DxWSmLzv9W5m6qVqXn", {"city": "Tokyo"},
                                                      "The weather in Tokyo is sunny.")
    assert [t.name for t in trace.tools] == ["get_weather"]


def test_vercel_ai_sdk_step_inside_generate_text_is_read_once():
    trace = one("framework_vercel_ai.json")
    assert [type(e).__name__ for e in trace.events] == ["Message", "Message", "ToolCall"]
    assert texts(trace, "user") == ["What is the weather like today in San Francisco?"]
    (call,) = trace.calls
    assert (call.call_id, call.args) == ("call_DgKARp7a7IhJPDczfifMp6Ra", {"location": "San Francisco"})
    assert json.loads(call.output) == {"location": "San Francisco", "temperature": 64}
    assert trace.metadata["nested_generations"] == ["1dc6768109615657"]  # ai.generateText, around the step
    assert [t.name for t in trace.tools] == ["getWeather"]


def test_langchain_js_tool_message_named_by_its_role():
    trace = one("framework_langgraph_js.json")
    (call,) = trace.calls
    assert (call.tool, call.output) == ("get_weather", "It's always sunny in San Francisco!")
    assert texts(trace, "assistant")[-1].startswith("It's always sunny in San Francisco!")


def test_beeai_assistant_turns_from_the_next_input_and_the_answer_from_the_trace():
    trace = one("framework_beeai.json")
    assert texts(trace, "user")[0].startswith("Message: I'm planning a trip to Barcelona")
    thoughts = [e for e in trace.events if isinstance(e, Message) and e.role == "assistant"]
    assert [m.text[:20] for m in thoughts] == ["Thought: I will firs", "Thought: I found inf",
                                               "Barcelona is a vibra"]
    assert [m.extra.get("observation_id") for m in thoughts] == ["1f956cbea34725bd", "52df0f7f9dad6b23",
                                                                 "4c5c5a7936ca24bc"]
    assert trace.metadata["empty_generations"] == ["f50f7bbf13112df9", "b7b9a79830fe5c6b"]


def test_koog_tool_calls_as_json_text():
    trace = one("framework_koog.json")
    hello, bye = trace.calls
    assert (hello.tool, hello.output, bye.tool, bye.output) == (
        "HelloTool", "Hello my darling Bob!", "ByeTool", "Bye my dear Bob!")
    assert hello.turn == bye.turn == 0 and hello.t_start is not None


def test_agno_message_reprs_and_the_outer_generation_that_holds_the_call():
    trace = one("framework_agno.json")
    assert texts(trace, "user") == ["What is currently trending on Twitter?"]  # from role='user' content=...
    assert [t.name for t in trace.tools] == ["duckduckgo_search", "duckduckgo_news"]
    (call,) = trace.calls  # the inner OpenInference span logged the text 'None': the outer one is read
    assert (call.call_id, call.args) == ("call_VybxG748CQId8Xxo6wb2pWy1",
                                         {"query": "currently trending on Twitter"})
    assert '"title": "Twitter. It' in call.output and call.extra["observation_type"] == "SPAN"
    assert len(trace.metadata["nested_generations"]) == 2
    assert texts(trace, "assistant")[-1].startswith("To find out what's currently trending on Twitter")


def test_the_trace_output_answers_only_for_a_last_generation_that_logged_nothing_and_did_not_fail(tmp_path):
    def doc(level):
        gen = {"id": "g1", "traceId": "t1", "type": "GENERATION", "startTime": "2025-01-01T00:00:00Z",
               "level": level, "input": [{"role": "user", "content": "Hi"}], "output": None}
        return {"trace": {"id": "t1", "output": "Hello there"}, "observations": [gen]}

    path = tmp_path / "t.json"
    path.write_text(json.dumps([doc("DEFAULT")]), encoding="utf-8")
    (trace,) = load_traces(path)
    assert [(e.role, e.text) for e in trace.events] == [("user", "Hi"), ("assistant", "Hello there")]
    assert trace.events[1].extra == {"from_trace_output": True, "observation_id": "g1"}
    path.write_text(json.dumps([doc("ERROR")]), encoding="utf-8")
    (trace,) = load_traces(path)
    assert [e.role for e in trace.events] == ["user"]
    assert trace.metadata["failed_generations"] == [{"id": "g1", "level": "ERROR"}]


# ---- bad input -----------------------------------------------------------------------------------------


def _wrapped(tmp_path, edit):
    doc = json.loads((HERE / "framework_microsoft_agent.json").read_text(encoding="utf-8"))
    edit(doc)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d["trace"].update(id=7), "trace.id"),
    (lambda d: d["observations"][1].update(startTime="soon"), "observations[1].startTime"),
    (lambda d: d["observations"][1].update(output=json.dumps([{"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c", "name": "f", "arguments": "{oops"}]}])),
     "observations[1].output.tool_calls[0].function.arguments"),
], ids=["trace-id", "time", "arguments"])
def test_a_malformed_record_still_names_file_line_and_field(tmp_path, edit, field):
    with pytest.raises(TraceFormatError) as info:
        load_traces(_wrapped(tmp_path, edit), format="langfuse")
    assert (info.value.field, "t.json, line 1" in str(info.value)) == (field, True)


def _raise(error):
    raise error


@pytest.mark.parametrize("name", ["framework_microsoft_agent.json", "framework_claude_agent.json",
                                  "framework_vercel_ai.json", "framework_koog.json"])
def test_any_wrong_value_is_a_clear_error_never_a_crash(mutate, name):
    for where, record in iter_records(HERE / name):
        for mutated in mutate(record):
            try:
                traces = list(FORMATS["langfuse"].read([(where, mutated)], _raise))
            except TraceFormatError:
                continue
            for trace in traces:
                assert all(isinstance(e, (Message, ToolCall)) for e in trace.events)
                Trace.from_dict(json.loads(trace.to_json()))
