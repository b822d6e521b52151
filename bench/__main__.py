"""``python -m bench [--quick] [--only SECTION ...]``: run the benchmarks, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Any, Callable

from flask_hyper.devbroker import start_cluster

from . import consume, environment, profiling, publish, report
from .common import RESULTS_DIR, Sizes

logger = logging.getLogger(__name__)

SECTIONS = ("publish", "consume", "graphql", "latency", "memory", "profile")


def _section_runners() -> dict[str, Callable[[str, Sizes], dict[str, Any]]]:
    from . import graphql_load, latency, memory

    return {
        "publish": publish.run_section,
        "consume": consume.run_section,
        "graphql": graphql_load.run_section,
        "latency": latency.run_section,
        "memory": memory.run_section,
        "profile": _profile_section,
    }


def _profile_section(bootstrap: str, sizes: Sizes) -> dict[str, Any]:
    return {
        "publish": profiling.profile_publish(bootstrap, sizes.publish_messages // 2),
        "consume": profiling.profile_consume(bootstrap, sizes.consume_messages // 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", default=os.environ.get("BENCH_QUICK") == "1",
                        help="smaller runs for development (also BENCH_QUICK=1)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="run only these sections; the report keeps the others from the last run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    sizes = Sizes.for_mode(args.quick)
    results_file = RESULTS_DIR / "results.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    runners = _section_runners()

    started = time.monotonic()
    cluster = start_cluster(nodes=1, timeout=120, die_with_parent=True)
    try:
        print(f"Kafka {cluster.kafka_version} at {cluster.bootstrap_servers}", flush=True)
        results["environment"] = environment.describe(cluster.kafka_version)
        results["mode"] = "quick" if args.quick else "full"
        for section in args.only:
            print(f"== {section}", flush=True)
            section_started = time.monotonic()
            results[section] = runners[section](cluster.bootstrap_servers, sizes)
            results[section]["wall_seconds"] = time.monotonic() - section_started
            _save(results_file, results)
    finally:
        cluster.stop()

    results["wall_seconds"] = time.monotonic() - started
    _save(results_file, results)
    report.write(results)
    print(f"Wrote BENCHMARKS.md in {results['wall_seconds']:.0f} s", flush=True)


def _save(path: Any, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
