"""GraphQL schema of the notifier service: the stored admin notifications."""

from __future__ import annotations

from typing import Any

from ariadne import QueryType

from ..db import get_db

type_defs = """
type Notification {
    id: ID!
    "user.created or mail.sent"
    kind: String!
    userId: ID!
    text: String!
    "Correlation id of the request that started the chain of events."
    correlationId: String
    messageId: String!
    createdAt: String!
}

type Query {
    "Admin notifications, oldest first."
    notifications: [Notification!]!
}
"""

query = QueryType()
bindables = [query]


@query.field("notifications")
def resolve_notifications(*_: Any) -> list[dict[str, Any]]:
    rows = get_db().execute("SELECT * FROM notifications ORDER BY created_at, id").fetchall()
    return [
        {
            "id": row["id"],
            "kind": row["kind"],
            "userId": row["user_id"],
            "text": row["text"],
            "correlationId": row["correlation_id"],
            "messageId": row["message_id"],
            "createdAt": row["created_at"],
        }
        for row in rows
    ]
