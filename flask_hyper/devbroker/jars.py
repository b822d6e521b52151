"""Locate the Java runtime and the Kafka classpath, resolving jars with Maven once."""

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import DevBrokerError
from .locations import cache_root

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"
KAFKA_CACHE_ENV = "HYPER_KAFKA_CACHE"

# Bounds a cold resolution that downloads about 90 jars; a warm one takes seconds.
MAVEN_TIMEOUT_SECONDS = 900.0

_POM = f"""<?xml version="1.0" encoding="UTF-8"?>
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.flask-hyper</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <!-- kafka-tools brings ProducerPerformance, ConsumerPerformance and EndToEndLatency. -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>{KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>{LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"""


@dataclass(frozen=True)
class JarResolution:
    """Folder of Kafka jars and how it was obtained."""

    path: Path
    resolved_now: bool
    source: str


def find_java() -> str:
    """Return the path of the ``java`` executable.

    ``$JAVA_HOME/bin/java`` wins when ``JAVA_HOME`` is set, else ``java`` on PATH.
    Raises DevBrokerError naming the fix when neither exists.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
        raise DevBrokerError(
            f"JAVA_HOME is set to {java_home} but {candidate} is missing or not "
            "executable: point JAVA_HOME at a Java 17+ install or unset it"
        )

    java = shutil.which("java")
    if java is None:
        raise DevBrokerError(
            "java not found on PATH: install Java 17 or newer and put java on PATH, "
            "or set JAVA_HOME to its install folder"
        )
    return java


def kafka_cache_dir() -> Path:
    """Return the folder that keeps the resolved jars across runs.

    ``HYPER_KAFKA_CACHE`` overrides ``<cache root>/kafka-<version>``.
    """
    override = os.environ.get(KAFKA_CACHE_ENV)
    if override:
        return Path(override)
    return cache_root() / f"kafka-{KAFKA_VERSION}"


def ensure_jars() -> JarResolution:
    """Return the Kafka classpath folder, resolving it with Maven if the cache is empty.

    ``KAFKA_HOME`` selects an existing Kafka install and its ``libs/`` folder
    instead, and Maven is not used then. Raises DevBrokerError when ``KAFKA_HOME``
    has no jars, when Maven is missing, or when resolution fails.
    """
    kafka_home = os.environ.get("KAFKA_HOME")
    if kafka_home:
        return JarResolution(_kafka_home_libs(Path(kafka_home)), False, "KAFKA_HOME")

    libs = kafka_cache_dir() / "libs"
    if _has_kafka_jar(libs):
        return JarResolution(libs, False, "cache")

    libs.parent.mkdir(parents=True, exist_ok=True)
    with _CacheLock(libs.parent):
        # Another process may have finished the same resolution while this one waited.
        if _has_kafka_jar(libs):
            return JarResolution(libs, False, "cache")
        _resolve_with_maven(libs)

    return JarResolution(libs, True, "maven")


def jar_dir() -> Path:
    """Return the folder whose jars form the Kafka classpath (``DIR/*`` for ``java -cp``).

    The folder also contains kafka-tools, so benchmarks can run
    ``org.apache.kafka.tools.ProducerPerformance`` from it.
    """
    return ensure_jars().path


def _kafka_home_libs(kafka_home: Path) -> Path:
    libs = kafka_home / "libs"
    if not _has_kafka_jar(libs):
        raise DevBrokerError(
            f"KAFKA_HOME={kafka_home} has no kafka_*.jar in {libs}: point KAFKA_HOME "
            "at an unpacked Kafka distribution or unset it to use Maven"
        )
    return libs


def _has_kafka_jar(libs: Path) -> bool:
    return libs.is_dir() and any(libs.glob("kafka_2.13-*.jar"))


class _CacheLock:
    """Exclusive lock on ``<folder>/.lock`` so parallel starts resolve only once."""

    def __init__(self, folder: Path) -> None:
        self._path = folder / ".lock"
        self._file = None

    def __enter__(self) -> None:
        self._file = open(self._path, "w")
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        assert self._file is not None
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()


def _resolve_with_maven(libs: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevBrokerError(
            f"mvn not found on PATH and the Kafka jar cache {libs} is empty: install "
            "Maven 3, or set KAFKA_HOME to an unpacked Kafka distribution"
        )

    logger.info("Resolving Kafka %s jars with Maven into %s", KAFKA_VERSION, libs)
    # Jars land in a scratch folder that is renamed at the end, so an interrupted
    # run never leaves a half-filled cache that looks complete.
    with tempfile.TemporaryDirectory(prefix="resolve-", dir=libs.parent) as scratch:
        scratch_path = Path(scratch)
        pom = scratch_path / "pom.xml"
        pom.write_text(_POM, encoding="utf-8")
        output_dir = scratch_path / "libs"
        _run_maven(mvn, pom, output_dir)
        if not _has_kafka_jar(output_dir):
            raise DevBrokerError(
                f"Maven finished but wrote no kafka_2.13 jar to {output_dir}: rerun "
                f"with a clean {KAFKA_CACHE_ENV} folder and check Maven's settings"
            )
        output_dir.rename(libs)


def _run_maven(mvn: str, pom: Path, output_dir: Path) -> None:
    command = [
        mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={output_dir}",
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired as error:
        raise DevBrokerError(
            f"Maven resolution of Kafka {KAFKA_VERSION} timed out after "
            f"{MAVEN_TIMEOUT_SECONDS:.0f} s: check network access to Maven Central"
        ) from error

    if result.returncode != 0:
        output_tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise DevBrokerError(
            f"Maven resolution of Kafka {KAFKA_VERSION} failed with exit code "
            f"{result.returncode}: run `{' '.join(command)}` to see why",
            details=output_tail,
        )
