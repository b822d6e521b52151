"""Shared fixtures: a real Kafka broker for the session and unique topic names."""

import os
import re
import sys
import uuid
from collections.abc import Iterator

import pytest

from flask_hyper.devbroker import KAFKA_VERSION, ensure_jars, start_cluster

BOOTSTRAP_ENV = "HYPER_TEST_BOOTSTRAP_SERVERS"

# Generous bound for a JVM cold start on a loaded CI machine.
BROKER_START_TIMEOUT_SECONDS = 120.0


def _report(config: pytest.Config, line: str) -> None:
    # Capture is suspended for the write, so the line shows in `make test` without -s.
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        print(line, file=sys.__stderr__, flush=True)
        return

    with capture.global_and_fixture_disabled():
        reporter.write_line(line)


def pytest_report_header(config: pytest.Config) -> str:
    """Show which broker the Kafka tests use."""
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        return f"kafka: external broker {external} from {BOOTSTRAP_ENV}"
    return f"kafka: a local Kafka {KAFKA_VERSION} broker starts on first use"


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Yield ``bootstrap.servers`` of a real Kafka broker shared by the session.

    Uses ``HYPER_TEST_BOOTSTRAP_SERVERS`` when set. Otherwise it starts a
    single-node broker that dies with this process, and stops it after the
    last test, also when tests fail. A broker that cannot start fails the
    tests that need it instead of skipping them.
    """
    external = os.environ.get(BOOTSTRAP_ENV)
    if external:
        yield external
        return

    resolution = ensure_jars()
    if resolution.resolved_now:
        _report(request.config, f"kafka: resolved Kafka {KAFKA_VERSION} jars with Maven into {resolution.path}")

    cluster = start_cluster(nodes=1, timeout=BROKER_START_TIMEOUT_SECONDS, die_with_parent=True)
    _report(request.config, f"kafka: started Kafka {cluster.kafka_version} at {cluster.bootstrap_servers} (pid {cluster.nodes[0].pid})")
    try:
        yield cluster.bootstrap_servers
    finally:
        cluster.stop()
        # Teardown runs right after the progress characters of the last test.
        _report(request.config, f"\nkafka: stopped Kafka {cluster.kafka_version} at {cluster.bootstrap_servers}")


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """Return a topic name derived from the test name and unique across runs."""
    # Kafka topic names allow only ASCII letters, digits, '.', '_' and '-'.
    test_name = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:100]
    return f"test-{test_name}-{uuid.uuid4().hex[:8]}"
