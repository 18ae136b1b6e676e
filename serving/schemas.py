"""Request and response bodies of the HTTP API, kept apart (a request is never echoed as a response).

A context travels in the canonical schema (docs/architecture.md, "The canonical trace"): `events` are the
canonical event dicts, validated by the schema's own `event_from_dict`, so the server accepts exactly
what the importers write and a bad event gets a 422 naming its field (`events[3].turn`). The JSON schema
given for events below documents that shape for OpenAPI; `toolcast.data.schema` stays the authority.

Before any field is read, a body is checked as the importers check a record (`json_problem`): nesting
deeper than `MAX_NESTING` and lone surrogates (`\\ud800` escapes: valid JSON, but no text that can be
answered in UTF-8) are a 422 naming the field, never a 500 from whatever would meet them later.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from toolcast.data.native import NATIVE_FORMAT_NAMES, context_of, trace_from_record
from toolcast.data.schema import Context, Event, SchemaError, ToolSpec, event_from_dict, json_problem
from toolcast.predictor.protocol import CallPrediction
from toolcast.serving.interning import EventInterner
from toolcast.serving.settings import K_CEILING

_NULLABLE_NUMBER = {"anyOf": [{"type": "number"}, {"type": "null"}]}
_NULLABLE_INT = {"anyOf": [{"type": "integer"}, {"type": "null"}]}

EVENT_JSON_SCHEMA: dict[str, Any] = {
    "title": "Event",
    "description": "A canonical event: a text message or a tool call with its result.",
    "oneOf": [
        {
            "title": "MessageEvent",
            "type": "object",
            "required": ["type", "role"],
            "properties": {
                "type": {"type": "string", "enum": ["message"]},
                "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                "text": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "t_start": _NULLABLE_NUMBER, "t_end": _NULLABLE_NUMBER,
                "tokens": _NULLABLE_INT, "turn": _NULLABLE_INT,
                "extra": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            },
        },
        {
            "title": "ToolCallEvent",
            "type": "object",
            "required": ["type", "call_id", "turn", "tool", "args"],
            "properties": {
                "type": {"type": "string", "enum": ["tool_call"]},
                "call_id": {"type": "string"},
                "turn": {"type": "integer"},
                "tool": {"type": "string"},
                "args": {"type": "object"},
                "output": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "error": {"type": "boolean"},
                "t_start": _NULLABLE_NUMBER, "t_end": _NULLABLE_NUMBER,
                "extra": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            },
        },
    ],
}

EXAMPLE_TOOLS = [
    {"name": "get_user_details", "description": "Look up a user by id.",
     "parameters": {"type": "object", "properties": {"user_id": {"type": "string"}}},
     "annotations": {"readOnlyHint": True}},
    {"name": "get_reservation_details", "description": "Look up a reservation.",
     "parameters": {"type": "object", "properties": {"reservation_id": {"type": "string"}}},
     "annotations": {"readOnlyHint": True}},
]
EXAMPLE_EVENTS = [
    {"type": "message", "role": "user", "text": "Hi, I'm mia_li_3668 and I want to change my flight.",
     "t_start": None, "t_end": 0.0, "tokens": None},
    {"type": "message", "role": "assistant", "text": "", "turn": 0, "t_start": 0.0, "t_end": 1.2,
     "tokens": 20},
    {"type": "tool_call", "call_id": "c1", "turn": 0, "tool": "get_user_details",
     "args": {"user_id": "mia_li_3668"}, "output": '{"reservations": ["NO6JO3"]}', "error": False,
     "t_start": 1.2, "t_end": 1.3},
]
EXAMPLE_REQUEST = {"events": EXAMPLE_EVENTS, "tools": EXAMPLE_TOOLS,
                   "metadata": {"agent_model": "gpt-4.1"}, "k": 3}
EXAMPLE_PREDICTION = {
    "tool": "get_reservation_details", "args": {"reservation_id": "NO6JO3"}, "free": [],
    "sources": {"reservation_id": "output:get_user_details.reservations[0]"},
    "p_tool": 0.71, "p_call": 0.64, "complete": True,
}


class _Readable(BaseModel):
    """A request body every reader can walk and every answer can encode (see the module docstring)."""

    @model_validator(mode="before")
    @classmethod
    def _readable(cls, data: Any) -> Any:
        problem = json_problem(data)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        return data


View = Literal["next", "horizon"]
VIEW_DESCRIPTION = (
    "`next`: the most likely next calls, by p(call). `horizon`: the calls likely to be issued before the "
    "session's next state change (a set to run ahead), by p_horizon, when the model directory has a horizon "
    "view (GET /v1/model lists `views`); else a 409.")


class ToolSpecIn(BaseModel):
    """A tool the agent can call (the canonical ToolSpec)."""

    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict, description="JSON schema of the arguments")
    annotations: dict[str, Any] = Field(default_factory=dict, description="MCP-style hints")


class PredictRequest(_Readable):
    """A decision point: everything that happened before the agent's LLM started generating."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_REQUEST]})

    events: list[dict[str, Any]] = Field(
        json_schema_extra={"items": EVENT_JSON_SCHEMA},
        description="The history, oldest first, as canonical event objects.")
    tools: list[ToolSpecIn] = Field(default_factory=list, description="The tools available now.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Trace metadata (agent model...).")
    k: int = Field(default=3, ge=1, le=K_CEILING, description="How many candidate calls to return.")
    view: View = Field(default="next", description=VIEW_DESCRIPTION)

    def to_context(self, path: str = "", interner: EventInterner | None = None) -> Context:
        """The canonical Context; raises SchemaError naming the field (path-prefixed, e.g. events[2].tool).

        With an `interner`, events whose JSON it saw recently are the objects it built then (shared: never
        mutate them), so the predictor's per-event caches hit across a session's requests."""
        if interner is not None:
            events = interner.events(self.events, convert_event, path)
        else:
            events = [convert_event(e, f"{path}events[{i}].") for i, e in enumerate(self.events)]
        tools = [ToolSpec(t.name, t.description, t.parameters, t.annotations) for t in self.tools]
        return Context(events=events, tools=tools, metadata=self.metadata)


