"""End-to-end latency: GraphQL mutation in one gunicorn service to a receiver in another process.

The client puts its send time in the mutation; the receiver process
(``flask hyper consume``) writes its receive time next to it, both read from
this machine's clock. Kafka's EndToEndLatency tool on the same broker is the floor.
"""

from __future__ import annotations

import http.client
import sys
import time
from pathlib import Path
from typing import Any

from . import kafka_tools
from .common import PAYLOAD_BYTES, RESULTS_DIR, bench_env, create_topics, median, percentile, unique_topic
from .graphql_load import mutation_body
from .servers import Server, free_port, post_json, start_gunicorn

# No batching delay: EndToEndLatency also sends one record and waits for it before the next.
LINGER_MS = 0
WARMUP_TIMEOUT_SECONDS = 60.0
DRAIN_TIMEOUT_SECONDS = 60.0


def run_section(bootstrap: str, sizes: Any) -> dict[str, Any]:
    """Measure both paths ``sizes.repetitions`` times, interleaved; return per-run percentiles."""
    topics = [unique_topic("latency") for _ in range(sizes.repetitions + 1)]
    create_topics(bootstrap, topics)
    latency_file = RESULTS_DIR / "latency-events.txt"
    latency_file.write_text("")
    env = {
        "BENCH_BOOTSTRAP": bootstrap,
        "BENCH_LINGER_MS": str(LINGER_MS),
        "BENCH_RECEIVER_TOPICS": ",".join(topics),
        "BENCH_LATENCY_FILE": str(latency_file),
        "BENCH_GROUP": unique_topic("latency-group"),
    }
    port = free_port()
    sender = receiver = None
    try:
        # The sender app has no receiver topics, so it runs no consumers.
        sender = start_gunicorn(
            "bench.apps:create_hyper_app()", port, True, {**env, "BENCH_RECEIVER_TOPICS": ""},
            RESULTS_DIR / "gunicorn-latency.log",
        )
        receiver = Server(
            [sys.executable, "-m", "flask", "--app", "bench.apps:create_hyper_app()", "hyper", "consume"],
            {**bench_env(), **env}, RESULTS_DIR / "consume-latency.log",
        )
        _warm_up(port, topics[0], latency_file)
        return _measure(bootstrap, port, topics[1:], latency_file, sizes)
    finally:
        for server in (sender, receiver):
            if server is not None:
                server.stop()


def _warm_up(port: int, topic: str, latency_file: Path) -> None:
    # Until the receiver's group has its partitions, sent events wait in the topic.
    deadline = time.monotonic() + WARMUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        post_json(port, "/graphql", _body(topic))
        time.sleep(0.2)
        if _events(latency_file, topic):
            return
    raise RuntimeError(f"the receiver got no event within {WARMUP_TIMEOUT_SECONDS} s: see consume-latency.log")


def _measure(bootstrap: str, port: int, topics: list[str], latency_file: Path, sizes: Any) -> dict[str, Any]:
    hyper_runs, java_runs, all_latencies = [], [], []
    for repetition, topic in enumerate(topics):
        latencies = _send_and_collect(port, topic, latency_file, sizes.latency_events, sizes.latency_rate)
        all_latencies.extend(latencies)
        hyper_runs.append(_summarize(latencies))
        print(f"  latency flask-hyper #{repetition + 1}: {_describe(hyper_runs[-1])}", flush=True)

        java_topic = unique_topic("latency-java")
        create_topics(bootstrap, [java_topic])
        java_runs.append(kafka_tools.end_to_end_latency(bootstrap, java_topic, sizes.latency_events, PAYLOAD_BYTES))
        print(f"  latency EndToEndLatency #{repetition + 1}: {_describe(java_runs[-1])}", flush=True)

    keys = ("p50_ms", "p99_ms")
    return {
        "events": sizes.latency_events,
        "rate": sizes.latency_rate,
        "linger_ms": LINGER_MS,
        "runs": {"flask-hyper": hyper_runs, "EndToEndLatency": java_runs},
        "median": {
            "flask-hyper": {key: median([run[key] for run in hyper_runs]) for key in (*keys, "max_ms")},
            "EndToEndLatency": {key: median([run[key] for run in java_runs]) for key in keys},
        },
        "all_latencies_ms": sorted(all_latencies),
        "java_command": kafka_tools.tool_command(
            "EndToEndLatency",
            kafka_tools.end_to_end_latency_args("$BOOTSTRAP", "TOPIC", sizes.latency_events, PAYLOAD_BYTES),
        ),
    }


def _send_and_collect(port: int, topic: str, latency_file: Path, events: int, rate: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval = 1.0 / rate
    next_send = time.monotonic()
    for _ in range(events):
        # Paced, so the result is latency at a steady load, not queueing.
        time.sleep(max(0.0, next_send - time.monotonic()))
        next_send += interval
        status, data = post_json(port, "/graphql", _body(topic), connection)
        if status != 200:
            raise RuntimeError(f"mutation returned HTTP {status}: {data[:300]!r}")
    connection.close()

    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while time.monotonic() < deadline and len(_events(latency_file, topic)) < events:
        time.sleep(0.2)
    latencies = _events(latency_file, topic)
    if len(latencies) < events:
        raise RuntimeError(f"only {len(latencies)} of {events} events reached the receiver on {topic}")
    return latencies


def _body(topic: str) -> dict[str, Any]:
    body = mutation_body(topic)
    body["variables"]["sentAt"] = time.time()
    return body


def _events(latency_file: Path, topic: str) -> list[float]:
    latencies = []
    for line in latency_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == topic:
            latencies.append((float(parts[2]) - float(parts[1])) * 1000)
    return latencies


def _summarize(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": percentile(ordered, 0.50),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1],
        "avg_ms": sum(ordered) / len(ordered),
    }


def _describe(run: dict[str, float]) -> str:
    return f"p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f} ms"
