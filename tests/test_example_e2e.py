"""End to end: the example services on a real broker, with a real SMTP server.

The main test runs the demo's flow with every service under gunicorn: three
createUser requests and one with an invalid e-mail address go to the users
service over HTTP, and the test follows each chain through Kafka, the SMTP
server and the notifier's GraphQL API. The others cover the mailer's dead
letters when SMTP fails and the receivers' handling of redelivered messages.
Each test uses topics and consumer groups of its own prefix.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from flask import Flask

import example_app.mailer
import example_app.notifier
from example_app import client, launcher, settings
from example_app.mailer import receivers as mailer_receivers
from example_app.notifier import receivers as notifier_receivers
from example_app.ports import free_ports
from example_app.settings import DEFAULT_MAIL_SENT, DEFAULT_USER_CREATED, TOPIC_PARTITIONS
from example_app.smtp_server import MailSink, ReceivedMail
from flask_hyper import PublishError
from flask_hyper.topics import create_topics

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

VALID_USERS = [
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("alan@example.com", "Alan Turing"),
]
INVALID_USER = ("ada.example.com", "No At Sign")

READY_TIMEOUT_SECONDS = 90.0
CHAIN_TIMEOUT_SECONDS = 60.0
# Wait this long after the last expected event, so a duplicate would arrive.
DUPLICATE_WINDOW_SECONDS = 4.0

CREATE_USER = "mutation($email: String!, $name: String!) { createUser(email: $email, name: $name) { id email } }"
USERS = "{ users { id email } }"
SENT_MAILS = "{ sentMails { id userId to correlationId } }"
NOTIFICATIONS = "{ notifications { kind userId text correlationId } }"


def test_example_chain_end_to_end(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    sink = MailSink().start()
    services: list[launcher.ServiceProcess] = []
    try:
        envs = _environments(kafka_bootstrap, tmp_path, launcher.SERVICES, sink.port, prefix)
        topics_output = launcher.create_topics(envs["users"])
        assert f"{prefix}{DEFAULT_USER_CREATED}: created" in topics_output
        assert f"{prefix}{DEFAULT_MAIL_SENT}.dlt: created" in topics_output
        _start_services(envs, tmp_path, services)
        urls = {service.name: service.graphql_url for service in services}

        run = uuid.uuid4().hex[:8]
        users = _create_valid_users(urls["users"], run)
        invalid_id = _create_invalid_user(urls["users"], run)

        def chain_complete() -> bool:
            notifications = _query(urls["notifier"], NOTIFICATIONS)["notifications"]
            return len(sink.mails()) >= len(users) and len(notifications) >= 2 * len(users)

        _wait_until(chain_complete, CHAIN_TIMEOUT_SECONDS, lambda: _diagnostics(services, sink))
        time.sleep(DUPLICATE_WINDOW_SECONDS)

        _check_mails(sink.mails(), users, invalid_id)
        _check_sent_mails(_query(urls["mailer"], SENT_MAILS)["sentMails"], users)
        _check_notifications(_query(urls["notifier"], NOTIFICATIONS)["notifications"], users, invalid_id)
        _check_users_stored(_query(urls["users"], USERS)["users"], users)
        _check_topic(kafka_bootstrap, prefix + DEFAULT_USER_CREATED, users, invalid_id)
        _check_topic(kafka_bootstrap, prefix + DEFAULT_MAIL_SENT, users, invalid_id)
    finally:
        launcher.stop_services(services)
        sink.stop()

    for service in services:
        assert service.process.returncode == 0, f"{service.name} exit code, log:\n{service.log_tail()}"


def test_mailer_dead_letters_smtp_failure(kafka_bootstrap: str, tmp_path: Path) -> None:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    # Nothing listens on this port, so every SMTP connection is refused.
    closed_smtp_port = free_ports(1)[0]
    services: list[launcher.ServiceProcess] = []
    try:
        envs = _environments(kafka_bootstrap, tmp_path, ["users", "mailer"], closed_smtp_port, prefix)
        launcher.create_topics(envs["users"])
        _start_services(envs, tmp_path, services)
        urls = {service.name: service.graphql_url for service in services}

        request_id = f"e2e-{uuid.uuid4().hex[:8]}-smtp-down"
        email, name = VALID_USERS[0]
        response = client.execute(urls["users"], CREATE_USER, {"email": email, "name": name}, request_id=request_id)
        assert response.status == 200, response.body
        user_id = response.data["createUser"]["id"]

        dead_letters = _read_topic(kafka_bootstrap, f"{prefix}{DEFAULT_USER_CREATED}.dlt", at_least=1, timeout=60)
        assert len(dead_letters) == 1, dead_letters
        key, headers = dead_letters[0]
        assert key == user_id
        assert headers["ce_correlationid"].decode() == request_id
        assert headers["hyper-dlt-reason"] == b"receiver-failed"
        assert headers["hyper-dlt-attempts"] == b"3"
        assert headers["hyper-dlt-exception-type"].decode().endswith("ConnectionRefusedError")
        assert headers["hyper-dlt-original-topic"].decode() == prefix + DEFAULT_USER_CREATED

        assert _read_topic(kafka_bootstrap, prefix + DEFAULT_MAIL_SENT) == []
        assert _query(urls["mailer"], SENT_MAILS)["sentMails"] == []
    finally:
        launcher.stop_services(services)


def test_receivers_skip_redelivered_messages(
    kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    sink = MailSink().start()
    apps = []
    try:
        env = launcher.service_env(
            bootstrap_servers=kafka_bootstrap, db_dir=tmp_path, service="mailer", smtp_port=sink.port, prefix=prefix, base={}
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        mailer = example_app.mailer.create_app()
        monkeypatch.setenv(settings.DB_PATH_ENV, str(tmp_path / "notifier.sqlite3"))
        notifier = example_app.notifier.create_app()
        apps = [mailer, notifier]
        create_topics(mailer.extensions["hyper"].settings)

        first = _user_created(prefix, "ada@example.com", "c-first")
        for _ in range(2):
            _deliver(mailer, mailer_receivers.on_user_created, first)
            _deliver(notifier, notifier_receivers.on_user_created, first)
        assert [mail.correlation_id for mail in sink.mails()] == ["c-first"]
        notifications = _query_app(notifier, NOTIFICATIONS)["notifications"]
        assert [n["correlationId"] for n in notifications] == ["c-first"]

        # The SMTP server accepts the mail, then publishing mail.sent fails once:
        # the redelivered message publishes mail.sent without a second mail.
        second = _user_created(prefix, "grace@example.com", "c-second")
        real_publish = mailer_receivers.publish
        failures = iter([PublishError("broker unreachable", topic=prefix + DEFAULT_MAIL_SENT)])

        def publish_failing_once(*args: Any, **kwargs: Any) -> Any:
            for error in failures:
                raise error
            return real_publish(*args, **kwargs)

        monkeypatch.setattr(mailer_receivers, "publish", publish_failing_once)
        with pytest.raises(PublishError):
            _deliver(mailer, mailer_receivers.on_user_created, second)
        _deliver(mailer, mailer_receivers.on_user_created, second)
        _deliver(mailer, mailer_receivers.on_user_created, second)

        assert [mail.correlation_id for mail in sink.mails()] == ["c-first", "c-second"]
        mail_sent = _read_topic(kafka_bootstrap, prefix + DEFAULT_MAIL_SENT, at_least=2)
        assert sorted(headers["ce_correlationid"].decode() for _, headers in mail_sent) == ["c-first", "c-second"]
    finally:
        for app in apps:
            app.extensions["hyper"].service.shutdown(app)
        sink.stop()


# -- services ---------------------------------------------------------------


def _environments(
    bootstrap: str, tmp_path: Path, names: list[str] | tuple[str, ...], smtp_port: int, prefix: str
) -> dict[str, dict[str, str]]:
    return {
        name: launcher.service_env(
            bootstrap_servers=bootstrap, db_dir=tmp_path, service=name, smtp_port=smtp_port, prefix=prefix
        )
        for name in names
    }


def _start_services(
    envs: dict[str, dict[str, str]], tmp_path: Path, services: list[launcher.ServiceProcess]
) -> None:
    """Start each service into ``services``, which the caller stops, and wait until all are ready."""
    for (name, env), port in zip(envs.items(), free_ports(len(envs))):
        services.append(launcher.start_service(name, port, env, tmp_path))
    launcher.wait_ready(services, READY_TIMEOUT_SECONDS)


def _user_created(prefix: str, email: str, correlation_id: str) -> Any:
    """Return a stand-in for a consumed user.created :class:`Message`.

    It has the public attributes receivers read, so the test does not depend
    on how the consumer builds messages.
    """
    user = {"id": uuid.uuid4().hex, "email": email, "name": email.split("@")[0], "createdAt": "2024-01-01T00:00:00Z"}
    return SimpleNamespace(
        topic=prefix + DEFAULT_USER_CREATED,
        partition=0,
        offset=0,
        key=user["id"],
        value=user,
        id=uuid.uuid4().hex,
        correlation_id=correlation_id,
    )


def _deliver(app: Flask, receiver: Callable[..., None], message: Any) -> None:
    # In a context pushed for the call, as the dispatcher does. A request
    # context with X-Request-ID makes what the receiver publishes carry the
    # message's correlation id through public behaviour only.
    with app.test_request_context(headers={"X-Request-ID": message.correlation_id}):
        receiver(app, message=message)


def _query_app(app: Flask, query: str) -> dict[str, Any]:
    response = app.test_client().post("/graphql", json={"query": query})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["data"]


# -- requests ---------------------------------------------------------------


def _create_valid_users(users_url: str, run: str) -> dict[str, dict[str, str]]:
    """Create every valid user; return {request id: {id, email, name}}."""
    users = {}
    for number, (email, name) in enumerate(VALID_USERS):
        request_id = f"e2e-{run}-{number}"
        response = client.execute(users_url, CREATE_USER, {"email": email, "name": name}, request_id=request_id)
        assert response.status == 200, response.body
        assert response.request_id == request_id
        assert "errors" not in response.body, response.body
        created = response.data["createUser"]
        assert created["email"] == email
        users[request_id] = {"id": created["id"], "email": email, "name": name}
    return users


def _create_invalid_user(users_url: str, run: str) -> str:
    """Send the invalid user and check the GraphQL error; return its request id."""
    request_id = f"e2e-{run}-invalid"
    email, name = INVALID_USER
    response = client.execute(users_url, CREATE_USER, {"email": email, "name": name}, request_id=request_id)
    assert response.request_id == request_id
    assert response.data is None, response.body
    assert len(response.error_messages) == 1, response.body
    assert response.error_messages[0].startswith(f"Invalid e-mail address {email!r}")
    return request_id


# -- checks -----------------------------------------------------------------


def _check_mails(mails: list[ReceivedMail], users: dict[str, dict[str, str]], invalid_id: str) -> None:
    for request_id, user in users.items():
        ours = [mail for mail in mails if mail.correlation_id == request_id]
        assert len(ours) == 1, f"welcome mails for {request_id}: {ours}"
        assert ours[0].recipients == (user["email"],)
        assert ours[0].subject == f"Welcome, {user['name']}!"
    assert not [mail for mail in mails if mail.correlation_id == invalid_id]
    assert len(mails) == len(users), mails


def _check_sent_mails(sent: list[dict[str, Any]], users: dict[str, dict[str, str]]) -> None:
    assert len(sent) == len(users), sent
    for request_id, user in users.items():
        ours = [mail for mail in sent if mail["correlationId"] == request_id]
        assert len(ours) == 1, f"sentMails for {request_id}: {sent}"
        assert ours[0]["userId"] == user["id"]
        assert ours[0]["to"] == user["email"]
        user["mail_id"] = ours[0]["id"]


def _check_notifications(
    notifications: list[dict[str, Any]], users: dict[str, dict[str, str]], invalid_id: str
) -> None:
    assert len(notifications) == 2 * len(users), notifications
    for request_id, user in users.items():
        ours = [n for n in notifications if n["correlationId"] == request_id]
        created = [n for n in ours if n["kind"] == "user.created"]
        sent = [n for n in ours if n["kind"] == "mail.sent"]
        assert len(created) == 1, f"user.created notifications for {request_id}: {ours}"
        assert len(sent) == 1, f"mail.sent notifications for {request_id}: {ours}"
        assert created[0]["userId"] == user["id"]
        assert sent[0]["userId"] == user["id"]
        assert user["mail_id"] in sent[0]["text"]
    assert not [n for n in notifications if n["correlationId"] == invalid_id]


def _check_users_stored(stored: list[dict[str, str]], users: dict[str, dict[str, str]]) -> None:
    assert sorted(user["id"] for user in stored) == sorted(user["id"] for user in users.values())
    assert INVALID_USER[0] not in [user["email"] for user in stored]


def _check_topic(bootstrap: str, topic: str, users: dict[str, dict[str, str]], invalid_id: str) -> None:
    """Check that ``topic`` contains exactly one message per user, keyed by user id."""
    messages = _read_topic(bootstrap, topic)
    correlation_ids = sorted(headers.get("ce_correlationid", b"").decode() for _, headers in messages)
    assert correlation_ids == sorted(users), f"{topic}: {messages}"
    assert invalid_id not in correlation_ids
    keys = sorted(key for key, _ in messages)
    assert keys == sorted(user["id"] for user in users.values())


def _read_topic(bootstrap: str, topic: str, at_least: int = 0, timeout: float = 30.0) -> list[tuple[str, dict[str, bytes]]]:
    """Return (key, headers) of every message in ``topic``, read up to the high watermarks.

    Waits up to ``timeout`` seconds for the topic to contain ``at_least`` messages.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"e2e-reader-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        partitions = [TopicPartition(topic, p, 0) for p in range(TOPIC_PARTITIONS)]
        deadline = time.monotonic() + timeout
        expected = _message_count(consumer, partitions)
        while expected < at_least and time.monotonic() < deadline:
            time.sleep(0.5)
            expected = _message_count(consumer, partitions)

        consumer.assign(partitions)
        messages = []
        while len(messages) < expected and time.monotonic() < deadline + timeout:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            messages.append((message.key().decode(), dict(message.headers() or [])))
        assert len(messages) == expected, f"read {len(messages)} of {expected} messages of {topic}"
        return messages
    finally:
        consumer.close()


def _message_count(consumer: Consumer, partitions: list[TopicPartition]) -> int:
    return sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions)


# -- waiting ----------------------------------------------------------------


def _query(url: str, query: str) -> dict[str, Any]:
    response = client.execute(url, query)
    assert response.status == 200, response.body
    assert "errors" not in response.body, response.body
    return response.data


def _wait_until(condition: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(f"chain incomplete after {timeout:.0f} s\n{describe()}")
        time.sleep(0.5)


def _diagnostics(services: list[launcher.ServiceProcess], sink: MailSink) -> str:
    parts = [f"mails received: {sink.mails()}"]
    for service in services:
        parts.append(f"--- {service.name} log tail ---\n{service.log_tail(40)}")
    return "\n".join(parts)
