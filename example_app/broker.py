"""The Kafka the demo runs on: an existing cluster, a local broker, or the embedded one."""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Callable

from confluent_kafka import KafkaException, Producer

from flask_hyper.devbroker import ensure_jars, start_cluster, start_embedded

from .settings import BOOTSTRAP_ENV

BROKER_START_TIMEOUT_SECONDS = 120.0
METADATA_TIMEOUT_SECONDS = 10.0


@dataclasses.dataclass
class Broker:
    """The demo's Kafka: its address, a description and a stop function (a no-op for an existing cluster)."""

    bootstrap_servers: str
    description: str
    #: False for librdkafka's mock cluster, which rejects CreateTopics requests.
    can_create_topics: bool
    stop: Callable[[], None]


def open_broker(announce: Callable[[str], None]) -> Broker:
    """Use ``KAFKA_BOOTSTRAP_SERVERS`` if set, else start a local broker.

    A real Kafka broker starts when ``java`` and ``mvn`` are on PATH, and
    ``announce`` reports when Maven fetches its jars (once). Otherwise the
    embedded mock cluster starts, which keeps messages in memory only.
    """
    existing = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if existing:
        return Broker(existing, f"the existing cluster at {existing} ({BOOTSTRAP_ENV})", True, lambda: None)

    if shutil.which("java") and shutil.which("mvn"):
        if ensure_jars().resolved_now:
            announce("kafka: resolved the Kafka jars with Maven")
        cluster = start_cluster(nodes=1, timeout=BROKER_START_TIMEOUT_SECONDS, die_with_parent=True)
        description = (
            f"a local Kafka {cluster.kafka_version} broker at {cluster.bootstrap_servers}"
            " (flask_hyper.devbroker, java and mvn found)"
        )
        return Broker(cluster.bootstrap_servers, description, True, cluster.stop)

    # NOTE: unlike the Kafka broker above, the mock cluster process outlives a
    # demo killed with SIGKILL; `python -m flask_hyper.devbroker status` cannot see it either.
    embedded = start_embedded()
    description = (
        f"the embedded development broker at {embedded.bootstrap_servers} (librdkafka's mock"
        " cluster, because java or mvn is missing: messages live in memory only)"
    )
    return Broker(embedded.bootstrap_servers, description, False, embedded.stop)


def touch_topics(bootstrap_servers: str, topics: list[str]) -> list[str]:
    """Make the embedded broker create ``topics`` through a producer's metadata requests.

    librdkafka's mock cluster rejects CreateTopics but creates a topic (with
    4 partitions) when a producer requests its metadata. Consumers do not
    trigger that, and they look for topics that appear later only every
    ``topic.metadata.refresh.interval.ms`` (5 minutes by default), so the
    topics must exist before the services subscribe. Returns one line per topic.
    """
    producer = Producer({"bootstrap.servers": bootstrap_servers})
    lines = []
    for topic in topics:
        try:
            metadata = producer.list_topics(topic=topic, timeout=METADATA_TIMEOUT_SECONDS)
        except KafkaException as exc:
            raise RuntimeError(f"metadata request for topic {topic!r} failed: {exc.args[0].str()}") from exc
        partitions = len(metadata.topics[topic].partitions)
        lines.append(f"{topic}: created by the embedded broker on first use ({partitions} partitions)")
    return lines
