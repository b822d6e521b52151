"""CloudEvents headers (Kafka protocol binding, binary mode) and correlation ids.

Every published message carries the required CloudEvents attributes as
``ce_*`` headers, so consumers written with any CloudEvents SDK understand it,
and a ``ce_correlationid`` extension attribute that follows one chain of events
across services.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import re
import time
from typing import Mapping, Protocol

from flask import g, has_app_context, has_request_context, request

SPEC_VERSION = "1.0"
CORRELATION_HEADER = "ce_correlationid"
REQUEST_ID_HEADER = "X-Request-ID"

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_G_CORRELATION = "_hyper_correlation_id"


class HasCorrelationId(Protocol):
    """Anything with a ``correlation_id``, such as a consumed message."""

    @property
    def correlation_id(self) -> str | None: ...


# The message whose receivers run on this thread (each thread has its own
# context, so consumer threads never see each other's message).
_handled_message: contextvars.ContextVar[HasCorrelationId | None] = contextvars.ContextVar(
    "hyper_handled_message", default=None
)
_SPEC_VERSION_BYTES = SPEC_VERSION.encode()

# Message ids are a random per-process prefix and a counter. They are unique
# like uuid4 but need no system call per message, which cost a third of the
# publish time under load. A forked child draws a new prefix.
_id_prefix = ""
_id_counter = itertools.count()


def new_message_id() -> str:
    """Return a new 32-hex-digit message id, unique across processes."""
    return f"{_id_prefix}{next(_id_counter):016x}"


def _reset_message_ids() -> None:
    global _id_prefix, _id_counter
    _id_prefix = os.urandom(8).hex()
    _id_counter = itertools.count()


_reset_message_ids()
os.register_at_fork(after_in_child=_reset_message_ids)


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
        ("ce_specversion", _SPEC_VERSION_BYTES),
        ("ce_id", message_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", _now().encode()),
        ("content-type", content_type.encode()),
        (CORRELATION_HEADER, correlation_id.encode()),
    ]
    if not extra:
        return headers

    for name, value in extra.items():
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
        return new_message_id()

    existing = g.get(_G_CORRELATION)
    if existing:
        return existing

    correlation_id = _from_handled_message() or (_from_request() if has_request_context() else None)
    correlation_id = correlation_id or new_message_id()
    setattr(g, _G_CORRELATION, correlation_id)
    return correlation_id


def handling(message: "HasCorrelationId") -> contextvars.Token:
    """Mark ``message`` as the one this thread's receivers handle now.

    Returns the token that :func:`done_handling` takes. The correlation id is
    read from the message only when a receiver publishes, so handling a
    message costs no header lookup.
    """
    return _handled_message.set(message)


def done_handling(token: contextvars.Token) -> None:
    """Forget the message marked by :func:`handling`."""
    _handled_message.reset(token)


def _from_handled_message() -> str | None:
    message = _handled_message.get()
    return None if message is None else message.correlation_id


def _from_request() -> str | None:
    request_id = request.headers.get(REQUEST_ID_HEADER, "").strip()
    if request_id:
        return request_id[:200]
    match = _TRACEPARENT.match(request.headers.get("traceparent", "").strip())
    return match.group(1) if match else None


_second_cache: tuple[int, str] = (-1, "")


def _now() -> str:
    """Return the current UTC time as RFC 3339 with milliseconds."""
    global _second_cache
    now = time.time()
    second = int(now)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)
    return f"{prefix}.{int((now - second) * 1000):03d}Z"
