"""Consumer threads: poll Kafka, dispatch each message, store its offset after.

Threading contract: each :class:`ConsumerThread` owns one confluent-kafka
``Consumer`` (they are not shared across threads) and runs every receiver of
the messages it polls on itself, through a :class:`~flask_hyper.dispatch.Dispatcher`.

Delivery is at-least-once. A message's offset is stored only after every
receiver returned or the message reached its dead-letter topic. librdkafka's
auto-commit timer commits stored offsets, and so do partition revokes and
close. A message whose handling was cut short (stop requested,
partition revoked) is consumed again, by this group member or another.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Sequence

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from flask import Flask

from .dispatch import Dispatcher, Outcome
from .logs import rate_limited
from .producer import keep_inherited_client

if TYPE_CHECKING:
    from .extension import _AppState

logger = logging.getLogger(__name__)
librdkafka_logger = rate_limited("flask_hyper.librdkafka")

_Partition = tuple[str, int]

# Slices of a keep-alive wait: short enough to notice a stop request quickly.
_KEEPALIVE_SLICE = 0.5

_consumer_threads: "weakref.WeakSet[ConsumerThread]" = weakref.WeakSet()


class ConsumerThread(threading.Thread):
    """One consumer of a consumer group, dispatching on its own thread."""

    def __init__(
        self,
        app: Flask,
        state: "_AppState",
        *,
        topics: Sequence[str],
        group_id: str,
        index: int,
    ) -> None:
        super().__init__(name=f"hyper-consumer[{group_id}#{index}]", daemon=True)
        self.app = app
        self.state = state
        self.settings = state.settings
        self.topics = list(topics)
        self.group_id = group_id
        self.pid = os.getpid()
        self.last_poll: float | None = None
        self.error: BaseException | None = None
        self._stop_requested = threading.Event()
        self._client: Any = None
        self._revoked: set[_Partition] = set()
        self._backlog: list[confluent_kafka.Message] = []
        self._current: confluent_kafka.Message | None = None
        self._dispatcher = Dispatcher(app, state, self._keepalive_wait)
        _consumer_threads.add(self)

    # -- lifecycle -------------------------------------------------------

    def request_stop(self) -> None:
        """Ask the thread to stop after the message it is handling."""
        self._stop_requested.set()

    def stop(self, timeout: float) -> bool:
        """Stop, wait up to ``timeout`` seconds, and return whether the thread ended."""
        self.request_stop()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout)
        if self.is_alive():
            logger.error(
                "consumer %s did not stop within %.1f s; offsets stored since its last"
                " commit will be consumed again by the group",
                self.name,
                timeout,
            )
            return False
        return True

    def is_polling(self) -> bool:
        """Return whether the thread is alive and polled within ``max.poll.interval.ms``."""
        if not self.is_alive() or self.last_poll is None:
            return False
        return time.monotonic() - self.last_poll < self.settings.max_poll_interval

    def run(self) -> None:
        try:
            self._consume()
        except BaseException as exc:
            self.error = exc
            # Logged here and kept on the thread for readiness checks and
            # `flask hyper consume`, which exits non-zero on it.
            logger.critical("consumer %s stopped by an error", self.name, exc_info=True)

    # -- poll loop -------------------------------------------------------

    def _consume(self) -> None:
        self._client = self._create_client()
        logger.info("consumer %s subscribing to %s", self.name, ", ".join(self.topics))
        self._client.subscribe(
            self.topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        try:
            while not self._stop_requested.is_set():
                self._handle_batch(self._next_batch())
        finally:
            self._close()

    def _create_client(self) -> Any:
        config = {
            **self.settings.consumer_config,
            "group.id": self.group_id,
            "error_cb": self._on_error,
            "on_commit": self._on_commit,
            "logger": librdkafka_logger,
        }
        return confluent_kafka.Consumer(config)

    def _next_batch(self) -> list[confluent_kafka.Message]:
        self._dispatcher.forget_receivers()
        if self._backlog:
            batch, self._backlog = self._backlog, []
        else:
            self.last_poll = time.monotonic()
            batch = self._poll_batch()
            self.last_poll = time.monotonic()

        # Cleared only now: a revoke served inside consume() has already
        # purged the revoked partitions' messages, so every message of this
        # batch belongs to the current assignment, including partitions
        # assigned again in the same call. Revokes served later, by
        # keep-alive polls, apply to the messages still in hand.
        self._revoked.clear()
        return batch

    def _poll_batch(self) -> list[confluent_kafka.Message]:
        # consume() with a timeout waits until the batch is full or the
        # timeout passes, which would hold a lone message back for the whole
        # timeout. So wait for the first message alone, then take what else
        # librdkafka has already fetched without waiting.
        first = self._client.poll(self.settings.consumer_poll_timeout)
        if first is None or self.settings.consumer_batch_size == 1:
            return [] if first is None else [first]
        more = self._client.consume(num_messages=self.settings.consumer_batch_size - 1, timeout=0)
        return [first, *more]

    def _handle_batch(self, batch: list[confluent_kafka.Message]) -> None:
        stored = False
        stop_requested = self._stop_requested
        dispatch = self._dispatcher.dispatch
        for kafka_message in batch:
            if stop_requested.is_set():
                break
            if kafka_message.error():
                self._on_message_error(kafka_message.error())
                continue

            if self._revoked and _partition_of(kafka_message) in self._revoked:
                # Revoked while this batch was in hand: the partition's next
                # owner starts from the committed offset, so it gets this message.
                continue

            self._current = kafka_message
            try:
                outcome = dispatch(kafka_message)
            finally:
                self._current = None
            if outcome is not Outcome.ABANDONED:
                stored |= self._store_offset(kafka_message)

        if stored and not self._auto_commit():
            self._commit(self._client, asynchronous=True)

    def _store_offset(self, kafka_message: confluent_kafka.Message) -> bool:
        try:
            self._client.store_offsets(message=kafka_message)
            return True
        except KafkaException as exc:
            # Storing fails with _STATE once the partition has a new owner,
            # which consumes the message again from the committed offset.
            logger.warning(
                "consumer %s could not store offset %s of %s[%d], partition revoked during"
                " handling, the new owner consumes it again: %s",
                self.name,
                kafka_message.offset(),
                kafka_message.topic(),
                kafka_message.partition(),
                exc.args[0].str(),
            )
            self.state.stats.incr("offset_store_failed")
            return False

    # -- keep-alive during backoff ----------------------------------------

    def _keepalive_wait(self, seconds: float) -> bool:
        """Wait ``seconds`` while polling with every partition paused.

        Polling keeps this member in its group (``max.poll.interval.ms``) and
        serves rebalances. Messages polled meanwhile (from partitions assigned
        during the wait, which are not paused) are kept in order for later.
        Returns False when a stop was requested or the current message's
        partition was revoked.
        """
        client = self._client
        client.pause(client.assignment())
        deadline = time.monotonic() + seconds
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                if self._stop_requested.is_set() or self._current_revoked():
                    return False
                kafka_message = client.poll(min(remaining, _KEEPALIVE_SLICE))
                self.last_poll = time.monotonic()
                if kafka_message is not None:
                    self._keep_for_later(kafka_message)
        finally:
            client.resume(client.assignment())
        return not (self._stop_requested.is_set() or self._current_revoked())

    def _current_revoked(self) -> bool:
        current = self._current
        return current is not None and _partition_of(current) in self._revoked

    def _keep_for_later(self, kafka_message: confluent_kafka.Message) -> None:
        if kafka_message.error():
            self._on_message_error(kafka_message.error())
            return
        self._backlog.append(kafka_message)
        self._client.pause([TopicPartition(kafka_message.topic(), kafka_message.partition())])

    # -- rebalance callbacks (run inside poll/consume on this thread) -------

    def _on_assign(self, client: Any, partitions: list[TopicPartition]) -> None:
        logger.info("consumer %s assigned %s", self.name, _describe(partitions))
        # librdkafka keeps a partition's pause flag across revoke and assign: a
        # partition paused by a keep-alive wait and revoked before the wait
        # resumed it would otherwise be assigned again but never fetched.
        client.resume(partitions)

    def _on_revoke(self, client: Any, partitions: list[TopicPartition]) -> None:
        logger.info("consumer %s revoked %s", self.name, _describe(partitions))
        self._forget(partitions)
        # With auto-commit on, librdkafka itself commits stored offsets before
        # it unassigns. A second, synchronous commit here would block close()
        # for the whole coordinator timeout when the broker is down.
        if not self._auto_commit():
            self._commit(client, asynchronous=False)

    def _on_lost(self, client: Any, partitions: list[TopicPartition]) -> None:
        logger.warning(
            "consumer %s lost %s without a clean revoke (session timed out?);"
            " uncommitted messages are consumed again by the new owner",
            self.name,
            _describe(partitions),
        )
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        removed = {(p.topic, p.partition) for p in partitions}
        self._revoked |= removed
        self._backlog = [m for m in self._backlog if _partition_of(m) not in removed]

    # -- errors, commits, close ------------------------------------------

    def _on_message_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise KafkaException(error)
        librdkafka_logger.warning("consumer %s: %s", self.name, error.str())
        self.state.stats.incr("consumer_errors")

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            logger.error("consumer %s fatal error: %s", self.name, error.str())
        else:
            librdkafka_logger.warning("consumer %s error: %s", self.name, error.str())

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None and error.code() != KafkaError._NO_OFFSET:
            logger.warning(
                "consumer %s failed to commit offsets of %s: %s; the group consumes"
                " them again from the last commit",
                self.name,
                _describe(partitions),
                error.str(),
            )

    def _auto_commit(self) -> bool:
        return str(self.settings.consumer_config.get("enable.auto.commit", True)).lower() != "false"

    def _commit(self, client: Any, *, asynchronous: bool) -> None:
        try:
            client.commit(asynchronous=asynchronous)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                logger.warning("consumer %s commit failed: %s", self.name, exc.args[0].str())

    def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if os.getpid() != self.pid:
            return
        try:
            client.close()
            logger.info("consumer %s closed", self.name)
        except KafkaException as exc:
            logger.error("consumer %s close failed: %s", self.name, exc.args[0].str())


def _partition_of(kafka_message: confluent_kafka.Message) -> _Partition:
    return (kafka_message.topic(), kafka_message.partition())


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"


def _after_fork_in_child() -> None:
    # The thread did not survive the fork, but its client object did: keep it
    # from being destroyed in the child, where destroying it can hang.
    for thread in list(_consumer_threads):
        if thread._client is not None:
            keep_inherited_client(thread._client)
            thread._client = None


os.register_at_fork(after_in_child=_after_fork_in_child)
