"""Spawn, probe and signal the broker's child processes."""

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import DevBrokerError

logger = logging.getLogger(__name__)

PIDS_FILE_NAME = "pids.json"
_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.1
_KILL_WAIT_SECONDS = 10.0


def spawn(
    argv: Sequence[str], console_file: Path, die_with_parent: bool
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with stdout and stderr appended to ``console_file``.

    The own session keeps a Ctrl-C in the caller's terminal from reaching the child.
    With ``die_with_parent`` the kernel sends SIGKILL to the child when the
    calling thread exits (Linux only, through ``prctl(PR_SET_PDEATHSIG)``).
    """
    preexec = _die_with_parent_hook() if die_with_parent else None

    with open(console_file, "ab") as console:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,
        )


def _die_with_parent_hook() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        # NOTE: without prctl the child outlives a killed caller on macOS and BSD.
        logger.warning("die_with_parent works on Linux only; children may outlive this process")
        return None

    libc = ctypes.CDLL(None, use_errno=True)
    parent_pid = os.getpid()

    def hook() -> None:
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # The parent may have died between fork and prctl, when no signal would come.
        if os.getppid() != parent_pid:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


class ProcessHandle:
    """A child process known by pid, and by its Popen object when this process started it.

    ``marker`` is a string from the child's command line. On Linux a pid counts as
    alive only while its ``/proc/<pid>/cmdline`` contains the marker, so a reused
    pid or an unreaped zombie is never mistaken for the broker and never signalled.
    """

    def __init__(
        self, pid: int, marker: str, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        self.pid = pid
        self.marker = marker
        self._process = process

    def is_alive(self) -> bool:
        """Return whether the process still runs."""
        if self._process is not None:
            # Popen's own status is exact: the pid cannot be reused before it is reaped.
            return self._process.poll() is None
        return _pid_runs(self.pid, self.marker)

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` if the process still runs."""
        if not self.is_alive():
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            # It exited between the check and the signal, which is the desired state.
            logger.debug("pid %d exited before signal %d", self.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to exit. Return whether it did."""
        deadline = time.monotonic() + timeout
        while self.is_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
        return True

    def terminate(self, grace: float) -> None:
        """Send SIGTERM, then SIGKILL after ``grace`` seconds. Raise if it still runs."""
        self.send_signal(signal.SIGTERM)
        if self.wait(grace):
            return

        logger.warning("pid %d still runs %.0f s after SIGTERM, sending SIGKILL", self.pid, grace)
        self.kill()

    def kill(self) -> None:
        """Send SIGKILL and wait for the exit. Raise DevBrokerError if it still runs."""
        self.send_signal(signal.SIGKILL)
        if not self.wait(_KILL_WAIT_SECONDS):
            raise DevBrokerError(
                f"pid {self.pid} still runs {_KILL_WAIT_SECONDS:.0f} s after SIGKILL: "
                f"check it with `ps -p {self.pid}` and end it by hand"
            )


def _pid_runs(pid: int, marker: str) -> bool:
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self/cmdline").exists():
        return _signal_zero_succeeds(pid)

    try:
        stat = (proc / "stat").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False

    # The state letter follows the parenthesised command name; Z is an unreaped zombie.
    if stat[stat.rindex(")") + 2] == "Z":
        return False
    # The kernel returns an empty cmdline while a process execs or exits, so an
    # empty one cannot prove that the pid was reused.
    return not cmdline or marker.encode() in cmdline.replace(b"\0", b" ")


def _signal_zero_succeeds(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_pids_file(run_dir: Path, pids: list[int], markers: list[str]) -> None:
    """Record the children of a run folder, and this process as their owner.

    ``prune_stale_run_dirs`` reads the file to decide whether the folder is stale.
    """
    record = {"owner_pid": os.getpid(), "pids": pids, "markers": markers}
    (run_dir / PIDS_FILE_NAME).write_text(json.dumps(record), encoding="utf-8")
