"""One message of a Langfuse generation, in whatever shape its integration logged it, as OpenAI chat
messages: the one form `langfuse_conversation.py` reads (through the OpenAI or Anthropic importer).

Langfuse stores what each integration sends and parses none of it, so a generation holds its provider's
or framework's own shape (which shape a whole input or output is: `langfuse_generations.py`). Read here
(sources in tests/fixtures/langfuse/README.md):
- OpenAI chat messages and LangChain message dicts: as they are; LangChain tool calls {name, args, id}
  and older handlers' `additional_kwargs.tool_calls` in OpenAI form; LangChain JS tool messages whose
  `role` is the tool's name become role "tool" (their call is found by name: `resolve_results`).
- OpenTelemetry GenAI messages, `{role, parts: [...]}` (gen_ai.input.messages / gen_ai.output.messages:
  Microsoft Agent Framework, .NET Microsoft.Extensions.AI, pydantic-ai): text parts are the text,
  `tool_call` parts {id, name, arguments} the calls, each `tool_call_response` part {id, response |
  result} a tool message (pydantic-ai sends them with role "user"); reasoning and other parts go to extra.
- Gemini `Content` {role, parts} (google-genai, Vertex, ADK; camelCase or snake_case): role "model" is
  the assistant, `function_call` parts calls, `function_response` parts tool messages.
- OpenAI Responses API items (the OpenAI Agents SDK through OpenInference): message, function_call and
  function_call_output items.
- Vercel AI SDK messages: content parts text / tool-call / tool-result.
- Text that is a list of text parts, as JSON or a Python repr (BeeAI), or a JSON list of OpenAI tool
  calls as a message's content (Koog, which also labels that message "tool"): the text, the calls.
Calls logged without an id get `<generation id>:<field path>:<k>`.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from typing import Any

from toolcast.data.errors import Location
from toolcast.data.formats import gemini
from toolcast.data.formats.base import expect

_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_TEXT_PARTS = ("text", "input_text", "output_text")  # chat and OTel parts; the Responses API's
_VERCEL_OUTPUTS = ("json", "text", "error-text", "error-json")  # AI SDK 5's ToolResultOutput types
ITEM_TYPES = ("function_call", "function_call_output", "reasoning")  # Responses API items read
Item = tuple[Location, str, dict]
"""A conversation message: where its record is, its field path there, the message (OpenAI form)."""


def get(d: dict, key: str) -> Any:
    """A field by its camelCase API name, or by its snake_case name (SDK model dumps, blob exports)."""
    value = d.get(key)
    return d.get(_SNAKE.sub("_", key).lower()) if value is None else value


def parse_json(value: Any) -> Any:
    """The v2 observations API returns input/output as raw strings: JSON text is parsed."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    return value


