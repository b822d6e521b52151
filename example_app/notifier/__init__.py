"""The notifier service: admin notifications for ``user.created`` and ``mail.sent``.

Run it with ``gunicorn -c python:flask_hyper.gunicorn_conf 'example_app.notifier:create_app()'``.
"""

from __future__ import annotations

from flask import Flask

from flask_hyper import HyperService

from .. import db
from ..settings import configure
from .api import bindables, type_defs
from .receivers import on_mail_sent, on_user_created

SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    text TEXT NOT NULL,
    correlation_id TEXT,
    message_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- One notification per event subject, even when an event is published twice.
    UNIQUE (kind, subject_id)
);
"""


def create_app() -> Flask:
    """Create the notifier service app from the environment (see :mod:`example_app.settings`)."""
    app = Flask(__name__)
    settings = configure(app, "notifier")
    db.init_app(app, SCHEMA)
    hyper = HyperService(app, type_defs=type_defs, bindables=bindables)
    hyper.receiver(settings.user_created_topic)(on_user_created)
    hyper.receiver(settings.mail_sent_topic)(on_mail_sent)
    return app
