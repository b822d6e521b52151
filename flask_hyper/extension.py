"""The :class:`HyperService` Flask extension."""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Sequence, TypeVar

from ariadne import make_executable_schema
from blinker import ANY, Namespace, NamedSignal
from flask import Flask, Request, current_app, has_app_context
from graphql import GraphQLSchema

from . import signals
from .cloudevents import build_headers, current_correlation_id, new_message_id
from .config import Settings, load_settings
from .consumer import ConsumerThread
from .graphql import graphql_view
from .health import healthz_view, readyz_view
from .producer import DeliveryHandle, KafkaProducer
from .serializers import JsonSerializer, Serializer
from .stats import Stats

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
ContextFactory = Callable[[dict[str, Any], Request], Any]

_states: "weakref.WeakSet[_AppState]" = weakref.WeakSet()


class _AppState:
    """The per-app state of :class:`HyperService`, stored in ``app.extensions["hyper"]``."""

    def __init__(self, service: "HyperService", app: Flask, settings: Settings) -> None:
        self.service = service
        self.app = app
        self.settings = settings
        self.schema: GraphQLSchema = service.schema
        self.serializer: Serializer = service.serializer
        self.stats = Stats()
        self.consumers: list[ConsumerThread] = []
        self.consumers_lock = threading.Lock()
        self.producer = KafkaProducer(
            settings.producer_config,
            name=settings.service_name,
            buffer_timeout=settings.producer_buffer_timeout,
            on_delivery=self._on_delivery,
        )

    def consumers_of_this_process(self) -> list[ConsumerThread]:
        """Return the consumer threads started in this process (not inherited by fork)."""
        pid = os.getpid()
        return [thread for thread in self.consumers if thread.pid == pid]

    def _on_delivery(self, handle: DeliveryHandle) -> None:
        if handle.error is None:
            self.stats.incr("published")
            if not signals.message_published.receivers:
                return
            signals.message_published.send(
                self.app,
                topic=handle.topic,
                partition=handle.partition,
                offset=handle.offset,
                message_id=handle.message_id,
            )
        else:
            self.stats.incr("publish_failed")
            logger.error(
                "message %s to %r not delivered: %s", handle.message_id, handle.topic, handle.error.str()
            )
            signals.publish_failed.send(
                self.app, topic=handle.topic, message_id=handle.message_id, error=handle.error
            )


