"""Contracts for replay only: logs carry no tool contracts, so the simulator needs a stated heuristic.

The live runtime stays default-deny. Replaying tau2 or BFCL logs, though, needs *some* view of which
tools are reads: this module marks a tool side-effect-free by its name (the patterns below: get_*,
list_*, search_*, find_*, check_*, calculate, ls, cat, grep, ...) and every other tool state-changing
with undeclared effects (a real call of it bumps the session's epoch). Names that look like reads but
change state in these logs (`cd` changes the working directory) are simply not on the list. Override it
with a JSON file:

    {"read_only": ["get_*", ...],        # replaces the default list
     "add_read_only": ["lookup_*"],      # extends it
     "state_changing": ["get_and_lock_*"],  # wins over both lists
     "stable_for": 300,                  # freshness of replayed reads, seconds
     "tools": {"calculate": {"side_effect_free": true, "idempotent": true, "stable_for": 3600}}}

Exact `tools` entries win over everything. Every simulate report names the policy it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolcast.runtime.contracts import ContractPolicy, ToolContract, read_contracts_file, read_only

DEFAULT_READ_ONLY: tuple[str, ...] = (
    # remote-API reads
    "get_*", "list_*", "search_*", "find_*", "check_*", "can_*", "view_*", "retrieve_*", "display*",
    "lookup_*", "fetch_*", "query_*", "read_*", "show_*", "describe_*", "count_*", "is_*", "has_*",
    # pure computation
    "calculate", "compute_*", "estimate_*", "mean", "logarithm", "standard_deviation", "gallon_to_liter",
    "liter_to_gallon",
    # shell reads (no redirection in these tools' signatures)
    "ls", "cat", "pwd", "grep", "wc", "tail", "head", "du", "diff", "sort", "find",
)
DEFAULT_STABLE_FOR = 300.0
"""Seconds a replayed read stays fresh. Replayed state changes only through logged calls, which the
epoch rule already covers, so the window only bounds how long an unclaimed result is kept."""


def replay_policy(read_only_patterns: tuple[str, ...] | list[str] = DEFAULT_READ_ONLY,
                  state_changing: tuple[str, ...] | list[str] = (), stable_for: float = DEFAULT_STABLE_FOR,
                  tools: Mapping[str, ToolContract] | None = None) -> ContractPolicy:
    """Name-pattern contracts: state-changing patterns first, then read-only ones, else deny."""
    deny = ToolContract()
    reads = read_only(stable_for)
    patterns = [(p, deny) for p in state_changing] + [(p, reads) for p in read_only_patterns]
    return ContractPolicy(tools=dict(tools or {}), patterns=patterns)


def load_replay_policy(path: str | Path | None = None) -> ContractPolicy:
    """The default policy, or one built from a JSON override file (errors name the file and field)."""
    if path is None:
        return replay_policy()
    return policy_from_dict(read_contracts_file(path, "replay contracts"), str(path))


def policy_from_dict(d: Any, where: str = "replay contracts") -> ContractPolicy:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(d).__name__}")
    known = {"read_only", "add_read_only", "state_changing", "stable_for", "tools"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                         f"expected {', '.join(sorted(known))}")
    ro = list(_patterns(d, "read_only", where) if "read_only" in d else DEFAULT_READ_ONLY)
    ro += _patterns(d, "add_read_only", where)
    stable = d.get("stable_for", DEFAULT_STABLE_FOR)
    if isinstance(stable, bool) or not isinstance(stable, (int, float)) or stable <= 0:
        raise ValueError(f"{where}: field 'stable_for' must be a positive number of seconds, got {stable!r}")
    tools_in = d.get("tools", {})
    if not isinstance(tools_in, dict):
        raise ValueError(f"{where}: field 'tools' must be an object of tool name -> contract")
    tools = {name: ToolContract.from_dict(c, f"{where}: tools.{name}") for name, c in tools_in.items()}
    return replay_policy(ro, _patterns(d, "state_changing", where), float(stable), tools)


def _patterns(d: dict, name: str, where: str) -> list[str]:
    v = d.get(name, [])
    if not isinstance(v, list) or not all(isinstance(p, str) for p in v):
        raise ValueError(f"{where}: field '{name}' must be a list of tool-name glob patterns")
    return v
