"""Run the example system on Kafka and show one chain of events per request.

``python -m example_app.demo`` (or ``make demo``) starts a broker (see
:mod:`example_app.broker`), creates the topics, and starts an SMTP server and
the three services under gunicorn with 2 workers each. It then sends
``createUser`` requests over HTTP and prints each step as it happens: the
users service's response, each welcome mail as the SMTP server receives it,
and each notification read back from the notifier. Every line carries the
correlation id sent as ``X-Request-ID``. The demo keeps running until Ctrl-C
or SIGTERM, or exits at once with ``--once``, and stops everything it started.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any

from flask_hyper.devbroker import DevBrokerError

from . import client, launcher
from .broker import open_broker, touch_topics
from .ports import free_ports
from .settings import BOOTSTRAP_ENV, DEFAULT_MAIL_SENT, DEFAULT_USER_CREATED
from .smtp_server import MailSink, ReceivedMail

USERS = [
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.com", "Grace Hopper"),
    ("alan@example.com", "Alan Turing"),
]
INVALID_USER = ("not-an-e-mail", "Nobody")

READY_TIMEOUT_SECONDS = 120.0
CHAIN_TIMEOUT_SECONDS = 90.0
# Time to keep watching after the chain is complete, so duplicates or events
# of the rejected request would still show up.
SETTLE_SECONDS = 3.0
_POLL_SECONDS = 0.5

CREATE_USER = """
mutation CreateUser($email: String!, $name: String!) {
  createUser(email: $email, name: $name) { id email name }
}
"""
NOTIFICATIONS = "{ notifications { id kind userId text correlationId } }"
SENT_MAILS = "{ sentMails { id userId to subject correlationId } }"
CHAIN_ORDER = ["user.created", "mail.sent"]


class Output:
    """Prints demo lines with the seconds since start, from any thread."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, line: str = "") -> None:
        with self._lock:
            stamp = f"[{time.monotonic() - self._start:6.1f}s] " if line else ""
            print(stamp + line, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the demo and return the exit code: 0 when the whole chain was seen."""
    parser = argparse.ArgumentParser(prog="python -m example_app.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="exit after showing the chain instead of running until Ctrl-C")
    args = parser.parse_args(argv)

    _raise_on_sigterm()
    say = Output()
    try:
        with ExitStack() as cleanup:
            # Callbacks run last-in first-out, so this line comes after every stop.
            cleanup.callback(say, "stopped everything the demo started")
            complete = _run(say, cleanup, once=args.once)
    except KeyboardInterrupt:
        # The shell's convention: 128 plus the signal number (130 for Ctrl-C, 143 for SIGTERM).
        return 128 + _stop_signal[0]
    # ServiceError and a failed metadata request are RuntimeErrors.
    except (RuntimeError, DevBrokerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0 if complete else 1


def _run(say: Output, cleanup: ExitStack, *, once: bool) -> bool:
    broker = open_broker(say)
    cleanup.callback(broker.stop)
    say(f"kafka: using {broker.description}")

    workdir = Path(tempfile.mkdtemp(prefix="flask-hyper-demo-"))
    outcome = {"complete": False}
    cleanup.callback(_remove_or_keep, say, workdir, outcome)

    sink = MailSink(on_mail=lambda mail: _print_mail(say, mail)).start()
    cleanup.callback(sink.stop)
    say(f"smtp: listening on 127.0.0.1:{sink.port}")

    envs = {
        name: launcher.service_env(
            bootstrap_servers=broker.bootstrap_servers, db_dir=workdir, service=name, smtp_port=sink.port
        )
        for name in launcher.SERVICES
    }
    _create_topics(say, broker.can_create_topics, envs["users"])

    services = _start_services(say, cleanup, envs, workdir)
    urls = {service.name: service.graphql_url for service in services}

    requests = _send_requests(say, urls["users"])
    complete = _watch_chain(say, sink, urls["notifier"], requests)
    _print_summary(say, sink, urls, requests)
    outcome["complete"] = complete

    if once:
        return complete
    say()
    say("GraphQL endpoints (open one in a browser for the GraphiQL explorer):")
    for name, url in urls.items():
        say(f"  {name:9} {url}")
    say("Ctrl-C stops the services, the SMTP server and the broker.")
    _wait_for_signal()
    return complete


def _create_topics(say: Output, can_create: bool, env: dict[str, str]) -> None:
    if not can_create:
        for line in touch_topics(env[BOOTSTRAP_ENV], [DEFAULT_USER_CREATED, DEFAULT_MAIL_SENT]):
            say(f"topics: {line}")
        return
    for line in launcher.create_topics(env).splitlines():
        say(f"topics: {line}")


def _start_services(
    say: Output, cleanup: ExitStack, envs: dict[str, dict[str, str]], workdir: Path
) -> list[launcher.ServiceProcess]:
    ports = free_ports(len(envs))
    services: list[launcher.ServiceProcess] = []
    cleanup.callback(launcher.stop_services, services)
    for (name, env), port in zip(envs.items(), ports):
        service = launcher.start_service(name, port, env, workdir)
        services.append(service)
        say(f"{name}: gunicorn with {launcher.WORKERS} workers on {service.base_url}, log {service.log_file}")

    cleanup.callback(say, "stopping the services, the SMTP server and the broker ...")
    launcher.wait_ready(services, READY_TIMEOUT_SECONDS)
    say("ready: every service returns 200 on /readyz")
    return services


def _send_requests(say: Output, users_url: str) -> dict[str, dict[str, Any]]:
    """Send every createUser request; return each request and its created user, by correlation id."""
    say()
    run = uuid.uuid4().hex[:6]
    requests: dict[str, dict[str, Any]] = {}
    for number, (email, name) in enumerate([*USERS, INVALID_USER], start=1):
        request_id = f"demo-{run}-{number}"
        say(f"-> users: createUser(email: {email!r}, name: {name!r}) with X-Request-ID {request_id}")
        response = client.execute(users_url, CREATE_USER, {"email": email, "name": name}, request_id=request_id)
        user = (response.data or {}).get("createUser")
        if user:
            say(f"<- users: HTTP {response.status}, user {user['id']} stored, user.created acknowledged"
                f" [correlation id {response.request_id}]")
        else:
            say(f"<- users: HTTP {response.status}, rejected: {'; '.join(response.error_messages)}"
                f" [correlation id {response.request_id}]")
        requests[request_id] = {"email": email, "name": name, "user": user}
    return requests


def _watch_chain(
    say: Output, sink: MailSink, notifier_url: str, requests: dict[str, dict[str, Any]]
) -> bool:
    """Print notifications as they appear; return whether every accepted user's chain completed."""
    accepted = {rid for rid, sent in requests.items() if sent["user"]}
    seen: set[str] = set()
    deadline = time.monotonic() + CHAIN_TIMEOUT_SECONDS
    complete_since: float | None = None

    while time.monotonic() < deadline:
        notifications = _ours(_notifications(notifier_url), requests)
        for notification in notifications:
            if notification["id"] not in seen:
                seen.add(notification["id"])
                say(f"notifier: {notification['kind']}: {notification['text']}"
                    f" [correlation id {notification['correlationId']}]")

        if _chain_complete(accepted, sink.mails(), notifications):
            complete_since = complete_since or time.monotonic()
            if time.monotonic() - complete_since >= SETTLE_SECONDS:
                return True
        time.sleep(_POLL_SECONDS)

    say(f"incomplete: not every chain finished within {CHAIN_TIMEOUT_SECONDS:.0f} s; read the service logs")
    return False


def _chain_complete(accepted: set[str], mails: list[ReceivedMail], notifications: list[dict[str, Any]]) -> bool:
    for request_id in accepted:
        if sum(mail.correlation_id == request_id for mail in mails) < 1:
            return False
        kinds = {n["kind"] for n in notifications if n["correlationId"] == request_id}
        if kinds != set(CHAIN_ORDER):
            return False
    return True


def _print_summary(
    say: Output, sink: MailSink, urls: dict[str, str], requests: dict[str, dict[str, Any]]
) -> None:
    mails = sink.mails()
    notifications = _ours(_notifications(urls["notifier"]), requests)
    sent = client.execute(urls["mailer"], SENT_MAILS).data or {"sentMails": []}

    say()
    say("chain of events by correlation id:")
    for request_id, request in requests.items():
        user = request["user"]
        if user is None:
            leaked = [m for m in mails if m.correlation_id == request_id] + [
                n for n in notifications if n["correlationId"] == request_id
            ]
            outcome = "but a mail or notification appeared" if leaked else "no event, no mail, no notification"
            say(f"  {request_id}: createUser {request['email']!r} rejected -> {outcome}")
            continue

        mail_ids = [m["id"] for m in sent["sentMails"] if m["correlationId"] == request_id]
        received = sum(m.correlation_id == request_id for m in mails)
        kinds = sorted(
            (n["kind"] for n in notifications if n["correlationId"] == request_id), key=CHAIN_ORDER.index
        )
        say(f"  {request_id}: createUser -> user.created (user {user['id']})"
            f" -> welcome mail {', '.join(mail_ids) or '(none)'} received {received}x"
            f" -> mail.sent -> notifications: {', '.join(kinds) or '(none)'}")


def _notifications(notifier_url: str) -> list[dict[str, Any]]:
    response = client.execute(notifier_url, NOTIFICATIONS)
    return (response.data or {}).get("notifications") or []


def _ours(notifications: list[dict[str, Any]], requests: dict[str, Any]) -> list[dict[str, Any]]:
    # An existing cluster may hold events of earlier runs; show this run's only.
    return [n for n in notifications if n["correlationId"] in requests]


def _print_mail(say: Output, mail: ReceivedMail) -> None:
    say(f"smtp: welcome mail to {', '.join(mail.recipients)}: {mail.subject!r}"
        f" [correlation id {mail.correlation_id}]")


# The signal that stopped the demo; Ctrl-C unless SIGTERM arrived.
_stop_signal = [int(signal.SIGINT)]


def _raise_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        _stop_signal[0] = signum
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _remove_or_keep(say: Output, workdir: Path, outcome: dict[str, bool]) -> None:
    # The logs and databases of a failed run are what explains the failure.
    if outcome["complete"]:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        say(f"kept the service logs and databases in {workdir}")


def _wait_for_signal() -> None:
    # sleep() returns early on a signal, and the handler raises KeyboardInterrupt.
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    raise SystemExit(main())
