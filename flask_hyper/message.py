"""The message a receiver gets."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import confluent_kafka

from .cloudevents import CORRELATION_HEADER
from .serializers import Serializer


@dataclasses.dataclass(frozen=True)
class Message:
    """One consumed Kafka message, decoded.

    ``key`` is a ``str`` when it is valid UTF-8, else ``bytes``. ``headers``
    maps each header name to its last value, decoded as UTF-8 where valid.
    ``id``, ``type``, ``source`` and ``correlation_id`` come from the
    CloudEvents headers and are ``None`` for messages published without them.
    ``raw`` is the value as it was on the wire.
    """

    topic: str
    partition: int
    offset: int
    key: str | bytes | None
    value: Any
    headers: dict[str, str | bytes]
    timestamp: datetime | None
    raw: bytes | None

    @property
    def id(self) -> str | None:
        return _text(self.headers.get("ce_id"))

    @property
    def type(self) -> str | None:
        return _text(self.headers.get("ce_type"))

    @property
    def source(self) -> str | None:
        return _text(self.headers.get("ce_source"))

    @property
    def correlation_id(self) -> str | None:
        return _text(self.headers.get(CORRELATION_HEADER))

    @property
    def content_type(self) -> str | None:
        return _text(self.headers.get("content-type"))

    def __repr__(self) -> str:
        return f"<Message {self.topic}[{self.partition}]@{self.offset} id={self.id}>"


def decode_headers(kafka_message: confluent_kafka.Message) -> dict[str, str | bytes]:
    """Return the message's headers as a dict, values decoded where UTF-8."""
    decoded: dict[str, str | bytes] = {}
    for name, value in kafka_message.headers() or ():
        decoded[name] = _maybe_text(value)
    return decoded


def build_message(
    kafka_message: confluent_kafka.Message,
    headers: dict[str, str | bytes],
    serializer: Serializer,
) -> Message:
    """Decode a consumed message; raise DeserializationError for a bad value."""
    raw = kafka_message.value()
    content_type = _text(headers.get("content-type"))
    value = None if raw is None else serializer.loads(raw, content_type)
    return Message(
        topic=kafka_message.topic(),
        partition=kafka_message.partition(),
        offset=kafka_message.offset(),
        key=_maybe_text(kafka_message.key()),
        value=value,
        headers=headers,
        timestamp=_timestamp(kafka_message),
        raw=raw,
    )


def _timestamp(kafka_message: confluent_kafka.Message) -> datetime | None:
    kind, millis = kafka_message.timestamp()
    if kind == confluent_kafka.TIMESTAMP_NOT_AVAILABLE:
        return None
    return datetime.fromtimestamp(millis / 1000.0, tz=timezone.utc)


def _maybe_text(value: bytes | str | None) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def _text(value: str | bytes | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
