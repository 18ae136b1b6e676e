"""The export manifest (`onnx.json`) of a model directory: its format, and the sha256 of every file the
export read or wrote, checked at load so a missing, truncated, corrupted or mismatched file is a clear
`ModelDirError` (`toolcast export` writes it, `OnnxPredictor.load` reads it). Torch-free."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolcast.predictor.modeldir import ModelDirError
from toolcast.predictor.onnx.contract import MANIFEST_FILE

MANIFEST_VERSION = 2
"""2: three graphs (`tools` added, its tensors fed to the other two); 1: two graphs (encoder, slots)."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---- the manifest ------------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, Any]:
    """`onnx.json`: format version, variants and their files, sha256 of every file the export used."""
    f = path / MANIFEST_FILE
    if not f.is_file():
        raise ModelDirError(
            path,
            f"{MANIFEST_FILE} is missing: no ONNX model was exported here (run `toolcast export {path}`)",
        )
    try:
        m = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelDirError(path, f"{MANIFEST_FILE} is not valid JSON (corrupt or truncated?): {e}") from None
    if (
        not isinstance(m, dict)
        or not isinstance(m.get("variants"), dict)
        or not isinstance(m.get("files"), dict)
    ):
        raise ModelDirError(path, f"{MANIFEST_FILE}: expected an object with 'variants' and 'files' objects")
    if m.get("format_version") != MANIFEST_VERSION:
        raise ModelDirError(
            path,
            f"{MANIFEST_FILE}: format_version {m.get('format_version')!r} is not supported "
            f"(expected {MANIFEST_VERSION}; re-run `toolcast export`)",
        )
    return m


def check_files(path: Path, manifest: dict[str, Any], names: Sequence[str], required: bool) -> None:
    """Every file the export read or wrote is still the one it hashed: catches truncation, corruption,
    and a model retrained (`--no-export`) under a stale `model.onnx`. A source file that is absent
    (`required=False`: an agent may ship the directory without `model.safetensors`) is not checked."""
    recorded: dict[str, str] = manifest["files"]
    for name in names:
        f = path / name
        want = recorded.get(name)
        if want is None:
            if required:
                raise ModelDirError(
                    path, f"{MANIFEST_FILE} has no sha256 of {name} (re-run `toolcast export`)"
                )
            continue
        if not f.is_file():
            if not required:
                continue
            raise ModelDirError(
                path, f"{name} is missing ({MANIFEST_FILE} lists it; re-run `toolcast export`)"
            )
        got = sha256_file(f)
        if got != want:
            what = (
                "was replaced, truncated or corrupted after the export"
                if name.endswith(".onnx")
                else "changed since the ONNX graphs were exported from it (files from different models?)"
            )
            raise ModelDirError(
                path,
                f"{name} {what}: sha256 {got[:12]}..., {MANIFEST_FILE} expects {want[:12]}... "
                f"(re-run `toolcast export {path}`)",
            )
