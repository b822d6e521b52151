"""Exceptions raised by flask-hyper."""

from __future__ import annotations


class HyperError(Exception):
    """Base class of every error flask-hyper raises."""


class ConfigError(HyperError, ValueError):
    """A ``HYPER_*`` key or a librdkafka property has an invalid value."""


class PublishError(HyperError):
    """A message could not be handed to Kafka or was not acknowledged.

    ``topic`` names the topic and ``kafka_error`` carries the
    :class:`confluent_kafka.KafkaError` when librdkafka reported one.
    """

    def __init__(self, message: str, *, topic: str, kafka_error: object = None) -> None:
        super().__init__(message)
        self.topic = topic
        self.kafka_error = kafka_error


class PublishTimeout(PublishError):
    """The broker did not acknowledge a message within the given timeout.

    The message may still be delivered later: librdkafka keeps retrying until
    ``message.timeout.ms`` expires.
    """


class DeserializationError(HyperError):
    """A consumed message's value could not be decoded."""
