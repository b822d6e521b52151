"""Publish throughput: ``hyper.publish`` against ``Producer.produce`` and ProducerPerformance.

Run as ``python -m bench.publish CONTENDER BOOTSTRAP TOPIC COUNT`` it is the
worker that publishes COUNT messages and prints one JSON line with msg/s.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from .common import LINGER_MS, PAYLOAD_BYTES, median, payload_value, run_json_worker, unique_topic, create_topics
from . import kafka_tools

CONTENDERS = ("flask-hyper", "raw-with-headers", "raw-bare")

# Bounds one worker run; a healthy run takes seconds.
WORKER_TIMEOUT_SECONDS = 300.0

# Waiting out delivery of every queued message belongs to the measured time.
FLUSH_TIMEOUT_SECONDS = 120.0


def producer_config(bootstrap: str) -> dict[str, Any]:
    """The producer config every Python contender uses, the same as flask-hyper's defaults."""
    return {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": LINGER_MS}


# -- section ----------------------------------------------------------------

def run_section(bootstrap: str, sizes: Any) -> dict[str, Any]:
    """Interleave the contenders for ``sizes.repetitions`` rounds; return runs and medians."""
    count = sizes.publish_messages
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in (*CONTENDERS, "ProducerPerformance")}

    for repetition in range(sizes.repetitions):
        for name in CONTENDERS:
            topic = unique_topic(f"publish-{name}")
            create_topics(bootstrap, [topic])
            result = run_json_worker("bench.publish", [name, bootstrap, topic, str(count)], WORKER_TIMEOUT_SECONDS)
            runs[name].append(result)
            print(f"  publish {name} #{repetition + 1}: {result['rate']:.0f} msg/s", flush=True)

        topic = unique_topic("publish-java")
        create_topics(bootstrap, [topic])
        result = kafka_tools.producer_performance(bootstrap, topic, count, PAYLOAD_BYTES)
        runs["ProducerPerformance"].append(result)
        print(f"  publish ProducerPerformance #{repetition + 1}: {result['rate']:.0f} msg/s", flush=True)

    medians = {name: median([run["rate"] for run in results]) for name, results in runs.items()}
    return {
        "messages": count,
        "runs": runs,
        "median_rate": medians,
        "ratio_hyper_vs_raw_headers": _median_ratio(runs["flask-hyper"], runs["raw-with-headers"]),
        "ratio_hyper_vs_raw_bare": _median_ratio(runs["flask-hyper"], runs["raw-bare"]),
        "java_command": kafka_tools.tool_command(
            "ProducerPerformance",
            kafka_tools.producer_performance_args("$BOOTSTRAP", "TOPIC", count, PAYLOAD_BYTES),
        ),
    }


def _median_ratio(numerator: list[dict[str, Any]], denominator: list[dict[str, Any]]) -> float:
    # Ratio per round, so both runs of a round share the machine's noise.
    return median([a["rate"] / b["rate"] for a, b in zip(numerator, denominator)])


# -- worker -------------------------------------------------------------------

def _publish_with_hyper(bootstrap: str, topic: str, count: int) -> float:
    from flask import Flask

    from flask_hyper import HyperService

    app = Flask("bench-publisher")
    app.config.update(
        HYPER_KAFKA={"bootstrap.servers": bootstrap},
        HYPER_KAFKA_PRODUCER={"linger.ms": LINGER_MS},
        HYPER_PRODUCER_FLUSH_TIMEOUT=FLUSH_TIMEOUT_SECONDS,
    )
    hyper = HyperService(app, type_defs="type Query { ok: Boolean }")
    value = payload_value()

    with app.app_context():
        # One acknowledged message first, so client creation and metadata
        # lookup are outside the measured time, as for the raw contenders.
        hyper.publish(topic, value, wait=True, timeout=30)
        start = time.perf_counter()
        for _ in range(count):
            hyper.publish(topic, value)
        undelivered = hyper.shutdown(app)
        elapsed = time.perf_counter() - start

    _check_delivered(undelivered)
    return elapsed


def _publish_raw(bootstrap: str, topic: str, count: int, with_headers: bool) -> float:
    from confluent_kafka import Producer

    producer = Producer(producer_config(bootstrap))
    value = payload_value()
    encoded = json.dumps(value, separators=(",", ":")).encode()
    producer.produce(topic, encoded)
    producer.flush(30)
    correlation_id = uuid.uuid4().hex.encode()

    start = time.perf_counter()
    for _ in range(count):
        if with_headers:
            # What a user without flask-hyper writes: serialize, build the
            # CloudEvents headers with a new id and time, produce.
            data = json.dumps(value, separators=(",", ":")).encode()
            headers = [
                ("ce_specversion", b"1.0"),
                ("ce_id", uuid.uuid4().hex.encode()),
                ("ce_source", b"bench-publisher"),
                ("ce_type", topic.encode()),
                ("ce_time", datetime.now(timezone.utc).isoformat(timespec="milliseconds").encode()),
                ("content-type", b"application/json"),
                ("ce_correlationid", correlation_id),
            ]
            _produce(producer, topic, data, headers)
        else:
            _produce(producer, topic, encoded, None)
    undelivered = producer.flush(FLUSH_TIMEOUT_SECONDS)
    elapsed = time.perf_counter() - start

    _check_delivered(undelivered)
    return elapsed


def _produce(producer: Any, topic: str, data: bytes, headers: list[tuple[str, bytes]] | None) -> None:
    while True:
        try:
            producer.produce(topic, data, headers=headers)
            return
        except BufferError:
            # Local queue full: serve delivery reports until there is room.
            producer.poll(0.05)


def _check_delivered(undelivered: int) -> None:
    if undelivered:
        raise RuntimeError(f"{undelivered} messages not delivered within {FLUSH_TIMEOUT_SECONDS} s")


def main(argv: list[str]) -> None:
    contender, bootstrap, topic, count_text = argv
    count = int(count_text)
    if contender == "flask-hyper":
        elapsed = _publish_with_hyper(bootstrap, topic, count)
    elif contender in ("raw-with-headers", "raw-bare"):
        elapsed = _publish_raw(bootstrap, topic, count, with_headers=contender == "raw-with-headers")
    else:
        raise SystemExit(f"unknown contender {contender!r}: use one of {', '.join(CONTENDERS)}")
    print(json.dumps({"count": count, "seconds": elapsed, "rate": count / elapsed}))


if __name__ == "__main__":
    main(sys.argv[1:])