def literal(text: str) -> Any:
    """JSON or a Python literal (a repr, as BeeAI logs content parts) in `text`, else None."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def repr_message(text: str) -> dict | None:
    """The literal fields of a message logged as a pydantic repr, `role='user' content='Hi' name=None ...`
    (Agno's Message objects); fields that are no literal (`metrics=MessageMetrics(...)`) are left out."""
    if not text.startswith("role="):
        return None
    fields: dict[str, Any] = {}
    depth, key, start = 0, None, 0
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def close(end: int) -> None:
        if key is not None:
            try:
                fields[key] = ast.literal_eval(text[start:end].strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return None
    for i, tok in enumerate(tokens):
        at = offsets[tok.start[0] - 1] + tok.start[1]
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif depth == 0 and tok.type == tokenize.NAME and i + 1 < len(tokens) and tokens[i + 1].string == "=":
            close(at)
            key, start = tok.string, offsets[tokens[i + 1].end[0] - 1] + tokens[i + 1].end[1]
    close(len(text))
    return fields if isinstance(fields.get("role"), str) else None


def text_parts(value: Any) -> str | None:
    """The text of a list of text parts ({"type": "text", "text"} or OTel's {"type": "text", "content"}),
    given as a list or as its JSON / repr text; None when it is anything else."""
    if isinstance(value, str):
        if not value.startswith("[{"):
            return None
        value = literal(value)
    if not (isinstance(value, list) and value and all(isinstance(p, dict) and p.get("type") in _TEXT_PARTS
                                                     for p in value)):
        return None
    texts = [p.get("text", p.get("content")) for p in value]
    return "\n".join(texts) if all(isinstance(t, str) for t in texts) else None


def as_text(value: Any) -> str | None:
    """A result or content as text: strings (and null) as they are, anything else as JSON."""
    return value if isinstance(value, str) or value is None else json.dumps(value, ensure_ascii=False)


def openai_call(call_id: Any, name: Any, arguments: Any) -> dict:
    """A tool call in OpenAI form; arguments logged as an object become JSON text."""
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _result(call_id: Any, name: Any, output: Any) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": as_text(output)}


def _assembled(role: Any, texts: list, calls: list, results: list, extra: dict) -> list[dict]:
    """Tool results first (a message that carries them answers calls), then the message's own text and
    calls, if it has any."""
    if not (texts or calls) and results:
        return results
    own = {"role": role, "content": "\n".join(t for t in texts if isinstance(t, str)) if texts else None,
           **extra}
    if calls:
        own["tool_calls"] = calls
    return [*results, own]


# ---- one message --------------------------------------------------------------------------------------


def normalize(m: Any, at: Location, path: str, gen_id: str) -> list[dict]:
    """One logged message as OpenAI messages (an OTel or Gemini message with tool results gives one tool
    message per result)."""
    m = expect(m, dict, at, path)
    if isinstance(m.get("parts"), list) and "content" not in m:
        gemini_parts = any(isinstance(p, dict) and "type" not in p for p in m["parts"])
        out = _gemini(m) if gemini_parts else _otel(m)
    elif m.get("type") in ITEM_TYPES or ("role" not in m and m.get("type") == "message"):
        out = _item(m)
    else:
        out = _chat(m)
    return [_ids(x, f"{path}[{n}]" if len(out) > 1 else path, gen_id) for n, x in enumerate(out)]


def _ids(m: dict, path: str, gen_id: str) -> dict:
    calls = m.get("tool_calls")
    if isinstance(calls, list) and any(isinstance(tc, dict) and not tc.get("id") for tc in calls):
        m = {**m, "tool_calls": [{**tc, "id": f"{gen_id}:{path}:{k}"}
                                 if isinstance(tc, dict) and not tc.get("id") else tc
                                 for k, tc in enumerate(calls)]}
    return m


def _chat(m: dict) -> list[dict]:
    """An OpenAI / LangChain / Vercel / Koog message in OpenAI form."""
    kwargs = m.get("additional_kwargs")
    if isinstance(kwargs, dict) and not m.get("tool_calls") and not m.get("function_call"):
        # older LangChain handlers kept the provider's tool calls in additional_kwargs only
        m = {**m, **{k: kwargs[k] for k in ("tool_calls", "function_call") if kwargs.get(k)}}
    role, content = m.get("role"), m.get("content")
    if isinstance(role, str) and role not in _ROLES and "tool_call_id" not in m:
        m = {**m, "role": "tool", "name": role, "tool_call_id": None}  # LangChain JS: role = the tool's name
    if isinstance(content, list) and any(isinstance(p, dict) and str(p.get("type")).startswith("tool-")
                                         for p in content):
        return _vercel(m)
    text = text_parts(content)
    if text is not None:
        m = {**m, "content": text}
    elif isinstance(content, str) and content.startswith("[{") and not m.get("tool_calls"):
        calls = literal(content)  # Koog: the calls as JSON text, on an assistant (or mislabeled) message
        if isinstance(calls, list) and calls and all(
                isinstance(c, dict) and isinstance(c.get("function"), dict) for c in calls):
            m = {**m, "role": "assistant", "content": None, "tool_calls": calls}
    calls = m.get("tool_calls")
    if isinstance(calls, list) and calls:  # LangChain's {name, args, id}
        m = {**m, "tool_calls": [openai_call(tc.get("id"), tc["name"], tc.get("args", tc.get("arguments")))
                                 if isinstance(tc, dict) and "function" not in tc and "name" in tc else tc
                                 for tc in calls]}
    return [m]


def _otel(m: dict) -> list[dict]:
    """An OpenTelemetry GenAI message {role, parts}."""
    texts, calls, results, extra = [], [], [], {}
    for part in m["parts"]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("content"), str):
            texts.append(part["content"])
        elif kind == "tool_call":
            calls.append(openai_call(part.get("id"), part.get("name"), part.get("arguments")))
        elif kind == "tool_call_response":
            response = part.get("response", part.get("result"))
            parsed = parse_json(response)
            if isinstance(parsed, dict) and parsed.get("type") == "function_result" and "result" in parsed:
                response = parsed["result"]  # Microsoft Agent Framework's FunctionResultContent, serialized
            results.append(_result(part.get("id"), part.get("name"), response))
        else:
            extra.setdefault("reasoning" if kind == "reasoning" else "parts", []).append(part)
    rest = {k: v for k, v in m.items() if k not in ("role", "parts") and v is not None}
    return _assembled(m.get("role"), texts, calls, results, {**rest, **extra})


def _gemini(m: dict) -> list[dict]:
    """A Gemini Content {role, parts} (camelCase or snake_case)."""
    texts, calls, results, extra = [], [], [], {}
    for part in m["parts"]:
        if not isinstance(part, dict):
            continue
        fc, fr = gemini.get(part, "functionCall")[1], gemini.get(part, "functionResponse")[1]
        if isinstance(part.get("text"), str):
            (extra.setdefault("thinking", []) if part.get("thought") else texts).append(part["text"])
        elif isinstance(fc, dict):
            calls.append(openai_call(fc.get("id"), fc.get("name"), fc.get("args") or {}))
        elif isinstance(fr, dict):
            results.append(_result(fr.get("id"), fr.get("name"), fr.get("response")))
        else:
            extra.setdefault("parts", []).append(part)
    role = "assistant" if m.get("role") == "model" else m.get("role") or "user"
    return _assembled(role, texts, calls, results, extra)


def _item(m: dict) -> list[dict]:
    """An OpenAI Responses API item."""
    kind = m.get("type")
    if kind == "function_call":
        return [{"role": "assistant", "content": None,
                 "tool_calls": [openai_call(m.get("call_id"), m.get("name"), m.get("arguments"))]}]
    if kind == "function_call_output":
        output = m.get("output")
        text = text_parts(output)
        return [_result(m.get("call_id"), None, text if text is not None else output)]
    if kind == "reasoning":
        return [{"role": "assistant", "content": None, "reasoning": m.get("summary")}]
    content = m.get("content")
    if isinstance(content, list):
        content = "\n".join(p["text"] for p in content
                            if isinstance(p, dict) and isinstance(p.get("text"), str))
    return [{"role": m.get("role") or "assistant", "content": content}]


def _vercel(m: dict) -> list[dict]:
    """A Vercel AI SDK message: content parts text / tool-call / tool-result."""
    texts, calls, results = [], [], []
    for part in m["content"]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(part.get("text"))
        elif kind == "tool-call":
            calls.append(openai_call(part.get("toolCallId"), part.get("toolName"),
                                     part.get("input", part.get("args"))))
        elif kind == "tool-result":
            output = part.get("output", part.get("result"))
            if isinstance(output, dict) and output.get("type") in _VERCEL_OUTPUTS:
                output = output.get("value")
            results.append(_result(part.get("toolCallId"), part.get("toolName"), output))
    rest = {k: v for k, v in m.items() if k not in ("role", "content")}
    return _assembled(m.get("role"), texts, calls, results, rest)
