"""The architecture stays visible: dependencies point one way, and the embedded side never needs torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "transformers", "datasets")

# Which toolcast packages each folder may import (docs/architecture.md, "Layout").
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
# The torch side of the predictor is one folder; everything else in it is the ONNX (embedded) side.
TORCH_SIDE_PREFIXES = ("predictor/torch/",)


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


# ---- inside predictor/: folders by when each piece runs (docs/architecture.md, "predictor/") ----------

# What each part of predictor/ may import of predictor/ (a folder, or a module at its root).
PREDICTOR_PARTS: dict[str, set[str]] = {
    "protocol": set(),
    "config": set(),
    "features": {"config", "features"},
    "versioning": {"config", "features"},
    "modeldir": {"config", "features", "versioning"},
    "baselines": {"protocol", "features", "baselines"},
    "session": {"config", "features", "session"},
    "onnx": {"protocol", "config", "features", "session", "modeldir", "onnx"},
    "torch": {"protocol", "config", "features", "modeldir", "versioning", "onnx", "torch"},
    "loading": {"protocol", "modeldir", "onnx", "torch", "pooling", "horizon", "baselines"},  # views
    "horizon": {"protocol", "baselines", "horizon_mlp"},
    "horizon_mlp": set(),
    "pooling": {"protocol", "baselines", "features"},
    "pooling_fit": {"protocol", "pooling", "horizon"},
    "__init__": {"loading", "onnx"},
}
MAX_LINES = 400


def module_name(path: Path) -> str:
    """The import name of a library file (`predictor/onnx/arrays.py` -> toolcast.predictor.onnx.arrays)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = ["toolcast"] if parts[0] == "package" else ["toolcast", *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def library() -> dict[str, Path]:
    return {module_name(p): p for folder in (*ALLOWED, "package") for p in sources(folder)}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The toolcast modules a file imports, anywhere in it (`from pkg import submodule` names the
    submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # imports for type checkers only never run: no dependency at run time
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module in known:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            out.update(subs or {node.module})
    return out


def predictor_part(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["toolcast", "predictor"]:
        return None
    return parts[2] if len(parts) > 2 else "__init__"


def test_predictor_parts_import_only_what_runs_before_them():
    mods = library()
    bad = []
    for name, path in mods.items():
        part = predictor_part(name)
        if part is None:
            continue
        assert part in PREDICTOR_PARTS, f"{name}: new in predictor/; say in PREDICTOR_PARTS what it may use"
        for dep in imported_modules(path, set(mods)):
            dep_part = predictor_part(dep)
            if dep_part is not None and dep_part != part and dep_part not in PREDICTOR_PARTS[part]:
                bad.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert not bad, "\n".join(bad)


def test_only_the_loader_reaches_the_torch_side():
    # The ONNX side, the runtime and the server never import predictor/torch/ (the loader does, inside
    # `load`, only for a model directory without an export).
    mods = library()
    bad = [
        f"{path.relative_to(ROOT)} imports {dep}"
        for name, path in mods.items()
        if name.split(".")[1:2] in (["predictor"], ["runtime"], ["serving"], ["data"])
        and not name.startswith("toolcast.predictor.torch")
        and name != "toolcast.predictor.loading"
        for dep in imported_modules(path, set(mods))
        if dep.startswith("toolcast.predictor.torch")
    ]
    assert not bad, "\n".join(bad)


def test_no_import_cycle_in_the_library():
    mods = library()
    known = set(mods)
    graph = {name: imported_modules(path, known) - {name} for name, path in mods.items()}
    cycles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, cycles


def test_predictor_files_stay_readable():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in sources("predictor")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    assert not long, "\n".join(long)


def test_every_package_folder_is_in_the_wheel():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(conf["packages"])
    folders = {module_name(p) for f in (*ALLOWED, "package") for p in (ROOT / f).rglob("__init__.py")}
    assert folders <= listed, f"pyproject.toml [tool.setuptools] packages misses {sorted(folders - listed)}"
