"""The mailer service: a welcome e-mail for each ``user.created``, GraphQL ``sentMails``.

Run it with ``gunicorn -c python:flask_hyper.gunicorn_conf 'example_app.mailer:create_app()'``.
"""

from __future__ import annotations

from flask import Flask

from flask_hyper import HyperService

from .. import db
from ..settings import configure
from .api import bindables, type_defs
from .receivers import on_user_created

SCHEMA = """
CREATE TABLE IF NOT EXISTS mails (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    correlation_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent')),
    sent_at TEXT
);
"""


def create_app() -> Flask:
    """Create the mailer service app from the environment (see :mod:`example_app.settings`)."""
    app = Flask(__name__)
    settings = configure(app, "mailer")
    db.init_app(app, SCHEMA)
    hyper = HyperService(app, type_defs=type_defs, bindables=bindables)
    hyper.receiver(settings.user_created_topic)(on_user_created)
    return app
