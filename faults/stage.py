"""The parts every scenario shares: its folder, topic, group, processes, waits and result."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Callable

from .kafkatools import DeadLetter, create_topics, read_dead_letters
from .ledger import HANDLED, Row, read_rows
from .load import SeqSource
from .procs import ManagedProcess, free_port, start_consume, start_gunicorn, wait_http_ok
from .tally import Counts

logger = logging.getLogger(__name__)

#: Bound of every wait for consumers to catch up after a fault, in seconds.
DRAIN_TIMEOUT = 90.0
#: Bound of every wait for a process to exit after SIGTERM, in seconds.
EXIT_TIMEOUT = 45.0
#: Bound of a gunicorn start until /healthz responds, in seconds.
BOOT_TIMEOUT = 60.0

_started = time.monotonic()


def progress(text: str) -> None:
    """Print one progress line with the seconds since the run started."""
    print(f"[faults {time.monotonic() - _started:6.1f}s] {text}", flush=True)


@dataclasses.dataclass
class Result:
    """A scenario's outcome, as the report shows it."""

    number: int
    title: str
    shows: str
    counts: Counts | None = None
    facts: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    acknowledged_label: str = "acknowledged to the caller"

    def fact(self, name: str, value: object) -> None:
        self.facts.append((name, str(value)))

    def check(self, condition: bool, problem: str) -> None:
        """Record ``problem`` unless ``condition`` holds."""
        if not condition:
            self.problems.append(problem)

    @property
    def passed(self) -> bool:
        return not self.problems and not (self.counts and self.counts.problems)


class Stage:
    """One scenario's topic, consumer group, ledger and processes."""

    def __init__(self, run_dir: Path, run_id: str, number: int, bootstrap: str, seqs: SeqSource) -> None:
        self.number = number
        self.dir = run_dir / f"scenario-{number}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ledger_dir = self.dir / "ledger"
        self.topic = f"faults.s{number}.{run_id}"
        self.dead_letter_topic = f"{self.topic}.dlt"
        self.group = f"faults-{run_id}-s{number}"
        self.bootstrap = bootstrap
        self.seqs = seqs
        self.processes: list[ManagedProcess] = []

    def create_topics(self, partitions: int, replication: int = 1, config: dict[str, str] | None = None) -> None:
        """Create the scenario topic and its dead-letter topic."""
        create_topics(self.bootstrap, [self.topic, self.dead_letter_topic], partitions, replication, config)

    def env(self, **settings: str) -> dict[str, str]:
        """Return the environment of the scenario's service processes."""
        return {
            **os.environ,
            "FAULTS_BOOTSTRAP": self.bootstrap,
            "FAULTS_TOPIC": self.topic,
            "FAULTS_GROUP": self.group,
            "FAULTS_LEDGER_DIR": str(self.ledger_dir),
            "FAULTS_ROLE": "gunicorn",
            **settings,
        }

    def gunicorn(self, label: str, env: dict[str, str], graceful_timeout: int = 30) -> tuple[ManagedProcess, int]:
        """Start gunicorn, wait until it serves /healthz, and return it with its port."""
        port = free_port()
        master = start_gunicorn(f"{self.group}-{label}", env, self.dir / f"{label}.log", port, graceful_timeout)
        self.processes.append(master)
        wait_http_ok(port, "/healthz", BOOT_TIMEOUT)
        return master, port

    def consume(self, label: str, env: dict[str, str]) -> ManagedProcess:
        """Start ``flask hyper consume`` in the scenario's group."""
        process = start_consume(f"{self.group}-{label}", env, self.dir / f"{label}.log")
        self.processes.append(process)
        return process

    def rows(self) -> list[Row]:
        return read_rows(self.ledger_dir)

    def handled_ids(self) -> set[int]:
        return {row.seq for row in self.rows() if row.kind == HANDLED}

    def dead_letters(self) -> list[DeadLetter]:
        return read_dead_letters(self.bootstrap, self.dead_letter_topic)

    def wait_for_drain(self, expected: set[int], *, with_dead_letters: bool = False) -> float:
        """Wait until every id of ``expected`` was handled (or dead-lettered); return seconds waited.

        Gives up after :data:`DRAIN_TIMEOUT`; the missing ids then count as lost.
        """
        started = time.monotonic()

        def reached() -> bool:
            seen = self.handled_ids()
            if with_dead_letters:
                seen |= {letter.seq for letter in self.dead_letters()}
            return expected <= seen

        if not wait_until(reached, DRAIN_TIMEOUT, pause=1.0):
            progress(f"scenario {self.number}: consumers did not catch up within {DRAIN_TIMEOUT:.0f} s")
        return time.monotonic() - started

    def stop_process(self, process: ManagedProcess, sig: int, result: Result) -> float:
        """Send ``sig``, wait for the exit, record a problem if it hangs; return the seconds it took."""
        started = time.monotonic()
        process.signal(sig)
        code = process.wait(EXIT_TIMEOUT)
        took = time.monotonic() - started
        if code is None:
            result.problems.append(f"{process.name} did not exit within {EXIT_TIMEOUT:.0f} s of signal {sig}")
            process.kill_group()
        elif code != 0:
            result.problems.append(f"{process.name} exited with code {code} after signal {sig}")
        return took

    def stop_all(self, sig: int, result: Result) -> None:
        """Stop every process of the scenario that still runs."""
        for process in self.processes:
            if process.alive():
                self.stop_process(process, sig, result)


def wait_until(predicate: Callable[[], bool], timeout: float, pause: float = 0.2) -> bool:
    """Call ``predicate`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
