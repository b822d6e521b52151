"""Child process that hosts librdkafka's in-memory mock cluster until SIGTERM.

Run as ``python -m flask_hyper.devbroker.mock_broker BOOTSTRAP_FILE``. The mock
cluster lives inside the Producer that creates it, so this process must stay
alive for other processes to reach it. Once the cluster listens, the bootstrap
address is written to BOOTSTRAP_FILE.
"""

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from confluent_kafka import Producer

logger = logging.getLogger(__name__)

_METADATA_TIMEOUT_SECONDS = 10.0


def main(argv: list[str]) -> int:
    """Start the mock cluster, publish its address, and block until SIGTERM or SIGINT."""
    if len(argv) != 2:
        print(f"usage: {argv[0]} BOOTSTRAP_FILE", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    producer = Producer({"test.mock.num.brokers": 1, "logger": logger})
    metadata = producer.list_topics(timeout=_METADATA_TIMEOUT_SECONDS)
    bootstrap = ",".join(f"{broker.host}:{broker.port}" for broker in metadata.brokers.values())
    _write_atomically(Path(argv[1]), bootstrap)
    logger.info("Mock cluster listens at %s", bootstrap)

    # A bounded wait lets the signal handler run between waits.
    while not stop_requested.wait(1.0):
        producer.poll(0)

    logger.info("Mock cluster at %s stopping", bootstrap)
    return 0


def _write_atomically(path: Path, text: str) -> None:
    # The parent polls for the file, so it must never see it half-written.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
