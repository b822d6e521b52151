"""Kafka's own Java performance tools, run from the devbroker's jar folder."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from flask_hyper.devbroker import jar_dir
from flask_hyper.devbroker.jars import find_java

_MAIN_PACKAGE = "org.apache.kafka.tools"


def _run_tool(tool: str, args: list[str], timeout: float) -> str:
    command = [find_java(), "-cp", f"{jar_dir()}/*", f"{_MAIN_PACKAGE}.{tool}", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise RuntimeError(f"{tool} failed with exit code {result.returncode}:\n{tail}")
    return result.stdout


def tool_command(tool: str, args: list[str]) -> str:
    """Return the shell command that runs ``tool`` with ``args``, for the report."""
    return f"java -cp \"$JARDIR/*\" {_MAIN_PACKAGE}.{tool} {' '.join(args)}"


def producer_performance_args(bootstrap: str, topic: str, records: int, size: int) -> list[str]:
    return [
        "--topic", topic, "--num-records", str(records), "--record-size", str(size),
        "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
    ]


def producer_performance(bootstrap: str, topic: str, records: int, size: int) -> dict[str, Any]:
    """Run ProducerPerformance and return its final records/s and average latency (ms)."""
    output = _run_tool("ProducerPerformance", producer_performance_args(bootstrap, topic, records, size), 300)
    # Final line: "N records sent, X records/sec (Y MB/sec), Z ms avg latency, ...".
    match = re.search(r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms avg latency", output)
    if match is None:
        raise RuntimeError(f"ProducerPerformance printed no summary line:\n{output[-2000:]}")
    return {"count": int(match.group(1)), "rate": float(match.group(2)), "avg_latency_ms": float(match.group(3))}


def end_to_end_latency_args(bootstrap: str, topic: str, messages: int, size: int) -> list[str]:
    # Kafka 4.1 positional arguments: brokers, topic, message count, acks, record size.
    return [bootstrap, topic, str(messages), "all", str(size)]


def end_to_end_latency(bootstrap: str, topic: str, messages: int, size: int) -> dict[str, Any]:
    """Run EndToEndLatency and return its average and percentile latencies in ms."""
    output = _run_tool("EndToEndLatency", end_to_end_latency_args(bootstrap, topic, messages, size), 300)
    average = re.search(r"Avg latency: ([\d.]+) ms", output)
    percentiles = re.search(r"50th = ([\d.]+), 99th = ([\d.]+), 99.9th = ([\d.]+)", output)
    if average is None or percentiles is None:
        raise RuntimeError(f"EndToEndLatency printed no latency summary:\n{output[-2000:]}")
    return {
        "avg_ms": float(average.group(1)),
        "p50_ms": float(percentiles.group(1)),
        "p99_ms": float(percentiles.group(2)),
        "p999_ms": float(percentiles.group(3)),
    }
