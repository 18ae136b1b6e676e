"""Reading records from log files: gzip or plain, one JSON document or JSON lines.

A file is one of:
- one JSON document (a tau2 results file, a JSON list of chat records, an OTLP export): records are
  the document itself, located by line 1;
- JSON lines: each non-blank line is a record, located by its line number.

A record nested deeper than `schema.MAX_NESTING`, or holding a lone surrogate (`json_problem`), is an
error naming its file, line and field, as is JSON too deep for the parser itself: no reader after this
one meets either.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.schema import json_problem

GZIP_MAGIC = b"\x1f\x8b"


LOG_SUFFIXES = (".json", ".jsonl", ".ndjson")


def is_log_name(path: Path) -> bool:
    """Inside a folder, files named like JSON logs (gzip or not) are read; a README or a script is not."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return bool(suffixes) and suffixes[-1] in LOG_SUFFIXES


def expand_paths(paths: list[str | os.PathLike]) -> list[Path]:
    """Files named, and every file under a folder named (sorted, hidden files left out).

    Files inside a folder are kept whatever their name; `iter_traces` decides which to read.
    """
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(sorted(f for f in path.rglob("*") if f.is_file() and not _hidden(f, path)))
        elif path.is_file():
            out.append(path)
        else:
            raise TraceFormatError(Location(str(path)), "no such file or folder")
    return out


def _hidden(f: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in f.relative_to(root).parts)


def read_text(path: Path) -> str:
    """The file's text; gzip is detected by content, not by name."""
    where = Location(str(path))
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TraceFormatError(where, f"cannot read: {e.strerror or e}") from None
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise TraceFormatError(where, f"broken gzip data ({e})") from None
    if not raw.strip():
        raise TraceFormatError(where, "the file is empty")
    if b"\x00" in raw[:8192]:
        raise TraceFormatError(where, "binary file, not JSON or JSON lines")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TraceFormatError(Location(str(path), line), "not UTF-8 text (binary file?)") from None


def iter_records(path: Path) -> Iterator[tuple[Location, Any]]:
    """Yield (location, parsed JSON) for each record of the file."""
    text = read_text(path)
    try:
        doc = json.loads(text)
    except RecursionError:
        raise TraceFormatError(Location(str(path)), "JSON nested too deeply to read") from None
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" or _first_line_parses(text):
            yield from _iter_json_lines(path, text)
            return
        hint = " (truncated?)" if e.pos >= len(text.rstrip()) - 1 else ""
        raise TraceFormatError(Location(str(path), e.lineno),
                               f"invalid JSON: {e.msg} (column {e.colno}){hint}") from None
    where = Location(str(path), 1 if "\n" not in text.strip() else None)
    problem = json_problem(doc)
    if problem:
        raise TraceFormatError(where, problem[1], field=problem[0])
    yield where, doc


def _first_line_parses(text: str) -> bool:
    """True for JSON lines whose later line is broken: the first line is a whole JSON value."""
    for line in text.splitlines():
        if line.strip():
            try:
                json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                return False
            return True
    return False


def _iter_json_lines(path: Path, text: str) -> Iterator[tuple[Location, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(str(path), lineno)
        try:
            record = json.loads(line)
        except RecursionError:
            yield where, TraceFormatError(where, "JSON nested too deeply to read")
            continue
        except json.JSONDecodeError as e:
            hint = " (truncated?)" if e.pos >= len(line.rstrip()) - 1 else ""
            yield where, TraceFormatError(where, f"invalid JSON: {e.msg} (column {e.colno}){hint}")
            continue
        problem = json_problem(record)
        yield where, (TraceFormatError(where, problem[1], field=problem[0]) if problem else record)
