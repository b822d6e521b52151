"""Counting a scenario's events from the caller's outcomes, the ledger and the dead-letter topic."""

from __future__ import annotations

import collections
import dataclasses

from .kafkatools import DeadLetter
from .ledger import HANDLED, Row


@dataclasses.dataclass
class Counts:
    """The six counts of a scenario table, plus the sets behind them for checks.

    ``lost`` is acknowledged ids found neither in a handling row nor in the
    dead-letter topic. ``duplicates`` counts handling rows beyond the first
    of each id.
    """

    attempted: int
    acknowledged: int
    not_acknowledged: int
    handled: int
    duplicates: int
    dead_lettered: int
    lost: int
    handled_not_acknowledged: int
    lost_ids: list[int]
    duplicate_ids: list[int]
    problems: list[str]


def count(
    attempted: set[int],
    acknowledged: set[int],
    rows: list[Row],
    dead_letters: list[DeadLetter],
    *,
    duplicates_allowed: bool,
) -> Counts:
    """Return the scenario's counts; ``problems`` lists every count that does not add up."""
    handled_rows = [row for row in rows if row.kind == HANDLED]
    per_id = collections.Counter(row.seq for row in handled_rows)
    handled = set(per_id)
    dead = {letter.seq for letter in dead_letters if letter.seq is not None}
    reached = handled | dead
    lost = sorted(acknowledged - reached)
    duplicate_ids = sorted(seq for seq, times in per_id.items() if times > 1)

    problems = []
    if lost:
        problems.append(f"{len(lost)} acknowledged events lost, first ids {lost[:10]}")
    if not acknowledged <= attempted:
        problems.append(f"{len(acknowledged - attempted)} acknowledged ids were never attempted")
    phantom = sorted(reached - attempted)
    if phantom:
        problems.append(f"{len(phantom)} handled or dead-lettered ids were never attempted: {phantom[:10]}")
    unreadable = sum(1 for letter in dead_letters if letter.seq is None)
    if unreadable:
        problems.append(f"{unreadable} dead letters carry no event id")
    if duplicate_ids and not duplicates_allowed:
        problems.append(f"{len(duplicate_ids)} ids handled more than once where no fault permits it: {duplicate_ids[:10]}")

    return Counts(
        attempted=len(attempted),
        acknowledged=len(acknowledged),
        not_acknowledged=len(attempted - acknowledged),
        handled=len(handled),
        duplicates=len(handled_rows) - len(handled),
        dead_lettered=len(dead),
        lost=len(lost),
        handled_not_acknowledged=len(reached - acknowledged),
        lost_ids=lost,
        duplicate_ids=duplicate_ids,
        problems=problems,
    )
