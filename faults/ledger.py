"""An append-only record of what each process did with each message, surviving SIGKILL.

Every process writes its own file, ``<role>-<pid>.tsv``, in the ledger folder.
Each row is one line written by one ``write()`` call on a line-buffered
file, so a row is in the kernel's page cache as soon as the call returns. A
process killed with SIGKILL loses at most the row it was building, and the
reader skips a truncated last line.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

#: A receiver returned: the message was handled.
HANDLED = "handled"
#: A receiver attempt raised.
FAILED = "failed"
#: The broker acknowledged a fire-and-forget message (delivery report).
ACKED = "acked"
#: The delivery report of a fire-and-forget message carried an error.
UNDELIVERED = "undelivered"

_FIELDS = ("kind", "seq", "pid", "role", "topic", "partition", "offset", "start", "end")


@dataclasses.dataclass(frozen=True)
class Row:
    """One ledger line. ``start`` and ``end`` are Unix times in seconds."""

    kind: str
    seq: int
    pid: int
    role: str
    topic: str
    partition: int
    offset: int
    start: float
    end: float


class LedgerWriter:
    """Appends rows to this process's ledger file; safe to share between threads."""

    def __init__(self, folder: Path, role: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.role = role
        self._folder = folder
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._file = None

    def write(
        self,
        kind: str,
        seq: int,
        *,
        topic: str = "",
        partition: int = -1,
        offset: int = -1,
        start: float = 0.0,
        end: float = 0.0,
    ) -> None:
        """Append one row and hand it to the kernel before returning."""
        values = (kind, seq, os.getpid(), self.role, topic, partition, offset, f"{start:.6f}", f"{end:.6f}")
        line = "\t".join(str(value) for value in values) + "\n"
        with self._lock:
            self._file_for_this_process().write(line)

    def _file_for_this_process(self):
        # A gunicorn worker inherits the writer from the master across fork:
        # each process opens its own file so rows name the pid that wrote them.
        pid = os.getpid()
        if self._file is None or self._pid != pid:
            path = self._folder / f"{self.role}-{pid}.tsv"
            self._file = open(path, "a", buffering=1, encoding="utf-8")
            self._pid = pid
        return self._file


def read_rows(folder: Path) -> list[Row]:
    """Return every complete row of every ledger file in ``folder``."""
    rows: list[Row] = []
    if not folder.is_dir():
        return rows

    for path in sorted(folder.glob("*.tsv")):
        for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
            row = _parse(line)
            if row is not None:
                rows.append(row)
    return rows


def _parse(line: str) -> Row | None:
    if not line.endswith("\n"):
        return None
    parts = line.rstrip("\n").split("\t")
    if len(parts) != len(_FIELDS):
        return None
    kind, seq, pid, role, topic, partition, offset, start, end = parts
    return Row(kind, int(seq), int(pid), role, topic, int(partition), int(offset), float(start), float(end))
