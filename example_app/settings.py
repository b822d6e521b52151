"""Configuration of the example services, read from environment variables.

The demo, the Docker image, docker-compose.yml and the tests set the same
variables, listed in :data:`ENV_VARS`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Mapping

from flask import Flask, current_app

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
DB_PATH_ENV = "EXAMPLE_DB_PATH"
PREFIX_ENV = "EXAMPLE_NAME_PREFIX"
TOPIC_USER_CREATED_ENV = "EXAMPLE_TOPIC_USER_CREATED"
TOPIC_MAIL_SENT_ENV = "EXAMPLE_TOPIC_MAIL_SENT"
SMTP_HOST_ENV = "SMTP_HOST"
SMTP_PORT_ENV = "SMTP_PORT"
MAIL_FROM_ENV = "MAIL_FROM"
LOG_LEVEL_ENV = "EXAMPLE_LOG_LEVEL"

#: Every environment variable the services read, with its meaning.
ENV_VARS: dict[str, str] = {
    BOOTSTRAP_ENV: "Kafka bootstrap servers (required)",
    DB_PATH_ENV: "SQLite file of the service (default: <instance folder>/<service>.sqlite3)",
    PREFIX_ENV: "prefix of every topic name and consumer group id (default: none)",
    TOPIC_USER_CREATED_ENV: "name of the user.created topic before the prefix",
    TOPIC_MAIL_SENT_ENV: "name of the mail.sent topic before the prefix",
    SMTP_HOST_ENV: "SMTP server of the mailer (default: 127.0.0.1)",
    SMTP_PORT_ENV: "SMTP port of the mailer (default: 1025)",
    MAIL_FROM_ENV: "sender address of the welcome mails",
    LOG_LEVEL_ENV: "log level of the service (default: INFO)",
}

DEFAULT_USER_CREATED = "user.created"
DEFAULT_MAIL_SENT = "mail.sent"
TOPIC_PARTITIONS = 3


@dataclasses.dataclass(frozen=True)
class ExampleSettings:
    """Settings of one example service, read from the environment."""

    service: str
    db_path: Path
    user_created_topic: str
    mail_sent_topic: str
    smtp_host: str
    smtp_port: int
    mail_from: str


def configure(app: Flask, service: str, environ: Mapping[str, str] | None = None) -> ExampleSettings:
    """Fill ``app.config`` with the flask-hyper keys of ``service`` and store its settings.

    Raises :class:`RuntimeError` naming the variable when ``KAFKA_BOOTSTRAP_SERVERS``
    is missing or ``SMTP_PORT`` is not a number.
    """
    env = os.environ if environ is None else environ
    bootstrap = env.get(BOOTSTRAP_ENV, "").strip()
    if not bootstrap:
        raise RuntimeError(
            f"{BOOTSTRAP_ENV} is not set: set it to the Kafka broker list, for example"
            f" {BOOTSTRAP_ENV}=127.0.0.1:9092."
        )

    prefix = env.get(PREFIX_ENV, "")
    settings = ExampleSettings(
        service=service,
        db_path=Path(env.get(DB_PATH_ENV) or Path(app.instance_path) / f"{service}.sqlite3"),
        user_created_topic=prefix + env.get(TOPIC_USER_CREATED_ENV, DEFAULT_USER_CREATED),
        mail_sent_topic=prefix + env.get(TOPIC_MAIL_SENT_ENV, DEFAULT_MAIL_SENT),
        smtp_host=env.get(SMTP_HOST_ENV, "127.0.0.1"),
        smtp_port=_port(env.get(SMTP_PORT_ENV, "1025")),
        mail_from=env.get(MAIL_FROM_ENV, "welcome@example.com"),
    )

    app.config.update(hyper_config(settings, bootstrap, prefix))
    app.extensions["example"] = settings
    _configure_logging(env.get(LOG_LEVEL_ENV, "INFO"))
    return settings


def hyper_config(settings: ExampleSettings, bootstrap: str, prefix: str) -> dict[str, Any]:
    """Return the ``HYPER_*`` keys shared by the three services."""
    return {
        "HYPER_SERVICE_NAME": settings.service,
        "HYPER_KAFKA": {"bootstrap.servers": bootstrap},
        # Every service declares both topics, so any of them can create them.
        "HYPER_TOPICS": {
            settings.user_created_topic: {"partitions": TOPIC_PARTITIONS},
            settings.mail_sent_topic: {"partitions": TOPIC_PARTITIONS},
        },
        "HYPER_CONSUMER_GROUP": prefix + settings.service,
        "HYPER_GRAPHQL_EXPLORER": True,
    }


def current_settings() -> ExampleSettings:
    """Return the settings of the current app."""
    return current_app.extensions["example"]


def _port(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{SMTP_PORT_ENV} must be a port number, got {value!r}.") from None


def _configure_logging(level: str) -> None:
    # gunicorn configures only its own loggers; without a root handler the
    # services' and flask-hyper's INFO records would be dropped.
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level.upper(),
            format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        )
