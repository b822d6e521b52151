"""gunicorn server hooks that run the consumers in every worker.

Use them through the ready config module
(``gunicorn -c python:flask_hyper.gunicorn_conf 'pkg:create_app()'``) or import
them into your own config::

    from flask_hyper.gunicorn import on_starting, post_worker_init, worker_exit

Consumers start in ``post_worker_init``, after the app is loaded in the
worker, so no Kafka client is ever created in the master, with or without
``--preload``. ``worker_exit`` stops them and flushes the producer within
gunicorn's ``graceful_timeout``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from .extension import app_states

logger = logging.getLogger(__name__)

# gunicorn's exit code for a worker that cannot boot: the master stops
# instead of respawning it forever.
WORKER_BOOT_ERROR = 3

_GREEN_WORKERS = ("gevent", "eventlet")

# Share of graceful_timeout given to stopping consumers and to flushing the
# producer; the rest is margin for gunicorn itself.
_CONSUMER_SHARE = 0.4
_FLUSH_SHARE = 0.25


def on_starting(server: Any) -> None:
    """Reject green-thread worker classes before any worker starts (runs in the master)."""
    problem = _green_worker_problem(server.cfg.worker_class_str)
    if problem:
        logger.critical(problem)
        raise SystemExit(problem)


def post_worker_init(worker: Any) -> None:
    """Start the consumers of every HyperService app in this worker."""
    problem = _green_worker_problem(type(worker).__module__ + "." + type(worker).__name__)
    if problem:
        logger.critical(problem)
        sys.exit(WORKER_BOOT_ERROR)

    for state in app_states():
        threads = state.service.start_consumers(state.app)
        logger.info(
            "worker %s started %d consumer(s) for %s", worker.pid, len(threads), state.settings.service_name
        )


def worker_exit(server: Any, worker: Any) -> None:
    """Stop this worker's consumers, then flush its producers, within graceful_timeout."""
    graceful_timeout = float(server.cfg.graceful_timeout)
    for state in app_states():
        settings = state.settings
        state.service.stop_consumers(
            state.app, min(settings.consumer_stop_timeout, graceful_timeout * _CONSUMER_SHARE)
        )
        state.producer.close(min(settings.producer_flush_timeout, graceful_timeout * _FLUSH_SHARE))
    logger.info("worker %s stopped its consumers and producers", worker.pid)


def use_error_log(gunicorn_logger: Any) -> None:
    """Send flask-hyper's log lines to gunicorn's error log, at ``HYPER_LOG_LEVEL``.

    Only the ready config module calls this: an app that configures logging
    itself imports the hooks alone. Routing through handlers instead of
    gunicorn's ``logconfig_dict`` keeps the access log as configured, because
    any ``logconfig_dict`` switches the access log on.
    """
    library_logger = logging.getLogger("flask_hyper")
    library_logger.handlers = list(gunicorn_logger.error_log.handlers)
    library_logger.setLevel(os.environ.get("HYPER_LOG_LEVEL", "INFO").upper())
    library_logger.propagate = False
    logging.getLogger("flask_hyper.librdkafka").setLevel(logging.WARNING)


def _green_worker_problem(worker_class: str) -> str | None:
    if not any(name in worker_class.lower() for name in _GREEN_WORKERS):
        return None
    # librdkafka blocks in C, which a green thread cannot yield from, so one
    # consumer poll would stall every request of the worker
    # (confluent-kafka-python #612).
    return (
        f"flask-hyper cannot run with gunicorn worker class {worker_class!r}: librdkafka"
        " calls block every green thread. Use the 'sync' or 'gthread' worker class."
    )
