"""Publishing and consuming through a real broker: delivery semantics end to end."""

import logging
import os
import threading
import traceback

import pytest
from confluent_kafka import KafkaError
from flask import current_app

from flask_hyper import PublishError, PublishTimeout, signals

from kafka_helpers import create_topics, every_member_assigned, make_service, read_topic, wait_for

pytestmark = pytest.mark.kafka


@pytest.fixture
def topic(kafka_bootstrap, unique_topic):
    create_topics(kafka_bootstrap, unique_topic, f"{unique_topic}.dlt")
    return unique_topic


@pytest.fixture
def services():
    started = []
    yield started
    for hyper, app in started:
        hyper.shutdown(app, timeout=10)


def test_mutation_event_reaches_other_service(kafka_bootstrap, topic, services):
    users = make_service(kafka_bootstrap, "users", topic)
    mailer = make_service(kafka_bootstrap, "mailer", topic)
    services.extend([users, mailer])
    received = []

    @mailer[0].receiver(topic)
    def on_user_created(sender, message):
        received.append((sender, message, current_app.name))

    mailer[0].start_consumers(mailer[1])
    response = users[1].test_client().post(
        "/graphql",
        json={"query": 'mutation { createUser(email: "ada@example.org") }'},
        headers={"X-Request-ID": "chain-42"},
    )
    assert response.status_code == 200
    message_id = response.json["data"]["createUser"]

    wait_for(lambda: received)
    sender, message, app_name = received[0]
    assert sender is mailer[1]
    assert app_name == "mailer"
    assert message.value == {"email": "ada@example.org"}
    assert message.key == "ada@example.org"
    assert message.id == message_id
    assert message.correlation_id == "chain-42"
    assert message.source == "users"
    assert message.type == topic
    assert message.headers["ce_specversion"] == "1.0"
    assert message.headers["content-type"] == "application/json"
    assert message.headers["ce_time"].endswith("Z")


def test_receiver_publish_keeps_correlation_id(kafka_bootstrap, unique_topic, services):
    downstream = f"{unique_topic}.next"
    create_topics(kafka_bootstrap, unique_topic, downstream)
    hyper, app = make_service(kafka_bootstrap, "relay", unique_topic)
    services.append((hyper, app))
    relayed = []

    @hyper.receiver(unique_topic)
    def relay(sender, message):
        hyper.publish(downstream, {"seen": message.id}, wait=True)

    @hyper.receiver(downstream)
    def collect(sender, message):
        relayed.append(message)

    hyper.start_consumers(app)
    with app.test_request_context(headers={"X-Request-ID": "relay-7"}):
        hyper.publish(unique_topic, {"n": 1}, wait=True)

    wait_for(lambda: relayed)
    assert relayed[0].correlation_id == "relay-7"
    assert relayed[0].source == "relay"


def test_receiver_failing_twice_then_succeeding(kafka_bootstrap, topic, services):
    hyper, app = make_service(kafka_bootstrap, "flaky", topic)
    services.append((hyper, app))
    attempts, handled = [], []

    @hyper.receiver(topic)
    def flaky(sender, message):
        attempts.append(message.offset)
        if len(attempts) <= 2:
            raise ConnectionError("database restarting")
        handled.append(message)

    hyper.start_consumers(app)
    with app.app_context():
        hyper.publish(topic, {"n": 1}, wait=True)

    wait_for(lambda: handled)
    assert len(attempts) == 3
    assert hyper.stats(app)["retried"] == 2
    assert hyper.stats(app).get("dead_lettered", 0) == 0


