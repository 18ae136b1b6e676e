"""`toolcast stats`: what a set of agent logs holds, and how much of it speculation could use."""

from __future__ import annotations

import argparse
import json

from toolcast.cli.common import add_input_args, report_format_error
from toolcast.data import ImportReport, TraceFormatError, load_traces
from toolcast.data.stats import corpus_stats


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats", help="counts, tool transitions and argument provenance of agent logs",
        description="Count traces, calls, distinct tools and task groups; list the most frequent tool "
        "transitions; and measure where argument values come from (earlier tool outputs, earlier "
        "arguments, the user's text, constants that recur across tasks, or nowhere).")
    add_input_args(p)
    p.add_argument("--top", type=int, default=15, help="how many transitions and tools to list")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = ImportReport()
    try:
        traces = load_traces(*args.inputs, format=args.format, errors=args.errors, report=report,
                             progress=True, fold=args.fold)
    except TraceFormatError as e:
        return report_format_error(e)
    s = corpus_stats(traces, top=args.top)
    if args.json:
        d = s.to_dict()
        d["skipped"] = [str(e) for e in report.skipped]
        from toolcast.data.active_time import active_time

        d["active_time"] = active_time(traces).to_dict()
        print(json.dumps(d, indent=1))
        return 0
    print(f"{report.summary()}")
    print(f"traces {s.traces} (unique ids {s.unique_trace_ids})  calls {s.calls}  distinct tools {s.tools}  "
          f"task groups {s.groups}")
    print(f"decision points {s.decision_points} ({s.respond_points} where the agent answered in text)")
    if s.without_tool_list:
        print(f"tool lists: {s.without_tool_list} of {s.traces} traces list no tools (schemas not logged): "
              "the model gives them the tools their set-up called in training")
    from toolcast.predictor.config import ModelConfig
    from toolcast.predictor.features.featurizer import SPECIAL_TOOLS

    default_tools = ModelConfig().max_tools - len(SPECIAL_TOOLS)
    if s.max_tools_listed > default_tools:
        print(f"tool lists: up to {s.max_tools_listed} tools in one trace, more than the default model's "
              f"{default_tools}: training raises max_tools to fit (up to 160)")
    print("\nby source")
    for name, c in s.by_source.items():
        print(f"  {name:<32} traces {c['traces']:>6}  calls {c['calls']:>7}")
    print("\ntop transitions (previous call -> next call)")
    for a, b, n in s.transitions:
        print(f"  {n:>6}  {a} -> {b}")
    print(f"\nargument values ({s.arg_leaves} leaves): where first seen before the call")
    for kind, share in s.provenance.items():
        print(f"  {kind:<10} {share:6.1%}")
    print("\nby tool (calls, share of argument values from earlier outputs, share derivable at all)")
    for tool, d in list(s.by_tool.items())[: args.top]:
        print(f"  {tool:<36} {d['calls']:>6}  {d['from_output']:6.1%}  {d['derivable']:6.1%}")
    _print_active_time(traces)
    for e in report.skipped:
        print(f"skipped: {e}")
    return 0


def _print_active_time(traces) -> None:
    """Where timed sessions' time went (coding agents' logs have a timestamp per line)."""
    from toolcast.data.active_time import MAX_GAP_S, active_time

    a = active_time(traces)
    if not a.timed_traces or a.active_s <= 0:
        return
    d = a.to_dict()
    print(f"\nactive time ({a.timed_traces} timed traces): {a.active_s:.1f} s = LLM {a.llm_s:.1f} s + tools "
          f"{a.tool_s:.1f} s; tool share of active time {a.tool_share:.1%}")
    print(f"  per call: median {d['call_median_s']} s, p90 {d['call_p90_s']} s; "
          f"{a.reported_durations} calls timed by the duration their tool reported, "
          f"{a.untimed_calls} calls without times")
    print(f"  kept out: user {a.user_s:.1f} s (incl. {a.idle_gaps} idle gaps over {MAX_GAP_S:.0f} s), "
          f"approval waits and questions to the user {a.wait_s:.1f} s")
    if a.clock_jumps:
        first = a.clock_jumps[0]
        print(f"  clock jumps: {len(a.clock_jumps)} (first: trace {first['trace_id']}, event "
              f"{first['event']}, {first['seconds']} s); those gaps are counted nowhere")
    for tool, s in list(d["tool_s_by_tool"].items())[:8]:
        print(f"  {tool:<36} {s:9.1f} s")
