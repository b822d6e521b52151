"""Per-process counters of message outcomes."""

from __future__ import annotations

import threading
from collections import Counter


class Stats:
    """Thread-safe counters, one per outcome (``handled``, ``dead_lettered`` ...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        """Return a copy of every counter."""
        with self._lock:
            return dict(self._counts)