def convert_event(d: Any, where: str) -> Event:
    """One canonical event from its request dict; SchemaError (naming `where` + field) when invalid."""
    try:
        return event_from_dict(d, where)
    except OverflowError:  # an integer too large to be a time in seconds
        raise SchemaError(f"{where}t_start", "number out of range") from None


class BatchPredictRequest(_Readable):
    """Several decision points answered together (each with its own k)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{"requests": [EXAMPLE_REQUEST]}]})

    requests: list[PredictRequest] = Field(min_length=1)


EXAMPLE_OPENAI_RECORD = {
    "model": "gpt-4.1",
    "messages": [
        {"role": "user", "content": "Hi, I'm mia_li_3668 and I want to change my flight."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "get_user_details", "arguments": '{"user_id": "mia_li_3668"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"reservations": ["NO6JO3"]}'},
    ],
    "tools": [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters")}}
              for t in EXAMPLE_TOOLS],
}
EXAMPLE_ANTHROPIC_RECORD = {
    "system": "You are an airline agent.",
    "messages": [
        {"role": "user", "content": "Hi, I'm mia_li_3668 and I want to change my flight."},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_user_details",
             "input": {"user_id": "mia_li_3668"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"reservations": ["NO6JO3"]}'}]},
    ],
    "tools": [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
              for t in EXAMPLE_TOOLS],
}

NativeFormat = Literal[NATIVE_FORMAT_NAMES]  # type: ignore[valid-type]  # ("auto", "toolcast", ...)


class NativePredictRequest(_Readable):
    """A decision point as the agent holds it: the request body it is about to send to its LLM."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"record": EXAMPLE_OPENAI_RECORD, "format": "auto", "k": 3, "metadata": {}},
        {"record": EXAMPLE_ANTHROPIC_RECORD, "format": "anthropic", "k": 3,
         "metadata": {"agent_model": "claude-sonnet-4-5"}}]})

    record: dict[str, Any] | list[Any] = Field(description=(
        "The conversation so far in the agent's own format, as `toolcast import` reads it: an OpenAI chat "
        "body {messages, tools}, a Responses body {input, tools} or item list, an Anthropic body "
        "{system, messages, tools}, a Gemini body {contents, tools, systemInstruction}, a LangChain "
        "message list, or a canonical toolcast trace. One conversation; the prediction is for its end."))
    format: NativeFormat = Field(default="auto", description=(
        "The record's format; `auto` picks it from the record's shape, as `toolcast import` does."))
    k: int = Field(default=3, ge=1, le=K_CEILING, description="How many candidate calls to return.")
    view: View = Field(default="next", description=VIEW_DESCRIPTION)
    metadata: dict[str, Any] = Field(default_factory=dict, description=(
        "Merged over the metadata read from the record (e.g. agent_model when the record has no model)."))

    def to_context(self, interner: EventInterner | None = None) -> Context:
        """The canonical Context at the record's end; raises TraceFormatError naming the field.

        With an `interner`, events equal to ones of a recent request are those objects (see
        `PredictRequest.to_context`): an agent re-sends its whole history at every step."""
        context = context_of(trace_from_record(self.record, self.format), self.metadata)
        if interner is not None:
            dicts = [e.to_dict() for e in context.events]
            built = {id(d): e for d, e in zip(dicts, context.events, strict=True)}
            context.events = interner.events(dicts, lambda d, _where: built[id(d)])
        return context


