"""The users service: GraphQL ``createUser``, ``users`` and ``user(id)``.

Run it with ``gunicorn -c python:flask_hyper.gunicorn_conf 'example_app.users:create_app()'``.
"""

from __future__ import annotations

from flask import Flask

from flask_hyper import HyperService

from .. import db
from ..settings import configure
from .api import bindables, type_defs

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"""


def create_app() -> Flask:
    """Create the users service app from the environment (see :mod:`example_app.settings`)."""
    app = Flask(__name__)
    configure(app, "users")
    db.init_app(app, SCHEMA)
    HyperService(app, type_defs=type_defs, bindables=bindables)
    return app
