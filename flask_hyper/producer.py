"""The app's Kafka producer: lazy, fork-aware, with a delivery report thread.

Threading contract: :meth:`KafkaProducer.produce` may be called from any
thread (request threads, consumer threads, CLI commands). Delivery reports,
librdkafka's error callbacks and its log lines are served by one background
thread per producer, which starts with the first message and stops in
:meth:`KafkaProducer.close`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Sequence

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from .errors import PublishError, PublishTimeout
from .logs import rate_limited

logger = logging.getLogger(__name__)
# librdkafka repeats its connection errors every few hundred milliseconds
# while a broker is down, so its lines and error reports are rate limited.
librdkafka_logger = rate_limited("flask_hyper.librdkafka")

_producers: "weakref.WeakSet[KafkaProducer]" = weakref.WeakSet()

# librdkafka clients inherited across fork() are kept here forever: using or
# destroying them in the child can hang (librdkafka #393, confluent-kafka-python #1122).
_inherited_clients: list[Any] = []

DeliveryListener = Callable[["DeliveryHandle"], None]

# Guards the hand-over between a delivery report and a waiter. One lock for
# all handles, because creating an Event per message halves publish speed.
_completion_lock = threading.Lock()

# This process's id, refreshed in a forked child: os.getpid() per publish
# is a system call.
_process_pid = os.getpid()


class DeliveryHandle:
    """The outcome of one published message, completed by its delivery report.

    ``partition`` and ``offset`` are set once the broker acknowledged the
    message; ``error`` is set when it was not delivered.
    """

    __slots__ = ("topic", "message_id", "partition", "offset", "error", "_done", "_event", "_listener")

    def __init__(self, topic: str, message_id: str, listener: DeliveryListener | None) -> None:
        self.topic = topic
        self.message_id = message_id
        self.partition: int | None = None
        self.offset: int | None = None
        self.error: KafkaError | None = None
        self._done = False
        self._event: threading.Event | None = None
        self._listener = listener

    def done(self) -> bool:
        """Return whether the delivery report arrived."""
        return self._done

    def wait(self, timeout: float | None = None) -> "DeliveryHandle":
        """Block until the broker acknowledged the message and return this handle.

        Raises :class:`PublishTimeout` when no delivery report arrives within
        ``timeout`` seconds and :class:`PublishError` when delivery failed.
        """
        if not self._wait_for_report(timeout):
            raise PublishTimeout(
                f"message {self.message_id} to topic {self.topic!r} was not acknowledged"
                f" within {timeout} s; it stays queued and may still be delivered until"
                " message.timeout.ms passes: check that the brokers are reachable, or"
                " wait longer",
                topic=self.topic,
            )
        if self.error is not None:
            raise PublishError(
                f"message {self.message_id} to topic {self.topic!r} was not delivered:"
                f" {self.error.str()}",
                topic=self.topic,
                kafka_error=self.error,
            )
        return self

    def _wait_for_report(self, timeout: float | None) -> bool:
        with _completion_lock:
            if self._done:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)

    def _on_delivery(self, error: KafkaError | None, message: confluent_kafka.Message) -> None:
        if error is None:
            self.partition = message.partition()
            self.offset = message.offset()
        else:
            self.error = error
        with _completion_lock:
            self._done = True
            event = self._event
        if event is not None:
            event.set()
        if self._listener is not None:
            self._listener(self)

    def __repr__(self) -> str:
        if not self.done():
            state = "pending"
        elif self.error is not None:
            state = "failed"
        else:
            state = "delivered"
        return f"<DeliveryHandle {self.topic} {self.message_id} {state}>"


class KafkaProducer:
    """One confluent-kafka ``Producer``, created in the process that uses it.

    A client inherited across ``fork()`` is detected, never used nor
    destroyed, and replaced by a new one on next use. A fatal producer error
    (for example a fenced idempotent producer) replaces the client too.
    """

    def __init__(
        self,
        config: dict[str, Any],
        *,
        name: str,
        buffer_timeout: float,
        on_delivery: DeliveryListener | None = None,
    ) -> None:
        self._config = config
        self._name = name
        self._buffer_timeout = buffer_timeout
        self._on_delivery = on_delivery
        self._lock = threading.Lock()
        self._client: Any = None
        self._pid = os.getpid()
        self._poll_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._fatal: KafkaError | None = None
        _producers.add(self)

    def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        message_id: str,
    ) -> DeliveryHandle:
        """Queue one message and return its :class:`DeliveryHandle`.

        A full local queue is waited out for up to ``buffer_timeout`` seconds,
        then :class:`PublishError` is raised.
        """
        handle = DeliveryHandle(topic, message_id, self._on_delivery)
        deadline = time.monotonic() + self._buffer_timeout

        while True:
            client = self._client_for_this_process()
            try:
                client.produce(topic, value, key, headers=headers, on_delivery=handle._on_delivery)
                return handle
            except BufferError:
                if time.monotonic() >= deadline:
                    raise self._queue_full_error(topic) from None
                client.poll(0.05)
            except KafkaException as exc:
                self._raise_or_replace(exc, topic)

    def ping(self, timeout: float) -> str | None:
        """Return ``None`` when a broker returns metadata within ``timeout``, else the reason."""
        try:
            metadata = self._client_for_this_process().list_topics(timeout=timeout)
        except KafkaException as exc:
            return f"no broker answered within {timeout} s: {exc.args[0].str()}"
        if not metadata.brokers:
            return "the cluster reported no brokers"
        return None

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for queued messages; return how many remain."""
        client = self._own_client()
        return 0 if client is None else client.flush(timeout)

    def close(self, timeout: float) -> int:
        """Flush within ``timeout`` seconds, stop the report thread, return undelivered count.

        Messages that failed during the flush (expired, for example) are
        logged one by one by their delivery reports. The count covers only
        those still queued, so no message is counted twice.
        """
        # The report thread stops first, so that no delivery report is served
        # after the count below is taken.
        self._stopping.set()
        thread = self._poll_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

        remaining = self._flush_and_count(timeout)

        if remaining:
            logger.error(
                "producer %s closed with %d messages not delivered within %.1f s;"
                " they are lost unless published again",
                self._name,
                remaining,
                timeout,
            )
        else:
            logger.info("producer %s closed, every message delivered", self._name)
        return remaining

    def _own_client(self) -> Any:
        """Return the client created in this process, or None; never create one."""
        with self._lock:
            return self._client if self._pid == os.getpid() else None

    def _flush_and_count(self, timeout: float) -> int:
        client = self._own_client()
        if client is None:
            return 0
        client.flush(timeout)
        # flush() counts delivery reports that are ready but not yet served;
        # serving them first leaves only the messages still queued.
        client.poll(0)
        return len(client)

    def _client_for_this_process(self) -> Any:
        client = self._client
        if client is not None and self._pid == _process_pid:
            return client
        with self._lock:
            if self._pid != os.getpid():
                self._forget_inherited_client()
            if self._client is None:
                self._create_client()
            return self._client

    def _create_client(self) -> None:
        config = {"error_cb": self._on_error, "logger": librdkafka_logger, **self._config}
        client = confluent_kafka.Producer(config)
        self._client = client
        self._stopping.clear()
        self._poll_thread = threading.Thread(
            target=self._serve_delivery_reports,
            args=(client,),
            name=f"hyper-delivery-reports[{self._name}]",
            daemon=True,
        )
        self._poll_thread.start()
        logger.info("producer %s created in process %d", self._name, os.getpid())

    def _forget_inherited_client(self) -> None:
        if self._client is not None:
            keep_inherited_client(self._client)
            logger.info("producer %s inherited across fork, creating a new one", self._name)
        self._client = None
        self._poll_thread = None
        self._pid = os.getpid()

    def _serve_delivery_reports(self, client: Any) -> None:
        while not self._stopping.is_set():
            if self._fatal is None and self._client is not client:
                return
            try:
                client.poll(0.2)
            except Exception:
                # An exception raised by a delivery listener surfaces from poll();
                # it must not stop delivery reports for every other message.
                logger.exception("delivery report listener of producer %s raised", self._name)
            if self._fatal is not None:
                self._replace_fatal_client()
                return

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            logger.error("producer %s fatal error, recreating it: %s", self._name, error.str())
            self._fatal = error
        else:
            librdkafka_logger.warning("producer %s error: %s", self._name, error.str())

    def _replace_fatal_client(self) -> None:
        with self._lock:
            old, self._client, self._fatal = self._client, None, None
        if old is not None:
            # Purging completes every pending delivery handle with an error,
            # so no caller waits for a message the dead client will never send.
            old.purge()
            old.flush(0)
        logger.info("producer %s will be recreated on next publish", self._name)

    def _raise_or_replace(self, exc: KafkaException, topic: str) -> None:
        error: KafkaError = exc.args[0]
        if error.fatal():
            self._fatal = error
            self._replace_fatal_client()
            return
        raise PublishError(
            f"publishing to topic {topic!r} failed: {error.str()}", topic=topic, kafka_error=error
        ) from exc

    def _queue_full_error(self, topic: str) -> PublishError:
        limit = self._config.get("queue.buffering.max.messages", 100000)
        return PublishError(
            f"producer queue full ({limit} messages) for {self._buffer_timeout} s while"
            f" publishing to {topic!r}: the brokers are unreachable or slower than the"
            " publish rate; publish less, or raise queue.buffering.max.messages or"
            " HYPER_PRODUCER_BUFFER_TIMEOUT",
            topic=topic,
        )


def keep_inherited_client(client: Any) -> None:
    """Keep a librdkafka client inherited across fork() alive, never to be used."""
    _inherited_clients.append(client)


def _after_fork_in_child() -> None:
    global _process_pid
    _process_pid = os.getpid()
    for producer in list(_producers):
        producer._lock = threading.Lock()
        producer._forget_inherited_client()


os.register_at_fork(after_in_child=_after_fork_in_child)
