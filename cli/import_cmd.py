"""`toolcast import`: convert agent logs of any supported format into toolcast JSONL."""

from __future__ import annotations

import argparse

from toolcast.cli.common import add_input_args, atomic_output, fail, report_format_error
from toolcast.data import ImportReport, TraceFormatError, iter_traces


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="convert agent logs into toolcast JSONL",
        description="Read agent logs (OpenAI chat messages, OpenAI Responses API items and Agents SDK "
        "histories, Anthropic messages, Google Gemini / Vertex AI contents and ADK sessions, LangChain / "
        "LangGraph messages and state snapshots, Claude Code session transcripts, OpenAI Codex CLI "
        "rollouts, OpenTelemetry GenAI and OpenInference (Arize Phoenix) spans, Langfuse traces and "
        "observations, LangSmith runs, tau2-bench results, or "
        "toolcast JSONL; "
        "detected from the content; gzip or plain; a folder means every file "
        "in it) and write one canonical trace per line. The output file appears only when the whole "
        "import succeeded.")
    add_input_args(p)
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="where to write the traces")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = ImportReport()
    try:
        with atomic_output(args.out) as f:
            for trace in iter_traces(*args.inputs, format=args.format, errors=args.errors, report=report,
                                     progress=True, fold=args.fold):
                f.write(trace.to_json())
                f.write("\n")
    except TraceFormatError as e:
        return report_format_error(e)
    except OSError as e:
        return fail(f"cannot write {args.out}: {e.strerror or e}")
    print(f"wrote {args.out}: {report.summary()}")
    for e in report.skipped:
        print(f"  skipped: {e}")
    return 0
