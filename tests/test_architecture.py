"""The architecture stays visible: dependencies point one way, and the embedded side never needs torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "transformers", "datasets")

# Which toolcast packages each folder may import (../shared/DESIGN.md, "Layout").
ALLOWED: dict[str, set[str]] = {
    "data": {"data"},
    "predictor": {"data", "predictor"},
    "training": {"data", "predictor", "training"},
    "runtime": {"data", "predictor", "runtime"},
    "serving": {"data", "predictor", "runtime", "serving"},
    "cli": {"data", "predictor", "training", "runtime", "serving", "cli", "adapters"},
    "adapters": {"data", "predictor", "runtime", "adapters"},
}
# Modules that may import the heavy packages: torch only in the model/export side, datasets only in splits.
HEAVY_OK: dict[str, tuple[str, ...]] = {
    "data/splits.py": ("datasets",),
}
HEAVY_OK_FOLDERS = ("training", "cli")
TORCH_SIDE_PREFIXES = ("predictor/model", "predictor/export", "predictor/learned", "predictor/torch")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_dependencies_point_one_way(folder):
    bad = []
    for path in sources(folder):
        for name in imports_of(path):
            parts = name.split(".")
            if (
                parts[0] == "toolcast"
                and len(parts) > 1
                and parts[1] in ALLOWED
                and parts[1] not in ALLOWED[folder]
            ):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("folder", ["data", "predictor", "runtime", "serving", "adapters"])
def test_heavy_packages_only_where_allowed(folder):
    bad = []
    for path in sources(folder):
        rel = path.relative_to(ROOT).as_posix()
        allowed = HEAVY_OK.get(rel, ())
        if rel.startswith(TORCH_SIDE_PREFIXES) or folder in HEAVY_OK_FOLDERS:
            continue
        for name in imports_of(path):
            top = name.split(".")[0]
            if top in HEAVY and top not in allowed:
                bad.append(f"{rel} imports {name}")
    assert not bad, "\n".join(bad)


# Agent frameworks (the adapters' extras): only toolcast.adapters (and the CLI built on it) import them.
FRAMEWORKS = ("langchain", "langchain_core", "langgraph", "agents", "pydantic_ai", "mcp", "mcp_types")


@pytest.mark.parametrize("folder", ["data", "predictor", "training", "runtime", "serving"])
def test_frameworks_only_in_adapters(folder):
    bad = [f"{path.relative_to(ROOT)} imports {name}" for path in sources(folder) for name in imports_of(path)
           if name.split(".")[0] in FRAMEWORKS]
    assert not bad, "\n".join(bad)
