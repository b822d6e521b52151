"""Start, stop and fault-inject a local Kafka cluster of one or three KRaft nodes."""

import logging
import shutil
import signal
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from . import node as node_files
from .errors import DevBrokerError
from .node import Node
from .process import ProcessHandle, spawn, write_pids_file
from .readiness import wait_for_node

logger = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 20.0


class Cluster:
    """A running local Kafka cluster and the run folder that contains its files.

    Use it as a context manager to stop it on exit. Methods that act on one node
    take the node id, which counts from 1.
    """

    def __init__(
        self,
        nodes: list[Node],
        run_dir: Path,
        java: str,
        classpath: Path,
        die_with_parent: bool = False,
    ) -> None:
        self.nodes = nodes
        self.run_dir = run_dir
        self.kafka_version = "unknown"
        self._java = java
        self._classpath = classpath
        self._die_with_parent = die_with_parent
        self._handles: dict[int, ProcessHandle] = {}

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated ``127.0.0.1:PORT`` of every node, for ``bootstrap.servers``."""
        return ",".join(node.bootstrap_server for node in self.nodes)

    def node(self, node_id: int) -> Node:
        """Return the node with ``node_id``. Raises KeyError for an unknown id."""
        for candidate in self.nodes:
            if candidate.node_id == node_id:
                return candidate
        known = [candidate.node_id for candidate in self.nodes]
        raise KeyError(f"no node {node_id} in this cluster: known node ids are {known}")

    def is_node_alive(self, node_id: int) -> bool:
        """Return whether the process of node ``node_id`` runs."""
        handle = self._handles.get(node_id)
        return handle is not None and handle.is_alive()

    def launch_node(self, node_id: int) -> None:
        """Spawn the process of node ``node_id`` without waiting for readiness."""
        node = self.node(node_id)
        if self.is_node_alive(node_id):
            raise DevBrokerError(f"Kafka node {node_id} already runs as pid {node.pid}: stop it first")

        command = node_files.launch_command(self._java, self._classpath, node)
        process = spawn(command, node.console_file, self._die_with_parent)
        node.pid = process.pid
        self._handles[node_id] = ProcessHandle(process.pid, str(node.config_file), process)
        self._write_pids_file()
        logger.info("Started Kafka node %d as pid %d on %s", node_id, process.pid, node.bootstrap_server)

    def wait_until_ready(self, node_id: int, timeout: float) -> None:
        """Block until node ``node_id`` serves metadata requests and lists itself.

        Raises DevBrokerError, with the node's log tail as details, when the node
        exits or ``timeout`` seconds pass first.
        """
        node = self.node(node_id)
        deadline = time.monotonic() + timeout
        wait_for_node(
            node_id, node.port, [node.log_file, node.console_file],
            lambda: self.is_node_alive(node_id), deadline,
        )

    def start_node(self, node_id: int, timeout: float = 60.0) -> None:
        """Restart node ``node_id`` with its previous data folder and ports, then wait for it."""
        self.launch_node(node_id)
        self.wait_until_ready(node_id, timeout)

    def stop_node(self, node_id: int, grace: float = STOP_GRACE_SECONDS) -> None:
        """Send SIGTERM to node ``node_id`` and wait for its exit, using SIGKILL after ``grace`` s."""
        self._handle(node_id).terminate(grace)
        logger.info("Stopped Kafka node %d", node_id)

    def kill_node(self, node_id: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to node ``node_id``.

        Waits for the exit only for SIGKILL, so SIGSTOP and SIGCONT can pause and
        resume a node.
        """
        handle = self._handle(node_id)
        if sig == signal.SIGKILL:
            handle.kill()
        else:
            handle.send_signal(sig)
        logger.info("Sent signal %d to Kafka node %d", sig, node_id)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Stop every node and delete the run folder. Calling it again does nothing.

        All nodes get SIGTERM at once, and any node still running ``grace``
        seconds later gets SIGKILL.
        """
        for handle in self._handles.values():
            # A paused node cannot act on SIGTERM until it is resumed.
            handle.send_signal(signal.SIGCONT)
            handle.send_signal(signal.SIGTERM)

        deadline = time.monotonic() + grace
        for node_id, handle in self._handles.items():
            if not handle.wait(max(0.0, deadline - time.monotonic())):
                logger.warning("Kafka node %d ignored SIGTERM for %.0f s, sending SIGKILL", node_id, grace)
                handle.kill()

        self._handles.clear()
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        logger.info("Stopped Kafka cluster in %s", self.run_dir)

    def to_state(self) -> dict[str, Any]:
        """Return a JSON-ready description that ``Cluster.from_state`` reads back."""
        return {
            "kind": "kafka",
            "kafka_version": self.kafka_version,
            "bootstrap_servers": self.bootstrap_servers,
            "run_dir": str(self.run_dir),
            "java": self._java,
            "classpath": str(self._classpath),
            "nodes": [
                {"node_id": n.node_id, "port": n.port, "controller_port": n.controller_port,
                 "node_dir": str(n.node_dir), "pid": n.pid}
                for n in self.nodes
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "Cluster":
        """Rebuild a cluster from ``to_state`` output, for example in another process."""
        nodes = [
            Node(item["node_id"], item["port"], item["controller_port"], Path(item["node_dir"]), item["pid"])
            for item in state["nodes"]
        ]
        cluster = cls(nodes, Path(state["run_dir"]), state["java"], Path(state["classpath"]))
        cluster.kafka_version = state["kafka_version"]
        for node in nodes:
            if node.pid is not None:
                cluster._handles[node.node_id] = ProcessHandle(node.pid, str(node.config_file))
        return cluster

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _handle(self, node_id: int) -> ProcessHandle:
        self.node(node_id)
        handle = self._handles.get(node_id)
        if handle is None:
            raise DevBrokerError(f"Kafka node {node_id} was never started: call start_node({node_id})")
        return handle

    def _write_pids_file(self) -> None:
        pids = [handle.pid for handle in self._handles.values()]
        markers = [handle.marker for handle in self._handles.values()]
        write_pids_file(self.run_dir, pids, markers)
