"""Run sizes, statistics, payloads and subprocess helpers shared by every section."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from confluent_kafka.admin import AdminClient, NewTopic

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"

# Producer linger of every contender: librdkafka's default, set explicitly so
# a change of that default cannot make the contenders differ.
LINGER_MS = 5

PAYLOAD_BYTES = 100


@dataclass(frozen=True)
class Sizes:
    """How much work each section does; ``quick`` is for development runs."""

    repetitions: int
    publish_messages: int
    consume_messages: int
    faststream_messages: int
    http_seconds: int
    latency_events: int
    latency_rate: int

    @classmethod
    def for_mode(cls, quick: bool) -> "Sizes":
        if quick:
            return cls(3, 20_000, 10_000, 3_000, 3, 500, 250)
        return cls(3, 100_000, 60_000, 15_000, 8, 3_000, 300)


def payload_value(**extra: Any) -> dict[str, Any]:
    """Return a JSON object that serializes (compact separators) to exactly 100 bytes."""
    value: dict[str, Any] = {**extra, "pad": ""}
    size = len(json.dumps(value, separators=(",", ":")).encode())
    value["pad"] = "x" * max(0, PAYLOAD_BYTES - size)
    return value


def unique_topic(label: str) -> str:
    """Return a fresh topic name, so no run reads what another one wrote."""
    return f"bench.{label}.{uuid.uuid4().hex[:10]}"


def create_topics(bootstrap: str, names: Sequence[str], partitions: int = 1) -> None:
    """Create ``names`` on the broker and wait until the broker confirms each."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1) for name in names], request_timeout=30)
    for future in futures.values():
        future.result(30)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


def bench_env() -> dict[str, str]:
    """Return the environment for child processes: the repository importable, output unbuffered."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_json_worker(module: str, args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON object on its last stdout line.

    Each contender runs in a fresh interpreter, so one run's threads, clients
    and memory cannot slow the next. Raises RuntimeError with the worker's
    stderr tail when it fails or prints no result.
    """
    command = [sys.executable, "-m", module, *args]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=bench_env(), cwd=REPO_ROOT
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = "\n".join(result.stderr.splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command)} failed with exit code {result.returncode}:\n{tail}")
    return json.loads(lines[-1])


class Meter:
    """Counts handled messages and times the span from the first to the last one.

    Timing starts at the first message, so group join and partition
    assignment, which differ per client, are not part of the rate.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.first: float | None = None
        self.last: float | None = None

    def tick(self) -> bool:
        """Count one message; return True once ``expected`` messages were counted."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.count += 1
        if self.count == self.expected:
            self.last = now
        return self.count >= self.expected

    def result(self) -> dict[str, Any]:
        if self.first is None or self.last is None or self.last <= self.first:
            return {"count": self.count, "rate": None, "seconds": None}
        seconds = self.last - self.first
        return {"count": self.count, "rate": (self.count - 1) / seconds, "seconds": seconds}
