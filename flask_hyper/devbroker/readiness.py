"""Wait until a broker node serves metadata requests, and read facts from its log."""

import logging
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from .errors import DevBrokerError
from .ports import HOST, is_listening

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.25
_METADATA_TIMEOUT_SECONDS = 2.0
_VERSION_PATTERN = re.compile(r"Kafka version: (\S+)")


def wait_for_node(
    node_id: int,
    port: int,
    log_files: Sequence[Path],
    is_alive: Callable[[], bool],
    deadline: float,
) -> None:
    """Block until node ``node_id`` lists itself as a registered broker in its metadata.

    ``deadline`` is a ``time.monotonic()`` value. Raises DevBrokerError with the
    tails of ``log_files`` as details when the process exits or the deadline
    passes first.
    """
    log_file = log_files[0]
    while True:
        if not is_alive():
            raise DevBrokerError(
                f"Kafka node {node_id} exited during startup: read {log_file}",
                details=_tail_logs(log_files),
            )
        if _node_registered(node_id, port):
            return
        if time.monotonic() >= deadline:
            raise DevBrokerError(
                f"Kafka node {node_id} on {HOST}:{port} was not ready before the "
                f"timeout: read {log_file}, or raise --timeout",
                details=_tail_logs(log_files),
            )
        time.sleep(_POLL_SECONDS)


def _node_registered(node_id: int, port: int) -> bool:
    # A plain TCP probe first, so librdkafka does not log a connection error per poll.
    if not is_listening(port):
        return False

    admin = AdminClient({"bootstrap.servers": f"{HOST}:{port}", "logger": logger})
    try:
        metadata = admin.list_topics(timeout=_METADATA_TIMEOUT_SECONDS)
    except KafkaException as error:
        logger.debug("node %d on port %d not ready yet: %s", node_id, port, error)
        return False
    return node_id in metadata.brokers


def read_kafka_version(log_file: Path) -> str:
    """Return the version from the ``Kafka version: X`` line of a broker log.

    Returns ``"unknown"`` when the line is missing, which a custom log
    configuration that drops INFO lines can cause.
    """
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "unknown"

    match = _VERSION_PATTERN.search(text)
    return match.group(1) if match else "unknown"


def _tail_logs(log_files: Sequence[Path]) -> str:
    return "\n".join(f"--- last lines of {path} ---\n{tail_log(path)}" for path in log_files)


def tail_log(log_file: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of ``log_file``, or a note when it does not exist."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"({log_file} does not exist)"
    return "\n".join(text.splitlines()[-lines:])
