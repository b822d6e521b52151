"""The ``HYPER_*`` configuration keys, their defaults and their validation.

Every key is read once, in :meth:`HyperService.init_app`, into a
:class:`Settings` object stored on the app's extension state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from flask import Flask

from .errors import ConfigError
from .kafkaconf import validate_properties

#: Defaults of every ``HYPER_*`` key. ``None`` means "derived from the app".
DEFAULTS: dict[str, Any] = {
    "HYPER_SERVICE_NAME": None,
    "HYPER_GRAPHQL_PATH": "/graphql",
    "HYPER_GRAPHQL_EXPLORER": None,
    "HYPER_GRAPHQL_DEBUG": None,
    "HYPER_GRAPHQL_INTROSPECTION": True,
    "HYPER_GRAPHQL_MAX_BODY_BYTES": 1024 * 1024,
    "HYPER_GRAPHQL_MAX_DEPTH": 15,
    "HYPER_GRAPHQL_MAX_COST": None,
    "HYPER_KAFKA": {},
    "HYPER_KAFKA_PRODUCER": {},
    "HYPER_KAFKA_CONSUMER": {},
    "HYPER_TOPICS": {},
    "HYPER_CONSUMER_TOPICS": None,
    "HYPER_CONSUMER_GROUP": None,
    "HYPER_CONSUMER_THREADS": 1,
    "HYPER_CONSUMER_AUTOSTART": False,
    "HYPER_CONSUMER_BATCH_SIZE": 100,
    "HYPER_CONSUMER_POLL_TIMEOUT": 1.0,
    "HYPER_CONSUMER_STOP_TIMEOUT": 10.0,
    "HYPER_RETRY_ATTEMPTS": 3,
    "HYPER_RETRY_BACKOFF": 0.5,
    "HYPER_RETRY_BACKOFF_MAX": 30.0,
    "HYPER_DEAD_LETTER_TOPIC": "{topic}.dlt",
    "HYPER_PUBLISH_TIMEOUT": 15.0,
    "HYPER_PRODUCER_BUFFER_TIMEOUT": 5.0,
    "HYPER_PRODUCER_FLUSH_TIMEOUT": 10.0,
    "HYPER_HEALTH_PATH": "/healthz",
    "HYPER_READY_PATH": "/readyz",
    "HYPER_READY_TIMEOUT": 2.0,
}

# Python types accepted per key. bool is checked apart because it is an int.
_TYPES: dict[str, tuple[type, ...]] = {
    "HYPER_SERVICE_NAME": (str, type(None)),
    "HYPER_GRAPHQL_PATH": (str,),
    "HYPER_GRAPHQL_EXPLORER": (bool, type(None)),
    "HYPER_GRAPHQL_DEBUG": (bool, type(None)),
    "HYPER_GRAPHQL_INTROSPECTION": (bool,),
    "HYPER_GRAPHQL_MAX_BODY_BYTES": (int,),
    "HYPER_GRAPHQL_MAX_DEPTH": (int, type(None)),
    "HYPER_GRAPHQL_MAX_COST": (int, type(None)),
    "HYPER_KAFKA": (dict,),
    "HYPER_KAFKA_PRODUCER": (dict,),
    "HYPER_KAFKA_CONSUMER": (dict,),
    "HYPER_TOPICS": (dict,),
    "HYPER_CONSUMER_TOPICS": (list, tuple, type(None)),
    "HYPER_CONSUMER_GROUP": (str, type(None)),
    "HYPER_CONSUMER_THREADS": (int,),
    "HYPER_CONSUMER_AUTOSTART": (bool,),
    "HYPER_CONSUMER_BATCH_SIZE": (int,),
    "HYPER_CONSUMER_POLL_TIMEOUT": (int, float),
    "HYPER_CONSUMER_STOP_TIMEOUT": (int, float),
    "HYPER_RETRY_ATTEMPTS": (int,),
    "HYPER_RETRY_BACKOFF": (int, float),
    "HYPER_RETRY_BACKOFF_MAX": (int, float),
    "HYPER_DEAD_LETTER_TOPIC": (str, type(None)),
    "HYPER_PUBLISH_TIMEOUT": (int, float),
    "HYPER_PRODUCER_BUFFER_TIMEOUT": (int, float),
    "HYPER_PRODUCER_FLUSH_TIMEOUT": (int, float),
    "HYPER_HEALTH_PATH": (str, type(None)),
    "HYPER_READY_PATH": (str, type(None)),
    "HYPER_READY_TIMEOUT": (int, float),
}

_POSITIVE = {
    "HYPER_GRAPHQL_MAX_BODY_BYTES",
    "HYPER_CONSUMER_THREADS",
    "HYPER_CONSUMER_BATCH_SIZE",
    "HYPER_RETRY_ATTEMPTS",
}

# Properties flask-hyper sets itself on the consumer: overriding them would
# break at-least-once delivery.
_REPORT_MARGIN_SECONDS = 2.0

_RESERVED_CONSUMER = {"enable.auto.offset.store", "on_commit", "group.id"}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The validated configuration of one app."""

    service_name: str
    graphql_path: str
    graphql_explorer: bool
    graphql_debug: bool
    graphql_introspection: bool
    graphql_max_body_bytes: int
    graphql_max_depth: int | None
    graphql_max_cost: int | None
    producer_config: dict[str, Any]
    consumer_config: dict[str, Any]
    admin_config: dict[str, Any]
    topics: dict[str, dict[str, Any]]
    consumer_topics: tuple[str, ...] | None
    consumer_group: str
    consumer_threads: int
    consumer_autostart: bool
    consumer_batch_size: int
    consumer_poll_timeout: float
    consumer_stop_timeout: float
    retry_attempts: int
    retry_backoff: float
    retry_backoff_max: float
    dead_letter_topic: str | None
    publish_timeout: float
    producer_buffer_timeout: float
    producer_flush_timeout: float
    health_path: str | None
    ready_path: str | None
    ready_timeout: float

    def dead_letter_topic_for(self, topic: str) -> str | None:
        """Return the dead-letter topic of ``topic``, or ``None`` when disabled."""
        if self.dead_letter_topic is None:
            return None
        return self.dead_letter_topic.format(topic=topic)

    @property
    def report_deadline(self) -> float:
        """Seconds within which a produced message's final delivery report arrives.

        That is ``message.timeout.ms`` plus a margin, because librdkafka
        expires messages in a scan that runs about once a second.
        """
        producer = self.producer_config
        message_timeout = producer.get("message.timeout.ms", producer.get("delivery.timeout.ms", 300000))
        return int(message_timeout) / 1000.0 + _REPORT_MARGIN_SECONDS

    @property
    def max_poll_interval(self) -> float:
        """The consumer's ``max.poll.interval.ms``, in seconds."""
        return int(self.consumer_config.get("max.poll.interval.ms", 300000)) / 1000.0


