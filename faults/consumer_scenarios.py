"""Scenarios that hit the consumers: poison messages, a worker crash, a graceful stop."""

from __future__ import annotations

import collections
import os
import signal
import time

from .kafkatools import RawProducer
from .ledger import FAILED, HANDLED
from .load import OK, NO_ANSWER, LoadGenerator, Outcomes, publish_batch
from .procs import wait_workers
from .stage import Result, Stage, progress, wait_until
from .tally import count

POISON_ROUNDS = 20
VALID_PER_ROUND = 10


def poison_messages(stage: Stage) -> Result:
    """Scenario 5: valid, undecodable and always-failing events interleaved on one partition."""
    result = Result(
        5, "Poison messages",
        "Undecodable and always-failing events go to the dead-letter topic with their"
        " provenance, and the valid events behind them on the same partition are all handled.",
    )
    stage.create_topics(partitions=1)
    env = stage.env(FAULTS_RETRY_BACKOFF="0.05")
    _, port = stage.gunicorn("gunicorn", env)
    raw = RawProducer(stage.bootstrap)
    outcomes = Outcomes()
    undecodable: dict[int, int] = {}
    failing: list[int] = []

    progress(f"scenario 5: {POISON_ROUNDS} rounds of {VALID_PER_ROUND} valid, 1 undecodable, 1 failing event")
    for _ in range(POISON_ROUNDS):
        publish_batch(port, stage.seqs.take(VALID_PER_ROUND), outcomes)
        seq = stage.seqs.take(1)[0]
        undecodable[seq] = _produce_undecodable(raw, stage.topic, seq, outcomes)
        failing_seq = stage.seqs.take(1)
        publish_batch(port, failing_seq, outcomes, fail=True)
        failing += failing_seq
    publish_batch(port, stage.seqs.take(VALID_PER_ROUND), outcomes)

    acknowledged = outcomes.seqs(OK)
    stage.wait_for_drain(acknowledged, with_dead_letters=True)
    letters = stage.dead_letters()
    rows = stage.rows()
    stage.stop_all(signal.SIGTERM, result)

    result.counts = count(outcomes.seqs(), acknowledged, rows, letters, duplicates_allowed=False)
    _check_poison(result, stage, outcomes, undecodable, set(failing), rows, letters)
    return result


def _produce_undecodable(raw: RawProducer, topic: str, seq: int, outcomes: Outcomes) -> int:
    # Invalid JSON (no closing brace) declared as JSON: the consumer cannot decode it.
    value = b'{"seq": %d, "fail": false' % seq
    try:
        _, offset = raw.produce_and_wait(topic, value, [("content-type", b"application/json")], 10.0)
    except Exception as exc:  # noqa: BLE001 - any produce failure is an unacknowledged event
        outcomes.record(seq, NO_ANSWER, f"{type(exc).__name__}: {exc}")
        return -1
    outcomes.record(seq, OK)
    return offset


