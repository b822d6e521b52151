"""The ``flask hyper`` command group."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

import click
from confluent_kafka import KafkaException
from flask import current_app
from flask.cli import AppGroup

from .extension import _state as app_state
from .topics import create_topics, declared_topics, list_topics

logger = logging.getLogger(__name__)

hyper_cli = AppGroup("hyper", help="Run and manage the app's Kafka side.")
topics_cli = AppGroup("topics", help="Create and list Kafka topics.")
hyper_cli.add_command(topics_cli)


@hyper_cli.command("consume")
@click.option("--topic", "topics", multiple=True, help="Topic to consume; repeat for several. Default: every topic with a receiver.")
@click.option("--group", "group_id", default=None, help="Consumer group id. Default: HYPER_CONSUMER_GROUP.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Consumer threads. Default: HYPER_CONSUMER_THREADS.")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Level of flask-hyper's log lines, shown when the app configures no logging itself.",
)
def consume_command(topics: tuple[str, ...], group_id: str | None, threads: int | None, log_level: str) -> None:
    """Run the app's consumers in the foreground until Ctrl-C or SIGTERM."""
    _show_library_logs(log_level.upper())
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = _state()
    started = state.service.start_consumers(app, topics=topics or None, group_id=group_id, threads=threads)
    if not started:
        raise click.ClickException("No topic to consume: connect a receiver or pass --topic.")

    stop = threading.Event()
    _on_signals(stop)
    click.echo(f"Consuming {', '.join(started[0].topics)} in group {started[0].group_id} with {len(started)} thread(s). Ctrl-C stops.")
    while not stop.is_set() and all(thread.is_alive() for thread in started):
        stop.wait(0.5)

    dead = [thread for thread in started if not thread.is_alive() and thread.error is not None]
    undelivered = state.service.shutdown(app)
    if dead:
        raise click.ClickException(f"Consumer {dead[0].name} died: {dead[0].error!r}; see the log above.")
    if undelivered:
        sys.exit(1)


def _show_library_logs(level: str) -> None:
    # A foreground consumer is an application entry point: without a handler
    # its starts, assignments and retries would not be seen at all. An app
    # that configured logging itself keeps its configuration.
    if logging.getLogger().handlers or logging.getLogger("flask_hyper").handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"))
    library_logger = logging.getLogger("flask_hyper")
    library_logger.addHandler(handler)
    library_logger.setLevel(level)


def _state() -> Any:
    try:
        return app_state(None)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


def _on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        logger.info("received signal %d, stopping consumers", signum)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@topics_cli.command("create")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the brokers.")
def topics_create_command(timeout: float) -> None:
    """Create the topics declared in HYPER_TOPICS and their dead-letter topics."""
    settings = _state().settings
    if not declared_topics(settings):
        raise click.ClickException("HYPER_TOPICS declares no topic: add {'name': {'partitions': 3}} entries.")
    try:
        outcomes = create_topics(settings, timeout)
    except KafkaException as exc:
        raise click.ClickException(f"Creating topics failed: {exc.args[0].str()}") from exc
    except TimeoutError as exc:
        raise click.ClickException(str(exc)) from exc
    for name, outcome in outcomes.items():
        click.echo(f"{name}: {outcome}")


@topics_cli.command("list")
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the brokers.")
def topics_list_command(timeout: float) -> None:
    """List the cluster's topics with their partition counts."""
    settings = _state().settings
    try:
        topics = list_topics(settings, timeout)
    except KafkaException as exc:
        raise click.ClickException(f"Listing topics failed: {exc.args[0].str()}") from exc
    for name, partitions in topics.items():
        click.echo(f"{name}\t{partitions}")
