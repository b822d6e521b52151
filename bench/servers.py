"""Starting and stopping gunicorn and ``flask hyper consume`` on 127.0.0.1 for a section."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .common import REPO_ROOT, bench_env

WORKERS = 2
THREADS = 4
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """One child process in its own process group, stopped with the whole group."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.command = list(command)
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(
            self.command, env=env, cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def child_pids(self) -> list[int]:
        """Return the pids of this process's direct children (gunicorn's workers)."""
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it after STOP_TIMEOUT_SECONDS."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])


def gunicorn_command(app: str, port: int, hooks: bool) -> list[str]:
    """Return the gunicorn command line; ``hooks`` adds flask-hyper's server hooks."""
    command = [sys.executable, "-m", "gunicorn"]
    if hooks:
        command += ["-c", "python:flask_hyper.gunicorn_conf"]
    return command + [
        "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
        "--worker-class", "gthread", "--threads", str(THREADS), app,
    ]


def start_gunicorn(app: str, port: int, hooks: bool, extra_env: dict[str, str], log_path: Path) -> Server:
    """Start gunicorn and wait until it serves HTTP on ``port``."""
    env = {**bench_env(), **extra_env}
    server = Server(gunicorn_command(app, port, hooks), env, log_path)
    try:
        wait_for_http(port, server)
    except BaseException:
        server.stop()
        raise
    return server


def wait_for_http(port: int, server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{' '.join(server.command)} exited:\n{server.log_tail()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn on port {port} did not respond within {START_TIMEOUT_SECONDS} s")


def post_json(port: int, path: str, body: dict[str, Any], connection: Any = None) -> tuple[int, bytes]:
    """POST ``body`` as JSON and return status and body; reuses ``connection`` when given."""
    import json

    own = connection is None
    connection = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if own:
        connection.close()
    return response.status, data
