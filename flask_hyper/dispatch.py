"""Dispatching one consumed message to its receivers, with retries and dead letters.

Threading contract: a :class:`Dispatcher` belongs to one consumer thread and
runs every receiver on that thread. Each receiver attempt runs in a Flask app
context pushed for it alone, so teardown functions (closing a database
session, for example) run after every attempt, as after a request.

A receiver that raises an :class:`Exception` is retried with exponential
backoff. When it still fails after ``HYPER_RETRY_ATTEMPTS`` attempts, the
message goes to its dead-letter topic once every other receiver has run. A
:class:`BaseException` that is not an ``Exception`` (``SystemExit``,
``KeyboardInterrupt``) is not caught: it stops the consumer thread.
"""

from __future__ import annotations

import enum
import logging
import time
import traceback
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import confluent_kafka
from flask import Flask

from . import signals
from .cloudevents import done_handling, handling
from .errors import DeserializationError, PublishError
from .message import Message, build_message

if TYPE_CHECKING:
    from .extension import _AppState

logger = logging.getLogger(__name__)

#: Waits the given seconds while keeping the consumer in its group; returns
#: False when the message must be abandoned (stop requested or partition revoked).
KeepAliveWait = Callable[[float], bool]

DLT_PREFIX = "hyper-dlt-"


class Outcome(enum.Enum):
    """The result of handling a message. The consumer stores its offset unless ABANDONED."""

    HANDLED = "handled"
    DEAD_LETTERED = "dead_lettered"
    ABANDONED = "abandoned"


class _Failure:
    __slots__ = ("receiver", "exception", "attempts")

    def __init__(self, receiver: Callable[..., Any], exception: Exception, attempts: int) -> None:
        self.receiver = receiver
        self.exception = exception
        self.attempts = attempts