def _check_poison(
    result: Result,
    stage: Stage,
    outcomes: Outcomes,
    undecodable: dict[int, int],
    failing: set[int],
    rows: list,
    letters: list,
) -> None:
    acknowledged = outcomes.seqs(OK)
    poison = (set(undecodable) | failing) & acknowledged
    valid = acknowledged - poison
    handled = {row.seq for row in rows if row.kind == HANDLED}
    by_seq = {letter.seq: letter for letter in letters}
    attempts = collections.Counter(row.seq for row in rows if row.kind == FAILED)
    failed_offsets = {row.seq: row.offset for row in rows if row.kind == FAILED}

    result.fact("valid events acknowledged / handled", f"{len(valid)} / {len(valid & handled)}")
    result.fact("undecodable events produced / dead-lettered", f"{len(undecodable)} / {len(set(undecodable) & set(by_seq))}")
    result.fact("failing events acknowledged / dead-lettered", f"{len(failing & acknowledged)} / {len(failing & set(by_seq))}")
    result.fact("receiver attempts per failing event", _spread(attempts[seq] for seq in failing))
    result.fact("dead-letter records / distinct ids", f"{len(letters)} / {len(by_seq)}")

    result.check(handled == valid, f"handled ids differ from the valid ids: {sorted(handled ^ valid)[:10]}")
    result.check(set(by_seq) == poison, f"dead-lettered ids differ from the poison ids: {sorted(set(by_seq) ^ poison)[:10]}")
    result.check(len(letters) == len(by_seq), "a poison event reached the dead-letter topic more than once")
    for seq, letter in by_seq.items():
        expected_reason = "undecodable" if seq in undecodable else "receiver-failed"
        expected_offset = undecodable.get(seq, failed_offsets.get(seq))
        headers = letter.headers
        provenance_ok = (
            headers.get("hyper-dlt-original-topic") == stage.topic
            and headers.get("hyper-dlt-original-partition") == "0"
            and headers.get("hyper-dlt-original-offset") == str(expected_offset)
            and headers.get("hyper-dlt-reason") == expected_reason
            and bool(headers.get("hyper-dlt-exception-type"))
        )
        result.check(provenance_ok, f"dead letter of event {seq} has wrong provenance headers: {headers}")
        if seq in failing:
            result.check(headers.get("hyper-dlt-attempts") == "3", f"dead letter of event {seq} names attempts {headers.get('hyper-dlt-attempts')}, expected 3")
            # A rebalance during the retry backoff abandons the event, and its
            # next owner starts counting again: more than 3 attempts is correct.
            result.check(attempts[seq] >= 3, f"failing event {seq} was attempted {attempts[seq]} times, expected at least 3")


def _spread(values) -> str:
    values = sorted(values)
    if not values:
        return "none"
    return f"min {values[0]}, max {values[-1]}"


def worker_crash(stage: Stage) -> Result:
    """Scenario 3: SIGKILL a gunicorn worker while its consumer is mid-stream."""
    result = Result(
        3, "Worker crash (SIGKILL of a gunicorn worker)",
        "A worker killed mid-stream loses no acknowledged event: after the session timeout the"
        " group (the other worker, the respawned worker and `flask hyper consume`) handles its"
        " partitions again from the last commit, so some events are handled twice (at-least-once).",
    )
    stage.create_topics(partitions=4)
    env = stage.env(FAULTS_RECEIVER_DELAY="0.005")
    master, port = stage.gunicorn("gunicorn", env)
    consume = stage.consume("consume", env)
    workers = wait_workers(master, 2, 10)
    outcomes = Outcomes()

    progress("scenario 3: publishing at up to ~400 events/s through GraphQL, receivers take 5 ms each")
    load = LoadGenerator(port, stage.seqs, outcomes, threads=2, batch=10, pause=0.05, max_seconds=20, max_events=8000).start()
    victim = _pick_busy_worker(stage, workers, time.monotonic() + 30)
    handled_by_victim = sum(1 for row in stage.rows() if row.pid == victim and row.kind == HANDLED)
    progress(f"scenario 3: SIGKILL worker {victim} after it handled {handled_by_victim} events")
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    respawned = wait_workers(master, 2, 30, exclude={victim})
    load.join()

    acknowledged = outcomes.seqs(OK)
    drained = stage.wait_for_drain(acknowledged)
    rows = stage.rows()
    result.check(consume.alive(), "flask hyper consume exited during the scenario")
    stage.stop_all(signal.SIGTERM, result)

    result.counts = count(outcomes.seqs(), acknowledged, rows, [], duplicates_allowed=True)
    new_workers = sorted(set(respawned) - set(workers))
    result.fact("killed worker pid / events it handled", f"{victim} / {handled_by_victim}")
    result.fact("respawned worker pid", ", ".join(map(str, new_workers)) or "none")
    result.fact("events handled after the kill, by process role", _by_role(rows, killed_at))
    result.fact("requests without answer (in flight in the killed worker)", len(outcomes.seqs(NO_ANSWER)))
    result.fact("seconds until every acknowledged event was handled", f"{drained:.1f}")
    result.check(bool(new_workers), "gunicorn did not respawn the killed worker")
    return result


