"""Fitted baselines as JSON files: written atomically, read back with errors that name the file and field.

Each piece of fitted state turns itself into plain JSON (`to_dict`) and back (`from_dict(d, where)`,
which checks what it reads and names `where` and the field it rejects); tuple keys are JSON lists.
`write_state` adds the format name and version and writes the file, gzip-compressed when its name ends in
`.gz`; `read_state` reads it (gzip or not, told by its first bytes) and checks both. Never pickle: a
model directory is something users load.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
"""Bumped whenever what `to_dict` writes changes meaning; a file of another version is refused."""
_GZIP_MAGIC = b"\x1f\x8b"


def state_file(path: str | os.PathLike, default_name: str) -> Path:
    """`path` itself when it names a .json or .json.gz file, else `default_name` in the directory `path`."""
    p = Path(path)
    return p if p.name.endswith((".json", ".json.gz")) else p / default_name


def write_state(path: Path, fmt: str, state: dict[str, Any]) -> Path:
    """Write `state` as the JSON object {"format": fmt, "version": FORMAT_VERSION, ...state} to `path`,
    through a temporary file renamed into place: a failure leaves no half-written file."""
    payload = {"format": fmt, "version": FORMAT_VERSION, **state}
    # ASCII escapes: any string the logs held (even a lone surrogate) round-trips.
    data = json.dumps(payload, separators=(",", ":")).encode("ascii")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)  # mtime 0: the same fit, the same bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_state(path: Path, fmt: str, unversioned: bool = False) -> dict[str, Any]:
    """The JSON object `write_state` wrote, its format and version checked; ValueError naming the file.
    `unversioned`: also accept an object with no "format" field at all (a file of this kind written
    before it had one), returned as it is."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the saved {fmt}: {e.strerror or e}") from None
    try:
        if data[:2] == _GZIP_MAGIC:
            data = gzip.decompress(data)
        d = json.loads(data)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: not a valid gzip file (corrupt or truncated?): {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: not valid JSON (corrupt or truncated?): {e}") from None
    where = str(path)
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a JSON object, got {_kind(d)}")
    if unversioned and "format" not in d:
        return d
    if d.get("format") != fmt:
        raise ValueError(f"{where}: field 'format': expected {fmt!r}, got {d.get('format')!r}")
    if d.get("version") != FORMAT_VERSION:
        raise ValueError(f"{where}: field 'version': this toolcast reads version {FORMAT_VERSION}, the file "
                         f"has {d.get('version')!r} (fit the baseline again and save it)")
    return d


# ---- checked reading: each helper names the field it rejects ------------------------------------------


def at(where: str, key: str | int) -> str:
    """The name of a field inside `where`: `file: field ngram`, then `...ngram.counts[2]`."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if " field " in where else f"{where}: field {key}"


def _kind(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(x), "a number")


def _bad(where: str, expected: str, x: Any) -> ValueError:
    return ValueError(f"{where}: expected {expected}, got {_kind(x)}")


def obj(x: Any, where: str) -> dict[str, Any]:
    if not isinstance(x, dict):
        raise _bad(where, "an object", x)
    return x


def get(d: dict[str, Any], key: str, where: str) -> tuple[Any, str]:
    """(d[key], its name); a missing field is an error."""
    if key not in d:
        raise ValueError(f"{at(where, key)}: missing")
    return d[key], at(where, key)


def seq(x: Any, where: str, n: int | None = None) -> list[Any]:
    """A JSON list (of exactly `n` items when `n` is given)."""
    if not isinstance(x, list):
        raise _bad(where, "a list", x)
    if n is not None and len(x) != n:
        raise ValueError(f"{where}: expected a list of {n} items, got {len(x)}")
    return x


def text(x: Any, where: str) -> str:
    if not isinstance(x, str):
        raise _bad(where, "a string", x)
    return x


def count(x: Any, where: str) -> int:
    """A non-negative integer (a count)."""
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise ValueError(f"{where}: expected a non-negative integer, got {x!r:.60}")
    return x


def number(x: Any, where: str) -> float:
    if not isinstance(x, int | float) or isinstance(x, bool):
        raise _bad(where, "a number", x)
    return float(x)


def counts(x: Any, where: str, n: int | None = None) -> list[int]:
    return [count(v, at(where, i)) for i, v in enumerate(seq(x, where, n))]


def texts(x: Any, where: str) -> list[str]:
    return [text(v, at(where, i)) for i, v in enumerate(seq(x, where))]


def tuple_key(x: Any, where: str) -> tuple[str, ...]:
    """A tuple key (a context, a source, a signature), written as a list of strings."""
    return tuple(texts(x, where))
