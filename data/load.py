"""`load_traces`: read log files of any supported format into canonical traces."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from toolcast.data.errors import ImportReport, Location, TraceFormatError
from toolcast.data.fold import fold_traces
from toolcast.data.formats import FORMATS
from toolcast.data.formats.base import TraceFormat
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


def iter_traces(*paths: str | os.PathLike, format: str = "auto", errors: ErrorPolicy = "raise",
                report: ImportReport | None = None, progress: bool = False,
                fold: bool = True) -> Iterator[Trace]:
    """Yield traces from files and folders (every file under a folder), gzip or plain.

    fold=True (the default) folds request logs, file by file: a trace whose content is a prefix of a
    longer trace of the same file (one record per LLM call, each holding the conversation so far) is
    dropped for the longest one, and counted in `report.folded` (see `toolcast.data.fold`). Every
    format but toolcast's own JSONL, which `toolcast import` wrote already folded (or not, as asked), and
    logs written one message per line (each of their traces is a conversation of its own).

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
            elif path in named or isinstance(first[1], TraceFormatError):
                fmt = detect_format(path, first[1])
            else:
                fmt = _detect_in_folder(path, first[1], report)
                if fmt is None:
                    continue

            def all_records(first=first, records=records):
                yield first
                yield from records

            traces = fmt.read(all_records(), on_error)
            # One file's traces at a time: request logs of a conversation share a file. toolcast's own
            # JSONL is left as it is: `toolcast import` folded it already (or was told not to), and it
            # streams however large it is. Nor is a log written one message per line: each of its traces
            # is a conversation of its own (its lines' key), never one LLM call's record.
            if fold and fmt.name != "toolcast" and not per_line:
                folded = fold_traces(list(traces))
                report.folded += folded.folded
                report.conversations += folded.conversations
                traces = iter(folded.traces)
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


def load_traces(*paths: str | os.PathLike, format: str = "auto", errors: ErrorPolicy = "raise",
                report: ImportReport | None = None, progress: bool = False,
                fold: bool = True) -> list[Trace]:
    """Read every trace from the given files and folders. See `iter_traces`."""
    return list(iter_traces(*paths, format=format, errors=errors, report=report, progress=progress,
                            fold=fold))
