"""The WSGI apps the HTTP, latency and memory sections serve under gunicorn.

Each factory reads its broker and topics from ``BENCH_*`` environment
variables, which the section that starts gunicorn sets.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from ariadne import MutationType, QueryType, make_executable_schema
from flask import Flask

TYPE_DEFS = """
type Query {
  hello(name: String!): String!
}

type Mutation {
  emit(topic: String!, sentAt: Float!): Boolean!
}
"""


def _bindables(publish_fn: Any) -> list[Any]:
    query = QueryType()
    mutation = MutationType()

    @query.field("hello")
    def resolve_hello(_: Any, info: Any, name: str) -> str:
        return f"Hello, {name}!"

    @mutation.field("emit")
    def resolve_emit(_: Any, info: Any, topic: str, sentAt: float) -> bool:
        publish_fn(topic, {"sent_at": sentAt, "pad": "x" * 60})
        return True

    return [query, mutation]


def _kafka_config() -> dict[str, Any]:
    return {"bootstrap.servers": os.environ["BENCH_BOOTSTRAP"]}


def _producer_overrides() -> dict[str, Any]:
    return {"linger.ms": int(os.environ.get("BENCH_LINGER_MS", "5"))}


def create_hyper_app() -> Flask:
    """Build a HyperService with the bench schema and a receiver per ``BENCH_RECEIVER_TOPICS`` topic.

    With ``BENCH_LATENCY_FILE`` set, the receiver appends ``sent_at received_at``
    (seconds since the epoch) per message to that file.
    """
    from flask_hyper import HyperService, publish

    app = Flask("bench-hyper")
    app.config.update(
        HYPER_KAFKA=_kafka_config(),
        HYPER_KAFKA_PRODUCER=_producer_overrides(),
        HYPER_CONSUMER_GROUP=os.environ.get("BENCH_GROUP", "bench-hyper"),
    )
    hyper = HyperService(app, type_defs=TYPE_DEFS, bindables=_bindables(publish))
    topics = [topic for topic in os.environ.get("BENCH_RECEIVER_TOPICS", "").split(",") if topic]
    if topics:
        hyper.receiver(*topics)(_latency_recorder())
    return app


def _latency_recorder() -> Any:
    path = os.environ.get("BENCH_LATENCY_FILE")
    lock = threading.Lock()
    output = open(path, "a", buffering=1, encoding="ascii") if path else None

    def record(sender: Any, message: Any) -> None:
        received_at = time.time()
        if output is None:
            return
        with lock:
            output.write(f"{message.topic} {message.value['sent_at']!r} {received_at!r}\n")

    return record


def create_bare_ariadne_app() -> Any:
    """Ariadne's own WSGI app with the same schema; the mutation produces with a raw Producer."""
    from ariadne.wsgi import GraphQL

    return GraphQL(make_executable_schema(TYPE_DEFS, *_bindables(_raw_publisher())))


def create_flask_ariadne_app() -> Flask:
    """Build a Flask view calling Ariadne's graphql_sync, as a Flask user without flask-hyper would.

    It shares Flask's request handling with flask-hyper, so the gap between
    the two is flask-hyper's own work.
    """
    from ariadne import graphql_sync
    from flask import jsonify, request

    schema = make_executable_schema(TYPE_DEFS, *_bindables(_raw_publisher()))
    app = Flask("bench-flask-ariadne")

    @app.post("/graphql")
    def graphql_view() -> Any:
        _, result = graphql_sync(schema, request.get_json(), context_value={"request": request})
        return jsonify(result)

    @app.get("/")
    def index() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _raw_publisher() -> Any:
    """Return a publish function on a raw confluent-kafka Producer with hand-built headers.

    The producer is created on first use, in the worker, because a
    librdkafka client must not cross fork().
    """
    from confluent_kafka import Producer

    state: dict[str, Any] = {}
    lock = threading.Lock()

    def producer() -> Any:
        with lock:
            if "producer" not in state:
                config = {**_kafka_config(), "enable.idempotence": True, "acks": "all", **_producer_overrides()}
                state["producer"] = Producer(config)
            return state["producer"]

    def publish(topic: str, value: Any) -> None:
        headers = [
            ("ce_specversion", b"1.0"),
            ("ce_id", uuid.uuid4().hex.encode()),
            ("ce_source", b"bench-bare"),
            ("ce_type", topic.encode()),
            ("ce_time", datetime.now(timezone.utc).isoformat(timespec="milliseconds").encode()),
            ("content-type", b"application/json"),
            ("ce_correlationid", uuid.uuid4().hex.encode()),
        ]
        client = producer()
        client.produce(topic, json.dumps(value, separators=(",", ":")).encode(), headers=headers)
        client.poll(0)

    return publish


def create_plain_flask_app() -> Flask:
    """Build a Flask app with one JSON route and no Kafka, the baseline for worker memory."""
    app = Flask("bench-plain")

    @app.get("/")
    def index() -> dict[str, str]:
        return {"status": "ok"}

    return app
