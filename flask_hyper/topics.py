"""Creating the topics declared in ``HYPER_TOPICS``, dead-letter topics included."""

from __future__ import annotations

import concurrent.futures
import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from .config import Settings
from .logs import rate_limited

logger = logging.getLogger(__name__)


def declared_topics(settings: Settings) -> dict[str, dict[str, Any]]:
    """Return every declared topic and, where enabled, its dead-letter topic."""
    topics: dict[str, dict[str, Any]] = {}
    for name, spec in settings.topics.items():
        topics[name] = spec
        dead_letter = settings.dead_letter_topic_for(name)
        if spec["dead_letter"] and dead_letter and dead_letter not in settings.topics:
            topics[dead_letter] = {**spec, "dead_letter": False}
    return topics


def create_topics(settings: Settings, timeout: float = 30.0) -> dict[str, str]:
    """Create missing declared topics; return each topic's outcome.

    An outcome is ``"created"`` or ``"exists"``. Existing topics are left as
    they are, so running this twice changes nothing. Other failures raise
    :class:`~confluent_kafka.KafkaException`, and an unreachable cluster
    raises :class:`TimeoutError`.
    """
    requested = declared_topics(settings)
    if not requested:
        return {}

    admin = _admin_client(settings)
    new_topics = [
        NewTopic(name, spec["partitions"], spec["replication_factor"], config=spec["config"])
        for name, spec in requested.items()
    ]
    futures = admin.create_topics(new_topics, request_timeout=timeout)

    outcomes = {}
    for name, future in futures.items():
        try:
            future.result(timeout)
            outcomes[name] = "created"
            logger.info("created topic %s", name)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"creating topic {name!r} timed out after {timeout} s: check that"
                f" {settings.admin_config.get('bootstrap.servers')} is reachable"
            ) from None
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcomes[name] = "exists"
    return outcomes


def list_topics(settings: Settings, timeout: float = 10.0) -> dict[str, int]:
    """Return every topic of the cluster with its partition count."""
    metadata = _admin_client(settings).list_topics(timeout=timeout)
    return {name: len(topic.partitions) for name, topic in sorted(metadata.topics.items())}


def _admin_client(settings: Settings) -> AdminClient:
    return AdminClient({**settings.admin_config, "logger": rate_limited("flask_hyper.librdkafka")})