class CallPredictionOut(BaseModel):
    """One candidate next call: the tool, the argument values it could fill and where each came from."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_PREDICTION]})

    tool: str = Field(description="Tool name, or `<respond>` when the LLM is predicted to answer in text.")
    args: dict[str, Any] = Field(description="Slot -> predicted value, for the slots the model could fill.")
    free: list[str] = Field(description="Slots whose value the LLM will invent (not speculable).")
    sources: dict[str, str] = Field(description="Slot -> where its value came from in the context.")
    p_tool: float = Field(description="Calibrated probability of the tool.")
    p_call: float = Field(description="p(tool) x the product of the filled slots' value probabilities.")
    complete: bool = Field(description="Every slot has a value: the call can be run ahead as it stands.")
    p_horizon: float | None = Field(default=None, description=(
        "The horizon view's p(this call is issued before the session's next state change, within the next "
        "few decision points); absent in the next-call view."))

    @classmethod
    def from_prediction(cls, p: CallPrediction) -> CallPredictionOut:
        return cls(tool=p.tool, args=p.args, free=list(p.free), sources=dict(p.sources),
                   p_tool=float(p.p_tool), p_call=float(p.p_call), complete=p.complete,
                   p_horizon=None if p.p_horizon is None else float(p.p_horizon))


class PredictResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"predictions": [EXAMPLE_PREDICTION], "predictor": "onnx", "k": 3}]})

    predictions: list[CallPredictionOut] = Field(description="Best first, at most k.")
    predictor: str = Field(description="Name of the predictor that answered.")
    k: int
    view: View = Field(default="next", description="The view that answered (the request's).")


class BatchPredictResponse(BaseModel):
    results: list[PredictResponse] = Field(description="One per request, in request order.")


class LimitsOut(BaseModel):
    max_body_bytes: int
    max_events: int
    max_k: int
    max_batch_items: int


class BatchingOut(BaseModel):
    enabled: bool
    max_batch_size: int
    max_wait_ms: float


class ModelResponse(BaseModel):
    """What the server knows about the loaded model (see toolcast.serving.loading for `info()`)."""

    name: str
    version: str | None
    tools: list[str] = Field(description="Tools the model was trained on (it also ranks unseen tools).")
    card: dict[str, Any] = Field(description="The model's metrics card, as the model directory has it.")
    batched: bool = Field(description="The predictor answers many contexts in one run.")
    views: list[View] = Field(default_factory=lambda: ["next"],
                              description="What a request may ask for as `view`.")
    limits: LimitsOut
    batching: BatchingOut


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])


class ReadyResponse(BaseModel):
    ready: bool
    status: str = Field(description="loading, ready or failed (with the reason).", examples=["ready"])


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(description='Where in the request, e.g. ["body", "events", 3, "turn"].')
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx answer: what was wrong, never a stack trace."""

    error: str = Field(description="A stable code: invalid_request, payload_too_large, unauthorized, ...")
    message: str = Field(description="What was wrong, for a person.")
    detail: list[ErrorDetail] = Field(default_factory=list)
    request_id: str = Field(description="Quote it when reporting a problem; the server log has it too.")


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def field_loc(path: str) -> list[str | int]:
    """`requests[2].events[3].turn` -> ["requests", 2, "events", 3, "turn"]."""
    return [int(idx) if idx else name for name, idx in _PATH_PART.findall(path)]


_ERROR_DESCRIPTIONS = {
    400: "The body could not be read as text (not UTF-8 JSON).",
    401: "Missing, malformed or wrong bearer token.",
    409: "The loaded model has no such view (`view: horizon` without a horizon view).",
    413: "Too large: request body, history (events) or batch.",
    422: "Invalid request: the detail names the field.",
    500: "Internal error: only a request id; the server log has the rest.",
    503: "The model is not loaded yet (or failed to), or the server is overloaded; retry.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for these error statuses, all in the ErrorResponse shape."""
    return {c: {"model": ErrorResponse, "description": _ERROR_DESCRIPTIONS[c]} for c in codes}
