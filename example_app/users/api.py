"""GraphQL schema of the users service and its resolvers."""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

from ariadne import MutationType, QueryType
from graphql import GraphQLError

from flask_hyper import PublishError, publish

from ..db import get_db, new_id, now, transaction
from ..settings import current_settings

logger = logging.getLogger(__name__)

type_defs = """
type User {
    id: ID!
    email: String!
    name: String!
    createdAt: String!
}

type Query {
    users: [User!]!
    user(id: ID!): User
}

type Mutation {
    "Store a user and publish user.created; answers after the broker acknowledged."
    createUser(email: String!, name: String!): User!
}
"""

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 100

# Deliberately simple: one @, no spaces, a dot in the domain. Real
# deliverability is only known once a mail server accepts the address.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

query = QueryType()
mutation = MutationType()
bindables = [query, mutation]


@query.field("users")
def resolve_users(*_: Any) -> list[dict[str, Any]]:
    rows = get_db().execute("SELECT * FROM users ORDER BY created_at, id").fetchall()
    return [_user(row) for row in rows]


@query.field("user")
def resolve_user(_: Any, info: Any, id: str) -> dict[str, Any] | None:
    row = get_db().execute("SELECT * FROM users WHERE id = ?", (id,)).fetchone()
    return None if row is None else _user(row)


@mutation.field("createUser")
def resolve_create_user(_: Any, info: Any, email: str, name: str) -> dict[str, Any]:
    """Validate, store and publish in one transaction: a failed publish stores nothing."""
    email, name = email.strip(), name.strip()
    _validate(email, name)
    user = {"id": new_id(), "email": email, "name": name, "createdAt": now()}

    connection = get_db()
    # NOTE: the write lock is held while waiting for the broker's
    # acknowledgement, so a slow broker delays the other worker's createUser.
    with transaction(connection):
        _insert(connection, user)
        _publish_created(user)

    logger.info("created user %s <%s>, correlation id %s", user["id"], email, info.context["correlation_id"])
    return user


def _validate(email: str, name: str) -> None:
    # GraphQLError keeps its message in the response; other exceptions are masked.
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise GraphQLError(
            f"Invalid e-mail address {email!r}: use the form name@domain.tld"
            f" with at most {MAX_EMAIL_LENGTH} characters."
        )
    if not name or len(name) > MAX_NAME_LENGTH:
        raise GraphQLError(f"Invalid name {name!r}: use 1 to {MAX_NAME_LENGTH} characters.")


def _insert(connection: sqlite3.Connection, user: dict[str, Any]) -> None:
    try:
        connection.execute(
            "INSERT INTO users (id, email, name, created_at) VALUES (?, ?, ?, ?)",
            (user["id"], user["email"], user["name"], user["createdAt"]),
        )
    except sqlite3.IntegrityError:
        raise GraphQLError(f"A user with e-mail {user['email']!r} already exists.") from None


def _publish_created(user: dict[str, Any]) -> None:
    topic = current_settings().user_created_topic
    try:
        publish(topic, user, key=user["id"], wait=True)
    except PublishError as exc:
        logger.error("publishing %s for user %s failed: %s", topic, user["id"], exc)
        raise GraphQLError(
            f"User not created: publishing {topic} failed ({exc}). Retry when Kafka is reachable."
        ) from exc


def _user(row: sqlite3.Row) -> dict[str, Any]:
    return {"id": row["id"], "email": row["email"], "name": row["name"], "createdAt": row["created_at"]}
