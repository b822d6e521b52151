"""Local Kafka brokers for development, tests, fault injection and benchmarks.

``start_cluster`` runs one or three real Kafka KRaft nodes on 127.0.0.1 from
jars that Maven resolves once into a cache folder. ``start_embedded`` runs
librdkafka's in-memory mock cluster instead, for machines without Java.
``python -m flask_hyper.devbroker`` wraps both in a start/stop/status CLI.
"""

from .cluster import Cluster
from .embedded import EmbeddedBroker, start_embedded
from .errors import DevBrokerError
from .jars import KAFKA_VERSION, JarResolution, ensure_jars, find_java, jar_dir
from .launch import start_cluster
from .node import Node

__all__ = [
    "KAFKA_VERSION",
    "Cluster",
    "DevBrokerError",
    "EmbeddedBroker",
    "JarResolution",
    "Node",
    "ensure_jars",
    "find_java",
    "jar_dir",
    "start_cluster",
    "start_embedded",
]
