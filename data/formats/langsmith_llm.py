"""LangSmith llm runs -> the conversation's events: the message half of the `langsmith` format.

Kept apart from `langsmith.py` (records, grouping by trace, tool runs) so each file reads top to bottom;
the rules are in that module's docstring, the shapes in tests/fixtures/langsmith/README.md.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats import anthropic, langchain, openai
from toolcast.data.formats.base import expect
from toolcast.data.formats.chat import chat_dialect
from toolcast.data.formats.langchain_messages import MessageReader, is_message
from toolcast.data.schema import Message, ToolCall, ToolSpec

Run = tuple[Location, dict]
"""A run and where it was read (file, line, record path), for errors."""

# ---- small readers -------------------------------------------------------------------------------------


def run_time(at: Location, run: dict, key: str) -> float | None:
    """ISO 8601 (naive = UTC, as the API writes it) or epoch seconds / milliseconds (the JS SDK)."""
    value = run.get(key)
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value / 1000 if value > 1e11 else float(value)
    text = expect(value, str, at, key)
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TraceFormatError(at, f"not an ISO 8601 time: {text!r}", field=key) from None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def dict_field(at: Location, run: dict, key: str) -> dict:
    return expect(run.get(key) or {}, dict, at, key)


def sub(d: dict, key: str) -> dict:
    """`d[key]` when it is an object, else {} (for lookups that only decide how to read)."""
    value = d.get(key)
    return value if isinstance(value, dict) else {}


def message_body(m: dict) -> dict:
    """A dumped message's fields: dumpd's `kwargs`, messages_to_dict's `data`, or the message itself."""
    inner = m.get("kwargs") if m.get("lc") == 1 else m.get("data") if "content" not in m else None
    return inner if isinstance(inner, dict) else m


def source_id(call: ToolCall) -> str:
    return call.extra.get("source_call_id", call.call_id)


def turn_ids(events: list, i: int) -> tuple[str, ...]:
    """The source ids of the calls the assistant message at `i` made."""
    ids, turn = [], events[i].turn
    for event in events[i + 1:] if turn is not None else ():
        if not isinstance(event, ToolCall) or event.turn != turn:
            break
        ids.append(source_id(event))
    return tuple(ids)


# ---- llm runs ------------------------------------------------------------------------------------------


def conversation(llms: list[Run], metadata: dict) -> tuple[list, list[ToolSpec]]:
    """Events of the llm run that saw the most messages; the times of each assistant message's run."""
    read = [(at, run, m) for at, run in llms if (m := _messages(at, run)) is not None]
    if not read:
        return [], []
    at, run, (messages, path) = max(read, key=lambda x: len(x[2][0]))  # the first of the longest
    answer, answer_path = _output(at, run)
    tools: list[ToolSpec] = []
    roles = all(isinstance(m, dict) and isinstance(m.get("role"), str) and not is_message(m)
                for m in messages)  # role dicts: a wrapped client's request
    if isinstance(answer, str) and answer_path.startswith("outputs.generations"):  # a generation's text
        answer = {"role": "assistant", "content": answer} if roles else {"type": "ai", "content": answer}
    if roles:
        inputs = dict_field(at, run, "inputs")  # a wrapped client's request: {messages, tools, system?, ...}
        record = {k: inputs[k] for k in ("messages", "tools", "system", "functions") if k in inputs}
        fmt = anthropic if chat_dialect(record) == "anthropic" else openai
        if isinstance(answer, dict) and fmt is anthropic:  # an Anthropic Message: the last assistant message
            record["messages"] = [*messages, {"role": "assistant", "content": answer.get("content")}]
        elif answer is not None:  # a chat completion, read as openai reads a request log's "response"
            record["response"] = answer
        trace = next(fmt.FORMAT.read([(at.child(".inputs"), record)], _raise))
        events, tools = trace.events, trace.tools
        for key, value in trace.metadata.items():  # the completion's id, model, usage
            metadata.setdefault(key, value)
    else:
        reader = MessageReader(at, metadata)
        events = reader.events(messages, path)
        if answer is not None:
            try:  # events() names a message `{prefix}[{index}]`: errors get the answer's own path
                events += reader.events([answer], "<answer>")
            except TraceFormatError as e:
                field = (e.field or "").replace("<answer>[0]", answer_path, 1)
                raise TraceFormatError(e.where, e.reason, field=field) from None
    keys = {_answer_key(_output(a, r)[0]): (a, r) for a, r in llms}
    for i, event in enumerate(events):
        if isinstance(event, Message) and event.role == "assistant":
            found = keys.get((event.text, turn_ids(events, i)))
            if found:
                event.t_start, event.t_end = run_time(*found, "start_time"), run_time(*found, "end_time")
                event.extra["run_id"] = found[1]["id"]
    others = [r for a, r in llms if r is not run and not _is_prefix(_messages(a, r), messages)]
    if others:
        metadata["other_llm_runs"] = [{"id": r["id"], "name": r.get("name")} for r in others]
    return events, tools


