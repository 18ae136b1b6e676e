"""Rebuild the `framework_*.json` fixtures of tests/fixtures/langfuse/ from Langfuse's own framework traces.

    git clone https://github.com/langfuse/langfuse /tmp/langfuse
    .venv/bin/python scripts/make_langfuse_fixtures.py /tmp/langfuse [--out tests/fixtures/langfuse]

Langfuse keeps real traces of its integration examples, as its UI hands them out ({"trace", "observations"}),
in worker/src/__tests__/chatml/framework-traces/ (MIT licensed). The fixtures keep each file's shape whole
(every key of the trace and of each observation the importer reads, the JSON-in-strings encoding, the
span attributes it reads in `metadata`) and make it small: long texts are cut (inside JSON strings and
Python reprs too, re-encoded the same way), unread fields (costs, prompt ids, resource attributes) and
observations that carry nothing (SPANs with neither input nor output) are dropped.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path
from typing import Any

SOURCE = "worker/src/__tests__/chatml/framework-traces"
FILES = {  # fixture name -> Langfuse's file(s) (several: a JSON list of {trace, observations})
    "framework_microsoft_agent.json": ["microsoft-agent-2025-12-17.trace.json"],
    "framework_pydantic_ai.json": ["pydantic-ai-tools-2025-12-04.trace.json"],
    "framework_gemini.json": ["google-adk-2025-08-28.trace.json", "google-gemini-2025-08-01.trace.json",
                              "vertex-ai-2025-08-01.trace.json"],
    "framework_claude_agent.json": ["claude-agent-2025-12-22.trace.json"],
    "framework_openai_agents.json": ["openai-agents-2025-09-30.trace.json"],
    "framework_vercel_ai.json": ["vercel-aisdk-2025-11-17.trace.json"],
    "framework_langgraph_js.json": ["langgraph-js-2025-10-30.trace.json"],
    "framework_beeai.json": ["beeai-2025-08-01.trace.json"],
    "framework_koog.json": ["koog-2025-08-26.trace.json"],
    "framework_agno.json": ["agno-2025-06-11.trace.json"],
}
TRACE_KEYS = ("id", "name", "timestamp", "userId", "sessionId", "tags", "input", "output")
OBS_KEYS = ("id", "traceId", "type", "name", "startTime", "endTime", "parentObservationId", "level",
            "statusMessage", "model", "modelParameters", "input", "output", "metadata", "usageDetails")
ATTRIBUTES = ("gen_ai.operation.name", "gen_ai.tool.name", "gen_ai.tool.call.id", "gen_ai.tool.definitions",
              "gen_ai.system_instructions", "model_request_parameters", "ai.toolCall.name", "ai.toolCall.id",
              "tool.name", "openinference.span.kind", "langsmith.span.kind")
LIMIT = 240


def _cut(value: Any) -> Any:
    """Long texts cut to LIMIT characters; a string holding JSON or a Python literal is cut inside and
    re-encoded the same way, so that it still parses as the importer expects."""
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    if not isinstance(value, str) or len(value) <= LIMIT:
        return value
    if value[:1] in "[{\"":
        try:
            return json.dumps(_cut(json.loads(value)), ensure_ascii=False)
        except ValueError:
            pass
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, (dict, list, str)):
            return repr(_cut(parsed))
    return value[:LIMIT] + " [...]"


def _metadata(value: Any) -> Any:
    parsed = json.loads(value) if isinstance(value, str) and value[:1] == "{" else value
    if not isinstance(parsed, dict):
        return None
    attributes = parsed.get("attributes") if isinstance(parsed.get("attributes"), dict) else {}
    kept = {"attributes": {k: v for k, v in attributes.items() if k in ATTRIBUTES}}
    if parsed.get("tools") is not None:  # the Vercel AI SDK lists its tools here
        kept["tools"] = parsed["tools"]
    kept = {k: v for k, v in kept.items() if v}
    return json.dumps(kept, ensure_ascii=False) if kept else None


def derive(doc: dict) -> dict:
    """The trace and its observations, made small. A SPAN stays when it is the root or is named like a
    tool a generation called (frameworks that trace tools as spans); the others are the framework's own
    steps, which the importer only lists."""
    trace = {k: _cut(doc["trace"].get(k)) for k in TRACE_KEYS if k in doc["trace"]}
    said = " ".join(json.dumps(o.get("output")) for o in doc["observations"] if o["type"] == "GENERATION")
    observations = []
    for o in doc["observations"]:
        token = re.split(r"[ .:]+", o["name"])[-1]  # "tool.HelloTool" (Koog), "running tool: f" (pydantic-ai)
        if o["type"] == "SPAN" and o.get("parentObservationId") and not re.search(
                rf"\b{re.escape(token)}\b", said):
            continue
        kept = {k: o.get(k) for k in OBS_KEYS if k in o}
        kept["metadata"] = _metadata(o.get("metadata"))
        for key in ("input", "output") if o["type"] == "SPAN" else ():  # a span's values are only listed
            text = kept.get(key) if isinstance(kept.get(key), str) else json.dumps(kept.get(key))
            if len(text) > 4 * LIMIT:
                kept[key] = text[:LIMIT] + " [...]"
        observations.append(_cut(kept))
    return {"trace": trace, "observations": observations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("langfuse", type=Path, help="a checkout of github.com/langfuse/langfuse")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/langfuse"))
    args = parser.parse_args()
    for name, sources in FILES.items():
        docs = [derive(json.loads((args.langfuse / SOURCE / s).read_text(encoding="utf-8"))) for s in sources]
        out = docs[0] if len(docs) == 1 else docs
        (args.out / name).write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{name}: {', '.join(sources)}")


if __name__ == "__main__":
    main()
