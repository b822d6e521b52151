"""Loopback port checks and allocation for broker and controller listeners."""

import errno
import socket
from contextlib import ExitStack

from .errors import DevBrokerError

HOST = "127.0.0.1"


def ensure_port_free(port: int) -> None:
    """Raise DevBrokerError unless ``port`` can be bound on 127.0.0.1 right now."""
    if not 1 <= port <= 65535:
        raise DevBrokerError(f"invalid port {port}: pass a port between 1 and 65535")

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            raise DevBrokerError(
                f"port {port} on {HOST} is already in use: stop what listens there, "
                "pass another --port, or omit --port to pick a free one"
            ) from error


def allocate_free_ports(count: int, exclude: set[int] | None = None) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago.

    All probe sockets stay bound until every port is chosen, so the kernel cannot
    hand out the same port twice. Another process may still take a port before
    the broker binds it, which then shows up as a startup failure.
    """
    excluded = exclude or set()
    ports: list[int] = []

    with ExitStack() as stack:
        while len(ports) < count:
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
            if port not in excluded:
                ports.append(port)

    return ports


def is_listening(port: int, timeout: float = 0.5) -> bool:
    """Return whether a TCP connection to 127.0.0.1:``port`` succeeds."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False