def _messages(at: Location, run: dict) -> tuple[list, str] | None:
    """(input messages, their field path) of an llm run, or None (a completion model's prompts)."""
    inputs = dict_field(at, run, "inputs")
    if "messages" not in inputs:
        return None
    messages = expect(inputs["messages"], list, at, "inputs.messages")
    if messages and isinstance(messages[0], list):  # [[dumpd(message), ...]]: one batch per prompt
        return expect(messages[0], list, at, "inputs.messages[0]"), "inputs.messages[0]"
    return messages, "inputs.messages"


def _output(at: Location, run: dict) -> tuple[Any, str]:
    """The llm run's answer: generations[0][0].message (LangChain's tracer) or generations[0].message (a
    flat list, as the SDK's utils.get_message_generation_from_outputs reads it), an OpenAI chat completion, an
    Anthropic Message, the last of `messages` or `message` (a custom llm run in LangChain format)."""
    outputs = dict_field(at, run, "outputs")
    generations = outputs.get("generations")
    if generations is not None:
        first = expect(generations, list, at, "outputs.generations")
        path = "outputs.generations[0]"
        if first and isinstance(first[0], list):  # LLMResult: one list of generations per prompt
            first, path = first[0], f"{path}[0]"
        gen = expect(first[0], (dict, str), at, path) if first else {}
        if isinstance(gen, str):  # a flat list of texts (a RunTree's custom llm run)
            return gen, path
        return gen.get("message"), f"{path}.message"
    messages = outputs.get("messages")
    if isinstance(messages, list) and messages:  # a custom llm run in LangSmith's LangChain format
        return messages[-1], f"outputs.messages[{len(messages) - 1}]"
    if isinstance(outputs.get("message"), dict):
        return outputs["message"], "outputs.message"
    chat = "choices" in outputs or outputs.get("role") == "assistant" or outputs.get("lc") == 1
    whole = chat or outputs.get("type") in ("ai", "AIMessage", "AIMessageChunk")
    return (outputs if whole else None), "outputs"


def _raise(e: TraceFormatError) -> None:
    raise e


def _content_key(m: Any) -> str:
    """What must agree for two dumps of a message to be the same message."""
    if isinstance(m, dict):
        m = message_body(m).get("content")
    return json.dumps(m, sort_keys=True, default=str)


def _is_prefix(found: tuple[list, str] | None, messages: list) -> bool:
    """Whether an llm run's input starts the conversation: its first and last messages are checked, which
    keeps a long agent loop linear (a subagent or a trimmed history differs at one of the two)."""
    if found is None or not found[0]:
        return True
    short = found[0]
    return len(short) <= len(messages) and all(_content_key(short[i]) == _content_key(messages[i])
                                               for i in (0, len(short) - 1))


def _answer_key(message: Any) -> tuple[str, tuple[str, ...]] | None:
    """(text, call ids) of an llm run's output message, in any of its shapes, to find it among events."""
    if not isinstance(message, dict):
        return None
    if "choices" in message:  # an OpenAI chat completion
        choices = message["choices"]
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        message = first.get("message") if isinstance(first.get("message"), dict) else {}
    body = message_body(message)
    content = body.get("content")
    if isinstance(content, list):
        content = "\n".join(p if isinstance(p, str) else p["text"] for p in content if isinstance(p, str) or (
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)))
    blocks = body.get("content") if isinstance(body.get("content"), list) else []
    calls = body.get("tool_calls") if isinstance(body.get("tool_calls"), list) else [
        b for b in blocks if isinstance(b, dict) and b.get("type") in ("tool_use", "tool_call")]
    ids = tuple(c.get("id") for c in calls if isinstance(c, dict) and isinstance(c.get("id"), str))
    return (content if isinstance(content, str) else "", ids)


def tool_specs(llms: list[Run]) -> list[ToolSpec]:
    """The tools the llm runs were given (`extra.invocation_params.tools`), first declaration of each name."""
    out: dict[str, ToolSpec] = {}
    for at, run in llms:
        params = dict_field(at, run, "extra").get("invocation_params")
        if not isinstance(params, dict) or params.get("tools") is None:
            continue
        at = at.child(".extra.invocation_params")
        for spec in langchain._tools(at, params["tools"]):  # OpenAI, function or Anthropic form
            out.setdefault(spec.name, spec)
    return list(out.values())
