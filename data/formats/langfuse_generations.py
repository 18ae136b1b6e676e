"""A Langfuse generation's input and output as OpenAI chat messages, and the tools it lists: which of the
shapes `langfuse_messages.py` reads a generation holds (its docstring lists them), and where its tools are
(the input, metadata, modelParameters, span attributes, a Responses API output).
"""

from __future__ import annotations

import json
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.formats import gemini
from toolcast.data.formats.base import expect, schema_error
from toolcast.data.formats.langfuse_messages import (
    ITEM_TYPES,
    Item,
    as_text,
    get,
    literal,
    normalize,
    openai_call,
    parse_json,
    repr_message,
    text_parts,
)
from toolcast.data.schema import SchemaError, ToolSpec

_REPR_KEYS = ("role", "content", "name", "tool_call_id", "tool_calls")

# ---- tools --------------------------------------------------------------------------------------------


def tool_specs(value: Any, at: Location, name: str) -> list[ToolSpec]:
    """Tools in OpenAI ({"type": "function", "function"}), function, Responses ({"type": "function",
    "name"}), Anthropic (input_schema), Vercel AI SDK (inputSchema, each as JSON text) or Gemini
    ({"function_declarations"}) form."""
    out = []
    for i, tool in enumerate(expect(parse_json(value), list, at, name)):
        path = f"{name}[{i}]"
        tool = expect(parse_json(tool), dict, at, path)
        key, declarations = gemini.get(tool, "functionDeclarations")
        if declarations is not None:  # read as the Gemini importer reads them
            for j, fd in enumerate(expect(declarations, list, at, f"{path}.{key}")):
                out.append(gemini._declaration(at, fd, f"{path}.{key}[{j}]", {}))
            continue
        if tool.get("type") not in (None, "function") and "name" not in tool and "function" not in tool:
            continue  # a hosted tool (web_search, file_search, ...): nothing the agent's code runs
        if isinstance(tool.get("function"), dict):
            tool, path = tool["function"], f"{path}.function"
        key = next((k for k in ("input_schema", "inputSchema") if k in tool), "parameters")
        d = {"name": tool.get("name"), "description": tool.get("description"), "parameters": tool.get(key)}
        try:
            out.append(ToolSpec.from_dict(d, f"{path}."))
        except SchemaError as e:
            raise schema_error(at, SchemaError(e.field.replace(".parameters", f".{key}"),
                                               str(e).split(": ", 1)[-1])) from None
    return out


# ---- a generation's input and output ------------------------------------------------------------------


def attributes(d: dict) -> dict:
    """The span attributes Langfuse's OTel endpoint keeps in an observation's metadata."""
    metadata = parse_json(get(d, "metadata"))
    attrs = metadata.get("attributes") if isinstance(metadata, dict) else None
    return attrs if isinstance(attrs, dict) else {}


def declared_tools(d: dict, at: Location, field: Any) -> list[ToolSpec]:
    """Tools a generation lists outside its input: `tools` in metadata or modelParameters, the OTel
    attribute gen_ai.tool.definitions, pydantic-ai's model_request_parameters.function_tools."""
    out: list[ToolSpec] = []
    for key in ("metadata", "modelParameters"):
        holder = parse_json(get(d, key))
        if isinstance(holder, dict) and holder.get("tools") is not None:
            out += tool_specs(holder["tools"], at, field(f"{key}.tools"))
    attrs = attributes(d)
    if attrs.get("gen_ai.tool.definitions") is not None:
        out += tool_specs(attrs["gen_ai.tool.definitions"], at,
                          field("metadata.attributes.gen_ai.tool.definitions"))
    params = parse_json(attrs.get("model_request_parameters"))
    for i, fd in enumerate(params.get("function_tools") or [] if isinstance(params, dict) else []):
        if isinstance(fd, dict):
            fd = {"name": fd.get("name"), "description": fd.get("description"),
                  "parameters": fd.get("parameters_json_schema", fd.get("parameters"))}
        out += tool_specs([fd], at,
                          field(f"metadata.attributes.model_request_parameters.function_tools[{i}]"))
    return out


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(m, dict) and (isinstance(m.get("role"), str) or m.get("type") in (*ITEM_TYPES, "message"))
        for m in value)


