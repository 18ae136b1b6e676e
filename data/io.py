"""Reading records from log files: gzip or plain, one JSON document or JSON lines.

A file is one of:
- one JSON document (a tau2 results file, a JSON list of chat records, an OTLP export): records are
  the document itself, located by line 1;
- JSON lines: each non-blank line is a record, located by its line number.

A record nested deeper than `schema.MAX_NESTING`, or holding a lone surrogate (`json_problem`), is an
error naming its file, line and field, as is JSON too deep for the parser itself: no reader after this
one meets either.
Files are read as a stream (`iter_records` holds one line at a time), so a log of any size imports in
the memory of its largest record.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from toolcast.data.errors import Location, TraceFormatError
from toolcast.data.schema import json_problem

GZIP_MAGIC = b"\x1f\x8b"


BINARY_CHECK = 8192
"""Bytes at the start of a file where a NUL byte means a binary file, not JSON."""


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
    with open_log(path) as f:
        return _decode(path, _read_all(path, f), 1)


def open_log(path: Path) -> BinaryIO:
    """The file's bytes as a stream, gunzipped when they are gzip (detected by content, not by name)."""
    try:
        f = path.open("rb")
        magic = f.peek(2)[:2]
    except OSError as e:
        raise TraceFormatError(Location(str(path)), f"cannot read: {e.strerror or e}") from None
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def _read_all(path: Path, f: BinaryIO) -> bytes:
    try:
        return f.read()
    except (OSError, EOFError) as e:
        raise TraceFormatError(Location(str(path)), _read_error(e)) from None


def _read_error(e: Exception) -> str:
    if isinstance(e, (gzip.BadGzipFile, EOFError)) or "gzip" in str(e).lower() or "zlib" in str(e).lower():
        return f"broken gzip data ({e})"
    return f"cannot read: {getattr(e, 'strerror', None) or e}"


def _decode(path: Path, raw: bytes, first_line: int) -> str:
    """`raw` as text (UTF-8, a byte-order mark dropped on the file's first line); `first_line`: the
    file's line where `raw` starts, to locate a bad byte."""
    try:
        return raw.decode("utf-8-sig" if first_line == 1 else "utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw[: e.start].count(b"\n")
        raise TraceFormatError(Location(str(path), line), "not UTF-8 text (binary file?)") from None


def _lines(path: Path, f: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each line, read as needed; the first 8 KiB checked for binary content."""
    lineno, checked = 0, 0
    while True:
        try:
            line = f.readline()
        except (OSError, EOFError) as e:
            raise TraceFormatError(Location(str(path), lineno + 1), _read_error(e)) from None
        if not line:
            return
        lineno += 1
        if checked < BINARY_CHECK and b"\x00" in line[: BINARY_CHECK - checked]:
            raise TraceFormatError(Location(str(path)), "binary file, not JSON or JSON lines")
        checked += len(line)
        yield lineno, line


def iter_records(path: Path) -> Iterator[tuple[Location, Any]]:
    """Yield (location, parsed JSON) for each record of the file, reading it as they are asked for.

    JSON lines are read line by line, so memory holds one record at a time. A file whose first line is
    not a whole JSON value is one document (pretty-printed JSON), read and parsed whole.
    """
    with open_log(path) as f:
        lines = _lines(path, f)
        head: list[bytes] = []  # the blank lines before the first record, and that first line
        lineno = 0
        for n, line in lines:
            head.append(line)
            if line.strip():
                lineno = n
                break
        else:
            raise TraceFormatError(Location(str(path)), "the file is empty")
        first = _decode(path, b"".join(head), 1)
        try:
            value = json.loads(first)
        except RecursionError:
            raise TraceFormatError(Location(str(path), lineno), "JSON nested too deeply to read") from None
        except json.JSONDecodeError:
            # One document: the rest of the file with it, parsed whole.
            rest = _read_all(path, f)
            if b"\x00" in rest[: max(0, BINARY_CHECK - sum(map(len, head)))]:
                raise TraceFormatError(Location(str(path)), "binary file, not JSON or JSON lines") from None
            yield from _document(path, first + _decode(path, rest, lineno + 1))
            return
        first_where = Location(str(path), lineno)
        yield first_where, _checked(first_where, value)
        for n, line in lines:
            if not line.strip():
                continue
            where = Location(str(path), n)
            yield where, _parsed(where, _decode(path, line.rstrip(b"\r\n"), n))


def _parsed(where: Location, line: str) -> Any:
    """One JSON line's record, or the error naming why it is not one (bad JSON, too deep to parse, a
    too-deep or lone-surrogate field): a record error, which `--errors skip` may skip."""
    try:
        record = json.loads(line)
    except RecursionError:
        return TraceFormatError(where, "JSON nested too deeply to read")
    except json.JSONDecodeError as e:
        return _invalid(where, e, line)
    return _checked(where, record)


def _checked(where: Location, record: Any) -> Any:
    """The record, or the error naming its too-deep or lone-surrogate field (`schema.json_problem`)."""
    problem = json_problem(record)
    return TraceFormatError(where, problem[1], field=problem[0]) if problem else record


def _invalid(where: Location, e: json.JSONDecodeError, line: str) -> TraceFormatError:
    hint = " (truncated?)" if e.pos >= len(line.rstrip()) - 1 else ""
    return TraceFormatError(where, f"invalid JSON: {e.msg} (column {e.colno}){hint}")


def _document(path: Path, text: str) -> Iterator[tuple[Location, Any]]:
    """The records of a file read whole: one JSON document, or JSON lines whose first line is broken."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise TraceFormatError(Location(str(path)), "JSON nested too deeply to read") from None
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":
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


def _iter_json_lines(path: Path, text: str) -> Iterator[tuple[Location, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = Location(str(path), lineno)
        yield where, _parsed(where, line)


