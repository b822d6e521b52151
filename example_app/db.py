"""SQLite storage shared by the example services: one connection per app context.

Each gunicorn worker, request and receiver call opens its own connection, and
the app context teardown closes it, so no connection crosses a thread. The
database runs in WAL mode so readers in one worker do not block the writer in
another, and writers wait up to :data:`BUSY_TIMEOUT_MS` for each other.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from flask import Flask, g

from flask_hyper import Message

from .settings import current_settings

BUSY_TIMEOUT_MS = 15000

# Receivers record each handled message id here, in the transaction of their
# effect, so a redelivered message is recognised and skipped.
PROCESSED_MESSAGES_DDL = """
CREATE TABLE IF NOT EXISTS processed_messages (
    message_id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    processed_at TEXT NOT NULL
);
"""


def init_app(app: Flask, schema: str) -> None:
    """Create the app's tables (``schema`` is DDL) and close connections at teardown."""
    path = Path(app.extensions["example"].db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = connect(path)
    try:
        # WAL is a property of the file: setting it once serves every later connection.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(PROCESSED_MESSAGES_DDL + schema)
    finally:
        connection.close()
    app.teardown_appcontext(_close_connection)


def connect(path: Path) -> sqlite3.Connection:
    """Open a connection in autocommit mode; :func:`transaction` groups statements."""
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return connection


def get_db() -> sqlite3.Connection:
    """Return the connection of the current app context, opening it on first use."""
    if "example_db" not in g:
        g.example_db = connect(current_settings().db_path)
    return g.example_db


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction: commit on success, roll back on any error."""
    # IMMEDIATE takes the write lock at BEGIN, so two workers cannot both read
    # and then fail to upgrade to a write lock halfway.
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def claim_message(connection: sqlite3.Connection, message: Message) -> bool:
    """Record ``message`` as processed; return False when it was recorded before.

    Call it inside the :func:`transaction` of the message's effect: a rollback
    then undoes the claim too, and the redelivered message is processed again.
    """
    cursor = connection.execute(
        "INSERT OR IGNORE INTO processed_messages (message_id, topic, processed_at) VALUES (?, ?, ?)",
        (message_key(message), message.topic, now()),
    )
    return cursor.rowcount == 1


def is_processed(connection: sqlite3.Connection, message: Message) -> bool:
    """Return whether :func:`claim_message` recorded ``message`` before."""
    row = connection.execute(
        "SELECT 1 FROM processed_messages WHERE message_id = ?", (message_key(message),)
    ).fetchone()
    return row is not None


def message_key(message: Message) -> str:
    """Return the CloudEvents id of ``message``, or its position for messages without one."""
    return message.id or f"{message.topic}[{message.partition}]@{message.offset}"


def new_id() -> str:
    """Return a new random identifier (32 hex digits)."""
    return uuid.uuid4().hex


def now() -> str:
    """Return the current UTC time in ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _close_connection(exc: BaseException | None) -> None:
    connection = g.pop("example_db", None)
    if connection is not None:
        connection.close()
