"""The demo's report: one markdown file with PNG plots, written into a folder.

Kept apart from `demo_cmd` (which runs the steps) so the layout of the report has one home.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolcast.cli.common import atomic_output

EVAL_COLUMNS = (
    ("tool_top1", "tool top-1"),
    ("tool_top3", "tool top-3"),
    ("call_top1", "call top-1"),
    ("call_top3", "call top-3"),
    ("respond_precision", "respond P"),
    ("respond_recall", "respond R"),
    ("ece", "ECE"),
)
SIM_COLUMNS = (
    ("mean_task_s", "mean task s"),
    ("p95_task_s", "p95 task s"),
    ("mean_stall_s", "tool stall s"),
    ("saving_pct", "saved"),
    ("saving_captured", "of oracle's saving"),
    ("waste_per_saved_s", "wasted tool-s per saved s"),
    ("hit_rate", "hit rate"),
)


PERCENT = {"saving_captured", "hit_rate"}


def _cell(v: Any, key: str = "") -> str:
    if v is None:
        return "–"
    if key in PERCENT and isinstance(v, int | float):
        return f"{100 * v:.1f}%"
    if key == "saving_pct" and isinstance(v, int | float):
        return f"{v:.1f}%"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def table(rows: Mapping[str, Mapping[str, Any]], columns: tuple[tuple[str, str], ...], first: str) -> str:
    head = f"| {first} | " + " | ".join(label for _, label in columns) + " |"
    sep = "|---" * (len(columns) + 1) + "|"
    body = [
        f"| {name} | " + " | ".join(_cell(r.get(k), k) for k, _ in columns) + " |" for name, r in rows.items()
    ]
    return "\n".join([head, sep, *body])


def plot_hit_rate_per_tool(
    per_tool: Mapping[str, Mapping[str, Mapping[str, Any]]], path: Path, top: int = 12
) -> None:
    """Grouped bars: share of each tool's real calls that speculation served, per predictor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(per_tool)
    counts: dict[str, int] = {}
    for stats in per_tool.values():
        for tool, s in stats.items():
            counts[tool] = max(counts.get(tool, 0), int(s.get("real_calls", 0)))
    tools = [t for t, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n > 0][:top]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.8 * len(tools) + 2), 3.8))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(tools))
    for i, name in enumerate(names):
        rates = []
        for tool in tools:
            s = per_tool[name].get(tool, {})
            real = s.get("real_calls", 0)
            rates.append(100 * (s.get("hits", 0) + s.get("joins", 0)) / real if real else 0.0)
        ax.bar(x + i * width, rates, width, label=name)
    ax.set_xticks(x + width * (len(names) - 1) / 2, tools, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("real calls served by speculation, %")
    ax.set_title("hit rate per tool (most called tools)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_output(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)


def write_report(
    out: Path,
    *,
    data: str,
    stats: Mapping[str, Any],
    evals: Mapping[str, Mapping[str, Any]],
    sim: Mapping[str, Mapping[str, Any]],
    sim_note: str,
    figures: Mapping[str, str],
    notes: list[str],
) -> Path:
    """report.md in `out`; `figures` maps a caption to a PNG file name inside `out`."""
    prov = stats.get("provenance", {})
    lines = [
        "# toolcast demo report",
        "",
        f"Data: {data}.",
        "",
        "## The logs",
        "",
        f"{stats['traces']} traces, {stats['calls']} tool calls, {stats['tools']} distinct tools, "
        f"{stats['groups']} task groups, {stats['decision_points']} decision points "
        f"({stats['respond_points']} where the agent answered in text).",
        "",
        "Where argument values come from (first seen before the call): "
        + ", ".join(f"{k} {100 * v:.1f}%" for k, v in prov.items())
        + ".",
        "",
        "## Next-call prediction (test split, task-grouped)",
        "",
        table(evals, EVAL_COLUMNS, "predictor"),
        "",
        "Tool and call top-k over the points where the agent called a tool; a call counts only with every "
        "argument exactly right. ECE: expected calibration error of the top-1 probability (15 bins)."
        + (" `learned` is what the model directory serves: the trained model pooled with the mined pattern "
           "pool (weights fitted on the validation split); `learned (model alone)` is the model without it."
           if "learned (model alone)" in evals else ""),
        "",
        "## Speculation (replay of the test split)",
        "",
        table(sim, SIM_COLUMNS, "policy"),
        "",
        sim_note,
        "",
    ]
    for caption, name in figures.items():
        lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    path = out / "report.md"
    with atomic_output(path) as f:
        f.write("\n".join(lines))
    return path
