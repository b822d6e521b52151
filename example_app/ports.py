"""Free TCP ports for the services the demo and the tests start."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return ``count`` distinct ports that were free on ``host`` a moment ago.

    The probe sockets stay bound until all ports are chosen, so no port is
    returned twice. Another process may still take one before it is used,
    which then shows up as a failure to listen.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            probe = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            probe.bind((host, 0))
            ports.append(probe.getsockname()[1])
        return ports
