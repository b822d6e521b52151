"""Start, watch and stop the example services as gunicorn process groups.

The demo and the end-to-end test start each service with
``gunicorn -c python:flask_hyper.gunicorn_conf 'example_app.<service>:create_app()'``
on a loopback port, in a session of its own, so stopping it signals the
master and its workers together.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping

from . import settings

logger = logging.getLogger(__name__)

SERVICES = ("users", "mailer", "notifier")
HOST = "127.0.0.1"
WORKERS = 2
# gunicorn and flask import example_app from their working folder.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# gunicorn's graceful_timeout in flask_hyper.gunicorn_conf is 30 s; the
# workers need well under that to stop idle consumers.
STOP_GRACE_SECONDS = 30.0
_POLL_SECONDS = 0.25
_PR_SET_PDEATHSIG = 1


class ServiceError(RuntimeError):
    """A service that exited or did not become ready; the message names its log."""


@dataclasses.dataclass
class ServiceProcess:
    """One service's gunicorn master, started in its own session."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def graphql_url(self) -> str:
        """URL of the service's GraphQL endpoint."""
        return f"{self.base_url}/graphql"

    def log_tail(self, lines: int = 30) -> str:
        """Return the last ``lines`` lines of the service's log."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log written)"


def service_env(
    *,
    bootstrap_servers: str,
    db_dir: Path,
    service: str,
    smtp_port: int,
    prefix: str = "",
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of ``service``: ``base`` (default ``os.environ``) plus its settings."""
    env = dict(os.environ if base is None else base)
    env.update(
        {
            settings.BOOTSTRAP_ENV: bootstrap_servers,
            settings.DB_PATH_ENV: str(db_dir / f"{service}.sqlite3"),
            settings.PREFIX_ENV: prefix,
            settings.SMTP_HOST_ENV: HOST,
            settings.SMTP_PORT_ENV: str(smtp_port),
        }
    )
    return env


def start_service(name: str, port: int, env: Mapping[str, str], log_dir: Path) -> ServiceProcess:
    """Start ``name`` under gunicorn with :data:`WORKERS` workers on 127.0.0.1:``port``.

    The master gets SIGTERM when the calling thread exits (Linux), so a
    killed demo does not leave services behind.
    """
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}: pick one of {', '.join(SERVICES)}")

    log_file = log_dir / f"{name}.log"
    command = [
        sys.executable, "-m", "gunicorn",
        "-c", "python:flask_hyper.gunicorn_conf",
        "--bind", f"{HOST}:{port}",
        "--workers", str(WORKERS),
        "--name", f"example-{name}",
        f"example_app.{name}:create_app()",
    ]
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            env=dict(env),
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_terminate_with_parent_hook(),
        )
    logger.info("started %s (pid %d) on port %d, log %s", name, process.pid, port, log_file)
    return ServiceProcess(name, port, process, log_file)


def wait_ready(services: list[ServiceProcess], timeout: float) -> None:
    """Wait until every service returns 200 on ``/readyz``; raise :class:`ServiceError` otherwise."""
    deadline = time.monotonic() + timeout
    pending = list(services)
    while pending:
        for service in list(pending):
            if service.process.poll() is not None:
                raise ServiceError(
                    f"{service.name} exited with code {service.process.returncode} during startup;"
                    f" log {service.log_file}:\n{service.log_tail()}"
                )
            if _is_ready(service):
                pending.remove(service)
        if not pending:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(s.name for s in pending)
            raise ServiceError(
                f"{names} not ready within {timeout:.0f} s: read {pending[0].log_file}:\n{pending[0].log_tail()}"
            )
        time.sleep(_POLL_SECONDS)


def stop_services(services: list[ServiceProcess], grace: float = STOP_GRACE_SECONDS) -> None:
    """Send SIGTERM to every service's process group, then SIGKILL what is left after ``grace`` s."""
    for service in services:
        _signal_group(service, signal.SIGTERM)

    deadline = time.monotonic() + grace
    for service in services:
        try:
            service.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s, killing it", service.name, grace)
        # Workers are in the master's group: kill any that outlived their master.
        _signal_group(service, signal.SIGKILL)
        service.process.wait()


def create_topics(env: Mapping[str, str], timeout: float = 60.0) -> str:
    """Run ``flask hyper topics create`` with the users service's config; return its output.

    Raises :class:`ServiceError` with the command's output when it fails.
    """
    command = [sys.executable, "-m", "flask", "--app", "example_app.users:create_app", "hyper", "topics", "create"]
    result = subprocess.run(
        command,
        env=dict(env),
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise ServiceError(f"{' '.join(command[2:])} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def _is_ready(service: ServiceProcess) -> bool:
    try:
        with urllib.request.urlopen(f"{service.base_url}/readyz", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        # Not listening yet, or 503 while the producer or consumers start.
        return False


def _signal_group(service: ServiceProcess, signum: int) -> None:
    try:
        os.killpg(service.process.pid, signum)
    except ProcessLookupError:
        pass


def _terminate_with_parent_hook() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        # NOTE: elsewhere a killed parent leaves the services running.
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent_pid = os.getpid()

    def hook() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl, when no signal would come.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGTERM)

    return hook
