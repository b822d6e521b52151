"""Tests of the local broker tool against real Kafka processes and the mock cluster."""

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from flask_hyper.devbroker import start_cluster

BOOTSTRAP_PATTERN = r"^127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+)*$"
CLI_TIMEOUT_SECONDS = 180.0


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m flask_hyper.devbroker ARGS`` with the test's interpreter."""
    command = [sys.executable, "-m", "flask_hyper.devbroker", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_SECONDS)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """Return an environment whose CLI state lives in ``tmp_path``, apart from other brokers."""
    env = dict(os.environ)
    env["HYPER_DEVBROKER_STATE_DIR"] = str(tmp_path / "state")
    return env


def runs_kafka(pid: int) -> bool:
    """Return whether ``pid`` is a live ``kafka.Kafka`` JVM (zombies have an empty cmdline)."""
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def create_topic(bootstrap: str, topic: str, partitions: int, replication: int) -> None:
    """Create ``topic`` and wait for the broker to confirm it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, partitions, replication)], operation_timeout=30)
    futures[topic].result(timeout=60)


def consume_values(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[bytes]:
    """Read up to ``count`` message values from the start of ``topic`` within ``timeout`` s."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"{topic}-reader",
        "auto.offset.reset": "earliest",
    })
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            values.append(message.value())
    finally:
        consumer.close()
    return values


