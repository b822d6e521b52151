"""Scenarios that hit the brokers: restart under load, leader loss, broker down at shutdown."""

from __future__ import annotations

import re
import signal
import time

from flask_hyper.devbroker import Cluster

from .kafkatools import group_coordinator, partition_leader
from .ledger import ACKED, HANDLED
from .load import ERROR, NO_ANSWER, OK, LoadGenerator, Outcomes, publish_batch
from .procs import http_status
from .stage import Result, Stage, progress, wait_until
from .tally import count

_NOT_DELIVERED = re.compile(r"closed with (\d+) messages not delivered")
# A message that expires (message.timeout.ms) before shutdown is logged on its own.
_EXPIRED = re.compile(r"message \w+ to '[^']+' not delivered: ")


def broker_restart(stage: Stage, cluster: Cluster) -> Result:
    """Scenario 1: stop and restart the single broker under a stream of publish mutations."""
    result = Result(
        1, "Broker restart under publish load",
        "A `publish` mutation sent while the only broker is down returns an error once its"
        " event is not acknowledged within HYPER_PUBLISH_TIMEOUT (3 s, also the producer's"
        " message.timeout.ms), and one sent shortly before the restart may still succeed. Every"
        " mutation that returned success has its event handled. An event whose request was"
        " already written when it timed out can still show as 'handled although not"
        " acknowledged'.",
    )
    stage.create_topics(partitions=2)
    env = stage.env(FAULTS_PUBLISH_TIMEOUT="3")
    _, port = stage.gunicorn("gunicorn", env)
    outcomes = Outcomes()

    progress("scenario 1: streaming single-event publish mutations from 2 clients")
    load = LoadGenerator(port, stage.seqs, outcomes, threads=2, batch=1, max_seconds=40, request_timeout=15).start()
    time.sleep(5)
    progress("scenario 1: stopping broker node 1 (SIGTERM)")
    down_at = time.time()
    cluster.stop_node(1)
    time.sleep(4)
    progress("scenario 1: restarting broker node 1 with the same log dir")
    cluster.start_node(1, timeout=120)
    up_at = time.time()
    time.sleep(8)
    load.stop()
    progress(f"scenario 1: broker was down {up_at - down_at:.1f} s; waiting for consumers to catch up")

    acknowledged = outcomes.seqs(OK)
    drained = stage.wait_for_drain(acknowledged)
    rows = stage.rows()
    stage.stop_all(signal.SIGTERM, result)

    result.counts = count(outcomes.seqs(), acknowledged, rows, [], duplicates_allowed=True)
    answered = outcomes.answered_at
    result.fact("seconds the broker was unreachable (stop to ready again)", f"{up_at - down_at:.1f}")
    result.fact("mutations answered success before / during / after the outage", _split(outcomes, OK, down_at, up_at))
    result.fact("mutations answered with an error", len(outcomes.seqs(ERROR)))
    result.fact("mutations without any answer", len(outcomes.seqs(NO_ANSWER)))
    result.fact("error answers, by message", _top_errors(outcomes))
    result.fact("seconds until every acknowledged event was handled", f"{drained:.1f}")
    result.check(not outcomes.seqs(NO_ANSWER), f"{len(outcomes.seqs(NO_ANSWER))} mutations got no answer instead of an error")
    result.check(any(answered[seq] > up_at for seq in acknowledged), "no mutation succeeded after the broker restart")
    return result


def leader_loss(stage: Stage, cluster: Cluster) -> Result:
    """Scenario 2: SIGKILL the leader of partition 0 in a three-node cluster under load."""
    result = Result(
        2, "Leader loss in a three-node cluster (RF 3, min.insync.replicas 2)",
        "With acks=all and two in-sync replicas left, publishing and consuming continue after the"
        " partition leader is killed with SIGKILL, and no acknowledged event is lost. When the killed"
        " node also coordinated the consumer group, the members lose their partitions until a new"
        " coordinator takes over, and the new owners handle uncommitted events again (duplicates).",
    )
    stage.create_topics(partitions=3, replication=3, config={"min.insync.replicas": "2"})
    env = stage.env(FAULTS_PUBLISH_TIMEOUT="10")
    _, port = stage.gunicorn("gunicorn", env)
    outcomes = Outcomes()

    progress("scenario 2: publishing batches of 10 events from 2 clients")
    load = LoadGenerator(
        port, stage.seqs, outcomes, threads=2, batch=10, pause=0.02, max_seconds=30, request_timeout=20
    ).start()
    time.sleep(8)
    leader = partition_leader(stage.bootstrap, stage.topic, 0)
    coordinator = group_coordinator(stage.bootstrap, stage.group)
    progress(f"scenario 2: SIGKILL node {leader}, leader of {stage.topic}[0]")
    killed_at = time.time()
    cluster.kill_node(leader, signal.SIGKILL)
    new_leader = _wait_new_leader(stage, leader)
    time.sleep(max(0.0, killed_at + 15 - time.time()))
    load.stop()

    acknowledged = outcomes.seqs(OK)
    drained = stage.wait_for_drain(acknowledged)
    rows = stage.rows()
    stage.stop_all(signal.SIGTERM, result)

    result.counts = count(outcomes.seqs(), acknowledged, rows, [], duplicates_allowed=True)
    acked_after = sum(1 for seq in acknowledged if outcomes.answered_at[seq] > killed_at)
    handled_after = sum(1 for row in rows if row.kind == HANDLED and row.end > killed_at)
    result.fact("killed node / new leader of partition 0", f"{leader} / {new_leader}")
    result.fact("group coordinator before the kill", f"node {coordinator}")
    result.fact("events acknowledged / handled after the kill", f"{acked_after} / {handled_after}")
    result.fact("mutations answered with an error / without answer", f"{len(outcomes.seqs(ERROR))} / {len(outcomes.seqs(NO_ANSWER))}")
    result.fact("error answers, by message", _top_errors(outcomes))
    result.fact("seconds until every acknowledged event was handled", f"{drained:.1f}")
    result.check(acked_after > 0, "no event was acknowledged after the leader was killed")
    result.check(handled_after > 0, "no event was handled after the leader was killed")
    return result


