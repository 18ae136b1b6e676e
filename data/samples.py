"""Where the bundled sample logs are (data/sample/, package data of `toolcast.data`).

Found through `importlib.resources`, so the same call works from a source checkout, an editable install
and a wheel. The folder also holds its README and license texts; `sample_files` lists only the logs,
which is what `load_traces` wants.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SOURCES = ("tau2", "bfcl")
"""The benchmarks the sample comes from; a log file's name starts with one of these."""

_LOG_SUFFIXES = (".json.gz", ".jsonl.gz", ".json", ".jsonl")


def sample_dir() -> Path:
    """The folder of the bundled sample (see its README.md for sources and licenses)."""
    path = Path(str(resources.files("toolcast.data").joinpath("sample")))
    if not path.is_dir():
        raise FileNotFoundError(f"the bundled sample is missing: no folder {path} (a broken install?)")
    return path


def sample_files(source: str | None = None) -> list[Path]:
    """The sample's log files, sorted; `source` ("tau2" or "bfcl") keeps one benchmark's files."""
    if source is not None and source not in SOURCES:
        raise ValueError(f"unknown sample source {source!r}; expected one of {', '.join(SOURCES)}")
    files = [f for f in sorted(sample_dir().iterdir())
             if f.is_file() and f.name.endswith(_LOG_SUFFIXES) and f.name.startswith(source or SOURCES)]
    if not files:
        raise FileNotFoundError(f"no {source or ''} log files in {sample_dir()}".replace("  ", " "))
    return files
