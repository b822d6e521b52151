"""Validation of librdkafka properties without creating a Kafka client.

A client must not be created in a process that will fork (the gunicorn master,
with ``--preload``), yet a misspelled property should fail in ``init_app``, not
in a worker much later. librdkafka's configuration object is only memory, so
setting each property on one through ``rd_kafka_conf_set`` checks the name and
the value with librdkafka's own rules and starts no thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
from functools import lru_cache
from typing import Any, Mapping

import confluent_kafka

from .errors import ConfigError

logger = logging.getLogger(__name__)

# Properties that confluent-kafka handles in Python and never passes to librdkafka.
PYTHON_PROPERTIES = frozenset(
    {
        "error_cb",
        "throttle_cb",
        "stats_cb",
        "on_delivery",
        "on_commit",
        "oauth_cb",
        "logger",
    }
)

_CONF_UNKNOWN = -2
_CONF_INVALID = -1


def validate_properties(properties: Mapping[str, Any], key: str) -> None:
    """Raise :class:`ConfigError` for an unknown or invalid librdkafka property.

    ``key`` is the configuration key the properties come from, named in the error.
    """
    if not isinstance(properties, Mapping):
        raise ConfigError(f"{key} must be a dict of librdkafka properties, got {properties!r}.")

    library = _librdkafka()
    if library is None:
        return

    conf = library.rd_kafka_conf_new()
    try:
        for name, value in properties.items():
            _check_property(library, conf, key, name, value)
    finally:
        library.rd_kafka_conf_destroy(conf)


def _check_property(library: Any, conf: int, key: str, name: str, value: Any) -> None:
    if not isinstance(name, str):
        raise ConfigError(f"{key} has a non-string property name {name!r}.")
    if name in PYTHON_PROPERTIES:
        return
    if not isinstance(value, (str, int, float, bool)):
        raise ConfigError(
            f"{key}[{name!r}] must be a string, number or bool, got"
            f" {type(value).__name__} {value!r}."
        )

    errstr = ctypes.create_string_buffer(512)
    result = library.rd_kafka_conf_set(
        conf, name.encode(), _as_text(value).encode(), errstr, ctypes.sizeof(errstr)
    )
    if result == _CONF_UNKNOWN:
        raise ConfigError(
            f"{key} has unknown librdkafka property {name!r}: check its spelling in"
            f" librdkafka's CONFIGURATION.md (librdkafka {confluent_kafka.libversion()[0]})."
        )
    if result == _CONF_INVALID:
        detail = errstr.value.decode(errors="replace")
        raise ConfigError(f"{key}[{name!r}] has an invalid value {value!r}: {detail}")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=1)
def _librdkafka() -> Any:
    """Load the librdkafka that confluent-kafka uses, or ``None`` if not found."""
    path = _bundled_library() or ctypes.util.find_library("rdkafka")
    if path is None:
        # NOTE: without a loadable librdkafka the properties are checked only
        # when the first client is created. This goes away if confluent-kafka
        # ever exposes configuration validation itself.
        logger.warning("librdkafka not found by path: Kafka properties are not validated early")
        return None

    library = ctypes.CDLL(path)
    library.rd_kafka_conf_new.restype = ctypes.c_void_p
    library.rd_kafka_conf_destroy.argtypes = [ctypes.c_void_p]
    library.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    library.rd_kafka_conf_set.restype = ctypes.c_int
    return library


def _bundled_library() -> str | None:
    # Binary wheels ship librdkafka beside the package, under a mangled name.
    package_dir = os.path.dirname(confluent_kafka.__file__)
    for pattern in ("../confluent_kafka.libs/librdkafka*", ".dylibs/librdkafka*"):
        found = sorted(glob.glob(os.path.join(package_dir, pattern)))
        if found:
            return found[0]
    return None
