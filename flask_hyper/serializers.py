"""Turning published values into bytes and consumed bytes back into values."""

from __future__ import annotations

import json
from typing import Any, Protocol

from .errors import DeserializationError

JSON_CONTENT_TYPE = "application/json"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
BINARY_CONTENT_TYPE = "application/octet-stream"


class Serializer(Protocol):
    """The interface :class:`~flask_hyper.HyperService` uses to encode and decode values."""

    def dumps(self, value: Any) -> tuple[bytes, str]:
        """Encode ``value``; return the bytes and their content type."""

    def loads(self, data: bytes, content_type: str | None) -> Any:
        """Decode ``data``; raise :class:`DeserializationError` if it is invalid."""


class JsonSerializer:
    """Encode values as UTF-8 JSON; bytes and str pass through unchanged.

    Decoding follows the message's ``content-type`` header: JSON is parsed,
    ``text/*`` is decoded to ``str``, and any other declared type stays
    ``bytes``. A message without the header is parsed as JSON.
    """

    def __init__(self, *, default: Any = str, sort_keys: bool = False) -> None:
        self.default = default
        self.sort_keys = sort_keys
        # One encoder and decoder for every message: json.dumps builds a new
        # encoder per call whenever an option differs from its defaults.
        self._encode = json.JSONEncoder(
            default=default, sort_keys=sort_keys, separators=(",", ":")
        ).encode
        self._decode = json.JSONDecoder().decode

    def dumps(self, value: Any) -> tuple[bytes, str]:
        if isinstance(value, bytes):
            return value, BINARY_CONTENT_TYPE
        if isinstance(value, str):
            return value.encode("utf-8"), TEXT_CONTENT_TYPE
        return self._encode(value).encode("utf-8"), JSON_CONTENT_TYPE

    def loads(self, data: bytes, content_type: str | None) -> Any:
        media_type = (content_type or JSON_CONTENT_TYPE).split(";")[0].strip().lower()
        try:
            if media_type == JSON_CONTENT_TYPE or media_type.endswith("+json"):
                return self._decode(data.decode("utf-8"))
            if media_type.startswith("text/"):
                return data.decode("utf-8")
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DeserializationError(
                f"value is not valid {media_type}: {error}"
            ) from error
        return data
