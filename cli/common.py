"""Small pieces several commands share: input options, error reporting, atomic output files."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from toolcast.data import FORMAT_NAMES, TraceFormatError

log = logging.getLogger("toolcast")


def add_input_args(p: argparse.ArgumentParser, *, nargs: str = "+", flag: str | None = None) -> None:
    """INPUT paths (files or folders, gzip or plain) plus --format and --errors."""
    help_ = "log files or folders (every file inside), gzip or plain"
    if flag:
        p.add_argument(flag, nargs=nargs, required=True, metavar="PATH", help=help_)
    else:
        p.add_argument("inputs", nargs=nargs, metavar="INPUT", help=help_)
    p.add_argument("--format", default="auto", choices=FORMAT_NAMES,
                   help="log format; auto detects it from each file's content (default: auto)")
    p.add_argument("--errors", default="raise", choices=("raise", "skip"),
                   help="on a bad record: stop with an error (raise) or leave it out and report it (skip)")
    p.add_argument("--no-fold", dest="fold", action="store_false",
                   help="keep request-log records that are a prefix of a longer record in their file (folded "
                        "into one trace per conversation by default)")


def fail(message: str, code: int = 1) -> int:
    print(f"toolcast: error: {message}", file=sys.stderr)
    return code


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Write to a temporary file beside `path`, renamed into place only when the block succeeds.

    A failure or an interrupt (Ctrl-C) leaves no partial output file behind.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def report_format_error(e: TraceFormatError) -> int:
    return fail(f"{e}\n(use --errors skip to import the rest and list what was skipped)")
