"""A minimal GraphQL-over-HTTP client (urllib) for the demo and the tests."""

from __future__ import annotations

import dataclasses
import json
import urllib.error
import urllib.request
from typing import Any

REQUEST_ID_HEADER = "X-Request-ID"


@dataclasses.dataclass(frozen=True)
class GraphQLResponse:
    """Status, decoded JSON body and ``X-Request-ID`` of one GraphQL response."""

    status: int
    body: dict[str, Any]
    request_id: str | None

    @property
    def data(self) -> dict[str, Any] | None:
        """The ``data`` member, or None when the request failed as a whole."""
        return self.body.get("data")

    @property
    def error_messages(self) -> list[str]:
        """The message of every entry in ``errors``."""
        return [error.get("message", "") for error in self.body.get("errors") or []]


def execute(
    url: str,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    request_id: str | None = None,
    timeout: float = 30.0,
) -> GraphQLResponse:
    """POST ``query`` to ``url`` and return the response, also for 4xx statuses.

    Raises :class:`urllib.error.URLError` when the server cannot be reached
    and ``ValueError`` when the body is not JSON.
    """
    payload = json.dumps({"query": query, "variables": variables or {}}).encode()
    headers = {"Content-Type": "application/json"}
    if request_id:
        headers[REQUEST_ID_HEADER] = request_id
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")

    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _decode(response.status, response.read(), response.headers.get(REQUEST_ID_HEADER))
    except urllib.error.HTTPError as error:
        # GraphQL errors come with 400 and a JSON body worth reading.
        with error:
            return _decode(error.code, error.read(), error.headers.get(REQUEST_ID_HEADER))


def _decode(status: int, body: bytes, request_id: str | None) -> GraphQLResponse:
    try:
        decoded = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"GraphQL response with status {status} is not JSON: {body[:200]!r}") from exc
    return GraphQLResponse(status, decoded, request_id)
