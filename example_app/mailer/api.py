"""GraphQL schema of the mailer service: the mails it sent."""

from __future__ import annotations

from typing import Any

from ariadne import QueryType

from ..db import get_db

type_defs = """
type SentMail {
    id: ID!
    userId: ID!
    to: String!
    subject: String!
    correlationId: String
    sentAt: String!
}

type Query {
    "Welcome mails the SMTP server accepted, oldest first."
    sentMails: [SentMail!]!
}
"""

query = QueryType()
bindables = [query]


@query.field("sentMails")
def resolve_sent_mails(*_: Any) -> list[dict[str, Any]]:
    rows = get_db().execute("SELECT * FROM mails WHERE status = 'sent' ORDER BY sent_at, id").fetchall()
    return [
        {
            "id": row["id"],
            "userId": row["user_id"],
            "to": row["recipient"],
            "subject": row["subject"],
            "correlationId": row["correlation_id"],
            "sentAt": row["sent_at"],
        }
        for row in rows
    ]
