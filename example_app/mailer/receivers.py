"""The mailer's receiver: send a welcome mail for ``user.created``, publish ``mail.sent``.

Idempotency, step by step, for a message redelivered after a crash or a
failed attempt:

1. A message already in ``processed_messages`` was fully handled: skip it.
2. The mail row is claimed by the message id (insert or ignore), so every
   attempt for the same message works on the same mail id.
3. The mail is sent over SMTP only while its row has status ``sending``, and the row
   becomes ``sent`` right after the SMTP server accepted it.
4. ``mail.sent`` is published with ``wait=True``; only then is the message
   recorded as processed. A crash between the two publishes ``mail.sent``
   again on redelivery, which the notifier ignores by mail id.

NOTE: a crash after the SMTP server accepted the mail but before the row
became ``sent`` sends the mail a second time on redelivery. SMTP has no
idempotent send, so this window can be narrowed but not closed.
"""

from __future__ import annotations

import logging
import smtplib
import sqlite3
from email.message import EmailMessage
from typing import Any

from flask import Flask

from flask_hyper import Message, publish

from ..db import claim_message, get_db, is_processed, message_key, new_id, now, transaction
from ..settings import ExampleSettings, current_settings

logger = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 10.0
CORRELATION_MAIL_HEADER = "X-Correlation-ID"


def on_user_created(app: Flask, message: Message) -> None:
    """Send the welcome mail of the user in ``message`` once, then publish ``mail.sent``.

    Raises on an SMTP or Kafka failure, so flask-hyper retries the message and
    finally sends it to the dead-letter topic.
    """
    connection = get_db()
    if is_processed(connection, message):
        logger.info("skipping %r: already processed", message)
        return

    settings = current_settings()
    mail = _claim_mail(connection, message)
    if mail["status"] != "sent":
        _send(settings, mail)
        _mark_sent(connection, mail["id"])
    else:
        logger.info("mail %s was sent by an earlier attempt, publishing only", mail["id"])

    publish(
        settings.mail_sent_topic,
        {"mailId": mail["id"], "userId": mail["user_id"], "to": mail["recipient"]},
        key=mail["user_id"],
        wait=True,
    )
    with transaction(connection):
        claim_message(connection, message)


def _claim_mail(connection: sqlite3.Connection, message: Message) -> sqlite3.Row:
    user = _user(message)
    with transaction(connection):
        connection.execute(
            "INSERT OR IGNORE INTO mails (id, message_id, user_id, recipient, subject, correlation_id, status)"
            " VALUES (?, ?, ?, ?, ?, ?, 'sending')",
            (
                new_id(),
                message_key(message),
                user["id"],
                user["email"],
                f"Welcome, {user['name']}!",
                message.correlation_id,
            ),
        )
        return connection.execute(
            "SELECT * FROM mails WHERE message_id = ?",
            (message_key(message),),
        ).fetchone()


def _user(message: Message) -> dict[str, Any]:
    value = message.value
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("id", "email", "name")):
        # Retrying cannot fix the payload; it ends in the dead-letter topic.
        raise ValueError(f"{message!r} has no user object with string id, email and name: {value!r}")
    return value


def _send(settings: ExampleSettings, mail: sqlite3.Row) -> None:
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = mail["recipient"]
    email["Subject"] = mail["subject"]
    if mail["correlation_id"]:
        email[CORRELATION_MAIL_HEADER] = mail["correlation_id"]
    email.set_content(f"{mail['subject']}\n\nYour account is ready.\n")

    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        smtp.send_message(email)
    logger.info("sent mail %s to %s, correlation id %s", mail["id"], mail["recipient"], mail["correlation_id"])


def _mark_sent(connection: sqlite3.Connection, mail_id: str) -> None:
    with transaction(connection):
        connection.execute("UPDATE mails SET status = 'sent', sent_at = ? WHERE id = ?", (now(), mail_id))