def wait_for_isr(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> dict[int, list[int]]:
    """Poll metadata until every partition of ``topic`` has ``expected`` in-sync replicas."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        isrs = {partition_id: list(p.isrs) for partition_id, p in partitions.items()}
        if all(len(isr) == expected for isr in isrs.values()) or time.monotonic() >= deadline:
            return isrs
        time.sleep(0.5)


@pytest.mark.kafka
def test_real_broker_produce_consume(kafka_bootstrap: str, unique_topic: str) -> None:
    create_topic(kafka_bootstrap, unique_topic, partitions=1, replication=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    sent = [f"message-{index}".encode() for index in range(5)]
    for value in sent:
        producer.produce(unique_topic, value)

    assert producer.flush(30) == 0
    assert consume_values(kafka_bootstrap, unique_topic, len(sent)) == sent


@pytest.mark.kafka
def test_cli_single_node_lifecycle(cli_env: dict[str, str], tmp_path: Path) -> None:
    started = run_cli("start", "--timeout", "120", env=cli_env)
    assert started.returncode == 0, started.stderr
    assert "Kafka version: 4.1.1" in started.stdout
    bootstrap = started.stdout.splitlines()[-1]
    assert re.match(BOOTSTRAP_PATTERN, bootstrap), bootstrap
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert list(metadata.brokers) == [1]

    status = run_cli("status", env=cli_env)
    assert status.returncode == 0, status.stdout
    assert "alive" in status.stdout
    pid = int(status.stdout.split("pid ")[1].split()[0])
    assert runs_kafka(pid)

    second = run_cli("start", env=cli_env)
    assert second.returncode == 1
    assert len(second.stderr.splitlines()) == 1, second.stderr
    assert "already runs" in second.stderr

    stopped = run_cli("stop", env=cli_env)
    assert stopped.returncode == 0, stopped.stderr
    assert not runs_kafka(pid)
    assert run_cli("status", env=cli_env).returncode == 3
    assert list((tmp_path / "state" / "runs").iterdir()) == []


@pytest.mark.cluster
def test_cli_three_nodes_replicate(cli_env: dict[str, str], tmp_path: Path) -> None:
    started = run_cli("start", "--nodes", "3", "--timeout", "120", env=cli_env)
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.splitlines()[-1]
    assert re.match(BOOTSTRAP_PATTERN, bootstrap), bootstrap
    assert bootstrap.count(",") == 2
    pids = [int(line.split("pid ")[1].split(",")[0]) for line in started.stdout.splitlines() if line.startswith("node ")]
    assert len(pids) == 3
    assert all(runs_kafka(pid) for pid in pids)

    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
        assert sorted(metadata.brokers) == [1, 2, 3]
        create_topic(bootstrap, "replicated", partitions=3, replication=3)
        isrs = wait_for_isr(bootstrap, "replicated", expected=3)
        assert all(sorted(isr) == [1, 2, 3] for isr in isrs.values()), isrs
    finally:
        stopped = run_cli("stop", env=cli_env)

    assert stopped.returncode == 0, stopped.stderr
    assert [pid for pid in pids if runs_kafka(pid)] == []
    assert list((tmp_path / "state" / "runs").iterdir()) == []


@pytest.mark.cluster
def test_cluster_node_restart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HYPER_DEVBROKER_STATE_DIR", str(tmp_path / "state"))

    with start_cluster(nodes=3, timeout=120, die_with_parent=True) as cluster:
        assert cluster.kafka_version == "4.1.1"
        create_topic(cluster.bootstrap_servers, "restarted", partitions=1, replication=3)
        first_pid = cluster.node(3).pid
        port = cluster.node(3).port

        cluster.stop_node(3)
        assert not cluster.is_node_alive(3)
        assert len(wait_for_isr(cluster.bootstrap_servers, "restarted", expected=2)[0]) == 2

        cluster.start_node(3)
        assert cluster.is_node_alive(3)
        assert cluster.node(3).pid != first_pid
        assert cluster.node(3).port == port
        assert sorted(wait_for_isr(cluster.bootstrap_servers, "restarted", expected=3)[0]) == [1, 2, 3]

        cluster.kill_node(2)
        assert not cluster.is_node_alive(2)
        pids = [node.pid for node in cluster.nodes]

    assert [pid for pid in pids if pid is not None and runs_kafka(pid)] == []
    assert not cluster.run_dir.exists()


def test_cli_java_missing(cli_env: dict[str, str], tmp_path: Path) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    cli_env["PATH"] = str(empty_bin)
    cli_env.pop("JAVA_HOME", None)
    cli_env.pop("KAFKA_HOME", None)

    result = run_cli("start", env=cli_env)

    assert result.returncode != 0
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert "java not found on PATH" in result.stderr


def test_cli_port_taken(cli_env: dict[str, str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        result = run_cli("start", "--port", str(port), env=cli_env)

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr


PRODUCE_SCRIPT = textwrap.dedent("""
    import sys
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": sys.argv[1]})
    producer.produce("embedded", b"from another process", partition=0)
    sys.exit(producer.flush(10))
""")

CONSUME_SCRIPT = textwrap.dedent("""
    import sys
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "embedded-reader"})
    consumer.assign([TopicPartition("embedded", 0, OFFSET_BEGINNING)])
    message = consumer.poll(10)
    consumer.close()
    print(message.value().decode() if message is not None and message.error() is None else "no message")
""")


def test_cli_embedded_serves_processes(cli_env: dict[str, str], tmp_path: Path) -> None:
    started = run_cli("start", "--embedded", env=cli_env)
    assert started.returncode == 0, started.stderr
    assert "messages live in memory only" in started.stderr
    bootstrap = started.stdout.splitlines()[-1]
    assert re.match(BOOTSTRAP_PATTERN, bootstrap), bootstrap

    try:
        produced = subprocess.run([sys.executable, "-c", PRODUCE_SCRIPT, bootstrap], capture_output=True, text=True, timeout=60)
        consumed = subprocess.run([sys.executable, "-c", CONSUME_SCRIPT, bootstrap], capture_output=True, text=True, timeout=60)
        status = run_cli("status", env=cli_env)
    finally:
        stopped = run_cli("stop", env=cli_env)

    assert produced.returncode == 0, produced.stderr
    assert consumed.stdout.strip() == "from another process", consumed.stderr
    assert status.returncode == 0
    assert "embedded" in status.stdout
    assert stopped.returncode == 0, stopped.stderr
    assert run_cli("status", env=cli_env).returncode == 3
    assert list((tmp_path / "state" / "runs").iterdir()) == []
