"""Per-message cost of flask-hyper's dispatcher, measured in process without Kafka.

Run it as ``.venv/bin/python -m bench.dispatch_cost``. It dispatches one
prebuilt message with CloudEvents headers many times to a no-op receiver.
It then times the body of the hand-written consume loop (an app context
pushed and popped, ``json.loads``) on the same message. The two figures
differ only by flask-hyper's own work.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask

from flask_hyper import HyperService
from flask_hyper.dispatch import Dispatcher

ROUNDS = 100_000


class PrebuiltMessage:
    """A stand-in for confluent_kafka.Message with the methods the dispatcher calls."""

    def __init__(self) -> None:
        self._value = json.dumps({"n": 1, "pad": "x" * 60}).encode()
        self._headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", b"0123456789abcdef0123456789abcdef"),
            ("ce_source", b"bench"),
            ("ce_type", b"bench.topic"),
            ("ce_time", b"2026-01-01T00:00:00.000Z"),
            ("content-type", b"application/json"),
            ("ce_correlationid", b"bench"),
        ]

    def value(self) -> bytes:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def topic(self) -> str:
        return "bench.topic"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0

    def key(self) -> bytes:
        return b"key"

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)

    def error(self) -> None:
        return None


def microseconds_per_round(step: Any) -> float:
    """Return the mean time of ``step()`` over :data:`ROUNDS` calls, in microseconds."""
    started = time.perf_counter()
    for _ in range(ROUNDS):
        step()
    return (time.perf_counter() - started) / ROUNDS * 1e6


def main() -> None:
    app = Flask("bench-dispatch")
    app.config["HYPER_KAFKA"] = {"bootstrap.servers": "127.0.0.1:9"}
    hyper = HyperService(app, type_defs="type Query { ok: Boolean }")
    hyper.receiver("bench.topic")(lambda sender, message: None)
    dispatcher = Dispatcher(app, app.extensions["hyper"], lambda seconds: True)
    message = PrebuiltMessage()

    def raw_step() -> None:
        with app.app_context():
            json.loads(message.value())

    hyper_cost = microseconds_per_round(lambda: dispatcher.dispatch(message))
    raw_cost = microseconds_per_round(raw_step)
    print(f"flask-hyper dispatch: {hyper_cost:.2f} us per message")
    print(f"app context + json.loads: {raw_cost:.2f} us per message")


if __name__ == "__main__":
    main()
