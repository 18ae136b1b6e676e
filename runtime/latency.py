"""Latency profiles: how long tools and the LLM take where a log records no timings.

A profile is a JSON file:

    {"name": "default",
     "notes": "where the numbers come from",
     "tools": [{"match": "get_*", "dist": "lognormal", "median": 0.8, "p90": 2.0},
               {"match": "*", "dist": "fixed", "seconds": 1.0}],
     "llm": {"ttft": 0.6, "per_token": 0.02, "default_tokens": 60, "chars_per_token": 4}}

`tools` is an ordered list of rules; a rule's `match` is a glob over the tool name (case-insensitive) and
the first rule that matches wins; there must be a catch-all. Distributions: `fixed` (`seconds`) or
`lognormal` (`median` and `p90`, both seconds). LLM time at a decision point is time-to-first-token plus
the per-output-token time times the tokens it produced (the log's count, else its text length / chars per
token, else `default_tokens`).

Draws are reproducible: each takes a key (e.g. trace id and call key) and hashes it with the seed, so
serial, speculative and oracle replays of one trace see the same tool times.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

Z90 = 1.2815515655446004
"""The standard normal's 90th percentile: p90 = median x exp(Z90 x sigma) for a lognormal."""


@dataclass(frozen=True)
class Distribution:
    kind: Literal["fixed", "lognormal"]
    median: float
    """Seconds; for `fixed` the value itself."""
    p90: float

    def __post_init__(self) -> None:
        if self.median < 0 or self.p90 < self.median:
            raise ValueError(f"need 0 <= median <= p90, got median={self.median}, p90={self.p90}")

    @property
    def sigma(self) -> float:
        return 0.0 if self.kind == "fixed" or self.median == 0 else math.log(self.p90 / self.median) / Z90

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)

    def quantile(self, u: float) -> float:
        """The value at uniform draw u in (0, 1)."""
        if self.kind == "fixed" or self.sigma == 0:
            return self.median
        return self.median * math.exp(self.sigma * _norm_ppf(u))


@dataclass(frozen=True)
class ToolRule:
    match: str
    dist: Distribution


@dataclass(frozen=True)
class LLMTiming:
    ttft: float = 0.6
    """Seconds until the first output token."""
    per_token: float = 0.02
    """Seconds per output token."""
    default_tokens: int = 60
    """Output tokens assumed where the log has neither a count nor text."""
    chars_per_token: float = 4.0

    def seconds(self, tokens: int) -> float:
        return self.ttft + self.per_token * max(0, tokens)

    def tokens_for(self, text_chars: int) -> int:
        return max(1, round(text_chars / self.chars_per_token)) if text_chars else self.default_tokens


@dataclass
class LatencyProfile:
    name: str
    tools: list[ToolRule]
    llm: LLMTiming = field(default_factory=LLMTiming)
    notes: str = ""
    seed: int = 0
    source: str = ""
    """Where the profile came from (a path or "builtin:default"), for reports."""
    _rules: dict[str, ToolRule] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def label(self) -> str:
        """How reports name the profile: its name, and the file it came from."""
        return self.name if not self.source or self.source == "profile" else f"{self.name} ({self.source})"

    def rule_for(self, tool: str) -> ToolRule:
        cached = self._rules.get(tool)
        if cached is not None:
            return cached
        for rule in self.tools:
            if fnmatch.fnmatchcase(tool.lower(), rule.match.lower()):
                self._rules[tool] = rule
                return rule
        raise KeyError(f"profile {self.name!r} has no rule matching tool {tool!r} (add a '*' rule)")

    def tool_median(self, tool: str) -> float:
        return self.rule_for(tool).dist.median

    def tool_mean(self, tool: str) -> float:
        return self.rule_for(tool).dist.mean

    def tool_seconds(self, tool: str, *key: Any) -> float:
        """A reproducible draw of this tool's service time for `key` (same key, same time)."""
        return self.rule_for(tool).dist.quantile(self.uniform(tool, *key))

    def uniform(self, *key: Any) -> float:
        digest = hashlib.sha256(repr((self.seed, *key)).encode()).digest()
        return (int.from_bytes(digest[:8], "big") + 0.5) / 2**64

    # ---- JSON ----
    @classmethod
    def from_dict(cls, d: Any, source: str = "profile") -> LatencyProfile:
        """Build from JSON; bad input is a ValueError naming the file and the field."""
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object, got {type(d).__name__}")
        rules_in = d.get("tools")
        if not isinstance(rules_in, list) or not rules_in:
            raise ValueError(f"{source}: field 'tools' must be a non-empty list of rules")
        rules = [ToolRule(_field(r, "match", str, f"{source}: tools[{i}]"), _dist(r, f"{source}: tools[{i}]"))
                 for i, r in enumerate(rules_in)]
        if not any(r.match == "*" for r in rules):
            raise ValueError(f"{source}: field 'tools' needs a catch-all rule with \"match\": \"*\"")
        llm_in = d.get("llm", {})
        if not isinstance(llm_in, dict):
            raise ValueError(f"{source}: field 'llm' must be an object")
        llm_kw = {}
        for name in ("ttft", "per_token", "default_tokens", "chars_per_token"):
            if name in llm_in:
                v = llm_in[name]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                    raise ValueError(f"{source}: field 'llm.{name}' must be a non-negative number, got {v!r}")
                llm_kw[name] = int(v) if name == "default_tokens" else float(v)
        return cls(name=str(d.get("name", Path(source).stem)), tools=rules, llm=LLMTiming(**llm_kw),
                   notes=str(d.get("notes", "")), seed=int(d.get("seed", 0)), source=source)

    @classmethod
    def load(cls, path: str | Path) -> LatencyProfile:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"{path}: cannot read latency profile: {e.strerror or e}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line {e.lineno}: not valid JSON: {e.msg}") from None
        return cls.from_dict(d, str(path))

    @classmethod
    def default(cls) -> LatencyProfile:
        """The shipped default (runtime/profiles/default.json): tools as remote APIs."""
        text = resources.files("toolcast.runtime").joinpath("profiles/default.json").read_text("utf-8")
        return cls.from_dict(json.loads(text), "builtin:default")


def _field(d: Any, name: str, types: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected an object, got {type(d).__name__}")
    if name not in d:
        raise ValueError(f"{where}: field '{name}' is missing")
    v = d[name]
    if isinstance(v, bool) or not isinstance(v, types):
        raise ValueError(f"{where}: field '{name}' has the wrong type ({type(v).__name__})")
    return v


def _dist(r: dict, where: str) -> Distribution:
    kind = _field(r, "dist", str, where)
    try:
        if kind == "fixed":
            s = float(_field(r, "seconds", (int, float), where))
            return Distribution("fixed", s, s)
        if kind == "lognormal":
            return Distribution("lognormal", float(_field(r, "median", (int, float), where)),
                                float(_field(r, "p90", (int, float), where)))
    except ValueError as e:
        if str(e).startswith(where):
            raise
        raise ValueError(f"{where}: {e}") from None
    raise ValueError(f"{where}: field 'dist' must be 'fixed' or 'lognormal', got {kind!r}")


_STD_NORMAL = NormalDist()


def _norm_ppf(p: float) -> float:
    return _STD_NORMAL.inv_cdf(p)
