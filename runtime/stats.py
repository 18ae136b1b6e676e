"""Speculation statistics a user can read: per tool, what ran ahead, what it saved, what it wasted.

- launched: speculative runs started;
- hits: real calls served a finished speculative result; joins: served by joining a run in flight;
- misses: real calls of a speculable tool that speculation did not serve;
- wasted_s: tool-seconds of speculative runs never served (cancelled, invalidated, expired, failed,
  or simply not asked for), counted up to the moment they stopped;
- saved_s: seconds taken off the agent's wait, as the runtime can see it (a hit saves the run's duration,
  a join the part of the run already done). The simulator measures saving end to end instead;
- errors: speculative runs that raised (never shown to the agent);
- dropped: why unserved runs ended (loser, invalidated, expired, pre-empted, failed, closed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolStats:
    launched: int = 0
    hits: int = 0
    joins: int = 0
    misses: int = 0
    real_calls: int = 0
    errors: int = 0
    wasted_s: float = 0.0
    saved_s: float = 0.0
    dropped: Counter = field(default_factory=Counter)

    @property
    def served(self) -> int:
        return self.hits + self.joins

    def merge(self, other: ToolStats) -> None:
        for name in ("launched", "hits", "joins", "misses", "real_calls", "errors", "wasted_s", "saved_s"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dropped.update(other.dropped)

    def to_dict(self) -> dict[str, Any]:
        return {"launched": self.launched, "hits": self.hits, "joins": self.joins, "misses": self.misses,
                "real_calls": self.real_calls, "errors": self.errors, "wasted_s": round(self.wasted_s, 6),
                "saved_s": round(self.saved_s, 6), "dropped": dict(self.dropped)}


class RuntimeStats:
    def __init__(self) -> None:
        self.tools: dict[str, ToolStats] = {}

    def tool(self, name: str) -> ToolStats:
        ts = self.tools.get(name)
        if ts is None:
            ts = self.tools[name] = ToolStats()
        return ts

    # ---- events ----
    def launched(self, tool: str) -> None:
        self.tool(tool).launched += 1

    def real_call(self, tool: str, *, speculable: bool) -> None:
        ts = self.tool(tool)
        ts.real_calls += 1
        if speculable:
            ts.misses += 1  # taken back by `served` when speculation serves it

    def served(self, tool: str, *, joined: bool, saved_s: float, speculable: bool = True) -> None:
        ts = self.tool(tool)
        if joined:
            ts.joins += 1
        else:
            ts.hits += 1
        if speculable:
            ts.misses -= 1
        ts.saved_s += max(0.0, saved_s)

    def dropped(self, tool: str, reason: str, wasted_s: float, *, failed: bool = False) -> None:
        ts = self.tool(tool)
        ts.dropped[reason] += 1
        ts.wasted_s += max(0.0, wasted_s)
        if failed:
            ts.errors += 1

    # ---- views ----
    def total(self) -> ToolStats:
        out = ToolStats()
        for ts in self.tools.values():
            out.merge(ts)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total().to_dict(),
                "tools": {k: v.to_dict() for k, v in sorted(self.tools.items())}}

    def table(self) -> str:
        """A fixed-width table, one row per tool plus the total."""
        head = f"{'tool':<32} {'launched':>8} {'hits':>6} {'joins':>6} {'misses':>6} {'errors':>6} " \
               f"{'wasted_s':>9} {'saved_s':>9}"
        rows = [head, "-" * len(head)]
        for name, ts in sorted(self.tools.items()):
            rows.append(_row(name, ts))
        rows.append("-" * len(head))
        rows.append(_row("total", self.total()))
        return "\n".join(rows)


def _row(name: str, ts: ToolStats) -> str:
    return (f"{name[:32]:<32} {ts.launched:>8} {ts.hits:>6} {ts.joins:>6} {ts.misses:>6} {ts.errors:>6} "
            f"{ts.wasted_s:>9.2f} {ts.saved_s:>9.2f}")
