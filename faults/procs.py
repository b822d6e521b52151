"""Starting, signalling and reaping the gunicorn and ``flask hyper consume`` processes.

Every process starts in its own session (process group), with
``PR_SET_PDEATHSIG`` so it gets SIGTERM when the runner dies, and is listed
in :data:`STARTED` so :func:`stop_all` can end it on any exit path.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

_PR_SET_PDEATHSIG = 1

#: Every process this runner started, for the cleanup on exit.
STARTED: list["ManagedProcess"] = []


class ManagedProcess:
    """A child process in its own process group, logging to one file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_file: Path) -> None:
        self.name = name
        self.command = command
        self.log_file = log_file
        log = open(log_file, "ab")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.pid = self.process.pid
        STARTED.append(self)
        logger.info("started %s as pid %d", name, self.pid)

    def alive(self) -> bool:
        """Return whether the process has not exited yet."""
        return self.process.poll() is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process itself (not its group)."""
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds; return the exit code, or None if it still runs."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill_group(self) -> None:
        """SIGKILL the whole process group, for cleanup after a failure."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait(5.0)

    def log_text(self) -> str:
        """Return the process's log so far."""
        return self.log_file.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(
    name: str, env: dict[str, str], log_file: Path, port: int, graceful_timeout: int = 30
) -> ManagedProcess:
    """Start gunicorn with flask-hyper's config and two sync workers on ``port``."""
    command = [
        str(BIN / "gunicorn"),
        "-c", "python:flask_hyper.gunicorn_conf",
        "--bind", f"127.0.0.1:{port}",
        "--workers", "2",
        "--graceful-timeout", str(graceful_timeout),
        "--name", name,
        "--log-level", "info",
        "faults.app:create_app()",
    ]
    return ManagedProcess(name, command, env, log_file)


def start_consume(name: str, env: dict[str, str], log_file: Path) -> ManagedProcess:
    """Start ``flask hyper consume`` in the foreground, in the group from ``FAULTS_GROUP``."""
    command = [
        str(BIN / "flask"), "--app", "faults.app:create_app",
        "hyper", "consume", "--group", env["FAULTS_GROUP"],
    ]
    return ManagedProcess(name, command, {**env, "FAULTS_ROLE": "consume"}, log_file)


def wait_http_ok(port: int, path: str, timeout: float) -> None:
    """Wait until ``GET path`` responds 200, or raise TimeoutError naming the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"http://127.0.0.1:{port}{path} did not respond 200 within {timeout} s: see the process log")


def http_status(port: int, path: str, timeout: float = 10.0) -> int | None:
    """Return the status code of ``GET path``, or None when the request failed."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """Return the pids whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name in brackets may hold spaces: fields start after ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def wait_workers(master: ManagedProcess, count: int, timeout: float, exclude: set[int] = frozenset()) -> list[int]:
    """Wait until the gunicorn master has ``count`` workers not in ``exclude``; return their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [pid for pid in children(master.pid) if pid not in exclude]
        if len(workers) >= count:
            return workers
        time.sleep(0.1)
    raise TimeoutError(f"gunicorn {master.name} did not reach {count} workers within {timeout} s")


def stop_all() -> None:
    """SIGKILL every started process group that still runs."""
    for managed in STARTED:
        if managed.alive():
            logger.warning("killing %s (pid %d), still running at cleanup", managed.name, managed.pid)
        managed.kill_group()


def leftovers(marker: str) -> list[str]:
    """Return ``pgrep -af`` lines of processes whose command line contains ``marker``."""
    result = subprocess.run(["pgrep", "-af", marker], capture_output=True, text=True, check=False)
    own = str(os.getpid())
    return [line for line in result.stdout.splitlines() if line and line.split()[0] != own]


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
