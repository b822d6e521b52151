"""GraphQL load against the fault-test service, recording the response each event got."""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Any

logger = logging.getLogger(__name__)

PUBLISH_ONE = "mutation($seq: Int!) { publish(seq: $seq) { seq ok error } }"
PUBLISH_BATCH = (
    "mutation($seqs: [Int!]!, $fail: Boolean, $wait: Boolean)"
    " { publishBatch(seqs: $seqs, fail: $fail, wait: $wait) { seq ok error } }"
)

#: The service returned ok: acknowledged by the broker (or queued, for fire-and-forget).
OK = "ok"
#: The service returned an error for the event.
ERROR = "error"
#: The HTTP request failed: connection refused or reset, timeout, non-200 status.
NO_ANSWER = "no answer"

# Message ids make every error text unique: they are masked to group errors.
_MESSAGE_ID = re.compile(r"\b[0-9a-f]{32}\b")


class Outcomes:
    """The response each attempted event id got; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_seq: dict[int, str] = {}
        self.errors: dict[str, int] = {}
        self.answered_at: dict[int, float] = {}

    def record(self, seq: int, outcome: str, detail: str = "") -> None:
        with self._lock:
            self.by_seq[seq] = outcome
            self.answered_at[seq] = time.time()
            if outcome != OK:
                key = f"{outcome}: {_MESSAGE_ID.sub('<id>', detail)[:160]}"
                self.errors[key] = self.errors.get(key, 0) + 1

    def seqs(self, outcome: str | None = None) -> set[int]:
        """Return the ids with ``outcome``, or every attempted id."""
        with self._lock:
            return {seq for seq, got in self.by_seq.items() if outcome is None or got == outcome}


class SeqSource:
    """Hands out unique event ids across threads."""

    def __init__(self, start: int) -> None:
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    def take(self, count: int) -> list[int]:
        with self._lock:
            return [next(self._counter) for _ in range(count)]


def post_graphql(port: int, query: str, variables: dict[str, Any], timeout: float) -> dict[str, Any]:
    """POST one GraphQL request and return its ``data``; raise OSError or ValueError on failure."""
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.loads(response.read())
    if payload.get("errors") or not payload.get("data"):
        raise ValueError(f"GraphQL errors: {payload.get('errors')}")
    return payload["data"]


def publish_batch(
    port: int, seqs: list[int], outcomes: Outcomes, *, fail: bool = False, wait: bool = True, timeout: float = 30.0
) -> None:
    """Publish ``seqs`` in one ``publishBatch`` mutation and record each outcome."""
    try:
        data = post_graphql(port, PUBLISH_BATCH, {"seqs": seqs, "fail": fail, "wait": wait}, timeout)
    except (OSError, ValueError) as exc:
        for seq in seqs:
            outcomes.record(seq, NO_ANSWER, f"{type(exc).__name__}: {exc}")
        return
    for result in data["publishBatch"]:
        outcomes.record(result["seq"], OK if result["ok"] else ERROR, result["error"] or "")


def publish_one(port: int, seq: int, outcomes: Outcomes, timeout: float = 30.0) -> None:
    """Publish ``seq`` with the single-event ``publish`` mutation and record the outcome."""
    try:
        data = post_graphql(port, PUBLISH_ONE, {"seq": seq}, timeout)
    except (OSError, ValueError) as exc:
        outcomes.record(seq, NO_ANSWER, f"{type(exc).__name__}: {exc}")
        return
    result = data["publish"]
    outcomes.record(seq, OK if result["ok"] else ERROR, result["error"] or "")


class LoadGenerator:
    """Client threads that publish events until stopped or a bound is reached.

    Each thread sends one request at a time: ``batch`` 1 uses the
    single-event mutation, larger batches use ``publishBatch``. The load
    stops by itself after ``max_seconds`` or ``max_events``.
    """

    def __init__(
        self,
        port: int,
        seqs: SeqSource,
        outcomes: Outcomes,
        *,
        threads: int = 2,
        batch: int = 1,
        pause: float = 0.0,
        max_seconds: float = 60.0,
        max_events: int = 100_000,
        request_timeout: float = 30.0,
    ) -> None:
        self.port = port
        self.seqs = seqs
        self.outcomes = outcomes
        self.batch = batch
        self.pause = pause
        self.max_seconds = max_seconds
        self.max_events = max_events
        self.request_timeout = request_timeout
        self.sent = 0
        self._sent_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"faults-load-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> "LoadGenerator":
        self._deadline = time.monotonic() + self.max_seconds
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop sending and wait for the responses to the requests in flight."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.request_timeout + 5)

    def join(self) -> None:
        """Wait until the load ends by itself, at ``max_seconds`` or ``max_events``."""
        for thread in self._threads:
            thread.join(self.max_seconds + self.request_timeout + 5)

    def _claim(self) -> list[int]:
        with self._sent_lock:
            count = min(self.batch, self.max_events - self.sent)
            self.sent += max(count, 0)
        return self.seqs.take(count) if count > 0 else []

    def _run(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            seqs = self._claim()
            if not seqs:
                return
            if self.batch == 1:
                publish_one(self.port, seqs[0], self.outcomes, self.request_timeout)
            else:
                publish_batch(self.port, seqs, self.outcomes, timeout=self.request_timeout)
            if self.pause:
                self._stop.wait(self.pause)
