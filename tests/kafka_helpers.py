"""Helpers shared by the Kafka tests."""

from __future__ import annotations

import time
from typing import Any, Callable

from ariadne import MutationType, QueryType
from confluent_kafka import Consumer, ConsumerGroupState
from confluent_kafka.admin import AdminClient, NewTopic
from flask import Flask

from flask_hyper import HyperService, publish

TYPE_DEFS = """
type Query { ping: String! }
type Mutation { createUser(email: String!): String! }
"""


def create_topics(bootstrap: str, *topics: str, partitions: int = 2) -> None:
    """Create ``topics`` and wait until the broker confirms each."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(t, partitions, 1) for t in topics])
    for future in futures.values():
        future.result(30)


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s: {condition}")


def make_service(bootstrap: str, name: str, topic: str, **config: Any) -> tuple[HyperService, Flask]:
    """Return a users-like service whose createUser mutation publishes to ``topic``."""
    query, mutation = QueryType(), MutationType()
    query.set_field("ping", lambda *_: "pong")

    @mutation.field("createUser")
    def resolve_create_user(*_, email):
        handle = publish(topic, {"email": email}, key=email, wait=True)
        return handle.message_id

    hyper = HyperService(type_defs=TYPE_DEFS, bindables=[query, mutation])
    app = Flask(name)
    defaults = {"HYPER_RETRY_BACKOFF": 0.05, "HYPER_CONSUMER_POLL_TIMEOUT": 0.2}
    app.config.update(HYPER_KAFKA={"bootstrap.servers": bootstrap}, **{**defaults, **config})
    hyper.init_app(app)
    return hyper, app


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """Read ``count`` messages from the start of ``topic`` with a throwaway group."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time_ns()}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    messages = []
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                messages.append(message)
    finally:
        consumer.close()
    return messages


def every_member_assigned(bootstrap, group, count):
    """Return the members once ``count`` of them each own a partition."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(10)
    members = description.members
    if description.state != ConsumerGroupState.STABLE or len(members) != count:
        return None
    if not all(member.assignment.topic_partitions for member in members):
        return None
    return members
