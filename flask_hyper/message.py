"""The message a receiver gets."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Sequence

import confluent_kafka

from .cloudevents import CORRELATION_HEADER
from .serializers import Serializer

RawHeaders = Sequence[tuple[str, bytes | None]]


class Message:
    """One consumed Kafka message, decoded.

    ``key`` is a ``str`` when it is valid UTF-8, else ``bytes``. ``headers``
    maps each header name to its last value, decoded as UTF-8 where valid.
    ``id``, ``type``, ``source`` and ``correlation_id`` come from the
    CloudEvents headers and are ``None`` for messages published without them.
    ``raw`` is the value as it was on the wire.

    Only the value is decoded up front. The other fields are read from the
    underlying confluent-kafka message on access, because most receivers
    read only the value and each field costs a call into librdkafka's binding.
    """

    __slots__ = ("_kafka_message", "value", "raw", "raw_headers", "_headers")

    def __init__(
        self,
        kafka_message: confluent_kafka.Message,
        value: Any,
        raw: bytes | None,
        raw_headers: RawHeaders,
    ) -> None:
        self._kafka_message = kafka_message
        self.value = value
        self.raw = raw
        self.raw_headers = raw_headers
        self._headers: dict[str, str | bytes] | None = None

    @property
    def topic(self) -> str:
        return self._kafka_message.topic()

    @property
    def partition(self) -> int:
        return self._kafka_message.partition()

    @property
    def offset(self) -> int:
        return self._kafka_message.offset()

    @property
    def key(self) -> str | bytes | None:
        return _maybe_text(self._kafka_message.key())

    @property
    def headers(self) -> dict[str, str | bytes]:
        if self._headers is None:
            self._headers = {name: _maybe_text(value) for name, value in self.raw_headers}
        return self._headers

    @property
    def timestamp(self) -> datetime | None:
        kind, millis = self._kafka_message.timestamp()
        if kind == confluent_kafka.TIMESTAMP_NOT_AVAILABLE:
            return None
        return datetime.fromtimestamp(millis / 1000.0, tz=timezone.utc)

    @property
    def id(self) -> str | None:
        return header_text(self.raw_headers, "ce_id")

    @property
    def type(self) -> str | None:
        return header_text(self.raw_headers, "ce_type")

    @property
    def source(self) -> str | None:
        return header_text(self.raw_headers, "ce_source")

    @property
    def correlation_id(self) -> str | None:
        return header_text(self.raw_headers, CORRELATION_HEADER)

    @property
    def content_type(self) -> str | None:
        return header_text(self.raw_headers, "content-type")

    def __repr__(self) -> str:
        return f"<Message {self.topic}[{self.partition}]@{self.offset} id={self.id}>"


def header_text(raw_headers: RawHeaders, name: str) -> str | None:
    """Return the last value of header ``name`` as text, or ``None``."""
    found = None
    for header_name, value in raw_headers:
        if header_name == name:
            found = value
    if isinstance(found, bytes):
        return found.decode("utf-8", errors="replace")
    return found


def build_message(kafka_message: confluent_kafka.Message, serializer: Serializer) -> Message:
    """Decode a consumed message; raise DeserializationError for a bad value."""
    raw = kafka_message.value()
    raw_headers = kafka_message.headers() or ()
    value = None if raw is None else serializer.loads(raw, header_text(raw_headers, "content-type"))
    return Message(kafka_message, value, raw, raw_headers)


def _maybe_text(value: bytes | str | None) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value