def test_always_failing_receiver_dead_letters(kafka_bootstrap, topic, services):
    hyper, app = make_service(kafka_bootstrap, "poisoned", topic, HYPER_KAFKA_PRODUCER={"linger.ms": 0})
    services.append((hyper, app))
    handled, dead = [], []

    @hyper.receiver(topic)
    def picky(sender, message):
        if message.value["poison"]:
            raise ValueError(f"cannot handle {message.value}")
        handled.append(message.value)

    signals.message_dead_lettered.connect(lambda sender, **kw: dead.append(kw), sender=app, weak=False)
    hyper.start_consumers(app)
    with app.app_context():
        # Same key, so both land on one partition in this order.
        hyper.publish(topic, {"poison": True}, key="same", wait=True)
        hyper.publish(topic, {"poison": False}, key="same", wait=True)

    wait_for(lambda: handled)
    assert handled == [{"poison": False}]
    (dead_letter,) = read_topic(kafka_bootstrap, f"{topic}.dlt", 1)
    headers = {k: v.decode() for k, v in dead_letter.headers()}
    assert headers["hyper-dlt-original-topic"] == topic
    assert headers["hyper-dlt-original-offset"] == "0"
    assert headers["hyper-dlt-original-partition"] == str(dead_letter_partition(kafka_bootstrap, topic))
    assert headers["hyper-dlt-reason"] == "receiver-failed"
    assert headers["hyper-dlt-exception-type"] == "builtins.ValueError"
    assert "cannot handle" in headers["hyper-dlt-exception-message"]
    assert headers["hyper-dlt-receiver"].endswith("picky")
    assert headers["hyper-dlt-attempts"] == "3"
    assert headers["ce_id"]
    assert dead_letter.value() == b'{"poison":true}'
    assert dead[0]["reason"] == "receiver-failed"


def dead_letter_partition(bootstrap, topic):
    (message,) = read_topic(bootstrap, topic, 1)
    return message.partition()


def test_undecodable_message_dead_lettered(kafka_bootstrap, topic, services):
    hyper, app = make_service(kafka_bootstrap, "decoder", topic)
    services.append((hyper, app))
    handled = []
    hyper.receiver(topic)(lambda sender, message: handled.append(message.value))
    hyper.start_consumers(app)

    with app.app_context():
        hyper.publish(topic, b"\x00not json", key="k", headers={"x-origin": "test"}, wait=True)
        producer = app.extensions["hyper"].producer
        bad = [("content-type", b"application/json")]
        producer.produce(topic, b"{broken", key=b"k", headers=bad, message_id="raw").wait(10)
        hyper.publish(topic, {"fine": True}, key="k", wait=True)

    wait_for(lambda: len(handled) == 2)
    assert handled == [b"\x00not json", {"fine": True}]
    (dead_letter,) = read_topic(kafka_bootstrap, f"{topic}.dlt", 1)
    headers = dict(dead_letter.headers())
    assert headers["hyper-dlt-reason"] == b"undecodable"
    assert headers["hyper-dlt-exception-type"] == b"flask_hyper.errors.DeserializationError"
    assert dead_letter.value() == b"{broken"
    assert hyper.stats(app)["undecodable"] == 1


def test_stopped_consumer_resumes_from_committed_offset(kafka_bootstrap, topic, services):
    hyper, app = make_service(kafka_bootstrap, "resumer", topic, HYPER_CONSUMER_BATCH_SIZE=5)
    services.append((hyper, app))
    handled = []
    stop_now = threading.Event()

    @hyper.receiver(topic)
    def record(sender, message):
        handled.append(message.value["n"])
        if len(handled) == 20:
            stop_now.set()

    with app.app_context():
        for n in range(100):
            hyper.publish(topic, {"n": n}, key=str(n % 2))
        assert app.extensions["hyper"].producer.flush(30) == 0

    hyper.start_consumers(app)
    wait_for(stop_now.is_set)
    assert hyper.stop_consumers(app, timeout=20)
    first_run = list(handled)

    hyper.start_consumers(app)
    wait_for(lambda: len(set(handled)) == 100, timeout=60)
    assert hyper.stop_consumers(app, timeout=20)

    second_run = handled[len(first_run):]
    assert set(handled) == set(range(100))
    # Offsets of messages handled before the stop were committed on close.
    assert not set(first_run) & set(second_run)


