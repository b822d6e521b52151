"""Server properties and log4j2 configuration for each broker node."""

import base64
import uuid
from pathlib import Path

from .ports import HOST


def new_cluster_id() -> str:
    """Return a random Kafka cluster id: 16 random bytes in unpadded URL-safe base64.

    Kafka's own ``Uuid.randomUuid`` has the same form and also avoids a leading
    ``-``, which a command line would read as an option.
    """
    while True:
        encoded = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not encoded.startswith("-"):
            return encoded


def quorum_voters(controller_ports: dict[int, int]) -> str:
    """Return ``controller.quorum.voters`` for a static quorum of the given nodes."""
    return ",".join(f"{node_id}@{HOST}:{port}" for node_id, port in sorted(controller_ports.items()))


def node_properties(
    node_id: int, port: int, controller_port: int, data_dir: Path, voters: str | None
) -> dict[str, str]:
    """Return the server properties of one combined broker and controller node.

    ``voters`` is None for a single node, which then uses a dynamic quorum
    bootstrapped from its own controller port. Otherwise it is the static
    ``controller.quorum.voters`` value shared by all nodes.
    """
    listeners = f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}"
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "listeners": listeners,
        "advertised.listeners": listeners,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        # Consumers of a fresh group start at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms": "0",
    }

    if voters is None:
        properties["controller.quorum.bootstrap.servers"] = f"{HOST}:{controller_port}"
        properties.update(_replication_properties(replicas=1, min_isr=1))
    else:
        properties["controller.quorum.voters"] = voters
        properties.update(_replication_properties(replicas=3, min_isr=2))
    return properties


def _replication_properties(replicas: int, min_isr: int) -> dict[str, str]:
    # Internal topics default to 3 replicas, which a single node cannot host.
    return {
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
    }


def write_properties(path: Path, properties: dict[str, str]) -> None:
    """Write ``properties`` as a Java properties file."""
    lines = [f"{key}={value}" for key, value in properties.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_log4j_config(path: Path, log_file: Path) -> None:
    """Write a log4j2 properties file that sends INFO and above to ``log_file``."""
    lines = [
        "status = warn",
        "appender.file.type = File",
        "appender.file.name = file",
        f"appender.file.fileName = {log_file}",
        "appender.file.layout.type = PatternLayout",
        "appender.file.layout.pattern = [%d] %p %m (%c)%n",
        "rootLogger.level = INFO",
        "rootLogger.appenderRef.file.ref = file",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
