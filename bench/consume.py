"""Consume throughput: flask-hyper's ConsumerThread against hand-written loops and FastStream.

Run as ``python -m bench.consume CONTENDER BOOTSTRAP TOPIC COUNT GROUP`` it is
the worker that consumes COUNT messages from the start of TOPIC in a new
consumer group and prints one JSON line with msg/s.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from typing import Any

from .common import Meter, create_topics, median, payload_value, run_json_worker, unique_topic

CONTENDERS = ("flask-hyper", "raw-app-context", "raw-bare", "faststream")

WORKER_TIMEOUT_SECONDS = 300.0

# Bounds the wait for COUNT messages inside a worker.
CONSUME_TIMEOUT_SECONDS = 180.0


# -- section ----------------------------------------------------------------

def run_section(bootstrap: str, sizes: Any) -> dict[str, Any]:
    """Fill one topic, then consume it with every contender, interleaved per round."""
    topic = unique_topic("consume")
    create_topics(bootstrap, [topic])
    filled = max(sizes.consume_messages, sizes.faststream_messages)
    _fill(bootstrap, topic, filled)

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    for repetition in range(sizes.repetitions):
        for name in CONTENDERS:
            count = sizes.faststream_messages if name == "faststream" else sizes.consume_messages
            group = unique_topic(f"group-{name}")
            result = run_json_worker("bench.consume", [name, bootstrap, topic, str(count), group], WORKER_TIMEOUT_SECONDS)
            runs[name].append(result)
            print(f"  consume {name} #{repetition + 1}: {result['rate']:.0f} msg/s", flush=True)

    medians = {name: median([run["rate"] for run in results]) for name, results in runs.items()}
    ratios = {
        other: median([a["rate"] / b["rate"] for a, b in zip(runs["flask-hyper"], runs[other])])
        for other in CONTENDERS[1:]
    }
    return {
        "messages": sizes.consume_messages,
        "faststream_messages": sizes.faststream_messages,
        "runs": runs,
        "median_rate": medians,
        "ratio_hyper_vs": ratios,
    }


def _fill(bootstrap: str, topic: str, count: int) -> None:
    from flask import Flask

    from flask_hyper import HyperService

    # Filled through flask-hyper, so every message has the CloudEvents headers
    # its consumers decode.
    app = Flask("bench-filler")
    app.config.update(HYPER_KAFKA={"bootstrap.servers": bootstrap}, HYPER_PRODUCER_FLUSH_TIMEOUT=120.0)
    hyper = HyperService(app, type_defs="type Query { ok: Boolean }")
    with app.app_context():
        for index in range(count):
            hyper.publish(topic, payload_value(n=index % 1000))
        undelivered = hyper.shutdown(app)
    if undelivered:
        raise RuntimeError(f"filling {topic} left {undelivered} messages undelivered")


# -- worker -------------------------------------------------------------------

def _consume_with_hyper(bootstrap: str, topic: str, meter: Meter, group: str) -> None:
    from flask import Flask

    from flask_hyper import HyperService

    app = Flask("bench-consumer")
    app.config.update(HYPER_KAFKA={"bootstrap.servers": bootstrap}, HYPER_CONSUMER_GROUP=group)
    hyper = HyperService(app, type_defs="type Query { ok: Boolean }")
    done = threading.Event()

    @hyper.receiver(topic)
    def on_message(sender: Any, message: Any) -> None:
        if meter.tick():
            done.set()

    hyper.start_consumers(app)
    done.wait(CONSUME_TIMEOUT_SECONDS)
    hyper.stop_consumers(app, timeout=30)


def _consumer_config(bootstrap: str, group: str) -> dict[str, Any]:
    # The same properties flask-hyper sets: at-least-once with offsets
    # stored after handling and committed by the auto-commit timer.
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
    }


def _consume_raw(bootstrap: str, topic: str, meter: Meter, group: str, app_context: bool) -> None:
    from confluent_kafka import Consumer
    from flask import Flask

    app = Flask("bench-consumer")
    consumer = Consumer(_consumer_config(bootstrap, group))
    consumer.subscribe([topic])
    deadline = time.monotonic() + CONSUME_TIMEOUT_SECONDS
    finished = False

    try:
        while not finished and time.monotonic() < deadline:
            for kafka_message in consumer.consume(num_messages=100, timeout=1.0):
                if kafka_message.error():
                    continue
                if app_context:
                    # What a correct hand-written receiver does: its own app
                    # context, the value decoded, the offset stored after.
                    with app.app_context():
                        value = json.loads(kafka_message.value())
                        finished = _receive(value, meter)
                else:
                    finished = _receive(json.loads(kafka_message.value()), meter)
                consumer.store_offsets(message=kafka_message)
    finally:
        consumer.close()


def _receive(value: Any, meter: Meter) -> bool:
    return meter.tick()


def _consume_with_faststream(bootstrap: str, topic: str, meter: Meter, group: str) -> None:
    from faststream.confluent import KafkaBroker

    # logger=None turns FastStream's per-message logging off.
    broker = KafkaBroker(bootstrap, logger=None)
    done = asyncio.Event()

    @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest")
    async def on_message(body: dict) -> None:
        if meter.tick():
            done.set()

    async def run() -> None:
        async with broker:
            await broker.start()
            await asyncio.wait_for(done.wait(), CONSUME_TIMEOUT_SECONDS)

    asyncio.run(run())


def main(argv: list[str]) -> None:
    contender, bootstrap, topic, count_text, group = argv
    meter = Meter(int(count_text))
    if contender == "flask-hyper":
        _consume_with_hyper(bootstrap, topic, meter, group)
    elif contender == "raw-app-context":
        _consume_raw(bootstrap, topic, meter, group, app_context=True)
    elif contender == "raw-bare":
        _consume_raw(bootstrap, topic, meter, group, app_context=False)
    elif contender == "faststream":
        _consume_with_faststream(bootstrap, topic, meter, group)
    else:
        raise SystemExit(f"unknown contender {contender!r}: use one of {', '.join(CONTENDERS)}")

    result = meter.result()
    if result["rate"] is None:
        raise SystemExit(f"{contender} consumed {result['count']} of {meter.expected} messages within {CONSUME_TIMEOUT_SECONDS} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