def test_readiness_503_when_consumer_dies(kafka_bootstrap, topic, services):
    hyper, app = make_service(kafka_bootstrap, "fragile", topic)
    services.append((hyper, app))

    @hyper.receiver(topic)
    def crash(sender, message):
        raise SystemExit("receiver killed its thread")

    client = app.test_client()
    (thread,) = hyper.start_consumers(app)
    wait_for(lambda: client.get("/readyz").status_code == 200)

    with app.app_context():
        hyper.publish(topic, {"n": 1}, wait=True)
    wait_for(lambda: not thread.is_alive())

    response = client.get("/readyz")
    assert response.status_code == 503
    reason = response.json["checks"]["consumers"]["reason"]
    assert thread.name in reason
    assert "dead" in reason
    assert client.get("/healthz").status_code == 200


def test_readiness_503_when_broker_unreachable(unique_topic):
    hyper, app = make_service("127.0.0.1:9", "offline", unique_topic, HYPER_READY_TIMEOUT=0.5)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "producer cannot reach Kafka" in response.json["checks"]["producer"]["reason"]
    hyper.shutdown(app, timeout=0)


def test_publish_wait_fails_clearly_when_broker_down(unique_topic):
    hyper, app = make_service("127.0.0.1:9", "down", unique_topic, HYPER_PUBLISH_TIMEOUT=1)
    with app.app_context(), pytest.raises(PublishError, match=unique_topic) as raised:
        hyper.publish(unique_topic, {"n": 1}, wait=True)

    # The final report arrived, so the message is gone for good rather than
    # left queued for a surprise delivery later.
    assert not isinstance(raised.value, PublishTimeout)
    assert "timed out" in str(raised.value).lower()
    assert hyper.shutdown(app, timeout=0) == 0


def test_forked_child_gets_own_producer(kafka_bootstrap, topic, services):
    hyper, app = make_service(kafka_bootstrap, "forker", topic)
    services.append((hyper, app))
    with app.app_context():
        hyper.publish(topic, {"from": "parent"}, wait=True)
    parent_client = app.extensions["hyper"].producer._client

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            with app.app_context():
                hyper.publish(topic, {"from": "child"}, wait=True, timeout=20)
            child_client = app.extensions["hyper"].producer._client
            code = 0 if child_client is not parent_client else 2
        finally:
            os._exit(code)

    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    values = [m.value() for m in read_topic(kafka_bootstrap, topic, 2)]
    assert sorted(values) == [b'{"from":"child"}', b'{"from":"parent"}']


def test_full_queue_raises_after_bound(unique_topic):
    hyper, app = make_service(
        "127.0.0.1:9",
        "queue-full",
        unique_topic,
        HYPER_PRODUCER_BUFFER_TIMEOUT=0.3,
        HYPER_KAFKA_PRODUCER={"queue.buffering.max.messages": 1},
    )
    with app.app_context():
        hyper.publish(unique_topic, {"n": 1})
        with pytest.raises(PublishError, match="queue full"):
            hyper.publish(unique_topic, {"n": 2})
    assert hyper.shutdown(app, timeout=0) == 1


def test_retries_stay_within_max_poll_interval(kafka_bootstrap, topic, services, caplog):
    # Backoff sums to 2 + 4 + 8 = 14 s, twice max.poll.interval.ms.
    caplog.set_level(logging.INFO, logger="flask_hyper")
    hyper, app = make_service(
        kafka_bootstrap,
        "patient",
        topic,
        HYPER_RETRY_ATTEMPTS=4,
        HYPER_RETRY_BACKOFF=2.0,
        HYPER_KAFKA_CONSUMER={"session.timeout.ms": 6000, "max.poll.interval.ms": 7000},
    )
    services.append((hyper, app))
    attempts, handled = [], []

    @hyper.receiver(topic)
    def slow_to_succeed(sender, message):
        attempts.append(message.offset)
        if len(attempts) < 4:
            raise TimeoutError("downstream still warming up")
        handled.append(message.value)

    (thread,) = hyper.start_consumers(app)
    with app.app_context():
        hyper.publish(topic, {"n": 1}, wait=True)

    wait_for(lambda: handled, timeout=60)
    assert len(attempts) == 4
    assert thread.is_polling()
    assert "MAX_POLL" not in caplog.text
    assert "assigned" in caplog.text
    assert "revoked" not in caplog.text
    assert hyper.stats(app).get("dead_lettered", 0) == 0


