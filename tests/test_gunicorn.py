"""Consumers under real gunicorn workers, with and without --preload."""

import signal
import subprocess
import time

import pytest
from confluent_kafka.admin import AdminClient

from flask_hyper.gunicorn import _green_worker_problem, on_starting
from kafka_helpers import create_topics, every_member_assigned, wait_for
from service_app import create_app
from processes import (
    BIN_DIR,
    free_port,
    get_json,
    group_alive,
    kill_group,
    post_graphql,
    read_ledger,
    service_env,
    spawn,
    wait_exit,
)

pytestmark = pytest.mark.kafka

GRACEFUL_TIMEOUT = 10


def group_members(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(10)
    return description.members


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-load", "preload"])
def test_two_sync_workers(kafka_bootstrap, unique_topic, tmp_path, preload):
    create_topics(kafka_bootstrap, unique_topic, f"{unique_topic}.dlt", partitions=2)
    group = f"{unique_topic}-group"
    ledger = tmp_path / "ledger.txt"
    port = free_port()
    args = [
        str(BIN_DIR / "gunicorn"),
        "-c", "python:flask_hyper.gunicorn_conf",
        "--bind", f"127.0.0.1:{port}",
        "--workers", "2",
        "--graceful-timeout", str(GRACEFUL_TIMEOUT),
        "service_app:create_app()",
    ]
    if preload:
        args.insert(1, "--preload")
    log = tmp_path / "gunicorn.log"
    master = spawn(args, service_env(kafka_bootstrap, unique_topic, group, ledger), log)

    try:
        wait_for(lambda: get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200, timeout=60)
        members = wait_for(lambda: every_member_assigned(kafka_bootstrap, group, 2), timeout=60)
        assert {member.client_id for member in members} == {"service"}

        for n in range(40):
            status, body = post_graphql(f"http://127.0.0.1:{port}/graphql", f"mutation {{ emit(n: {n}) }}")
            assert status == 200, body
            assert "errors" not in body, body

        wait_for(lambda: len(read_ledger(ledger)) >= 40, timeout=60)
        # Give a duplicate delivery time to show up before counting.
        time.sleep(2)
        handled = read_ledger(ledger)
        assert sorted(n for _, n in handled) == list(range(40))
        assert len({pid for pid, _ in handled}) == 2, "both workers should own a partition"

        master.send_signal(signal.SIGTERM)
        took = wait_exit(master, GRACEFUL_TIMEOUT + 5)
        assert took is not None, f"gunicorn still running {GRACEFUL_TIMEOUT + 5} s after SIGTERM"
        assert took < GRACEFUL_TIMEOUT
        assert not group_alive(master)
        output = log.read_text()
        assert output.count("stopped its consumers and producers") == 2
        assert "SIGKILL" not in output
    finally:
        kill_group(master)


def test_flask_hyper_consume_cli(kafka_bootstrap, unique_topic, tmp_path, monkeypatch):
    create_topics(kafka_bootstrap, unique_topic, partitions=2)
    ledger = tmp_path / "ledger.txt"
    env = service_env(kafka_bootstrap, unique_topic, f"{unique_topic}-cli", ledger)
    flask = str(BIN_DIR / "flask")
    consumer = spawn([flask, "--app", "service_app:create_app", "hyper", "consume", "--threads", "2"], env, tmp_path / "consume.log")

    try:
        for name, value in env.items():
            if name.startswith("SERVICE_"):
                monkeypatch.setenv(name, value)
        app = create_app()
        hyper = app.extensions["hyper"].service
        with app.app_context():
            for n in range(10):
                hyper.publish(unique_topic, {"n": n}, key=str(n))
        hyper.shutdown(app, timeout=10)

        wait_for(lambda: len(read_ledger(ledger)) == 10, timeout=60)
        consumer.send_signal(signal.SIGTERM)
        assert wait_exit(consumer, 20) is not None
        assert consumer.returncode == 0, (tmp_path / "consume.log").read_text()
    finally:
        kill_group(consumer)


def test_topics_create_is_idempotent(kafka_bootstrap, unique_topic, tmp_path):
    env = service_env(kafka_bootstrap, unique_topic, "unused", tmp_path / "ledger.txt")
    flask = str(BIN_DIR / "flask")
    first = subprocess.run([flask, "--app", "service_app:create_app", "hyper", "topics", "create"], env=env, capture_output=True, text=True, timeout=60)
    second = subprocess.run([flask, "--app", "service_app:create_app", "hyper", "topics", "create"], env=env, capture_output=True, text=True, timeout=60)
    listed = subprocess.run([flask, "--app", "service_app:create_app", "hyper", "topics", "list"], env=env, capture_output=True, text=True, timeout=60)

    assert first.returncode == 0, first.stderr
    assert f"{unique_topic}: created" in first.stdout
    assert f"{unique_topic}.dlt: created" in first.stdout
    assert f"{unique_topic}: exists" in second.stdout
    assert f"{unique_topic}.dlt: exists" in second.stdout
    assert f"{unique_topic}\t2" in listed.stdout


def test_debug_reloader_starts_consumers_once(kafka_bootstrap, unique_topic, tmp_path):
    create_topics(kafka_bootstrap, unique_topic, partitions=2)
    group = f"{unique_topic}-reloader"
    env = service_env(kafka_bootstrap, unique_topic, group, tmp_path / "ledger.txt", SERVICE_AUTOSTART="1")
    port = free_port()
    flask = str(BIN_DIR / "flask")
    server = spawn([flask, "--app", "service_app:create_app", "run", "--debug", "--port", str(port)], env, tmp_path / "run.log")

    try:
        wait_for(lambda: len(group_members(kafka_bootstrap, group)) >= 1, timeout=60)
        # A second member would come from the reloader's parent process.
        time.sleep(3)
        assert len(group_members(kafka_bootstrap, group)) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        wait_exit(server, 15)
        kill_group(server)


class _Config:
    def __init__(self, worker_class_str):
        self.worker_class_str = worker_class_str


class _Server:
    def __init__(self, worker_class_str):
        self.cfg = _Config(worker_class_str)


@pytest.mark.parametrize("worker_class", ["gevent", "eventlet", "gunicorn.workers.ggevent.GeventWorker"])
def test_green_workers_rejected(worker_class):
    with pytest.raises(SystemExit, match="sync"):
        on_starting(_Server(worker_class))


def test_sync_and_gthread_accepted():
    assert _green_worker_problem("sync") is None
    assert _green_worker_problem("gthread") is None