def load_settings(app: Flask) -> Settings:
    """Validate the app's ``HYPER_*`` keys and return them as :class:`Settings`.

    Raises :class:`ConfigError` naming the key and the fix for an unknown
    ``HYPER_*`` key, a value of the wrong type, an unknown or invalid
    librdkafka property, or a missing ``bootstrap.servers`` outside debug and
    testing.
    """
    raw = _read_keys(app.config)
    _check_types(raw)

    service_name = raw["HYPER_SERVICE_NAME"] or app.name
    kafka = _kafka_configs(raw, service_name)
    _bound_message_timeout(kafka["producer"], float(raw["HYPER_PUBLISH_TIMEOUT"]))
    _require_bootstrap(kafka["common"], app)

    return Settings(
        service_name=service_name,
        graphql_path=raw["HYPER_GRAPHQL_PATH"],
        graphql_explorer=_default_debug(raw["HYPER_GRAPHQL_EXPLORER"], app),
        graphql_debug=_default_debug(raw["HYPER_GRAPHQL_DEBUG"], app),
        graphql_introspection=raw["HYPER_GRAPHQL_INTROSPECTION"],
        graphql_max_body_bytes=raw["HYPER_GRAPHQL_MAX_BODY_BYTES"],
        graphql_max_depth=raw["HYPER_GRAPHQL_MAX_DEPTH"],
        graphql_max_cost=raw["HYPER_GRAPHQL_MAX_COST"],
        producer_config=kafka["producer"],
        consumer_config=kafka["consumer"],
        admin_config=kafka["common"],
        topics=_topics(raw["HYPER_TOPICS"]),
        consumer_topics=_optional_tuple(raw["HYPER_CONSUMER_TOPICS"]),
        consumer_group=raw["HYPER_CONSUMER_GROUP"] or service_name,
        consumer_threads=raw["HYPER_CONSUMER_THREADS"],
        consumer_autostart=raw["HYPER_CONSUMER_AUTOSTART"],
        consumer_batch_size=raw["HYPER_CONSUMER_BATCH_SIZE"],
        consumer_poll_timeout=float(raw["HYPER_CONSUMER_POLL_TIMEOUT"]),
        consumer_stop_timeout=float(raw["HYPER_CONSUMER_STOP_TIMEOUT"]),
        retry_attempts=raw["HYPER_RETRY_ATTEMPTS"],
        retry_backoff=float(raw["HYPER_RETRY_BACKOFF"]),
        retry_backoff_max=float(raw["HYPER_RETRY_BACKOFF_MAX"]),
        dead_letter_topic=raw["HYPER_DEAD_LETTER_TOPIC"],
        publish_timeout=float(raw["HYPER_PUBLISH_TIMEOUT"]),
        producer_buffer_timeout=float(raw["HYPER_PRODUCER_BUFFER_TIMEOUT"]),
        producer_flush_timeout=float(raw["HYPER_PRODUCER_FLUSH_TIMEOUT"]),
        health_path=raw["HYPER_HEALTH_PATH"],
        ready_path=raw["HYPER_READY_PATH"],
        ready_timeout=float(raw["HYPER_READY_TIMEOUT"]),
    )


