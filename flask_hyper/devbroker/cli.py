"""Command line for the local broker: ``python -m flask_hyper.devbroker start|stop|status``."""

import argparse
import sys
from typing import Any

from .cluster import Cluster
from .embedded import IN_MEMORY_WARNING, EmbeddedBroker, start_embedded
from .errors import DevBrokerError
from .jars import KAFKA_CACHE_ENV, KAFKA_VERSION, ensure_jars, find_java
from .launch import start_cluster
from .locations import STATE_DIR_ENV
from .ports import ensure_port_free
from .state import read_state, remove_state, write_state

EXIT_ERROR = 1
EXIT_NOT_RUNNING = 3

_DESCRIPTION = f"""\
Run a local Kafka {KAFKA_VERSION} broker on 127.0.0.1 for development and tests.

Jars come from Maven Central through `mvn` on first use and are cached in
${KAFKA_CACHE_ENV} (default $XDG_CACHE_HOME/flask-hyper/kafka-{KAFKA_VERSION}).
KAFKA_HOME selects an existing Kafka install instead. State and run folders
live in ${STATE_DIR_ENV} (default $XDG_CACHE_HOME/flask-hyper/devbroker).
"""


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the three subcommands."""
    parser = argparse.ArgumentParser(
        prog="python -m flask_hyper.devbroker",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="start a broker and wait until it serves metadata requests")
    start.add_argument("--port", type=int, help="client port of node 1 on 127.0.0.1 (default: a free port)")
    start.add_argument("--nodes", type=int, choices=(1, 3), default=1,
                       help="number of combined broker and controller nodes (default: 1)")
    start.add_argument("--embedded", action="store_true",
                       help="run librdkafka's in-memory mock cluster in a Python process instead of Java Kafka")
    start.add_argument("--timeout", type=float, default=60.0,
                       help="seconds to wait for readiness, not counting jar resolution (default: 60)")

    commands.add_parser("stop", help="stop what start started and delete its run folder")
    commands.add_parser("status", help="show what runs; exit 0 if running, 3 if nothing runs")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code."""
    args = build_parser().parse_args(argv)
    handlers = {"start": _start, "stop": _stop, "status": _status}
    try:
        return handlers[args.command](args)
    except DevBrokerError as error:
        print(f"error: {error}", file=sys.stderr)
        if error.details:
            print(error.details, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted, nothing left running", file=sys.stderr)
        return 130


def _start(args: argparse.Namespace) -> int:
    if args.embedded and (args.nodes != 1 or args.port is not None):
        raise DevBrokerError("--embedded picks its own port and runs one broker: drop --port and --nodes")
    _ensure_nothing_runs()

    if args.embedded:
        return _start_embedded(args.timeout)

    if args.port is not None:
        ensure_port_free(args.port)
    find_java()
    resolution = ensure_jars()
    if resolution.resolved_now:
        print(f"Resolved Kafka {KAFKA_VERSION} jars with Maven into {resolution.path}")

    cluster = start_cluster(nodes=args.nodes, port=args.port, timeout=args.timeout)
    path = write_state(cluster.to_state())
    print(f"Kafka version: {cluster.kafka_version}")
    for node in cluster.nodes:
        print(f"node {node.node_id}: pid {node.pid}, {node.bootstrap_server}, log {node.log_file}")
    print(f"State file: {path}")
    print("Bootstrap servers:")
    print(cluster.bootstrap_servers)
    return 0


def _start_embedded(timeout: float) -> int:
    print(f"warning: {IN_MEMORY_WARNING}", file=sys.stderr)
    broker = start_embedded(timeout=timeout)
    path = write_state(broker.to_state())
    print(f"Mock cluster: pid {broker.pid}, log {broker.log_file}")
    print(f"State file: {path}")
    print("Bootstrap servers:")
    print(broker.bootstrap_servers)
    return 0


def _ensure_nothing_runs() -> None:
    state = read_state()
    if state is None:
        return

    target = _load(state)
    if _alive_pids(target):
        raise DevBrokerError(
            f"a broker already runs at {state['bootstrap_servers']}: run "
            "`python -m flask_hyper.devbroker stop` first, or set "
            f"{STATE_DIR_ENV} to start a second one"
        )
    # Nothing of the recorded run is alive, for example after a reboot.
    print(f"Removing stale state of a broker that no longer runs ({state['bootstrap_servers']})", file=sys.stderr)
    target.stop()
    remove_state()


def _stop(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print("Nothing to stop: no broker state recorded")
        return 0

    _load(state).stop()
    remove_state()
    print(f"Stopped the broker at {state['bootstrap_servers']}")
    return 0


def _status(args: argparse.Namespace) -> int:
    state = read_state()
    if state is None:
        print("Not running: no broker state recorded")
        return EXIT_NOT_RUNNING

    target = _load(state)
    alive = _alive_pids(target)
    if not alive:
        print(f"Not running: the broker recorded at {state['bootstrap_servers']} has exited")
        return EXIT_NOT_RUNNING

    for line in _describe(state, alive):
        print(line)
    return 0


def _load(state: dict[str, Any]) -> Cluster | EmbeddedBroker:
    if state.get("kind") == "embedded":
        return EmbeddedBroker.from_state(state)
    return Cluster.from_state(state)


def _alive_pids(target: Cluster | EmbeddedBroker) -> list[int]:
    if isinstance(target, EmbeddedBroker):
        return [target.pid] if target.is_alive() else []
    return [node.pid for node in target.nodes if node.pid is not None and target.is_node_alive(node.node_id)]


def _describe(state: dict[str, Any], alive: list[int]) -> list[str]:
    if state.get("kind") == "embedded":
        return [
            f"Running: embedded mock cluster, pid {state['pid']} alive ({IN_MEMORY_WARNING})",
            f"Bootstrap servers: {state['bootstrap_servers']}",
        ]

    lines = [f"Running: Kafka {state['kafka_version']}, {len(state['nodes'])} node(s)"]
    for node in state["nodes"]:
        liveness = "alive" if node["pid"] in alive else "not running"
        lines.append(f"node {node['node_id']}: pid {node['pid']} {liveness}, 127.0.0.1:{node['port']}")
    lines.append(f"Bootstrap servers: {state['bootstrap_servers']}")
    return lines
