"""Import errors that name the file, the line (or record) and the field."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """Where a record sits: file, 1-based line (JSONL) or None, and a record path inside the document."""

    path: str
    line: int | None = None
    record: str = ""

    def child(self, part: str) -> Location:
        return Location(self.path, self.line, f"{self.record}{part}" if self.record else part.lstrip("."))

    def __str__(self) -> str:
        s = self.path
        if self.line is not None:
            s += f", line {self.line}"
        if self.record:
            s += f", record {self.record}"
        return s


class TraceFormatError(ValueError):
    """A record that cannot be read. The message says where and which field."""

    def __init__(self, where: Location, message: str, field: str | None = None):
        self.where = where
        self.field = field
        self.reason = message
        text = f"{where}"
        if field:
            text += f", field '{field}'"
        super().__init__(f"{text}: {message}")


@dataclass
class ImportReport:
    """What an import read and, with errors="skip", what it skipped."""

    files: int = 0
    traces: int = 0
    skipped: list[TraceFormatError] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Files inside a named folder that are in no known format (a README, a manifest): left out."""
    formats: dict[str, int] = field(default_factory=dict)
    folded: int = 0
    """Request records dropped because a longer record of the same file holds them (`toolcast.data.fold`)."""
    conversations: int = 0
    """Traces that the folded records were folded into."""

    def summary(self) -> str:
        fmts = ", ".join(f"{k}: {v}" for k, v in sorted(self.formats.items()))
        s = f"{self.traces} traces from {self.files} files ({fmts})"
        if self.skipped:
            s += f"; skipped {len(self.skipped)} records"
        if self.ignored:
            s += f"; ignored {len(self.ignored)} files that hold no agent log"
        if self.folded:
            s += f"; {self.fold_summary()}"
        return s

    def fold_summary(self) -> str:
        """'folded 37 request records into 5 conversations': the records counted include the kept ones."""
        n = self.conversations
        return (f"folded {self.folded + n} request records into {n} conversation{'s' * (n != 1)} "
                "(records that are a prefix of a longer one in their file; --no-fold: keep)")
