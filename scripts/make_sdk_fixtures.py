"""Rebuild the SDK-written fixtures: tests/fixtures/langsmith/sdk_flat_generations.json and
tests/fixtures/otel/sdk_genai_parts.json. Needs the SDKs, which toolcast does not depend on:

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install langsmith langchain-core opentelemetry-sdk \
        opentelemetry-exporter-otlp-proto-common
    LANGSMITH_TRACING=false /tmp/sdk/bin/python scripts/make_sdk_fixtures.py

No model is called: the agent's turns are written out here (a fake model), and the SDKs do the rest.
LangSmith: `RunTree` (runs, ids, dotted_order, times) and the runs as the SDK posts them
(`RunTree._get_dicts_safe()`, serialized by the SDK's own `dumps_json`), messages by langchain-core's
`dumpd`; the llm runs' `outputs.generations` is a flat list of ChatGenerations, the form the SDK's
`utils.get_message_generation_from_outputs` reads. OpenTelemetry: spans with the GenAI semantic
conventions' attributes recorded by the OpenTelemetry SDK, exported by its in-memory exporter and encoded
by the OTLP exporter's own protobuf encoder; the JSON is protobuf's JSON mapping with trace and span ids
rewritten in hex, as the OTLP JSON encoding requires.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def langsmith_runs() -> list[dict]:
    from langchain_core.load import dumpd
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
    from langsmith._internal._serde import dumps_json
    from langsmith.run_trees import RunTree

    tool = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city.",
                                              "parameters": WEATHER}}
    extra = {"metadata": {"thread_id": "thread-7", "ls_model_name": "gpt-4o-mini"},
             "invocation_params": {"model": "gpt-4o-mini", "tools": [tool]}}
    system, human = SystemMessage("You answer weather questions."), HumanMessage("Weather in Paris?")
    ask = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_p1"}])
    result = ToolMessage('{"temp_c": 21, "sky": "sunny"}', tool_call_id="call_p1", name="get_weather")
    answer = AIMessage("It is sunny in Paris, 21 °C.")

    root = RunTree(name="weather-agent", run_type="chain", inputs={"question": human.content},
                   extra={"metadata": {"thread_id": "thread-7"}})
    runs = [root]
    for k, (history, reply) in enumerate([([system, human], ask), ([system, human, ask, result], answer)]):
        llm = root.create_child(name="ChatOpenAI", run_type="llm", extra=extra,
                                inputs={"messages": [[dumpd(m) for m in history]]})
        time.sleep(0.01)
        llm.end(outputs={"generations": [{"text": reply.content, "type": "ChatGeneration",
                                          "message": dumpd(reply), "generation_info": {"finish_reason": (
                                              "tool_calls" if reply.tool_calls else "stop")}}]})
        runs.append(llm)
        if k == 0:
            run = root.create_child(name="get_weather", run_type="tool",
                                    inputs={"input": str({"city": "Paris"})},  # LangChain's str(tool_input)
                                    extra={"metadata": {"thread_id": "thread-7"}})
            time.sleep(0.01)
            run.end(outputs={"output": dumpd(result)})
            runs.append(run)
    root.end(outputs={"output": answer.content})
    return [json.loads(dumps_json(r._get_dicts_safe())) for r in runs]


def otel_document() -> dict:
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "weather-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("toolcast.fixtures")

    def text(role: str, content: str) -> dict:
        return {"role": role, "parts": [{"type": "text", "content": content}]}

    definitions = json.dumps([{"type": "function", "name": "get_weather", "description": "Weather in a city.",
                               "parameters": WEATHER}])
    user = text("user", "Weather in Paris and Rome?")
    calls = {"role": "assistant", "parts": [
        {"type": "tool_call", "id": "call_a", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"type": "tool_call", "id": "call_b", "name": "get_weather", "arguments": {"city": "Rome"}}],
        "finish_reason": "tool_call"}
    answers = {"call_a": '{"temp_c": 21}', "call_b": '{"temp_c": 25}'}

    for style in ("semconv", "pydantic-ai"):  # results as role "tool" + response, or role "user" + result
        key, role = ("response", "tool") if style == "semconv" else ("result", "user")
        results = {"role": role, "parts": [
            {"type": "tool_call_response", "id": i, "name": "get_weather", key: r}
            for i, r in answers.items()]}
        with tracer.start_as_current_span("invoke_agent weather", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather",
                "gen_ai.conversation.id": f"conv-{style}"}):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.output_tokens": 30,
                    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
                    "gen_ai.tool.definitions": definitions, "gen_ai.input.messages": json.dumps([user]),
                    "gen_ai.output.messages": json.dumps([calls])}):
                time.sleep(0.01)
            for call_id, city in (("call_a", "Paris"), ("call_b", "Rome")):
                with tracer.start_as_current_span("execute_tool get_weather", attributes={
                        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                        "gen_ai.tool.call.id": call_id, "gen_ai.tool.type": "function",
                        "gen_ai.tool.call.arguments": json.dumps({"city": city}),
                        "gen_ai.tool.call.result": answers[call_id]}):
                    time.sleep(0.005)
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.output_tokens": 12,
                    "gen_ai.input.messages": json.dumps([user, calls, results]),
                    "gen_ai.output.messages": json.dumps([{**text("assistant", "Paris 21 °C, Rome 25 °C."),
                                                          "finish_reason": "stop"}])}):
                time.sleep(0.01)
    doc = MessageToDict(encode_spans(exporter.get_finished_spans()))
    for rs in doc["resourceSpans"]:  # protobuf's JSON mapping writes bytes as base64; OTLP JSON wants hex
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in span:
                        span[k] = base64.b64decode(span[k]).hex()
    return doc


def main() -> None:
    (OUT / "langsmith" / "sdk_flat_generations.json").write_text(
        json.dumps(langsmith_runs(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (OUT / "otel" / "sdk_genai_parts.json").write_text(
        json.dumps(otel_document(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