def _wait_new_leader(stage: Stage, old: int) -> str:
    found: list[int] = []

    def elected() -> bool:
        try:
            leader = partition_leader(stage.bootstrap, stage.topic, 0)
        except Exception:  # noqa: BLE001 - metadata may fail while the cluster elects
            return False
        if leader in (-1, old):
            return False
        found.append(leader)
        return True

    return str(found[0]) if wait_until(elected, 30, pause=0.5) else "none within 30 s"


def broker_down_at_shutdown(stage: Stage, cluster: Cluster, graceful_timeout: int = 10) -> Result:
    """Scenario 6: fire-and-forget events queued while the broker is down, then SIGTERM gunicorn."""
    result = Result(
        6, "Broker down at shutdown",
        f"With the broker down, SIGTERM still ends every worker within graceful_timeout"
        f" ({graceful_timeout:.0f} s), and the workers log every event they could not deliver: one line"
        f" per event that expired (message.timeout.ms) before the stop, and the count still queued at"
        f" shutdown.",
        notes=[
            "Events are published fire-and-forget (`publishBatch(wait: false)`), so the caller gets no"
            " acknowledgement. Here 'acknowledged' counts the broker's delivery reports, recorded by the"
            " service through the `message_published` signal. Events queued while the broker was down"
            " never got one: they are 'not acknowledged', not lost, and the workers' 'not delivered'"
            " log lines must account for every one of them.",
        ],
        acknowledged_label="acknowledged by the broker (delivery report)",
    )
    stage.create_topics(partitions=2)
    env = stage.env()
    master, port = stage.gunicorn("gunicorn", env, graceful_timeout=graceful_timeout)
    outcomes = Outcomes()

    progress("scenario 6: 200 fire-and-forget events with the broker up")
    first = _fire_and_forget(port, stage, outcomes, 200)
    wait_until(lambda: first <= _acked(stage) and first <= stage.handled_ids(), 60, pause=0.5)
    progress("scenario 6: stopping the broker, then 200 more fire-and-forget events")
    cluster.stop_node(1)
    second = _fire_and_forget(port, stage, outcomes, 200)
    readiness = http_status(port, "/readyz")

    progress(f"scenario 6: SIGTERM gunicorn (graceful_timeout {graceful_timeout:.0f} s)")
    seconds = stage.stop_process(master, signal.SIGTERM, result)
    rows = stage.rows()
    acknowledged = {row.seq for row in rows if row.kind == ACKED}

    result.counts = count(outcomes.seqs(), acknowledged, rows, [], duplicates_allowed=False)
    log_text = master.log_text()
    expired = len(_EXPIRED.findall(log_text))
    not_delivered = sum(int(n) for n in _NOT_DELIVERED.findall(log_text)) + expired
    queued_unacked = len((first | second) - acknowledged)
    timeouts = master.log_text().count("WORKER TIMEOUT")
    result.fact("/readyz status with the broker down", readiness)
    result.fact("seconds from SIGTERM to gunicorn exit", f"{seconds:.1f}")
    result.fact("events queued before / after the broker stopped", f"{len(first)} / {len(second)}")
    result.fact("queued events never acknowledged", queued_unacked)
    result.fact("events logged as expired before the stop", expired)
    result.fact("'not delivered' total in the workers' log lines", not_delivered)
    result.fact("WORKER TIMEOUT lines (worker killed by the master)", timeouts)
    result.fact("consumers that overran their stop budget (log lines)", master.log_text().count("did not stop within"))
    result.check(seconds < graceful_timeout, f"gunicorn took {seconds:.1f} s to exit, graceful_timeout is {graceful_timeout:.0f} s")
    result.check(readiness == 503, f"/readyz answered {readiness} with the broker down, expected 503")
    result.check(timeouts == 0, "the master had to kill a worker")
    result.check(not_delivered == queued_unacked, f"workers logged {not_delivered} undelivered events, {queued_unacked} were never acknowledged")
    result.check(first <= acknowledged, "events published with the broker up were not all acknowledged")
    return result


def _fire_and_forget(port: int, stage: Stage, outcomes: Outcomes, total: int) -> set[int]:
    seqs = stage.seqs.take(total)
    for start in range(0, total, 20):
        publish_batch(port, seqs[start:start + 20], outcomes, wait=False)
    return {seq for seq in seqs if outcomes.by_seq.get(seq) == OK}


def _acked(stage: Stage) -> set[int]:
    return {row.seq for row in stage.rows() if row.kind == ACKED}


def _split(outcomes: Outcomes, outcome: str, start: float, end: float) -> str:
    times = [outcomes.answered_at[seq] for seq in outcomes.seqs(outcome)]
    before = sum(1 for t in times if t < start)
    during = sum(1 for t in times if start <= t <= end)
    return f"{before} / {during} / {len(times) - before - during}"


def _top_errors(outcomes: Outcomes) -> str:
    ranked = sorted(outcomes.errors.items(), key=lambda item: -item[1])[:3]
    return "; ".join(f"{number}x {text}" for text, number in ranked) or "none"
