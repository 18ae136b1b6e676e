"""`load_traces`: read log files of any supported format into canonical traces."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

from toolcast.data.errors import ImportReport, Location, TraceFormatError
from toolcast.data.fold import Fingerprint, fingerprint, fold_plan
from toolcast.data.formats import FORMATS
from toolcast.data.formats.base import OnError, TraceFormat
from toolcast.data.io import expand_paths, is_log_name, iter_records
from toolcast.data.per_line import is_message_line, lines_format
from toolcast.data.schema import SchemaError, Trace

log = logging.getLogger(__name__)

ErrorPolicy = Literal["raise", "skip"]
FORMAT_NAMES: tuple[str, ...] = ("auto", *FORMATS)


def detect_format(path: Path, first_record: object) -> TraceFormat:
    """The one format whose sniffer accepts the file's first record."""
    if isinstance(first_record, TraceFormatError):
        raise first_record
    for fmt in FORMATS.values():
        if fmt.sniff(first_record):
            return fmt
    if isinstance(first_record, dict):
        seen = "an object with keys " + ", ".join(sorted(first_record)[:8])
    elif isinstance(first_record, list):
        seen = f"a list of {len(first_record)} items"
    else:
        seen = f"a JSON {type(first_record).__name__}"
    raise TraceFormatError(Location(str(path), 1), f"unknown format: found {seen}; expected one of "
                           + ", ".join(FORMATS) + " (see `toolcast import --help`)")


def _detect_in_folder(path: Path, first_record: object, report: ImportReport) -> TraceFormat | None:
    """Inside a folder, a file in no known format (a README, a manifest) is left out with a warning."""
    try:
        return detect_format(path, first_record)
    except TraceFormatError as e:
        if not e.reason.startswith("unknown format"):
            raise
        log.warning("ignored %s: no known log format", path)
        report.ignored.append(str(path))
        return None


def _conversation_list(record: object) -> bool:
    """A JSON list of bare conversations (each a list of messages or items) that no format reads whole:
    each conversation is then a record of its own, as a JSON line would be."""
    return (isinstance(record, list) and len(record) > 0 and all(isinstance(c, list) and c for c in record)
            and not any(f.sniff(record) for f in FORMATS.values())
            and any(f.sniff(record[0]) for f in FORMATS.values()))


def _unpacked(records: Iterator[tuple[Location, object]]) -> Iterator[tuple[Location, object]]:
    """A file's records, each list of conversations given conversation by conversation."""
    for where, record in records:
        if _conversation_list(record):
            yield from ((where.child(f"[{i}]"), item) for i, item in enumerate(record))
        else:
            yield where, record


FOLD_BUFFER_CHARS = 4 * 2**20
"""A file's traces are kept in memory for folding while their content stays under this many characters;
past it, folding keeps their fingerprints only and reads the file again for the traces it keeps. Held
traces take ~10 bytes of memory per character of content (measured on BFCL: 16 M characters, ~190 MB),
so this bounds import's memory at ~40 MB plus fingerprints; a second pass costs a second parse."""