def _pick_busy_worker(stage: Stage, workers: list[int], deadline: float) -> int:
    # Wait until a worker has handled events in the last second: its consumer
    # is then mid-stream, with a fetched batch and uncommitted offsets.
    time.sleep(4)
    while time.monotonic() < deadline:
        now = time.time()
        recent = [row.pid for row in stage.rows() if row.pid in workers and now - row.end < 1.0]
        if recent:
            return collections.Counter(recent).most_common(1)[0][0]
        time.sleep(0.2)
    raise TimeoutError("no gunicorn worker handled events within 30 s; cannot pick one to kill")


def _by_role(rows: list, since: float) -> str:
    roles = collections.Counter(row.role for row in rows if row.kind == HANDLED and row.end > since)
    return ", ".join(f"{role} {number}" for role, number in sorted(roles.items())) or "none"


def graceful_stop(stage: Stage) -> Result:
    """Scenario 4: SIGTERM gunicorn and ``flask hyper consume`` during consumption, then restart."""
    result = Result(
        4, "Graceful stop (SIGTERM) and restart",
        "SIGTERM lets each consumer finish its current event and commit: after the restart no"
        " event whose handling had finished before the signal is handled again, and none is lost.",
    )
    stage.create_topics(partitions=4)
    env = stage.env(FAULTS_RECEIVER_DELAY="0.01")
    master, port = stage.gunicorn("gunicorn-1", env)
    consume = stage.consume("consume-1", env)
    outcomes = Outcomes()

    progress("scenario 4: publishing a backlog of 2400 events, receivers take 10 ms each")
    load = LoadGenerator(port, stage.seqs, outcomes, threads=2, batch=50, max_seconds=60, max_events=2400).start()
    wait_until(lambda: len(stage.handled_ids()) >= 500, 60)
    load.stop()

    handled_before = len(stage.handled_ids())
    progress(f"scenario 4: SIGTERM gunicorn {master.pid} and flask hyper consume {consume.pid} after {handled_before} events handled")
    stopped_at = time.time()
    consume.signal(signal.SIGTERM)
    gunicorn_seconds = stage.stop_process(master, signal.SIGTERM, result)
    consume_seconds = stage.stop_process(consume, signal.SIGTERM, result)

    progress("scenario 4: restarting gunicorn and flask hyper consume")
    _, _ = stage.gunicorn("gunicorn-2", env)
    stage.consume("consume-2", env)
    acknowledged = outcomes.seqs(OK)
    drained = stage.wait_for_drain(acknowledged)
    rows = stage.rows()
    stage.stop_all(signal.SIGTERM, result)

    result.counts = count(outcomes.seqs(), acknowledged, rows, [], duplicates_allowed=True)
    _check_no_repeat_after_stop(result, rows, stopped_at)
    result.fact("seconds from SIGTERM to exit: gunicorn / flask hyper consume", f"{gunicorn_seconds:.1f} / {consume_seconds:.1f}")
    result.fact("seconds until every acknowledged event was handled after restart", f"{drained:.1f}")
    result.fact("graceful shutdown lines in the gunicorn log", _count_lines(master, "stopped its consumers and producers"))
    result.fact("'consumer closed' lines in the flask hyper consume log", _count_lines(consume, "closed, stored offsets committed"))
    return result


def _check_no_repeat_after_stop(result: Result, rows: list, stopped_at: float) -> None:
    handled = [row for row in rows if row.kind == HANDLED]
    first_end: dict[int, float] = {}
    for row in sorted(handled, key=lambda r: r.end):
        first_end.setdefault(row.seq, row.end)
    finished_before = {seq for seq, end in first_end.items() if end < stopped_at}
    repeats = collections.Counter(row.seq for row in handled if row.seq in finished_before)
    repeated = sorted(seq for seq, times in repeats.items() if times > 1)
    in_flight = sum(1 for row in handled if row.start < stopped_at < row.end)

    result.fact("events finished before SIGTERM / handled again after restart", f"{len(finished_before)} / {len(repeated)}")
    result.fact("handlings in progress when SIGTERM was sent", in_flight)
    result.check(not repeated, f"{len(repeated)} events finished before SIGTERM were handled again, first ids {repeated[:10]}")


def _count_lines(process, text: str) -> int:
    return sum(1 for line in process.log_text().splitlines() if text in line)