class HyperService:
    """Make a Flask app a hyperservice: a GraphQL endpoint plus Kafka pub/sub.

    Pass an executable ``schema``, or ``type_defs`` and ``bindables`` for
    Ariadne's :func:`~ariadne.make_executable_schema`. ``context_factory`` is
    called as ``context_factory(context, request)`` with the default resolver
    context (a dict with ``request``, ``app``, ``hyper`` and
    ``correlation_id``) and returns the context resolvers get.

    One instance may be initialised on several apps; receivers connected to it
    run for messages consumed by any of them, with the app as sender.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        schema: GraphQLSchema | None = None,
        type_defs: str | Sequence[str] | None = None,
        bindables: Iterable[Any] | None = None,
        context_factory: ContextFactory | None = None,
        serializer: Serializer | None = None,
    ) -> None:
        self.schema = _build_schema(schema, type_defs, bindables)
        self.context_factory = context_factory
        self.serializer = serializer or JsonSerializer()
        self.signals = Namespace()
        if app is not None:
            self.init_app(app)

    # -- setup -------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Validate the app's ``HYPER_*`` keys, mount the endpoints, keep the state.

        Creates no Kafka client: clients are created in the process that first
        uses them, so this is safe in a gunicorn master before fork.
        """
        if "hyper" in app.extensions:
            raise RuntimeError(
                f"A HyperService is already registered on app {app.name!r}: create one"
                " HyperService per app, or reuse the registered one through"
                " app.extensions['hyper'].service."
            )

        settings = load_settings(app)
        state = _AppState(self, app, settings)
        app.extensions["hyper"] = state
        _states.add(state)
        self._add_routes(app, settings)

        if settings.consumer_autostart:
            _schedule_autostart(app)
        logger.info("hyperservice %s initialised on app %s", settings.service_name, app.name)

    def _add_routes(self, app: Flask, settings: Settings) -> None:
        app.add_url_rule(
            settings.graphql_path, "hyper.graphql", graphql_view, methods=["GET", "POST"]
        )
        if settings.health_path:
            app.add_url_rule(settings.health_path, "hyper.healthz", healthz_view)
        if settings.ready_path:
            app.add_url_rule(settings.ready_path, "hyper.readyz", readyz_view)

    # -- receiving ---------------------------------------------------------

    def signal(self, topic: str) -> NamedSignal:
        """Return the blinker signal sent for every message consumed from ``topic``."""
        return self.signals.signal(topic)

    def receiver(self, *topics: str) -> Callable[[F], F]:
        """Connect the decorated function to the signals of ``topics``.

        The function is called as ``fn(app, message=message)`` on a consumer
        thread, inside an app context pushed for that call. It is held
        strongly, unlike blinker's default.
        """
        if not topics:
            raise TypeError("receiver() needs at least one topic, as in @hyper.receiver('user.created')")

        def decorator(fn: F) -> F:
            for topic in topics:
                self.signal(topic).connect(fn, sender=ANY, weak=False)
            return fn

        return decorator

    def receiver_topics(self) -> list[str]:
        """Return every topic with at least one connected receiver."""
        return sorted(name for name, signal in self.signals.items() if signal.receivers)

    # -- publishing --------------------------------------------------------

    def publish(
        self,
        topic: str,
        value: Any,
        *,
        key: str | bytes | None = None,
        headers: dict[str, str | bytes] | None = None,
        type: str | None = None,
        wait: bool = False,
        timeout: float | None = None,
        app: Flask | None = None,
    ) -> DeliveryHandle:
        """Publish ``value`` to ``topic`` and return its :class:`DeliveryHandle`.

        Fire-and-forget unless ``wait`` is true; then this blocks until the
        broker acknowledged and raises :class:`PublishError` on failure. By
        default it waits for the final delivery report, which arrives within
        ``message.timeout.ms`` (``HYPER_PUBLISH_TIMEOUT`` unless set), so a
        failure means the message will not be delivered later. A shorter
        ``timeout`` raises :class:`PublishTimeout` while the message may still
        be delivered.
        ``type`` sets the CloudEvents ``ce_type`` (default: the topic).
        """
        state = _state(app)
        data, content_type = state.serializer.dumps(value)
        message_id = new_message_id()
        all_headers = build_headers(
            message_id=message_id,
            source=state.settings.service_name,
            event_type=type or topic,
            content_type=content_type,
            correlation_id=current_correlation_id(),
            extra=headers,
        )
        handle = state.producer.produce(
            topic, data, key=_key_bytes(key), headers=all_headers, message_id=message_id
        )
        if wait:
            handle.wait(state.settings.report_deadline if timeout is None else timeout)
        return handle

    # -- consumers -----------------------------------------------------------

    def start_consumers(
        self,
        app: Flask,
        *,
        topics: Sequence[str] | None = None,
        group_id: str | None = None,
        threads: int | None = None,
    ) -> list[ConsumerThread]:
        """Start the app's consumer threads in this process and return them.

        Starting twice in one process is a no-op that returns the running threads.
        """
        state = _state(app)
        with state.consumers_lock:
            running = [t for t in state.consumers_of_this_process() if t.is_alive()]
            if running:
                return running

            settings = state.settings
            topics = list(topics or settings.consumer_topics or self.receiver_topics())
            if not topics:
                logger.info("no receivers connected on %s, no consumer started", settings.service_name)
                return []

            started = [
                ConsumerThread(app, state, topics=topics, group_id=group_id or settings.consumer_group, index=i)
                for i in range(threads or settings.consumer_threads)
            ]
            for thread in started:
                thread.start()
            state.consumers = started
            return started

    def stop_consumers(self, app: Flask, timeout: float | None = None) -> bool:
        """Stop the app's consumer threads within ``timeout`` seconds in total.

        Returns whether all of them ended; those still running are daemon
        threads and do not keep the process alive.
        """
        state = _state(app)
        threads = state.consumers_of_this_process()
        budget = state.settings.consumer_stop_timeout if timeout is None else timeout
        for thread in threads:
            thread.request_stop()
        all_stopped = True
        deadline = _deadline(budget)
        for thread in threads:
            all_stopped &= thread.stop(max(0.0, deadline - _now()))
        return all_stopped

    def shutdown(self, app: Flask, timeout: float | None = None) -> int:
        """Stop consumers, then flush the producer; return the undelivered count."""
        state = _state(app)
        self.stop_consumers(app, timeout)
        return state.producer.close(state.settings.producer_flush_timeout)

    def stats(self, app: Flask | None = None) -> dict[str, int]:
        """Return this process's counters of message outcomes."""
        return _state(app).stats.snapshot()

    # -- GraphQL context -----------------------------------------------------

    def make_context(self, request: Request) -> Any:
        """Return the resolver context for ``request``."""
        context = {
            "request": request,
            "app": current_app._get_current_object(),  # type: ignore[attr-defined]
            "hyper": self,
            "correlation_id": current_correlation_id(),
        }
        if self.context_factory is None:
            return context
        return self.context_factory(context, request)


def publish(topic: str, value: Any, **kwargs: Any) -> DeliveryHandle:
    """Publish through the current app's :class:`HyperService` (see :meth:`HyperService.publish`)."""
    return _state(None).service.publish(topic, value, **kwargs)


def app_states() -> list[_AppState]:
    """Return the state of every app initialised in this process."""
    return list(_states)


def _state(app: Flask | None) -> _AppState:
    if app is None:
        if not has_app_context():
            raise RuntimeError(
                "No application context: call this inside a request, a receiver, a CLI"
                " command or 'with app.app_context():', or pass app=."
            )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return app.extensions["hyper"]
    except KeyError:
        raise RuntimeError(
            f"HyperService is not initialised on app {app.name!r}: did you forget to"
            " call hyper.init_app(app)?"
        ) from None


def _build_schema(
    schema: GraphQLSchema | None,
    type_defs: str | Sequence[str] | None,
    bindables: Iterable[Any] | None,
) -> GraphQLSchema:
    if schema is not None and type_defs is not None:
        raise TypeError("Pass either schema= or type_defs=, not both.")
    if schema is not None:
        return schema
    if type_defs is None:
        raise TypeError(
            "HyperService needs a GraphQL schema: pass schema= (an executable schema)"
            " or type_defs= with bindables=."
        )
    return make_executable_schema(type_defs, *(bindables or ()))


def _key_bytes(key: str | bytes | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return str(key).encode("utf-8")


def _schedule_autostart(app: Flask) -> None:
    # Under the debug reloader the watching parent never serves requests, and
    # the serving child has WERKZEUG_RUN_MAIN set: starting in the child only
    # (or at the first request) starts consumers once, not twice.
    if "gunicorn" in os.environ.get("SERVER_SOFTWARE", ""):
        return
    service: HyperService = app.extensions["hyper"].service
    if os.environ.get("WERKZEUG_RUN_MAIN") == "true":
        service.start_consumers(app)
        return

    @app.before_request
    def _start_consumers_once() -> None:
        service.start_consumers(app)


def _now() -> float:
    return time.monotonic()


def _deadline(seconds: float) -> float:
    return _now() + seconds
