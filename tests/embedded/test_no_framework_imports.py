"""Agent frameworks stay optional: the embedded side never imports them (run with the base install too)."""

import subprocess
import sys

FRAMEWORKS = ("langchain", "langchain_core", "langgraph", "agents", "openai", "pydantic_ai", "mcp")


def test_runtime_and_adapters_package_import_no_framework():
    """`import toolcast.runtime` (and the adapters package itself) loads none of the agent frameworks."""
    code = (
        "import sys, toolcast.runtime, toolcast.predictor, toolcast.adapters, toolcast.adapters.bridge\n"
        f"loaded = [m for m in {FRAMEWORKS!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