def test_forked_child_runs_own_consumers(kafka_bootstrap, topic, services, tmp_path):
    hyper, app = make_service(kafka_bootstrap, "forked-consumer", topic)
    services.append((hyper, app))
    marker = tmp_path / "handled-in-child"

    @hyper.receiver(topic)
    def mark(sender, message):
        if os.getpid() != parent_pid:
            marker.write_text(str(os.getpid()))

    parent_pid = os.getpid()
    (parent_thread,) = hyper.start_consumers(app)
    wait_for(parent_thread.is_polling)
    # Forking while librdkafka threads run can leave their locks held in the
    # child, so the parent stops first, as a gunicorn master never runs any.
    hyper.stop_consumers(app, timeout=20)

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            # Another group, so the child's consumer gets every message.
            (child_thread,) = hyper.start_consumers(app, group_id=f"{topic}-child")
            code = 2 if child_thread is parent_thread else code
            with app.app_context():
                hyper.publish(topic, {"n": 1}, wait=True, timeout=20)
            wait_for(marker.exists, timeout=30)
            hyper.shutdown(app, timeout=10)
            code = 0 if code == 1 else code
        except BaseException:
            traceback.print_exc()
            raise
        finally:
            os._exit(code)

    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert marker.read_text() == str(pid)


def test_rebalance_commits_handled_offsets(kafka_bootstrap, topic, services):
    # With the commit timer out of the way, only the commit on revoke can
    # keep the second member from handling the first member's messages again.
    config = {
        "HYPER_CONSUMER_GROUP": f"{topic}-shared",
        "HYPER_KAFKA_CONSUMER": {"auto.commit.interval.ms": 600000},
    }
    first = make_service(kafka_bootstrap, "first", topic, **config)
    second = make_service(kafka_bootstrap, "second", topic, **config)
    services.extend([first, second])
    handled = []
    for hyper, _ in (first, second):
        hyper.receiver(topic)(lambda sender, message: handled.append(message.value))

    with first[1].app_context():
        for n in range(20):
            first[0].publish(topic, n, key=str(n))
        assert first[1].extensions["hyper"].producer.flush(30) == 0
    first[0].start_consumers(first[1])
    wait_for(lambda: len(handled) == 20)

    second[0].start_consumers(second[1])
    wait_for(lambda: every_member_assigned(kafka_bootstrap, f"{topic}-shared", 2), timeout=60)
    with first[1].app_context():
        for n in range(20, 30):
            first[0].publish(topic, n, key=str(n))
    wait_for(lambda: len(set(handled)) == 30, timeout=60)

    assert sorted(handled) == list(range(30))


def test_fatal_producer_error_recreates_client(kafka_bootstrap, topic, services):
    hyper, app = make_service(kafka_bootstrap, "fatal", topic)
    services.append((hyper, app))
    producer = app.extensions["hyper"].producer
    with app.app_context():
        hyper.publish(topic, {"n": 1}, wait=True)
    broken_client = producer._client

    # librdkafka reports a fatal error through error_cb, as it does for a
    # fenced idempotent producer.
    producer._on_error(KafkaError(KafkaError._FATAL, "injected fatal error", fatal=True))
    wait_for(lambda: producer._client is not broken_client)

    with app.app_context():
        handle = hyper.publish(topic, {"n": 2}, wait=True)
    assert handle.offset is not None
    assert producer._client is not broken_client
