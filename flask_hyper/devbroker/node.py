"""Layout, formatting and launch command of one Kafka node."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import config
from .errors import DevBrokerError
from .ports import HOST

# Bounds one `kafka-storage format`, which normally takes 1 to 2 s.
FORMAT_TIMEOUT_SECONDS = 120.0
HEAP = "-Xmx512m"


@dataclass
class Node:
    """One combined broker and controller process and the files it owns.

    Everything lives under ``node_dir``: the properties, the log4j2 config, the
    broker log, the JVM console output and the data folder. ``pid`` is None
    until the node first starts.
    """

    node_id: int
    port: int
    controller_port: int
    node_dir: Path
    pid: int | None = None

    @property
    def bootstrap_server(self) -> str:
        """Address of this node's PLAINTEXT listener, ``127.0.0.1:PORT``."""
        return f"{HOST}:{self.port}"

    @property
    def config_file(self) -> Path:
        """Path of the node's ``server.properties``."""
        return self.node_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        """Path of the node's log4j2 properties file."""
        return self.node_dir / "log4j2.properties"

    @property
    def log_file(self) -> Path:
        """Path of the broker log written by log4j2."""
        return self.node_dir / "server.log"

    @property
    def console_file(self) -> Path:
        """Path of the JVM's stdout and stderr, where crashes before logging show up."""
        return self.node_dir / "console.log"

    @property
    def data_dir(self) -> Path:
        """Path of the node's ``log.dirs`` folder."""
        return self.node_dir / "data"


def write_node_files(node: Node, voters: str | None) -> None:
    """Create ``node.node_dir`` and write the node's properties and log4j2 config."""
    node.node_dir.mkdir(parents=True)
    properties = config.node_properties(
        node.node_id, node.port, node.controller_port, node.data_dir, voters
    )
    config.write_properties(node.config_file, properties)
    config.write_log4j_config(node.log4j_file, node.log_file)


def format_storage(java: str, classpath: Path, nodes: list[Node], cluster_id: str) -> None:
    """Format each node's data folder for ``cluster_id``, all nodes in parallel.

    A single node formats with ``--standalone`` so it bootstraps a dynamic quorum
    of itself. Several nodes share a static voter list and format without it.
    """
    extra = ["--standalone"] if len(nodes) == 1 else []
    runs = [
        subprocess.Popen(
            [java, "-cp", f"{classpath}/*", f"-Dlog4j2.configurationFile={node.log4j_file}",
             "kafka.tools.StorageTool", "format", "-t", cluster_id,
             "-c", str(node.config_file), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for node in nodes
    ]

    for node, run in zip(nodes, runs):
        try:
            output, _ = run.communicate(timeout=FORMAT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired as error:
            run.kill()
            run.communicate()
            raise DevBrokerError(
                f"formatting {node.data_dir} for node {node.node_id} timed out after "
                f"{FORMAT_TIMEOUT_SECONDS:.0f} s: check that java runs and the machine is not overloaded"
            ) from error

        if run.returncode != 0:
            raise DevBrokerError(
                f"formatting {node.data_dir} for node {node.node_id} failed with exit "
                f"code {run.returncode}: check the Kafka jars in {classpath}",
                details=output,
            )


def launch_command(java: str, classpath: Path, node: Node) -> list[str]:
    """Return the command line that runs ``node`` as ``kafka.Kafka``.

    The config file path is part of it, which lets ProcessHandle tell this
    process from any other one that later reuses its pid.
    """
    return [
        java, HEAP, "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={node.log4j_file}",
        "-cp", f"{classpath}/*",
        "kafka.Kafka", str(node.config_file),
    ]
