"""Per-process counters of message outcomes."""

from __future__ import annotations

import threading


class Stats:
    """Counters, one per outcome (``handled``, ``dead_lettered`` ...).

    Each thread increments a table of its own, so counting takes no lock on
    the hot path. :meth:`snapshot` adds the tables up, including those of
    threads that have ended.
    """

    def __init__(self) -> None:
        self._local = threading.local()
        self._tables: list[dict[str, int]] = []
        self._tables_lock = threading.Lock()

    def table(self) -> dict[str, int]:
        """Return the calling thread's own table, for threads that count a lot.

        Only the calling thread may change it; increment with
        ``table[name] = table.get(name, 0) + 1``.
        """
        try:
            return self._local.table
        except AttributeError:
            return self._new_table()

    def incr(self, name: str, amount: int = 1) -> None:
        try:
            table = self._local.table
        except AttributeError:
            table = self._new_table()
        table[name] = table.get(name, 0) + amount

    def snapshot(self) -> dict[str, int]:
        """Return the sum of every thread's counters."""
        with self._tables_lock:
            tables = list(self._tables)
        total: dict[str, int] = {}
        for table in tables:
            # list() copies the items in C, without letting another thread
            # add a key halfway through.
            for name, count in list(table.items()):
                total[name] = total.get(name, 0) + count
        return total

    def _new_table(self) -> dict[str, int]:
        table: dict[str, int] = {}
        self._local.table = table
        with self._tables_lock:
            self._tables.append(table)
        return table
