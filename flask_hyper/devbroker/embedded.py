"""Run librdkafka's mock cluster in a detached Python process, for machines without Java."""

import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DevBrokerError
from .locations import runs_dir
from .process import ProcessHandle, spawn, write_pids_file
from .readiness import tail_log

logger = logging.getLogger(__name__)

IN_MEMORY_WARNING = (
    "embedded mode runs librdkafka's mock cluster: messages live in memory only "
    "and are lost when it stops"
)
_POLL_SECONDS = 0.1


@dataclass
class EmbeddedBroker:
    """A mock cluster process and the run folder that contains its files.

    The mock cluster auto-creates topics with 4 partitions and rejects
    CreateTopics requests, so it suits produce and consume checks only.
    """

    bootstrap_servers: str
    pid: int
    run_dir: Path

    @property
    def log_file(self) -> Path:
        """Path of the child's stdout and stderr."""
        return self.run_dir / "mock.log"

    def is_alive(self) -> bool:
        """Return whether the mock cluster process still runs."""
        return self._handle().is_alive()

    def stop(self, grace: float = 20.0) -> None:
        """Stop the process (SIGTERM, SIGKILL after ``grace`` s) and delete the run folder."""
        self._handle().terminate(grace)
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        logger.info("Stopped mock cluster pid %d", self.pid)

    def to_state(self) -> dict[str, Any]:
        """Return a JSON-ready description that ``EmbeddedBroker.from_state`` reads back."""
        return {"kind": "embedded", "bootstrap_servers": self.bootstrap_servers,
                "pid": self.pid, "run_dir": str(self.run_dir)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "EmbeddedBroker":
        """Rebuild the handle from ``to_state`` output."""
        return cls(state["bootstrap_servers"], state["pid"], Path(state["run_dir"]))

    def _handle(self) -> ProcessHandle:
        return ProcessHandle(self.pid, _marker(self.run_dir))


def start_embedded(timeout: float = 30.0) -> EmbeddedBroker:
    """Spawn a detached mock cluster process and wait up to ``timeout`` s for its address.

    The process outlives the caller until ``stop()`` is called. Raises
    DevBrokerError with the child's output when it exits or times out first.
    """
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="embedded-", dir=folder))
    bootstrap_file = _marker(run_dir)

    command = [sys.executable, "-m", "flask_hyper.devbroker.mock_broker", bootstrap_file]
    process = spawn(command, run_dir / "mock.log", die_with_parent=False)
    write_pids_file(run_dir, [process.pid], [bootstrap_file])
    handle = ProcessHandle(process.pid, bootstrap_file, process)

    try:
        bootstrap = _wait_for_bootstrap(Path(bootstrap_file), handle, run_dir / "mock.log", timeout)
    except BaseException:
        handle.terminate(5.0)
        shutil.rmtree(run_dir)
        raise
    return EmbeddedBroker(bootstrap, process.pid, run_dir)


def _marker(run_dir: Path) -> str:
    # The bootstrap file path is on the child's command line and unique per run.
    return str(run_dir / "bootstrap.txt")


def _wait_for_bootstrap(path: Path, handle: ProcessHandle, log_file: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not handle.is_alive():
            raise DevBrokerError(
                f"mock cluster process {handle.pid} exited during startup: read {log_file}",
                details=tail_log(log_file),
            )
        if time.monotonic() >= deadline:
            raise DevBrokerError(
                f"mock cluster process {handle.pid} published no address within "
                f"{timeout:.0f} s: read {log_file}, or raise --timeout",
                details=tail_log(log_file),
            )
        time.sleep(_POLL_SECONDS)
    return path.read_text(encoding="utf-8").strip()