def _read_keys(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(k for k in config if k.startswith("HYPER_") and k not in DEFAULTS)
    if unknown:
        raise ConfigError(
            f"Unknown configuration key {unknown[0]!r}: check its spelling against"
            f" the keys flask-hyper reads ({', '.join(sorted(DEFAULTS))})."
        )
    return {key: config.get(key, default) for key, default in DEFAULTS.items()}


def _check_types(raw: Mapping[str, Any]) -> None:
    for key, value in raw.items():
        expected = _TYPES[key]
        is_bool = isinstance(value, bool)
        if not isinstance(value, expected) or (is_bool and bool not in expected):
            names = " or ".join(t.__name__ for t in expected)
            raise ConfigError(
                f"{key} must be {names}, got {type(value).__name__} {value!r}:"
                f" set it to a value of that type."
            )
        if key in _POSITIVE and value < 1:
            raise ConfigError(f"{key} must be at least 1, got {value!r}.")


def _kafka_configs(raw: Mapping[str, Any], service_name: str) -> dict[str, dict[str, Any]]:
    common = dict(raw["HYPER_KAFKA"])
    validate_properties(common, "HYPER_KAFKA")
    validate_properties(raw["HYPER_KAFKA_PRODUCER"], "HYPER_KAFKA_PRODUCER")
    validate_properties(raw["HYPER_KAFKA_CONSUMER"], "HYPER_KAFKA_CONSUMER")

    reserved = _RESERVED_CONSUMER & set(raw["HYPER_KAFKA_CONSUMER"]) | (
        _RESERVED_CONSUMER & set(common)
    )
    if reserved:
        name = sorted(reserved)[0]
        if name == "group.id":
            raise ConfigError(
                "librdkafka property 'group.id' is set from HYPER_CONSUMER_GROUP (default:"
                " the service name): set HYPER_CONSUMER_GROUP instead."
            )
        raise ConfigError(
            f"librdkafka property {name!r} is managed by flask-hyper"
            " to store offsets only after receivers return: remove it from the config."
        )

    common.setdefault("client.id", service_name)
    producer = {"enable.idempotence": True, "acks": "all", **common, **raw["HYPER_KAFKA_PRODUCER"]}
    consumer = {
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        **common,
        **raw["HYPER_KAFKA_CONSUMER"],
        "enable.auto.offset.store": False,
    }
    return {"common": common, "producer": producer, "consumer": consumer}


def _bound_message_timeout(producer: dict[str, Any], publish_timeout: float) -> None:
    # librdkafka keeps retrying a message for message.timeout.ms (5 minutes by
    # default). Bounding it by the publish timeout means a caller whose wait
    # failed is not surprised by a delivery minutes later.
    if "message.timeout.ms" in producer or "delivery.timeout.ms" in producer:
        return
    producer["message.timeout.ms"] = max(1, int(publish_timeout * 1000))


def _require_bootstrap(common: Mapping[str, Any], app: Flask) -> None:
    if "bootstrap.servers" in common or app.debug or app.testing:
        return
    raise ConfigError(
        "HYPER_KAFKA has no 'bootstrap.servers': set it to the broker list, for example"
        " app.config['HYPER_KAFKA'] = {'bootstrap.servers': '127.0.0.1:9092'}."
    )


def _default_debug(value: bool | None, app: Flask) -> bool:
    return app.debug if value is None else value


def _optional_tuple(value: list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _topics(declared: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    topics: dict[str, dict[str, Any]] = {}
    for name, spec in declared.items():
        spec = {} if spec is None else spec
        if not isinstance(spec, Mapping):
            raise ConfigError(
                f"HYPER_TOPICS[{name!r}] must be a dict with 'partitions',"
                f" 'replication_factor' and 'config', got {spec!r}."
            )
        unknown = set(spec) - {"partitions", "replication_factor", "config", "dead_letter"}
        if unknown:
            raise ConfigError(
                f"HYPER_TOPICS[{name!r}] has unknown key {sorted(unknown)[0]!r}: use"
                " 'partitions', 'replication_factor', 'config' or 'dead_letter'."
            )
        topics[name] = {
            "partitions": int(spec.get("partitions", 1)),
            "replication_factor": int(spec.get("replication_factor", 1)),
            "config": dict(spec.get("config", {})),
            "dead_letter": bool(spec.get("dead_letter", True)),
        }
    return topics
