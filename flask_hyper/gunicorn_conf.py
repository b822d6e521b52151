"""A ready gunicorn config: ``gunicorn -c python:flask_hyper.gunicorn_conf 'pkg:create_app()'``.

Command-line options and ``GUNICORN_CMD_ARGS`` override these values.
"""

import os

from flask_hyper.gunicorn import on_starting, post_worker_init, worker_exit

__all__ = ["on_starting", "post_worker_init", "worker_exit"]

bind = os.environ.get("HYPER_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "sync"
graceful_timeout = 30
timeout = 30

# gunicorn replaces its default "loggers" section with this one, so its own
# loggers are repeated here. flask-hyper's lines (consumer starts,
# assignments, retries, dead letters) go to the error log beside gunicorn's.
logconfig_dict = {
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
        "flask_hyper": {
            "level": os.environ.get("HYPER_LOG_LEVEL", "INFO"),
            "handlers": ["error_console"],
            "propagate": False,
        },
        "flask_hyper.librdkafka": {"level": "WARNING", "handlers": ["error_console"], "propagate": False},
    },
}
