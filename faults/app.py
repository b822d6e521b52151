"""The fault-test hyperservice: publishes numbered events and records every handling.

Run it as the fault runner does::

    gunicorn -c python:flask_hyper.gunicorn_conf 'faults.app:create_app()'
    flask --app faults.app:create_app hyper consume

Its settings come from environment variables, so every process of a
scenario (gunicorn master, workers, ``flask hyper consume``) agrees on them:

=========================  ====================================================
``FAULTS_BOOTSTRAP``        Kafka ``bootstrap.servers`` (required)
``FAULTS_TOPIC``            topic the mutations publish to and the receiver reads
``FAULTS_GROUP``            consumer group id
``FAULTS_LEDGER_DIR``       folder of the ledger files (see :mod:`faults.ledger`)
``FAULTS_ROLE``             ledger role of this process: ``gunicorn`` or ``consume``
``FAULTS_RECEIVER_DELAY``   seconds the receiver works on each message (default 0)
``FAULTS_PUBLISH_TIMEOUT``  ``HYPER_PUBLISH_TIMEOUT`` in seconds (default 5)
``FAULTS_RETRY_BACKOFF``    ``HYPER_RETRY_BACKOFF`` in seconds (default 0.05)
=========================  ====================================================

Every event value is ``{"seq": N, "fail": bool}``. The receiver raises for
``fail`` true, so those messages end in the dead-letter topic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from ariadne import MutationType, QueryType
from flask import Flask

from flask_hyper import HyperService, Message, PublishError, publish, signals

from .ledger import ACKED, FAILED, HANDLED, UNDELIVERED, LedgerWriter

TYPE_DEFS = """
type Query {
  ping: String!
}

type PublishResult {
  seq: Int!
  ok: Boolean!
  error: String
}

