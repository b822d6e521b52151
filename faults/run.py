"""Run the fault-injection scenarios and write FAULTS.md: ``python -m faults.run``.

Exits 1 when any acknowledged event is lost, a count does not add up, a
scenario check fails, or a process of the run is still running at the end.
``--only 5,3`` runs some scenarios and writes their report into the run
folder instead of FAULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Callable

from flask_hyper.devbroker import Cluster, start_cluster

from . import broker_scenarios, consumer_scenarios, procs
from .load import SeqSource
from .report import command_line, write_report
from .stage import Result, Stage, progress

BROKER_START_TIMEOUT = 120.0

# Scenarios sharing the single-node broker, in run order. Scenario 6 comes
# last because it leaves the broker stopped.
SINGLE_NODE = (5, 3, 4, 1, 6)
THREE_NODE = (2,)

TITLES = {
    1: "Broker restart under publish load",
    2: "Leader loss in a three-node cluster",
    3: "Worker crash",
    4: "Graceful stop",
    5: "Poison messages",
    6: "Broker down at shutdown",
}


def main(argv: list[str] | None = None) -> int:
    options = _parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_id = time.strftime("%H%M%S") + secrets.token_hex(2)
    run_dir = procs.ROOT / ".hyper" / "faults" / run_id
    run_dir.mkdir(parents=True)
    signal.signal(signal.SIGTERM, _exit_on_signal)
    progress(f"run {run_id}: logs and ledgers in {run_dir}")

    started = time.monotonic()
    seqs = SeqSource(1)
    results: list[Result] = []
    kafka_version = "not started"
    try:
        kafka_version = _run_on_cluster(1, [n for n in SINGLE_NODE if n in options.only], run_dir, run_id, seqs, results)
        _run_on_cluster(3, [n for n in THREE_NODE if n in options.only], run_dir, run_id, seqs, results)
    finally:
        # Each scenario stops its own processes: any still alive here is a
        # failure to report, then killed so nothing outlives the run.
        unstopped = [f"{p.pid} {p.name} (still running after its scenario)" for p in procs.STARTED if p.alive()]
        procs.stop_all()

    leftovers = unstopped + procs.leftovers(f"faults-{run_id}")
    leftovers += _kafka_leftovers(run_dir)
    report = procs.ROOT / "FAULTS.md" if options.only == set(TITLES) else run_dir / "FAULTS.md"
    write_report(
        report, results, kafka_version=kafka_version, command=command_line(),
        seconds=time.monotonic() - started, leftovers=leftovers, log_dir=run_dir.relative_to(procs.ROOT),
    )
    return _verdict(results, leftovers, report)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m faults.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", default=",".join(map(str, sorted(TITLES))),
        help="comma-separated scenario numbers to run (default: all, 1-6)",
    )
    options = parser.parse_args(argv)
    options.only = {int(number) for number in options.only.split(",") if number.strip()}
    unknown = options.only - set(TITLES)
    if unknown:
        parser.error(f"unknown scenario {sorted(unknown)[0]}: choose from {sorted(TITLES)}")
    return options


def _run_on_cluster(
    nodes: int, numbers: list[int], run_dir: Path, run_id: str, seqs: SeqSource, results: list[Result]
) -> str:
    if not numbers:
        return "not started"
    progress(f"starting a {nodes}-node Kafka cluster")
    cluster = start_cluster(nodes=nodes, timeout=BROKER_START_TIMEOUT, die_with_parent=True)
    (run_dir / f"kafka-{nodes}-node-dir").write_text(str(cluster.run_dir) + "\n")
    progress(f"Kafka {cluster.kafka_version} ready at {cluster.bootstrap_servers}")
    try:
        for number in numbers:
            stage = Stage(run_dir, run_id, number, cluster.bootstrap_servers, seqs)
            results.append(_run_one(number, stage, cluster))
    finally:
        progress(f"stopping the {nodes}-node Kafka cluster")
        cluster.stop()
    return cluster.kafka_version


def _run_one(number: int, stage: Stage, cluster: Cluster) -> Result:
    scenarios: dict[int, Callable[[], Result]] = {
        1: lambda: broker_scenarios.broker_restart(stage, cluster),
        2: lambda: broker_scenarios.leader_loss(stage, cluster),
        3: lambda: consumer_scenarios.worker_crash(stage),
        4: lambda: consumer_scenarios.graceful_stop(stage),
        5: lambda: consumer_scenarios.poison_messages(stage),
        6: lambda: broker_scenarios.broker_down_at_shutdown(stage, cluster),
    }
    progress(f"scenario {number}: {TITLES[number]}")
    started = time.monotonic()
    try:
        result = scenarios[number]()
    except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
        traceback.print_exc()
        result = Result(number, TITLES[number], "The scenario did not complete.")
        result.problems.append(f"scenario raised {type(exc).__name__}: {exc}")
        for process in stage.processes:
            process.kill_group()
    result.seconds = time.monotonic() - started

    counts = result.counts
    problems = result.problems + (counts.problems if counts else [])
    verdict = "pass" if result.passed else "FAIL: " + "; ".join(problems)
    if counts is not None:
        progress(
            f"scenario {number}: attempted {counts.attempted}, acknowledged {counts.acknowledged},"
            f" handled {counts.handled}, duplicates {counts.duplicates}, dead-lettered"
            f" {counts.dead_lettered}, lost {counts.lost} in {result.seconds:.0f} s: {verdict}"
        )
    else:
        progress(f"scenario {number}: {verdict}")
    return result


def _kafka_leftovers(run_dir: Path) -> list[str]:
    found = []
    for marker in run_dir.glob("kafka-*-node-dir"):
        found += procs.leftovers(marker.read_text().strip())
    return found


def _verdict(results: list[Result], leftovers: list[str], report: Path) -> int:
    progress(f"wrote {report}")
    failed = [result.number for result in results if not result.passed]
    for line in leftovers:
        progress(f"left running: {line}")
    if failed or leftovers:
        progress(f"FAILED: scenarios {failed or 'none'}, {len(leftovers)} processes left running")
        return 1
    progress(f"passed: {len(results)} scenarios, no event lost, no process left running")
    return 0


def _exit_on_signal(signum: int, frame: object) -> None:
    # Turning SIGTERM into SystemExit runs the finally blocks that stop
    # brokers and gunicorn.
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
