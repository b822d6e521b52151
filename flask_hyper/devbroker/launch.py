"""Create a run folder, format storage and start a local Kafka cluster."""

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from .cluster import Cluster
from .config import new_cluster_id, quorum_voters
from .errors import DevBrokerError
from .jars import find_java, jar_dir
from .locations import runs_dir
from .node import Node, format_storage, write_node_files
from .ports import allocate_free_ports, ensure_port_free
from .process import PIDS_FILE_NAME, ProcessHandle
from .readiness import read_kafka_version

logger = logging.getLogger(__name__)

SUPPORTED_NODE_COUNTS = (1, 3)


def start_cluster(
    nodes: int = 1,
    port: int | None = None,
    timeout: float = 60.0,
    die_with_parent: bool = False,
) -> Cluster:
    """Start ``nodes`` combined KRaft nodes on 127.0.0.1 and wait until all serve metadata requests.

    ``port`` is node 1's client port, and every other port is picked free.
    ``timeout`` bounds the wait for readiness in seconds, not counting jar
    resolution. With ``die_with_parent`` the kernel kills the brokers when the
    calling thread exits (Linux only), so start from a thread that lives as
    long as the cluster should. Each call formats fresh storage in a new run
    folder under the state dir. On any failure, including KeyboardInterrupt,
    the started processes are stopped before the error propagates.
    """
    if nodes not in SUPPORTED_NODE_COUNTS:
        raise DevBrokerError(f"invalid node count {nodes}: pass 1 or 3")
    # Cheap checks first, so a taken port fails before a long jar resolution.
    if port is not None:
        ensure_port_free(port)
    java = find_java()
    classpath = jar_dir()
    prune_stale_run_dirs()

    run_dir = Path(tempfile.mkdtemp(prefix="kafka-", dir=_ensure_runs_dir()))
    cluster = Cluster(_plan_nodes(nodes, port, run_dir), run_dir, java, classpath, die_with_parent)
    try:
        _format_and_start(cluster, java, classpath, timeout)
    except BaseException:
        cluster.stop()
        raise

    logger.info("Kafka %s cluster ready at %s", cluster.kafka_version, cluster.bootstrap_servers)
    return cluster


def _ensure_runs_dir() -> Path:
    folder = runs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _plan_nodes(count: int, port: int | None, run_dir: Path) -> list[Node]:
    taken = {port} if port is not None else set()
    free = allocate_free_ports(2 * count - len(taken), exclude=taken)
    client_ports = ([port] if port is not None else []) + free[: count - len(taken)]
    controller_ports = free[count - len(taken):]

    return [
        Node(node_id, client_ports[index], controller_ports[index], run_dir / f"node-{node_id}")
        for index, node_id in enumerate(range(1, count + 1))
    ]


def _format_and_start(cluster: Cluster, java: str, classpath: Path, timeout: float) -> None:
    voters = None
    if len(cluster.nodes) > 1:
        voters = quorum_voters({node.node_id: node.controller_port for node in cluster.nodes})
    for node in cluster.nodes:
        write_node_files(node, voters)
    format_storage(java, classpath, cluster.nodes, new_cluster_id())

    # All nodes start before any wait, because a static quorum elects no leader
    # until a majority of voters runs.
    for node in cluster.nodes:
        cluster.launch_node(node.node_id)
    deadline = time.monotonic() + timeout
    for node in cluster.nodes:
        cluster.wait_until_ready(node.node_id, max(0.0, deadline - time.monotonic()))

    cluster.kafka_version = read_kafka_version(cluster.nodes[0].log_file)


def prune_stale_run_dirs() -> None:
    """Delete run folders whose recorded processes all exited.

    A caller killed with SIGKILL cannot delete its run folder, and with
    ``die_with_parent`` its brokers die too, so the folder would stay forever.
    Folders without a pids file belong to a start in progress and are kept, and
    so are folders whose owning Python process still runs, since it may restart
    a node it stopped.
    """
    folder = runs_dir()
    if not folder.is_dir():
        return

    for run_dir in folder.iterdir():
        pids_file = run_dir / PIDS_FILE_NAME
        if not pids_file.is_file():
            continue
        recorded = json.loads(pids_file.read_text())
        if _pid_exists(recorded["owner_pid"]):
            continue
        handles = [ProcessHandle(pid, marker) for pid, marker in zip(recorded["pids"], recorded["markers"])]
        if not any(handle.is_alive() for handle in handles):
            logger.info("Deleting run folder %s left by brokers that no longer run", run_dir)
            shutil.rmtree(run_dir)


def _pid_exists(pid: int) -> bool:
    # A reused pid only keeps a stale folder longer, which is the safe direction.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
