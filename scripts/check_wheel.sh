#!/usr/bin/env bash
# The wheel as a user gets it: build it from the tracked files, install it (not editable) in a fresh venv,
# and import every toolcast package from the repository root and from another folder. A repository
# folder named like an installed package would shadow it from the root; a package missing from
# pyproject.toml would be missing from the wheel. Offline and fast: the fresh venv borrows the
# dependencies of an existing environment (VENV, default .venv) through a path entry, not its toolcast.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${VENV:-.venv}
PY=$ROOT/$VENV/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/src" "$tmp/dist" "$tmp/elsewhere"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$tmp/src"
if ! "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" "$tmp/src" > "$tmp/build.log" 2>&1; then
  cat "$tmp/build.log" >&2
  exit 1
fi
"$PY" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --no-deps --no-index "$tmp/dist"/toolcast-*.whl
deps=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site=$("$tmp/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$deps" > "$site/zz_borrowed_dependencies.pth"  # appended after the venv's own site-packages

check='
import importlib, pkgutil, sys, sysconfig
import toolcast
site = sysconfig.get_paths()["purelib"]
assert toolcast.__file__.startswith(site), f"toolcast imported from {toolcast.__file__}, not the wheel in {site}"
names = ["toolcast"] + [m.name for m in pkgutil.walk_packages(toolcast.__path__, "toolcast.") if m.ispkg]
for name in names:
    mod = importlib.import_module(name)
    assert mod.__file__.startswith(site), f"{name} imported from {mod.__file__}"
from toolcast.data.samples import sample_files
assert sample_files(), "the bundled sample is not in the wheel"
print(f"wheel ok from {sys.argv[1]}: {len(names)} packages")
'
(cd "$ROOT" && "$tmp/venv/bin/python" -c "$check" "the repository root")
(cd "$tmp/elsewhere" && "$tmp/venv/bin/python" -c "$check" "another folder")
