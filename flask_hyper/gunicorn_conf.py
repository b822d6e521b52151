"""A ready gunicorn config: ``gunicorn -c python:flask_hyper.gunicorn_conf 'pkg:create_app()'``.

Command-line options and ``GUNICORN_CMD_ARGS`` override these values.
"""

import os

from flask_hyper.gunicorn import on_starting as reject_green_workers
from flask_hyper.gunicorn import post_worker_init as start_consumers
from flask_hyper.gunicorn import use_error_log, worker_exit

__all__ = ["on_starting", "post_worker_init", "worker_exit"]

bind = os.environ.get("HYPER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
graceful_timeout = 30
timeout = 30


def on_starting(server):
    """Log flask-hyper's lines to gunicorn's error log; reject green workers."""
    use_error_log(server.log)
    reject_green_workers(server)


def post_worker_init(worker):
    """Log to the worker's error log, then start the consumers."""
    use_error_log(worker.log)
    start_consumers(worker)
