"""Starting and stopping real service processes in tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).parent
BIN_DIR = Path(sys.executable).parent


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(bootstrap: str, topic: str, group: str, ledger: Path, **extra: str) -> dict[str, str]:
    """Return the environment that configures tests/service_app.py."""
    return {
        **os.environ,
        "PYTHONPATH": str(TESTS_DIR),
        "SERVICE_BOOTSTRAP": bootstrap,
        "SERVICE_TOPIC": topic,
        "SERVICE_GROUP": group,
        "SERVICE_LEDGER": str(ledger),
        **extra,
    }


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``args`` in a new process group, output appended to ``log``."""
    with open(log, "ab") as log_file:
        return subprocess.Popen(
            args, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group of ``process`` if anything in it still runs."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


def group_alive(process: subprocess.Popen) -> bool:
    """Return whether any process of the group of ``process`` still runs."""
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    # The leader may be a zombie that only wait() removes.
    if process.poll() is None:
        return True
    result = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, check=False)
    return bool(result.stdout.strip())


def get_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    """GET ``url`` and return its status and decoded JSON body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def post_graphql(url: str, query: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST a GraphQL query and return the status and decoded JSON body."""
    body = json.dumps({"query": query}).encode()
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def read_ledger(ledger: Path) -> list[tuple[int, int]]:
    """Return the (pid, n) pairs recorded by tests/service_app.py."""
    if not ledger.exists():
        return []
    pairs = []
    for line in ledger.read_text().splitlines():
        pid, n = line.split()
        pairs.append((int(pid), int(n)))
    return pairs


def wait_exit(process: subprocess.Popen, timeout: float) -> float | None:
    """Wait for ``process`` to exit; return the seconds it took or None on timeout."""
    started = time.monotonic()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - started
