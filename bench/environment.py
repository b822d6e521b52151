"""The machine and the software versions a benchmark run used."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import confluent_kafka

PACKAGES = ("flask", "ariadne", "gunicorn", "faststream", "graphql-core", "blinker", "werkzeug")


def describe(kafka_version: str) -> dict[str, Any]:
    """Return nproc, memory, CPU model, OS and the versions of every component measured."""
    versions = {name: _version(name) for name in PACKAGES}
    versions["python"] = sys.version.split()[0]
    versions["confluent-kafka"] = confluent_kafka.version()[0]
    versions["librdkafka"] = confluent_kafka.libversion()[0]
    versions["kafka"] = kafka_version
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(_memory_kib() / 1024 / 1024, 1),
        "cpu_model": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _memory_kib() -> int:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
