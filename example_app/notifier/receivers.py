"""The notifier's receivers: one admin notification per ``user.created`` and ``mail.sent``.

Each receiver claims the message id and stores the notification in one
transaction, so a redelivered message changes nothing. The notification's
``UNIQUE (kind, subject_id)`` also absorbs an event published twice under two
message ids (the mailer may publish ``mail.sent`` again after a crash).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from flask_hyper import Message

from ..db import claim_message, get_db, message_key, new_id, now, transaction

logger = logging.getLogger(__name__)

USER_CREATED = "user.created"
MAIL_SENT = "mail.sent"


def on_user_created(app: Flask, message: Message) -> None:
    """Store a notification about the new user in ``message``."""
    user = _fields(message, "id", "email", "name")
    _store(message, USER_CREATED, user["id"], user["id"], f"New user {user['name']} <{user['email']}>")


def on_mail_sent(app: Flask, message: Message) -> None:
    """Store a notification about the welcome mail in ``message``."""
    mail = _fields(message, "mailId", "userId", "to")
    _store(message, MAIL_SENT, mail["mailId"], mail["userId"], f"Welcome mail {mail['mailId']} sent to {mail['to']}")


def _fields(message: Message, *names: str) -> dict[str, Any]:
    value = message.value
    if not isinstance(value, dict) or not all(isinstance(value.get(name), str) for name in names):
        # Retrying cannot fix the payload; it ends in the dead-letter topic.
        raise ValueError(f"{message!r} needs string fields {', '.join(names)}, got {value!r}")
    return value


def _store(message: Message, kind: str, subject_id: str, user_id: str, text: str) -> None:
    connection = get_db()
    with transaction(connection):
        if not claim_message(connection, message):
            logger.info("skipping %r: already processed", message)
            return
        connection.execute(
            "INSERT OR IGNORE INTO notifications"
            " (id, kind, subject_id, user_id, text, correlation_id, message_id, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (new_id(), kind, subject_id, user_id, text, message.correlation_id, message_key(message), now()),
        )
    logger.info("notification %s for %s, correlation id %s", kind, subject_id, message.correlation_id)
