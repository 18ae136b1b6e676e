"""Stream-aware speculation: calls start when their arguments parse complete, text re-predicts, and a
stream that ends without its call leaves nothing to serve. Shapes as OpenAI and Anthropic stream them."""

from __future__ import annotations

import asyncio

import pytest

from toolcast.runtime.contracts import DENY
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime
from toolcast.runtime.simclock import run_virtual
from toolcast.runtime.stream import StreamFeeder


def openai_chunks(name: str, args_json: str, text: str = "", finish: str = "tool_calls") -> list[dict]:
    out = [{"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"role": "assistant",
                                                                                   "content": text}}]}]
    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": ""}}
    out.append({"choices": [{"index": 0, "delta": {"tool_calls": [head]}}]})
    for i in range(0, len(args_json), 3):
        frag = {"index": 0, "function": {"arguments": args_json[i:i + 3]}}
        out.append({"choices": [{"index": 0, "delta": {"tool_calls": [frag]}}]})
    out.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return out


def anthropic_events(name: str, args_json: str, text: str = "", stop: str = "tool_use") -> list[dict]:
    out = [{"type": "message_start", "message": {"role": "assistant"}},
           {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
           {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
           {"type": "content_block_stop", "index": 0},
           {"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": name, "input": {}}}]
    for i in range(0, len(args_json), 4):
        out.append({"type": "content_block_delta", "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": args_json[i:i + 4]}})
    out += [{"type": "content_block_stop", "index": 1},
            {"type": "message_delta", "delta": {"stop_reason": stop}}, {"type": "message_stop"}]
    return out


def responses_events(name: str, args_json: str, text: str = "",
                     end: str = "response.completed") -> list[dict]:
    out = [{"type": "response.output_text.delta", "output_index": 0, "delta": text},
           {"type": "response.output_item.added", "output_index": 1,
            "item": {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": name,
                     "arguments": ""}}]
    for i in range(0, len(args_json), 5):
        out.append({"type": "response.function_call_arguments.delta", "output_index": 1, "item_id": "fc_1",
                    "delta": args_json[i:i + 5]})
    out += [{"type": "response.function_call_arguments.done", "output_index": 1, "item_id": "fc_1",
             "arguments": args_json}, {"type": end}]
    return out


FEEDS = {"openai": ("openai_chunk", openai_chunks), "anthropic": ("anthropic_event", anthropic_events),
         "responses": ("openai_response_event", responses_events)}


def make(fk, predictor=None, duration: float = 1.0):
    tools = fk.FakeTools()
    rt = SpeculativeRuntime([tools.make("get", fk.READ, duration=duration), tools.make("put", DENY)],
                            predictor, RuntimeConfig())
    return tools, rt


async def stream(rt, feeder: StreamFeeder, method: str, events: list[dict], gap: float = 0.1) -> None:
    for ev in events:
        getattr(feeder, method)(ev)
        await asyncio.sleep(gap)


@pytest.mark.parametrize("api", list(FEEDS))
def test_a_streamed_call_starts_before_the_message_ends_and_the_agent_joins_it(fk, api):
    method, build = FEEDS[api]
    tools, rt = make(fk)

    async def agent():
        rt.observe_user("s", "order 7 please")
        await asyncio.sleep(0.5)
        feeder = StreamFeeder(rt, "s")
        await stream(rt, feeder, method, build("get", '{"x": 7}', "Let me look that up."))
        calls = feeder.finish()
        assert calls == [("get", {"x": 7})]
        out = await rt.call("s", *calls[0])
        await rt.aclose()
        return out

    out = run_virtual(agent())
    assert out["args"] == '{"x":7}'
    assert len(tools.runs("get")) == 1  # started from the stream, joined by the call: one run
    assert tools.runs("get")[0].start < 0.5 + 0.1 * len(build("get", '{"x": 7}'))
    total = rt.stats.total()
    assert total.served == 1 and total.misses == 0


@pytest.mark.parametrize("api", list(FEEDS))
def test_a_truncated_stream_leaves_nothing_served(fk, api):
    method, build = FEEDS[api]
    end = {"openai": "length", "anthropic": "max_tokens", "responses": "response.incomplete"}[api]
    tools, rt = make(fk)
    events = build("get", '{"x": 7}', "", end)

    async def agent():
        rt.observe_user("s", "hi")
        feeder = StreamFeeder(rt, "s")
        await stream(rt, feeder, method, events)
        assert feeder.finish() == []  # aborted by the truncation
        await asyncio.sleep(2.0)
        out = await rt.call("s", "get", {"x": 7})  # the agent retries on its own: a fresh run
        await rt.aclose()
        return out

    run_virtual(agent())
    total = rt.stats.total()
    assert total.served == 0 and total.misses == 1
    assert len(tools.runs("get")) == 2


def test_a_cancelled_stream_discards_its_runs(fk):
    tools, rt = make(fk)

    async def agent():
        rt.observe_user("s", "hi")
        feeder = StreamFeeder(rt, "s")
        await stream(rt, feeder, "openai_chunk", openai_chunks("get", '{"x": 1}')[:-1])
        feeder.abort()
        await asyncio.sleep(3.0)
        await rt.call("s", "get", {"x": 1})
        await rt.aclose()

    run_virtual(agent())
    assert rt.stats.total().served == 0
    assert rt.stats.total().dropped["stream ended"] == 1


@pytest.mark.parametrize("args_json", ['{"x": 1', '{"x": }', '[1, 2]', 'null'])
def test_invalid_json_never_starts_a_call(fk, args_json):
    tools, rt = make(fk)

    async def agent():
        rt.observe_user("s", "hi")
        feeder = StreamFeeder(rt, "s")
        await stream(rt, feeder, "anthropic_event", anthropic_events("get", args_json))
        assert feeder.finish() == []
        await rt.aclose()

    run_virtual(agent())
    assert tools.runs("get") == [] and rt.stats.total().launched == 0


def test_state_changing_calls_never_start_from_the_stream(fk):
    tools, rt = make(fk)

    async def agent():
        rt.observe_user("s", "hi")
        feeder = StreamFeeder(rt, "s")
        await stream(rt, feeder, "openai_chunk", openai_chunks("put", '{"x": 1}'))
        assert feeder.finish() == [("put", {"x": 1})]
        await asyncio.sleep(1.0)
        assert tools.runs("put") == []
        await rt.call("s", "put", {"x": 1})
        await rt.aclose()

    run_virtual(agent())
    assert len(tools.runs("put")) == 1


def test_streamed_text_re_predicts_with_the_text_in_context(fk):
    seen = []

    def script(ctx):
        last = ctx.events[-1]
        seen.append(last.text if last.type == "message" else None)
        return [fk.pred("get", 0.9, x=42)] if "42" in (last.text or "") and last.role == "assistant" else []

    tools, rt = make(fk, fk.ScriptedPredictor(script))

    async def agent():
        rt.observe_user("s", "hi")
        feeder = StreamFeeder(rt, "s", throttle_s=0.2, min_chars=10)
        for word in "Let me look up reservation 42 for you now.".split():
            feeder.text_delta(word + " ")
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)
        feeder.finish()
        out = await rt.call("s", "get", {"x": 42})
        await rt.aclose()
        return out

    run_virtual(agent())
    assert any(t and "reservation 42" in t for t in seen)
    assert rt.stats.total().hits == 1
