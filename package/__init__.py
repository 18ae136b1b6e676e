"""toolcast: speculative tool execution for LLM agents, learned from their logs."""

__version__ = "0.1.0"