type Mutation {
  "Publish one event and wait for the broker's acknowledgement."
  publish(seq: Int!, fail: Boolean = false): PublishResult!
  "Publish events; with wait false, ok only means queued in the producer."
  publishBatch(seqs: [Int!]!, fail: Boolean = false, wait: Boolean = true): [PublishResult!]!
}
"""


class ReceiverFailure(Exception):
    """Raised by the receiver for events flagged ``fail``, to reach the dead-letter topic."""


class FireAndForgetTracker:
    """Records the delivery report of each fire-and-forget event in the ledger.

    The ``message_published`` signal names the message id only, and it may
    fire before ``publish`` returns the id to the resolver, so reports that
    arrive first wait in ``_early`` until the resolver registers the id.
    """

    def __init__(self, ledger: LedgerWriter) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._seqs: dict[str, int] = {}
        self._early: dict[str, str] = {}

    def register(self, message_id: str, seq: int) -> None:
        with self._lock:
            kind = self._early.pop(message_id, None)
            if kind is None:
                self._seqs[message_id] = seq
        if kind is not None:
            self._ledger.write(kind, seq, end=time.time())

    def report(self, message_id: str, kind: str) -> None:
        with self._lock:
            seq = self._seqs.pop(message_id, None)
            if seq is None:
                self._early[message_id] = kind
        if seq is not None:
            self._ledger.write(kind, seq, end=time.time())


def create_app() -> Flask:
    """Build the fault-test app from the ``FAULTS_*`` environment variables."""
    _configure_logging()
    env = os.environ
    topic = env["FAULTS_TOPIC"]
    ledger = LedgerWriter(Path(env["FAULTS_LEDGER_DIR"]), env.get("FAULTS_ROLE", "gunicorn"))
    delay = float(env.get("FAULTS_RECEIVER_DELAY", "0"))
    publish_timeout = float(env.get("FAULTS_PUBLISH_TIMEOUT", "5"))

    app = Flask("faults")
    app.config.update(
        HYPER_SERVICE_NAME="faults",
        HYPER_KAFKA={"bootstrap.servers": env["FAULTS_BOOTSTRAP"]},
        # A dead member's partitions move after 6 s (the broker's minimum)
        # instead of librdkafka's default 45 s, to keep the scenarios short.
        HYPER_KAFKA_CONSUMER={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1500},
        HYPER_CONSUMER_GROUP=env["FAULTS_GROUP"],
        HYPER_CONSUMER_POLL_TIMEOUT=0.5,
        HYPER_PUBLISH_TIMEOUT=publish_timeout,
        HYPER_RETRY_BACKOFF=float(env.get("FAULTS_RETRY_BACKOFF", "0.05")),
        HYPER_RETRY_BACKOFF_MAX=1.0,
    )

    tracker = FireAndForgetTracker(ledger)
    hyper = HyperService(type_defs=TYPE_DEFS, bindables=_bindables(topic, publish_timeout, tracker))
    hyper.init_app(app)
    _connect_receiver(hyper, topic, ledger, delay)
    _connect_delivery_reports(app, tracker)
    return app


def _configure_logging() -> None:
    # gunicorn configures only its own loggers: without a root handler the
    # library's INFO lines (consumer closed, producer closed) would be dropped.
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s",
        )


def _bindables(topic: str, publish_timeout: float, tracker: FireAndForgetTracker) -> list[Any]:
    query = QueryType()
    mutation = MutationType()

    @query.field("ping")
    def resolve_ping(*_: Any) -> str:
        return "pong"

    @mutation.field("publish")
    def resolve_publish(_: Any, info: Any, seq: int, fail: bool = False) -> dict[str, Any]:
        try:
            publish(topic, {"seq": seq, "fail": fail}, key=str(seq), wait=True)
        except PublishError as exc:
            return {"seq": seq, "ok": False, "error": str(exc)}
        return {"seq": seq, "ok": True, "error": None}

    @mutation.field("publishBatch")
    def resolve_publish_batch(
        _: Any, info: Any, seqs: list[int], fail: bool = False, wait: bool = True
    ) -> list[dict[str, Any]]:
        if wait:
            return _publish_and_wait(topic, seqs, fail, publish_timeout)
        return _publish_fire_and_forget(topic, seqs, fail, tracker)

    return [query, mutation]


def _publish_and_wait(topic: str, seqs: list[int], fail: bool, timeout: float) -> list[dict[str, Any]]:
    # Queue the whole batch first, then wait, so one request carries many
    # events without paying a broker round trip for each.
    results: dict[int, dict[str, Any]] = {}
    handles = []
    for seq in seqs:
        try:
            handles.append((seq, publish(topic, {"seq": seq, "fail": fail}, key=str(seq))))
        except PublishError as exc:
            results[seq] = {"seq": seq, "ok": False, "error": str(exc)}

    deadline = time.monotonic() + timeout
    for seq, handle in handles:
        try:
            handle.wait(max(0.0, deadline - time.monotonic()))
            results[seq] = {"seq": seq, "ok": True, "error": None}
        except PublishError as exc:
            results[seq] = {"seq": seq, "ok": False, "error": str(exc)}
    return [results[seq] for seq in seqs]


def _publish_fire_and_forget(
    topic: str, seqs: list[int], fail: bool, tracker: FireAndForgetTracker
) -> list[dict[str, Any]]:
    results = []
    for seq in seqs:
        try:
            handle = publish(topic, {"seq": seq, "fail": fail}, key=str(seq))
        except PublishError as exc:
            results.append({"seq": seq, "ok": False, "error": str(exc)})
            continue
        tracker.register(handle.message_id, seq)
        results.append({"seq": seq, "ok": True, "error": None})
    return results


def _connect_receiver(hyper: HyperService, topic: str, ledger: LedgerWriter, delay: float) -> None:
    @hyper.receiver(topic)
    def record_event(app: Flask, message: Message) -> None:
        start = time.time()
        seq = int(message.value["seq"])
        position = {"topic": message.topic, "partition": message.partition, "offset": message.offset}
        if message.value.get("fail"):
            ledger.write(FAILED, seq, start=start, end=time.time(), **position)
            raise ReceiverFailure(f"event {seq} is flagged to fail")

        if delay:
            time.sleep(delay)
        ledger.write(HANDLED, seq, start=start, end=time.time(), **position)


def _connect_delivery_reports(app: Flask, tracker: FireAndForgetTracker) -> None:
    def on_published(sender: Flask, *, message_id: str, **_: Any) -> None:
        tracker.report(message_id, ACKED)

    def on_failed(sender: Flask, *, message_id: str, **_: Any) -> None:
        tracker.report(message_id, UNDELIVERED)

    signals.message_published.connect(on_published, sender=app, weak=False)
    signals.publish_failed.connect(on_failed, sender=app, weak=False)
