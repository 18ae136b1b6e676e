"""The embedded side runs inside agent processes: it must import with the base install alone.

This folder also runs in CI in an environment with the base install only (`make test-embedded`).
"""

import subprocess
import sys

HEAVY = ("torch", "lightning", "transformers", "datasets")


def test_embedded_side_imports_without_heavy_packages():
    """`import toolcast.runtime` (and the data and ONNX predictor side) loads none of the heavy packages."""
    code = (
        "import sys, toolcast.data, toolcast.predictor, toolcast.runtime\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