def iter_traces(*paths: str | os.PathLike, format: str = "auto", errors: ErrorPolicy = "raise",
                report: ImportReport | None = None, progress: bool = False,
                fold: bool = True, fold_buffer: int = FOLD_BUFFER_CHARS) -> Iterator[Trace]:
    """Yield traces from files and folders (every file under a folder), gzip or plain, as they are read.

    fold=True (the default) folds request logs, file by file: a trace whose content is a prefix of a
    longer trace of the same file (one record per LLM call, each holding the conversation so far) is
    dropped for the longest one, and counted in `report.folded` (see `toolcast.data.fold`). Every
    format but toolcast's own JSONL, which `toolcast import` wrote already folded (or not, as asked), and
    logs written one message per line (each of their traces is a conversation of its own).

    Memory: JSON lines stream record by record; a file that is one JSON document (a tau2 results file,
    an OTLP export) is parsed whole, and so is a log written one message per line (its conversations
    interleave). Folding keeps a file's traces while their content is under `fold_buffer` characters;
    a larger file is folded in two passes (`_folded`), holding only the fingerprints of its traces
    (`toolcast.data.fold.Fingerprint`: ~100 bytes per event, whatever its text).

    errors="raise" stops at the first bad record with a `TraceFormatError` naming file, line and field;
    errors="skip" leaves bad records (or whole unreadable files) out and lists them in `report.skipped`.
    """
    if format not in FORMAT_NAMES:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMAT_NAMES)}")
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    report = report if report is not None else ImportReport()
    folded_before = (report.folded, report.conversations)

    def on_error(e: TraceFormatError) -> None:
        if errors == "raise":
            raise e
        log.warning("skipped: %s", e)
        report.skipped.append(e)

    files = expand_paths(list(paths))
    named = {Path(p) for p in paths}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="import", unit="file", leave=False)
    for path in files:
        if path not in named and not is_log_name(path):
            log.info("ignored %s: not named like a JSON log (.json, .jsonl, .ndjson, optionally .gz)", path)
            report.ignored.append(str(path))
            if bar is not None:
                bar.update(1)
            continue
        report.files += 1
        try:
            opened = _read_file(path, format, path in named, report, on_error)
            if opened is None:
                continue
            fmt, per_line, traces = opened
            # One file's traces at a time: request logs of a conversation share a file. toolcast's own
            # JSONL is left as it is: `toolcast import` folded it already (or was told not to), and it
            # streams however large it is. Nor is a log written one message per line: each of its traces
            # is a conversation of its own (its lines' key), never one LLM call's record.
            if fold and fmt.name != "toolcast" and not per_line:
                def again(path: Path = path) -> Iterator[Trace]:
                    reopened = _read_file(path, format, path in named, ImportReport(), _ignore)
                    return reopened[2] if reopened is not None else iter(())

                traces = _folded(path, traces, again, report, fold_buffer)
            for trace in traces:
                try:  # every format: nothing ill-formed leaves the importer (most checked already)
                    trace.validate()
                except SchemaError as e:
                    on_error(TraceFormatError(Location(str(path)), f"trace {trace.trace_id!r}: "
                                              + str(e).split(": ", 1)[-1], field=e.field))
                    continue
                report.traces += 1
                report.formats[fmt.name] = report.formats.get(fmt.name, 0) + 1
                yield trace
        except TraceFormatError as e:
            on_error(e)
        except RecursionError:  # JSON inside a record's strings (arguments, outputs) nested too deeply
            on_error(TraceFormatError(Location(str(path)), "JSON nested too deeply to read"))
        finally:
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    if report.folded > folded_before[0]:  # also where no report is printed (train reads via load_splits)
        log.info("%s", ImportReport(folded=report.folded - folded_before[0],
                                    conversations=report.conversations - folded_before[1]).fold_summary())


def _ignore(e: TraceFormatError) -> None:
    """A second pass over a file skips what the first reported already."""


def _read_file(path: Path, format: str, named: bool, report: ImportReport,
               on_error: OnError) -> tuple[TraceFormat, bool, Iterator[Trace]] | None:
    """The file's format, whether it is written one message per line, and its traces as they are read;
    None for a file in no known format inside a folder (left out with a warning)."""
    records = iter_records(path)
    first = next(records, None)
    if first is None:
        raise TraceFormatError(Location(str(path)), "the file holds no records")
    # json.dump([conversation, conversation, ...]), in a file or on each JSON line: one record each
    records = _unpacked(itertools.chain([first], records))
    first = next(records)
    per_line = is_message_line(first[1], first[0])
    if per_line:  # a log written one message per line (data/per_line.py)
        lines = [first, *records]
        fmt, records = lines_format(path, lines, format), iter(lines[1:])
    elif format != "auto":
        fmt = FORMATS[format]
    elif named or isinstance(first[1], TraceFormatError):
        fmt = detect_format(path, first[1])
    else:
        fmt = _detect_in_folder(path, first[1], report)
        if fmt is None:
            return None
    return fmt, per_line, fmt.read(itertools.chain([first], records), on_error)


def _folded(path: Path, traces: Iterator[Trace], again: Callable[[], Iterator[Trace]],
            report: ImportReport, buffer: int) -> Iterator[Trace]:
    """The file's traces, folded (`toolcast.data.fold`). Folding needs the whole file seen first: the
    traces are kept while their content is under `buffer` characters, else read `again` in a second pass,
    only their fingerprints kept in between."""
    prints: list[Fingerprint] = []
    kept: list[Trace] | None = []
    size = 0
    for trace in traces:
        fp = fingerprint(trace)
        prints.append(fp)
        if kept is not None:
            kept.append(trace)
            size += fp.size
            if size > buffer:
                log.info("%s: over %d characters of traces, folded in two passes", path, buffer)
                kept = None
    plan = fold_plan(prints)
    report.folded += plan.folded
    report.conversations += plan.conversations
    second = kept is None
    n = 0
    for n, trace in enumerate(kept if kept is not None else again(), start=1):
        i = n - 1
        if i >= len(prints) or trace.trace_id != prints[i].trace_id:
            raise TraceFormatError(Location(str(path)), "the file changed while it was read")
        if plan.dropped[i]:
            continue
        if i in plan.groups:
            trace.group = plan.groups[i]
        yield trace
    if second and n != len(prints):
        raise TraceFormatError(Location(str(path)), "the file changed while it was read")


def load_traces(*paths: str | os.PathLike, format: str = "auto", errors: ErrorPolicy = "raise",
                report: ImportReport | None = None, progress: bool = False,
                fold: bool = True) -> list[Trace]:
    """Read every trace from the given files and folders. See `iter_traces`."""
    return list(iter_traces(*paths, format=format, errors=errors, report=report, progress=progress,
                            fold=fold))
