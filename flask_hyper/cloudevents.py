"""CloudEvents headers (Kafka protocol binding, binary mode) and correlation ids.

Every published message carries the required CloudEvents attributes as
``ce_*`` headers, so consumers written with any CloudEvents SDK understand it,
and a ``ce_correlationid`` extension attribute that follows one chain of events
across services.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Mapping

from flask import g, has_app_context, has_request_context, request

SPEC_VERSION = "1.0"
CORRELATION_HEADER = "ce_correlationid"
REQUEST_ID_HEADER = "X-Request-ID"

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_G_CORRELATION = "_hyper_correlation_id"


def build_headers(
    *,
    message_id: str,
    source: str,
    event_type: str,
    content_type: str,
    correlation_id: str,
    extra: Mapping[str, str | bytes] | None = None,
) -> list[tuple[str, bytes]]:
    """Return the headers of one message.

    Headers in ``extra`` come last and may not replace the CloudEvents ones.
    """
    headers = [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", message_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", _now().encode()),
        ("content-type", content_type.encode()),
        (CORRELATION_HEADER, correlation_id.encode()),
    ]
    for name, value in (extra or {}).items():
        if name.startswith("ce_") or name == "content-type":
            raise ValueError(
                f"header {name!r} is set by flask-hyper: pass type= to publish() to set"
                " ce_type, or use a header name without the 'ce_' prefix."
            )
        headers.append((name, value if isinstance(value, bytes) else str(value).encode()))
    return headers


def current_correlation_id() -> str:
    """Return the correlation id of the work in progress, creating one if needed.

    Inside a receiver it is the handled message's correlation id. Inside a
    request it comes from ``X-Request-ID`` or the trace id of ``traceparent``.
    Elsewhere each app context gets a new one.
    """
    if not has_app_context():
        return uuid.uuid4().hex

    existing = g.get(_G_CORRELATION)
    if existing:
        return existing

    correlation_id = _from_request() if has_request_context() else None
    correlation_id = correlation_id or uuid.uuid4().hex
    setattr(g, _G_CORRELATION, correlation_id)
    return correlation_id


def bind_correlation_id(correlation_id: str) -> None:
    """Make ``correlation_id`` the id of what is published in this app context."""
    setattr(g, _G_CORRELATION, correlation_id)


def _from_request() -> str | None:
    request_id = request.headers.get(REQUEST_ID_HEADER, "").strip()
    if request_id:
        return request_id[:200]
    match = _TRACEPARENT.match(request.headers.get("traceparent", "").strip())
    return match.group(1) if match else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
