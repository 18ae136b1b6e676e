"""toolcast.runtime."""

# The speculation runtime and the replay simulator (stdlib only: no torch, no numpy).
from toolcast.runtime.contracts import DENY, ContractPolicy, ToolContract, read_only
from toolcast.runtime.latency import LatencyProfile
from toolcast.runtime.planner import Estimates, Planner, PlannerConfig
from toolcast.runtime.runtime import RuntimeConfig, SpeculativeRuntime, UnknownToolError
from toolcast.runtime.stats import RuntimeStats
from toolcast.runtime.tools import Tool

__all__ = [
    "DENY", "ContractPolicy", "Estimates", "LatencyProfile", "Planner", "PlannerConfig", "RuntimeConfig",
    "RuntimeStats", "SpeculativeRuntime", "Tool", "ToolContract", "UnknownToolError", "read_only",
]