def _system(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        value = value.get("parts")
    if isinstance(value, list):
        texts = [p if isinstance(p, str) else p.get("text", p.get("content")) for p in value
                 if isinstance(p, str) or isinstance(p, dict)]
        return "\n".join(t for t in texts if isinstance(t, str))
    return None


def generation_input(g: Any, tools: list[ToolSpec], first: bool, unread: dict[str, Any]) -> list[Item]:
    """A generation's input as messages (tools it lists go to `tools`). `g`: an Observation. A later
    generation's input in no message shape (a framework's own record of the call) is no turn of the
    conversation: it goes to `unread[g.id]`."""
    value, base, at = parse_json(get(g.d, "input")), g.field("input"), g.where
    tools += declared_tools(g.d, at, g.field)
    head: list[Item] = []
    attrs = attributes(g.d)
    instructions = _system(parse_json(attrs.get("gen_ai.system_instructions")))
    response = parse_json(get(g.d, "output"))
    if isinstance(response, dict) and response.get("object") == "response":  # Responses API (Agents SDK)
        if response.get("tools"):
            tools += tool_specs(response["tools"], at, g.field("output.tools"))
        instructions = instructions or _system(response.get("instructions"))
    listed = value.get("messages") if isinstance(value, dict) else None
    if isinstance(listed, list) and listed and all(isinstance(m, str) for m in listed):
        found = [repr_message(m) for m in listed]  # Agno logs its Message objects' reprs
        if all(found):
            value = {**value, "messages": [{k: v for k, v in m.items() if k in _REPR_KEYS and v is not None}
                                           for m in found if m]}
    if isinstance(value, dict) and (gemini.get(value, "contents")[1] is not None):
        config = gemini.get(value, "config")[1] or gemini.get(value, "generationConfig")[1] or {}
        for holder, where in ((value, base), (config, f"{base}.config")):
            if isinstance(holder, dict) and gemini.get(holder, "tools")[1]:
                tools += tool_specs(gemini.get(holder, "tools")[1], at, f"{where}.tools")
            if isinstance(holder, dict) and gemini.get(holder, "systemInstruction")[1] is not None:
                instructions = _system(gemini.get(holder, "systemInstruction")[1])
        key, value = gemini.get(value, "contents")
        base = f"{base}.{key}"
        if isinstance(value, (str, dict)):
            value = [value]
        value = [{"role": "user", "parts": [{"text": c}]} if isinstance(c, str) else c for c in value] \
            if isinstance(value, list) else value
    elif isinstance(value, dict) and isinstance(value.get("messages"), list) and (
            not value["messages"] or _is_messages(value["messages"])):
        for key in ("tools", "functions"):
            if value.get(key) is not None:
                tools += tool_specs(value[key], at, f"{base}.{key}")
        instructions = _system(value.get("system")) if value.get("system") is not None else instructions
        value, base = value["messages"], f"{base}.messages"
    elif isinstance(value, dict) and isinstance(value.get("prompt"), str):  # Vercel AI SDK, Claude Agent SDK
        instructions = _system(value.get("system")) or instructions
        value = [{"role": "user", "content": value["prompt"]}]
    elif isinstance(value, dict) and isinstance(value.get("role"), str):  # one message (Claude Agent SDK)
        value = [value]
    elif isinstance(value, dict) and set(value) <= {"args", "kwargs"} \
            and isinstance(value.get("args"), list) \
            and len(value["args"]) == 1 and isinstance(value["args"][0], str) and not value.get("kwargs"):
        value = value["args"][0]  # @observe of a function called with the prompt alone
    if instructions is not None:
        head.append((at, f"{base}.system", {"role": "system", "content": instructions}))
    if value is None:
        return head
    if not _is_messages(value):
        if not first and not isinstance(value, str):
            unread[g.id] = value
            return head
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return [*head, (at, base, {"role": "user", "content": text, "langfuse_input": True})]
    out = head
    for j, m in enumerate(value):
        path = f"{base}[{j}]"
        if m.get("role") == "tool" and "tool_call_id" not in m and isinstance(m.get("content"), dict):
            tools += tool_specs([m["content"]], at, f"{path}.content")  # LangChain appends the bound tools
            continue
        if m.get("role") in ("system", "developer") and head:
            continue  # the instructions again, also given apart
        out += [(at, path, x) for x in normalize(m, at, path, g.id)]
    return out


def generation_output(g: Any) -> Item | None:
    """A generation's output as the assistant message, or None when it has none (failed, or not logged)."""
    value, path, at = parse_json(get(g.d, "output")), g.field("output"), g.where
    if value is None:
        return None
    messages: list[dict]
    if isinstance(value, str):
        text = text_parts(value)
        messages = [{"role": "assistant", "content": value if text is None else text}]
    elif isinstance(value, dict) and isinstance(value.get("choices"), list) and value["choices"]:
        choice = expect(value["choices"][0], dict, at, f"{path}.choices[0]")
        path = f"{path}.choices[0].message"
        messages = normalize(expect(choice.get("message"), dict, at, path), at, path, g.id)
    elif isinstance(value, dict) and isinstance(value.get("candidates"), list) and value["candidates"]:
        candidate = expect(value["candidates"][0], dict, at, f"{path}.candidates[0]")
        path = f"{path}.candidates[0].content"
        content = expect(candidate.get("content"), dict, at, path)
        messages = normalize({"role": "model", **content}, at, path, g.id)
    elif isinstance(value, dict) and isinstance(value.get("content"), dict) and "parts" in value["content"]:
        path = f"{path}.content"  # ADK's LlmResponse
        messages = normalize({"role": "model", **value["content"]}, at, path, g.id)
    elif isinstance(value, dict) and value.get("object") == "response" \
            and isinstance(value.get("output"), list):
        path = f"{path}.output"
        messages = [x for k, item in enumerate(value["output"])
                    for x in normalize(item, at, f"{path}[{k}]", g.id)]
    elif isinstance(value, dict) and isinstance(value.get("message"), dict) and "index" in value:
        path = f"{path}.message"  # one choice of a chat completion
        messages = normalize(value["message"], at, path, g.id)
    elif isinstance(value, dict) and ("role" in value or "parts" in value or any(
            k in value for k in ("content", "tool_calls", "function_call"))):
        messages = normalize(value, at, path, g.id)
    elif isinstance(value, dict) and "name" in value and "arguments" in value:  # a bare function_call
        messages = [{"role": "assistant", "content": None, "function_call": value}]
    elif _is_messages(value):
        messages = [x for k, m in enumerate(value) for x in normalize(m, at, f"{path}[{k}]", g.id)]
    elif isinstance(value, list) and value and all(isinstance(x, dict) and (
            "function" in x or "toolName" in x or ("name" in x and ("args" in x or "arguments" in x)))
            for x in value):  # bare tool calls (streamed outputs of older SDKs, Vercel AI SDK)
        calls = [openai_call(x.get("toolCallId"), x["toolName"], x.get("input", x.get("args")))
                 if "toolName" in x else x for x in value]
        messages = normalize({"role": "assistant", "content": None, "tool_calls": calls}, at, path, g.id)
    elif isinstance(value, list) and value and all(isinstance(x, dict) and "type" in x for x in value):
        messages = [{"role": "assistant", "content": value}]  # content blocks
    else:
        messages = [{"role": "assistant", "content": as_text(value), "output_json": True}]
    return at, path, _one_answer(messages)


def _one_answer(messages: list[dict]) -> dict:
    """The assistant message of an output that lists several: messages that only call tools (Koog, the
    Responses API's items) are one turn; other lists are choices, the first kept, the rest in extra."""
    own = [m for m in messages if m.get("role") == "assistant"] or messages
    if len(own) > 1 and all(not m.get("content") or m.get("tool_calls") for m in own[:-1]):
        texts = [m["content"] for m in own if isinstance(m.get("content"), str) and m["content"]]
        merged = {k: v for m in own for k, v in m.items() if k not in ("content", "tool_calls")}
        calls = [tc for m in own for tc in m.get("tool_calls") or []]
        m = {**merged, "content": "\n".join(texts) if texts else None}
        if calls:
            m["tool_calls"] = calls
    else:
        m = {**own[0], "other_choices": own[1:]} if len(own) > 1 else dict(own[0])
    m["role"] = "assistant"
    return m


# ---- across generations ------------------------------------------------------------------------------


def final_answer(final: Any) -> str | None:
    """The text of a trace's output: a string, or an assistant message {role, content | text} (as JSON, a
    JSON string of it, or a Python repr: BeeAI)."""
    value = parse_json(final)
    for _ in range(2):
        if isinstance(value, str) and value[:1] in ('"', "{"):
            found = literal(value)
            value = found if found is not None else value
    if isinstance(value, dict) and value.get("role") == "assistant":
        value = value.get("content", value.get("text"))
    return value if isinstance(value, str) and value else None


def conversation_generations(obs: list, notes: dict[str, Any]) -> list:
    """The generations (Observations) the conversation is read from. A generation inside another (the
    Vercel AI SDK's ai.generateText around its doGenerate steps, Agno's OpenAIChat.invoke around an
    OpenInference chat span) logs the same call twice: the inner ones are read, unless an outer one's
    output holds more tool calls than its inner ones (they logged text only: then the outer ones are).
    Generations with neither input nor output are left out."""
    gens = [o for o in obs if o.type == "GENERATION"]
    by_id = {o.id: o for o in obs}
    ids = {g.id for g in gens}
    inner: dict[str, list] = {}
    for g in gens:
        p, seen = get(g.d, "parentObservationId"), set()
        while p in by_id and p not in ids and p not in seen:
            seen.add(p)
            p = get(by_id[p].d, "parentObservationId")
        if p in ids:
            inner.setdefault(p, []).append(g)
    outer = any(_calls(by_id[p]) > sum(map(_calls, children)) for p, children in inner.items())
    drop = {c.id for children in inner.values() for c in children} if outer else set(inner)
    empty = [g.id for g in gens if get(g.d, "input") is None and get(g.d, "output") is None
             and g.d.get("level") != "ERROR"]
    if drop:
        notes["nested_generations"] = sorted(drop)
    if empty:
        notes["empty_generations"] = empty
    return [g for g in gens if g.id not in drop and g.id not in empty]


def _calls(g: Any) -> int:
    try:
        out = generation_output(g)
    except TraceFormatError:
        return 0
    calls = out[2].get("tool_calls") if out else None
    return len(calls) if isinstance(calls, list) else 0


def resolve_results(items: list[Item], skip: str | None = None) -> list[Item]:
    """Tool messages that name no call id (Gemini's function_response, LangChain JS, Koog) answer the
    earliest waiting call of their tool's name (any waiting call when they name no tool). Calls whose
    ids start with `skip` (made up for this input's calls logged without one) answer none: the result
    belongs to the call the earlier generation's output made."""
    waiting: list[tuple[str, str]] = []
    out = []
    for at, path, m in items:
        calls = m.get("tool_calls") if m.get("role") == "assistant" else None
        for tc in calls if isinstance(calls, list) else []:
            fn = tc.get("function") if isinstance(tc, dict) else None
            own = isinstance(fn, dict) and isinstance(tc.get("id"), str) and not (
                skip and tc["id"].startswith(skip))
            if isinstance(fn, dict) and own:
                waiting.append((tc["id"], fn.get("name")))
        if m.get("role") == "tool":
            cid = m.get("tool_call_id")
            if cid is None and (m.get("name") is None or isinstance(m.get("name"), str)):
                cid = next((i for i, name in waiting if m.get("name") in (None, name)), None)
                m = {**m, "tool_call_id": cid} if cid is not None else m
            waiting = [(i, name) for i, name in waiting if i != cid]
        out.append((at, path, m))
    return out


def late_results(items: list[Item], before: list[Item]) -> list[Item]:
    """The tool messages among `before` (the part of a later input that repeats the conversation) that
    answer calls of `items` still waiting for a result."""
    asked, answered = set(), set()
    for _, _, m in items:
        calls = m.get("tool_calls") if m.get("role") == "assistant" else None
        asked |= {tc.get("id") for tc in calls if isinstance(tc, dict)} if isinstance(calls, list) else set()
        if m.get("role") == "tool":
            answered.add(m.get("tool_call_id"))
    waiting = asked - answered - {None}
    return [x for x in before if x[2].get("role") == "tool" and x[2].get("tool_call_id") in waiting]