class Dispatcher:
    """Decodes a message, calls its receivers and dead-letters what keeps failing."""

    def __init__(self, app: Flask, state: "_AppState", wait: KeepAliveWait) -> None:
        self.app = app
        self.state = state
        self.settings = state.settings
        self.wait = wait
        self._receivers: dict[str, list[Callable[..., Any]]] = {}
        self._counts: dict[str, int] | None = None

    def forget_receivers(self) -> None:
        """Look receivers up again for the next messages.

        The consumer calls this before each batch, so a receiver connected
        while it runs is called from the next batch on.
        """
        self._receivers.clear()

    def dispatch(self, kafka_message: confluent_kafka.Message) -> Outcome:
        """Handle one message and return its :class:`Outcome`."""
        counts = self._counts
        if counts is None:
            # Fetched here, on the consumer thread that owns the table.
            counts = self._counts = self.state.stats.table()
        counts["received"] = counts.get("received", 0) + 1
        try:
            message = build_message(kafka_message, self.state.serializer)
        except DeserializationError as exc:
            logger.error("undecodable message %s: %s", _position(kafka_message), exc)
            self.state.stats.incr("undecodable")
            return self._dead_letter(kafka_message, None, "undecodable", [], exc)

        receivers = self._receivers_of(message.topic)
        if not receivers:
            logger.warning("no receiver connected for %r, skipping %r", message.topic, message)
            self.state.stats.incr("unhandled")
            return Outcome.HANDLED

        if signals.message_received.receivers:
            signals.message_received.send(self.app, message=message)

        token = handling(message)
        try:
            failures = self._call_receivers(receivers, message)
        finally:
            done_handling(token)
        if failures is None:
            return Outcome.ABANDONED

        if failures:
            return self._dead_letter(
                kafka_message, message, "receiver-failed", failures, failures[0].exception
            )
        counts["handled"] = counts.get("handled", 0) + 1
        return Outcome.HANDLED

    def _receivers_of(self, topic: str) -> list[Callable[..., Any]]:
        receivers = self._receivers.get(topic)
        if receivers is None:
            receivers = list(self.state.service.signal(topic).receivers_for(self.app))
            self._receivers[topic] = receivers
        return receivers

    def _call_receivers(
        self, receivers: list[Callable[..., Any]], message: Message
    ) -> list[_Failure] | None:
        """Call each receiver once, retrying those that raise.

        Returns the receivers that failed every attempt, or None when the
        message was abandoned during a retry.
        """
        app = self.app
        failures: list[_Failure] = []
        for receiver in receivers:
            try:
                with app.app_context():
                    receiver(app, message=message)
                continue
            except Exception as exc:
                failure = self._retry(receiver, message, exc)
            if failure is None:
                continue
            if failure.attempts == 0:
                return None
            failures.append(failure)
        return failures

    def _retry(self, receiver: Callable[..., Any], message: Message, first_error: Exception) -> _Failure | None:
        """Retry a receiver whose first attempt raised ``first_error``.

        Returns None once an attempt succeeds, the failure after the last
        attempt, or a failure with ``attempts == 0`` when abandoned.
        """
        attempts = self.settings.retry_attempts
        attempt = 1
        error = first_error
        while True:
            self._report_failure(receiver, message, error, attempt)
            if attempt >= attempts:
                return _Failure(receiver, error, attempt)

            backoff = self.settings.retry_backoff * 2 ** (attempt - 1)
            self.state.stats.incr("retried")
            if not self.wait(min(backoff, self.settings.retry_backoff_max)):
                logger.warning("abandoning %r during retries; it will be consumed again", message)
                return _Failure(receiver, error, 0)
            attempt += 1

            try:
                with self.app.app_context():
                    receiver(self.app, message=message)
                return None
            except Exception as exc:
                error = exc

    def _report_failure(
        self, receiver: Callable[..., Any], message: Message, exc: Exception, attempt: int
    ) -> None:
        logger.warning(
            "receiver %s failed on %r (attempt %d of %d): %s: %s",
            _name(receiver),
            message,
            attempt,
            self.settings.retry_attempts,
            type(exc).__name__,
            exc,
            exc_info=exc if attempt == self.settings.retry_attempts else None,
        )
        self.state.stats.incr("failed")
        signals.message_failed.send(
            self.app, message=message, receiver=receiver, exception=exc, attempt=attempt
        )

    def _dead_letter(
        self,
        kafka_message: confluent_kafka.Message,
        message: Message | None,
        reason: str,
        failures: list[_Failure],
        exc: Exception,
    ) -> Outcome:
        topic = self.settings.dead_letter_topic_for(kafka_message.topic())
        if topic is None:
            logger.error(
                "dead-letter topic disabled (HYPER_DEAD_LETTER_TOPIC is None): skipping %s (%s)",
                _position(kafka_message),
                reason,
            )
            self.state.stats.incr("skipped")
            return Outcome.DEAD_LETTERED

        headers = _dead_letter_headers(kafka_message, reason, failures, exc)
        if not self._produce_until_acknowledged(topic, kafka_message, headers):
            return Outcome.ABANDONED

        logger.error("sent %s to dead-letter topic %r (%s)", _position(kafka_message), topic, reason)
        self.state.stats.incr("dead_lettered")
        signals.message_dead_lettered.send(
            self.app, message=message, dead_letter_topic=topic, reason=reason, exception=exc
        )
        return Outcome.DEAD_LETTERED

    def _produce_until_acknowledged(
        self, topic: str, kafka_message: confluent_kafka.Message, headers: list[tuple[str, bytes]]
    ) -> bool:
        # The offset is stored only after the dead letter is durable, so a
        # broker outage here delays the partition instead of losing the message.
        delay = self.settings.retry_backoff
        while True:
            try:
                handle = self.state.producer.produce(
                    topic,
                    kafka_message.value(),
                    key=kafka_message.key(),
                    headers=headers,
                    message_id=f"dlt-{_position(kafka_message)}",
                )
                handle.wait(self.settings.report_deadline)
                return True
            except PublishError as exc:
                logger.error("dead-lettering to %r failed, retrying in %.1f s: %s", topic, delay, exc)
            if not self.wait(delay):
                return False
            delay = min(delay * 2, self.settings.retry_backoff_max)


def _dead_letter_headers(
    kafka_message: confluent_kafka.Message,
    reason: str,
    failures: list[_Failure],
    exc: Exception,
) -> list[tuple[str, bytes]]:
    original = [(k, v) for k, v in (kafka_message.headers() or ()) if not k.startswith(DLT_PREFIX)]
    provenance = {
        "original-topic": kafka_message.topic(),
        "original-partition": str(kafka_message.partition()),
        "original-offset": str(kafka_message.offset()),
        "reason": reason,
        "exception-type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "exception-message": str(exc)[:1000],
        "receiver": ",".join(_name(f.receiver) for f in failures),
        "attempts": str(max((f.attempts for f in failures), default=0)),
        "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "stacktrace": "".join(traceback.format_exception(exc))[-4000:],
    }
    return original + [(DLT_PREFIX + name, value.encode()) for name, value in provenance.items()]


def _name(receiver: Callable[..., Any]) -> str:
    module = getattr(receiver, "__module__", None) or "?"
    return f"{module}.{getattr(receiver, '__qualname__', repr(receiver))}"


def _position(kafka_message: confluent_kafka.Message) -> str:
    return f"{kafka_message.topic()}[{kafka_message.partition()}]@{kafka_message.offset()}"
