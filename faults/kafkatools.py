"""Plain confluent-kafka helpers of the runner: topics, leaders, raw produce, dead-letter reads."""

from __future__ import annotations

import dataclasses
import re
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

_SEQ_PATTERN = re.compile(rb'"seq":\s*(\d+)')


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with its provenance headers decoded."""

    seq: int | None
    headers: dict[str, str]


def create_topics(
    bootstrap: str, topics: list[str], partitions: int, replication: int = 1, config: dict[str, str] | None = None
) -> None:
    """Create ``topics`` and wait until each one is created."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication, config=config or {}) for name in topics],
        request_timeout=30,
    )
    for future in futures.values():
        future.result(60)


def partition_leader(bootstrap: str, topic: str, partition: int) -> int:
    """Return the node id that leads ``topic[partition]`` now."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=20)
    return metadata.topics[topic].partitions[partition].leader


def group_coordinator(bootstrap: str, group: str) -> int:
    """Return the node id that coordinates consumer group ``group`` now."""
    # The client must outlive the future: a destroyed client never completes it.
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.describe_consumer_groups([group], request_timeout=20)
    return futures[group].result(30).coordinator.id


class RawProducer:
    """Produces bytes as given, bypassing flask-hyper's serializer, and records acknowledgements."""

    def __init__(self, bootstrap: str) -> None:
        self._client = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})

    def produce_and_wait(self, topic: str, value: bytes, headers: list[tuple[str, bytes]], timeout: float) -> tuple[int, int]:
        """Produce one record and return its (partition, offset) once acknowledged.

        Raises KafkaException when delivery fails and TimeoutError when no
        report arrives within ``timeout`` seconds.
        """
        outcome: dict[str, object] = {}

        def on_delivery(error: KafkaError | None, message: object) -> None:
            outcome["error"] = error
            outcome["message"] = message

        self._client.produce(topic, value, headers=headers, on_delivery=on_delivery)
        self._client.flush(timeout)
        if "error" not in outcome:
            raise TimeoutError(f"no delivery report for a record to {topic!r} within {timeout} s")
        if outcome["error"] is not None:
            raise KafkaException(outcome["error"])
        message = outcome["message"]
        return message.partition(), message.offset()  # type: ignore[attr-defined]


def read_dead_letters(bootstrap: str, topic: str, timeout: float = 30.0) -> list[DeadLetter]:
    """Read every record of ``topic`` from the start to the current end.

    Returns an empty list when the topic does not exist.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"faults-reader-{uuid.uuid4().hex}",
        "enable.auto.commit": False,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=20)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            return []
        return _read_to_end(consumer, topic, sorted(info.partitions), timeout)
    finally:
        consumer.close()


def _read_to_end(consumer: Consumer, topic: str, partitions: list[int], timeout: float) -> list[DeadLetter]:
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1] for p in partitions}
    pending = {p for p, end in ends.items() if end > 0}
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])

    letters: list[DeadLetter] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        letters.append(_dead_letter(message.value(), message.headers() or []))
        if message.offset() + 1 >= ends[message.partition()]:
            pending.discard(message.partition())
    if pending:
        raise TimeoutError(f"dead-letter topic {topic!r} not read to its end within {timeout} s")
    return letters


def _dead_letter(value: bytes | None, headers: list[tuple[str, bytes]]) -> DeadLetter:
    # Undecodable values are not JSON, so the id is found with a pattern
    # that the runner's payloads always contain.
    match = _SEQ_PATTERN.search(value or b"")
    decoded = {key: (raw or b"").decode("utf-8", errors="replace") for key, raw in headers}
    return DeadLetter(int(match.group(1)) if match else None, decoded)
