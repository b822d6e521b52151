"""Rate limiting for log lines that repeat while a broker is unreachable."""

from __future__ import annotations

import logging
import re
import threading
import time

_NUMBERS = re.compile(r"\d+")

# Distinct messages remembered at most; past that the memory starts afresh.
_MAX_KEYS = 1000


class RepeatFilter(logging.Filter):
    """Pass one record per distinct message and level every ``interval`` seconds.

    Messages that differ only in numbers (durations, counts, ports) count as
    the same. The first record let through after a quiet spell states how
    many similar records were dropped, so nothing disappears silently.
    """

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, _NUMBERS.sub("#", record.getMessage()))
        now = time.monotonic()
        with self._lock:
            last, dropped = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._seen[key] = (last, dropped + 1)
                return False
            if len(self._seen) >= _MAX_KEYS:
                self._seen.clear()
            self._seen[key] = (now, 0)

        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} similar lines dropped in {self.interval:.0f} s)"
            record.args = ()
        return True


def rate_limited(name: str, interval: float = 60.0) -> logging.Logger:
    """Return the logger ``name`` with a :class:`RepeatFilter` attached once."""
    target = logging.getLogger(name)
    if not any(isinstance(existing, RepeatFilter) for existing in target.filters):
        target.addFilter(RepeatFilter(interval))
    return target
